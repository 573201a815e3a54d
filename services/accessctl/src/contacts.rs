//! Commands on one contact: invitations, access, passwords, checks.

use crate::{Client, document_kind, read_password};
use access_proto::v1 as pb;
use access_proto::v1::access_client::AccessClient;
use access_proto::v1::sessions_client::SessionsClient;
use clap::Subcommand;

/// Commands on one contact.
#[derive(Subcommand)]
pub(crate) enum ContactCommand {
    /// Asks whether a contact may do something, and why not.
    Check {
        /// The contact's id.
        #[arg(long)]
        contact: String,
        /// login, place-order, view-document, view-site, view-costs or view-balance.
        #[arg(long)]
        action: String,
        /// For view-document: sales-quote, sales-order, sales-invoice, credit-note, delivery-note, payment, report.
        #[arg(long, default_value = "")]
        kind: String,
        /// For view-site: the site.
        #[arg(long, default_value = "")]
        site: String,
    },
    /// Invites a customer contact by email.
    Invite {
        /// The customer's id.
        #[arg(long)]
        customer: String,
        /// The contact's email.
        #[arg(long)]
        email: String,
        /// The personal message of the invitation.
        #[arg(long)]
        message: String,
        /// Show only this site, and route orders there.
        #[arg(long, conflicts_with = "all_sites")]
        site: Option<String>,
        /// Show totals over all sites; route orders to the default order site.
        #[arg(long)]
        all_sites: bool,
    },
    /// Sends a fresh link for an unaccepted invitation (the old link dies).
    Resend {
        /// The contact's id.
        #[arg(long)]
        contact: String,
    },
    /// Blocks a contact's logins and orders, keeping everything.
    Disable(ContactArgs),
    /// Lifts a block.
    Restore(ContactArgs),
    /// Ends a contact's membership; the email can be invited again.
    Revoke(ContactArgs),
    /// Lifts a lock after too many failed logins.
    Unlock(ContactArgs),
    /// Removes every second factor of a contact who lost theirs (say in
    /// --reason how you checked who asks); the contact is told by email.
    ResetSecondFactors(ContactArgs),
    /// Removes one second factor of a contact (a lost phone among several
    /// passkeys; say in --reason how you checked who asks); the contact is
    /// told by email.
    RemoveSecondFactor {
        /// The contact and why.
        #[command(flatten)]
        on: ContactArgs,
        /// The factor's id (`contact` lists them).
        #[arg(long)]
        factor: String,
    },
    /// Shows a contact.
    Contact {
        /// The contact's id.
        #[arg(long)]
        contact: String,
    },
    /// Shows which sites a contact sees and where its orders go.
    Sites {
        /// The contact's id.
        #[arg(long)]
        contact: String,
    },
    /// Accepts an invitation; reads the password from standard input.
    Accept {
        /// The link from the email, or just its token.
        #[arg(long)]
        link: String,
    },
    /// Logs a contact in; reads the password from standard input.
    Login {
        /// The contact's email or username.
        #[arg(long, visible_aliases = ["email", "username"])]
        login: String,
    },
    /// Changes a contact's password: logs in, then sets the new one. Reads the
    /// current and the new password from standard input, one per line.
    ChangePassword {
        /// The contact's email or username.
        #[arg(long, visible_aliases = ["email", "username"])]
        login: String,
    },
    /// Creates a customer's management login USERNAME and staff login USERNAME + S,
    /// with generated temporary passwords printed once.
    AddPortalUser {
        /// The customer's id.
        #[arg(long)]
        customer: String,
        /// The management login's username.
        #[arg(long)]
        username: String,
        /// The management login's email (optional).
        #[arg(long, default_value = "")]
        email: String,
    },
    /// Gives a login a generated temporary password, printed once.
    TemporaryPassword {
        /// The contact's id.
        #[arg(long)]
        contact: String,
    },
}

#[derive(clap::Args)]
pub(crate) struct ContactArgs {
    /// The contact's id.
    #[arg(long)]
    contact: String,
    /// Why, for the audit trail.
    #[arg(long, default_value = "")]
    reason: String,
}

pub(crate) fn print_contact(c: &pb::Contact) {
    println!("contact: {}", c.contact_id);
    println!("customer: {}", c.customer_id);
    println!("email: {}", c.email);
    println!("status: {}", c.status);
    println!("invitation: {}", c.invitation_id);
    if !c.username.is_empty() {
        println!("username: {} ({} login)", c.username, c.kind);
    }
    println!("has logged in: {}", c.has_logged_in);
    if c.failed_logins > 0 {
        println!("failed logins: {}", c.failed_logins);
    }
    if !c.locked_until.is_empty() {
        println!("locked until: {}", c.locked_until);
    }
    for f in &c.second_factors {
        match f.name.as_str() {
            "" => println!("second factor: {} ({})", f.factor_id, f.kind),
            name => println!("second factor: {} ({} \"{name}\")", f.factor_id, f.kind),
        }
    }
}

pub(crate) fn print_session(s: &pb::Session) {
    if s.must_change_password {
        println!("must change password: yes (only a password change is allowed)");
    }
    println!(
        "logged in: {} ({}) for customer {} of {}",
        s.email, s.contact_id, s.customer_id, s.tenant_id
    );
    println!("session expires: {}", s.expires_at);
    println!("position: {}", s.position);
}

/// Runs one of these commands.
pub(crate) async fn run(command: ContactCommand, client: &Client) -> anyhow::Result<()> {
    let rid = client.request_id.clone();
    let mut access = AccessClient::new(client.channel.clone());
    let mut sessions = SessionsClient::new(client.channel.clone());
    match command {
        ContactCommand::Check {
            contact,
            action,
            kind,
            site,
        } => {
            let action = match action.as_str() {
                "login" => pb::Action::Login,
                "place-order" => pb::Action::PlaceOrder,
                "view-document" => pb::Action::ViewDocument,
                "view-site" => pb::Action::ViewSite,
                "view-costs" => pb::Action::ViewCosts,
                "view-balance" => pb::Action::ViewBalance,
                other => anyhow::bail!("unknown action {other:?}"),
            };
            let r = access
                .check_access(client.request(pb::CheckAccessRequest {
                    contact_id: contact,
                    session_token: String::new(),
                    action: action as i32,
                    document_kind: document_kind(&kind)?,
                    site,
                    min_position: 0,
                })?)
                .await?
                .into_inner();
            println!("allowed: {}", r.allowed);
            println!("reason: {}", r.reason);
            println!("orders go to: {}", r.order_site);
        }
        ContactCommand::Invite {
            customer,
            email,
            message,
            site,
            all_sites,
        } => {
            use pb::site_rule::Rule;
            let rule = match (site, all_sites) {
                (Some(site), _) => Rule::OneSite(pb::OneSite { site }),
                (None, true) => Rule::AllSites(pb::AllSites {}),
                (None, false) => Rule::TenantDefault(pb::TenantDefault {}),
            };
            let r = access
                .invite_customer(client.request(pb::InviteCustomerRequest {
                    request_id: rid,
                    customer_id: customer,
                    email,
                    message,
                    site_rule: Some(pb::SiteRule { rule: Some(rule) }),
                })?)
                .await?
                .into_inner();
            println!("contact: {}", r.contact_id);
            println!("invitation: {}", r.invitation_id);
            println!("link expires: {}", r.expires_at);
            println!("position: {}", r.position);
        }
        ContactCommand::Resend { contact } => {
            let r = access
                .resend_invitation(client.request(pb::ResendInvitationRequest {
                    request_id: rid,
                    contact_id: contact,
                })?)
                .await?
                .into_inner();
            println!("invitation: {}", r.invitation_id);
            println!("link expires: {}", r.expires_at);
            println!("position: {}", r.position);
        }
        ContactCommand::Disable(a) => {
            let m = pb::ContactCommand {
                request_id: rid,
                contact_id: a.contact,
                reason: a.reason,
            };
            let r = access
                .disable_access(client.request(m)?)
                .await?
                .into_inner();
            print_contact(&r.contact.unwrap_or_default());
        }
        ContactCommand::Restore(a) => {
            let m = pb::ContactCommand {
                request_id: rid,
                contact_id: a.contact,
                reason: a.reason,
            };
            let r = access
                .restore_access(client.request(m)?)
                .await?
                .into_inner();
            print_contact(&r.contact.unwrap_or_default());
        }
        ContactCommand::Revoke(a) => {
            let m = pb::ContactCommand {
                request_id: rid,
                contact_id: a.contact,
                reason: a.reason,
            };
            let r = access.revoke_access(client.request(m)?).await?.into_inner();
            print_contact(&r.contact.unwrap_or_default());
        }
        ContactCommand::Unlock(a) => {
            let m = pb::ContactCommand {
                request_id: rid,
                contact_id: a.contact,
                reason: a.reason,
            };
            let r = access.unlock_login(client.request(m)?).await?.into_inner();
            print_contact(&r.contact.unwrap_or_default());
        }
        ContactCommand::ResetSecondFactors(a) => {
            let m = pb::ContactCommand {
                request_id: rid,
                contact_id: a.contact,
                reason: a.reason,
            };
            let r = access
                .reset_second_factors(client.request(m)?)
                .await?
                .into_inner();
            print_contact(&r.contact.unwrap_or_default());
        }
        ContactCommand::RemoveSecondFactor { on, factor } => {
            let m = pb::RemoveSecondFactorRequest {
                request_id: rid,
                contact_id: on.contact,
                factor_id: factor,
                reason: on.reason,
            };
            let r = access
                .remove_second_factor(client.request(m)?)
                .await?
                .into_inner();
            print_contact(&r.contact.unwrap_or_default());
        }
        ContactCommand::Contact { contact } => {
            let r = access
                .get_contact(client.request(pb::GetContactRequest {
                    contact_id: contact,
                    min_position: 0,
                })?)
                .await?
                .into_inner();
            print_contact(&r);
        }
        ContactCommand::Sites { contact } => {
            let r = access
                .get_site_visibility(client.request(pb::GetSiteVisibilityRequest {
                    contact_id: contact,
                    min_position: 0,
                })?)
                .await?
                .into_inner();
            println!("visible sites: {}", r.visible_sites.join(", "));
            println!("orders go to: {}", r.order_site);
            println!("stock totals over all sites: {}", r.stock_totals);
        }
        ContactCommand::Accept { link } => {
            let token = link.rsplit('/').next().unwrap_or_default().to_owned();
            let password = read_password()?;
            let r = sessions
                .accept_invitation(client.request(pb::AcceptInvitationRequest {
                    request_id: rid,
                    token,
                    password,
                })?)
                .await?
                .into_inner();
            print_session(&r);
        }
        ContactCommand::Login { login } => {
            let password = read_password()?;
            let r = sessions
                .login(client.request(pb::LoginRequest {
                    request_id: rid,
                    login,
                    password,
                    client_address: String::new(),
                })?)
                .await?
                .into_inner();
            print_session(&r);
        }
        ContactCommand::ChangePassword { login } => {
            let input = read_password()?;
            let mut lines = input.lines();
            let (Some(current), Some(new)) = (lines.next(), lines.next()) else {
                anyhow::bail!(
                    "give the current and the new password on two lines of standard input"
                );
            };
            let session = sessions
                .login(client.request(pb::LoginRequest {
                    request_id: format!("{rid}-login"),
                    login,
                    password: current.to_owned(),
                    client_address: String::new(),
                })?)
                .await?
                .into_inner();
            let r = sessions
                .change_password(client.request(pb::ChangePasswordRequest {
                    request_id: rid,
                    session_token: session.session_token,
                    current_password: current.to_owned(),
                    new_password: new.to_owned(),
                })?)
                .await?
                .into_inner();
            print_session(&r);
        }
        ContactCommand::AddPortalUser {
            customer,
            username,
            email,
        } => {
            let r = access
                .add_portal_user(client.request(pb::AddPortalUserRequest {
                    request_id: rid,
                    customer_id: customer,
                    username,
                    email,
                    site_rule: None,
                    management_password: String::new(),
                    staff_password: String::new(),
                })?)
                .await?
                .into_inner();
            println!(
                "management login: {} ({})",
                r.management_username, r.management_contact_id
            );
            println!(
                "management temporary password: {}",
                r.management_temporary_password
            );
            println!("staff login: {} ({})", r.staff_username, r.staff_contact_id);
            println!("staff temporary password: {}", r.staff_temporary_password);
            eprintln!(
                "Hand these over now: they are not shown again, and must be changed at first login."
            );
        }
        ContactCommand::TemporaryPassword { contact } => {
            let r = access
                .set_temporary_password(client.request(pb::SetTemporaryPasswordRequest {
                    request_id: rid,
                    contact_id: contact,
                    password: String::new(),
                })?)
                .await?
                .into_inner();
            println!("temporary password: {}", r.temporary_password);
            eprintln!(
                "Hand it over now: it is not shown again, and must be changed at first login."
            );
        }
    }
    Ok(())
}
