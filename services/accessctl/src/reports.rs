//! Reports, bulk invitations, approvals and portal links.

use crate::{Client, document_kind, read_password};
use access_proto::v1 as pb;
use access_proto::v1::access_client::AccessClient;
use access_proto::v1::sessions_client::SessionsClient;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use clap::{Args, Subcommand};

/// Filters on customers.
#[derive(Args, Clone, Debug)]
pub struct FilterArgs {
    /// Only customers of this type.
    #[arg(long = "type", default_value = "")]
    customer_type: String,
    /// Only customers of this sales rep.
    #[arg(long, default_value = "")]
    rep: String,
    /// Only customers on this price list.
    #[arg(long, default_value = "")]
    price_list: String,
}

impl FilterArgs {
    fn filter(&self) -> Option<pb::CustomerFilter> {
        Some(pb::CustomerFilter {
            customer_type: self.customer_type.clone(),
            sales_rep: self.rep.clone(),
            price_list: self.price_list.clone(),
        })
    }
}

/// Commands of this module.
#[derive(Subcommand)]
pub enum ReportCommand {
    /// The access status report: every customer and contact with its state.
    Report {
        #[command(flatten)]
        filter: FilterArgs,
        /// Only contacts in this status (invited, active, disabled, revoked, pending_approval, no_login).
        #[arg(long, default_value = "")]
        status: String,
        /// Print CSV (with a header line) instead of aligned text.
        #[arg(long)]
        csv: bool,
    },
    /// Customers without a login (the bulk-invitation list).
    WithoutLogin {
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Invites many customers: `--target ID=EMAIL` (repeat), or `--all` with filters.
    BulkInvite {
        /// The invitation message.
        #[arg(long)]
        message: String,
        /// A customer and its invitation address (blank: not invited).
        #[arg(long = "target")]
        targets: Vec<String>,
        /// Every customer without a login matching the filters, at its accounting email.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Logins that count for billing.
    Billable,
    /// Changes a contact's email and username (both: empty means none).
    UpdateContact {
        /// The contact's id.
        #[arg(long)]
        contact: String,
        /// The email.
        #[arg(long, default_value = "")]
        email: String,
        /// The username.
        #[arg(long, default_value = "")]
        username: String,
        /// Also send the email that fits (invitation, welcome or reset).
        #[arg(long)]
        send: bool,
    },
    /// Lets a contact waiting for approval log in.
    Approve {
        /// The contact's id.
        #[arg(long)]
        contact: String,
    },
    /// Turns down a login waiting for approval (revokes it; its email and username are free again).
    Reject {
        /// The contact's id.
        #[arg(long)]
        contact: String,
    },
    /// Replaces the tenant's sites and defaults (admin key).
    TenantSettings {
        /// A stock site (repeat for each).
        #[arg(long = "site", required = true)]
        sites: Vec<String>,
        /// Where orders go by default.
        #[arg(long)]
        default_order_site: String,
        /// The one site "tenant default" contacts see; omit for totals over all sites.
        #[arg(long, default_value = "")]
        default_site: String,
        /// Contacts of inactive or blacklisted customers may still log in and look.
        #[arg(long)]
        inactive_may_log_in: bool,
    },
    /// Shows the tenant and its settings.
    TenantShow,
    /// Sets the one to three username administrators (admin key).
    Admins {
        /// An administrator's email (repeat).
        #[arg(long = "email", required = true)]
        emails: Vec<String>,
    },
    /// Makes registrations wait for approval, or not (admin key).
    Approval {
        /// true or false.
        #[arg(long)]
        required: bool,
    },
    /// Staff: mails a contact the invitation again, a welcome, or a reset link.
    SendReset {
        /// The contact's id.
        #[arg(long)]
        contact: String,
    },
    /// "Forgot password" for a login (email or username).
    Forgot {
        /// Email or username.
        #[arg(long)]
        login: String,
    },
    /// Sets a new password with a reset link; reads it from standard input.
    ResetPassword {
        /// The link from the email, or its token.
        #[arg(long)]
        link: String,
    },
    /// Creates a portal link for a customer and prints its URL (once).
    PortalLinkCreate {
        /// The customer's id.
        #[arg(long)]
        customer: String,
        /// A document kind (repeat): sales-quote, sales-order, sales-invoice, credit-note, delivery-note.
        #[arg(long = "kind", required = true)]
        kinds: Vec<String>,
        /// RFC 3339 expiry (optional).
        #[arg(long, default_value = "")]
        expires: String,
    },
    /// Shows what a portal link token opens.
    PortalLinkResolve {
        /// The token (or the whole URL).
        #[arg(long)]
        token: String,
    },
    /// Kills a portal link at once.
    PortalLinkDelete {
        /// The link's id.
        #[arg(long)]
        id: String,
    },
}

/// A CSV field, quoted when needed (RFC 4180). A field a spreadsheet would
/// take for a formula (`=`, `+`, `-`, `@`, a tab or a carriage return first:
/// a customer's name is text its customer chose) gets a leading `'`, as
/// OWASP advises, so opening the report runs nothing.
fn csv(field: &str) -> String {
    let field = if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{field}")
    } else {
        field.to_owned()
    };
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

fn print_tenant(t: &pb::Tenant) {
    println!("tenant: {} ({})", t.tenant_id, t.name);
    println!("sites: {}", t.sites.join(", "));
    println!("default order site: {}", t.default_order_site);
    println!(
        "catalogue default: {}",
        if t.default_site.is_empty() {
            "all sites"
        } else {
            &t.default_site
        }
    );
    println!(
        "inactive customers may log in: {}",
        t.inactive_customers_may_log_in
    );
    println!("approval required: {}", t.approval_required);
    println!(
        "username administrators: {}",
        t.username_administrators.join(", ")
    );
}

/// Runs one command of this module.
pub async fn run(command: ReportCommand, client: &Client) -> anyhow::Result<()> {
    let rid = client.request_id.clone();
    let mut access = AccessClient::new(client.channel.clone());
    let mut sessions = SessionsClient::new(client.channel.clone());
    let mut admin = TenantAdminClient::new(client.channel.clone());
    match command {
        ReportCommand::Report {
            filter,
            status,
            csv: as_csv,
        } => {
            let mut token = String::new();
            if as_csv {
                println!(
                    "customer_id,customer_name,customer_status,contact_id,email,username,kind,status,has_logged_in"
                );
            }
            loop {
                let page = access
                    .list_access(client.request(pb::ListAccessRequest {
                        filter: filter.filter(),
                        status: status.clone(),
                        page_size: 1000,
                        page_token: token.clone(),
                        min_position: 0,
                    })?)
                    .await?
                    .into_inner();
                for r in &page.rows {
                    let fields = [
                        r.customer_id.as_str(),
                        &r.customer_name,
                        &r.customer_status,
                        &r.contact_id,
                        &r.email,
                        &r.username,
                        &r.kind,
                        &r.status,
                        if r.has_logged_in { "yes" } else { "no" },
                    ];
                    if as_csv {
                        println!(
                            "{}",
                            fields.iter().map(|f| csv(f)).collect::<Vec<_>>().join(",")
                        );
                    } else {
                        println!(
                            "{:<12} {:<24} {:<12} {:<32} {:<16} {}",
                            r.customer_id,
                            r.customer_name,
                            r.status,
                            r.email,
                            r.username,
                            r.customer_status
                        );
                    }
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
        }
        ReportCommand::WithoutLogin { filter } => {
            let mut token = String::new();
            loop {
                let page = access
                    .list_customers_without_login(client.request(pb::ListCustomersRequest {
                        filter: filter.filter(),
                        page_size: 1000,
                        page_token: token.clone(),
                        min_position: 0,
                    })?)
                    .await?
                    .into_inner();
                for c in page.customers {
                    let r = c.record.unwrap_or_default();
                    let email = r.contact.map(|c| c.email).unwrap_or_default();
                    println!(
                        "{:<12} {:<32} {:<32} {}",
                        r.customer_id, r.name, email, r.sales_rep
                    );
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
        }
        ReportCommand::BulkInvite {
            message,
            targets,
            all,
            filter,
        } => {
            let targets = targets
                .iter()
                .map(|t| {
                    let (id, email) = t.split_once('=').unwrap_or((t.as_str(), ""));
                    pb::BulkInviteTarget {
                        customer_id: id.into(),
                        email: email.into(),
                    }
                })
                .collect();
            let r = access
                .bulk_invite(client.request(pb::BulkInviteRequest {
                    request_id: rid,
                    message,
                    site_rule: None,
                    targets,
                    all_matching: all,
                    filter: filter.filter(),
                })?)
                .await?
                .into_inner();
            for i in &r.invited {
                println!(
                    "invited {} at {} (contact {})",
                    i.customer_id, i.email, i.contact_id
                );
            }
            for s in &r.skipped {
                println!("skipped {}: {} ({})", s.customer_id, s.reason, s.message);
            }
            println!("{} invited, {} skipped", r.invited.len(), r.skipped.len());
        }
        ReportCommand::Billable => {
            let r = access
                .billable_users(client.request(pb::BillableUsersRequest { min_position: 0 })?)
                .await?
                .into_inner();
            println!("billable users: {}", r.billable_users);
            println!(
                "  active: {}, disabled: {}, waiting for approval: {}",
                r.active, r.disabled, r.pending_approval
            );
            println!("invitations not accepted (not billed): {}", r.invited);
        }
        ReportCommand::UpdateContact {
            contact,
            email,
            username,
            send,
        } => {
            let r = access
                .update_contact(client.request(pb::UpdateContactRequest {
                    request_id: rid,
                    contact_id: contact,
                    email,
                    username,
                    send_access_email: send,
                })?)
                .await?
                .into_inner();
            let c = r.contact.unwrap_or_default();
            println!(
                "contact: {} email: {} username: {}",
                c.contact_id, c.email, c.username
            );
            if !r.email_sent.is_empty() {
                println!("sent: {} email", r.email_sent);
            }
        }
        ReportCommand::Approve { contact } => {
            let m = pb::ContactCommand {
                request_id: rid,
                contact_id: contact,
                reason: String::new(),
            };
            let r = access.approve_user(client.request(m)?).await?.into_inner();
            println!("status: {}", r.contact.unwrap_or_default().status);
        }
        ReportCommand::Reject { contact } => {
            let m = pb::ContactCommand {
                request_id: rid,
                contact_id: contact,
                reason: String::new(),
            };
            let r = access.reject_user(client.request(m)?).await?.into_inner();
            println!("status: {}", r.contact.unwrap_or_default().status);
        }
        ReportCommand::TenantSettings {
            sites,
            default_order_site,
            default_site,
            inactive_may_log_in,
        } => {
            let r = admin
                .update_tenant_settings(client.request(pb::UpdateTenantSettingsRequest {
                    request_id: rid,
                    sites,
                    default_order_site,
                    default_site,
                    inactive_customers_may_log_in: inactive_may_log_in,
                })?)
                .await?
                .into_inner();
            print_tenant(&r.tenant.unwrap_or_default());
        }
        ReportCommand::TenantShow => {
            let r = admin
                .get_tenant(client.request(pb::GetTenantRequest { min_position: 0 })?)
                .await?
                .into_inner();
            print_tenant(&r);
        }
        ReportCommand::Admins { emails } => {
            let r = admin
                .set_username_administrators(client.request(
                    pb::SetUsernameAdministratorsRequest {
                        request_id: rid,
                        emails,
                    },
                )?)
                .await?
                .into_inner();
            println!(
                "username administrators: {}",
                r.tenant
                    .unwrap_or_default()
                    .username_administrators
                    .join(", ")
            );
        }
        ReportCommand::Approval { required } => {
            let r = admin
                .set_approval_policy(client.request(pb::SetApprovalPolicyRequest {
                    request_id: rid,
                    approval_required: required,
                })?)
                .await?
                .into_inner();
            println!(
                "approval required: {}",
                r.tenant.unwrap_or_default().approval_required
            );
        }
        ReportCommand::SendReset { contact } => {
            let r = access
                .send_password_reset(client.request(pb::SendPasswordResetRequest {
                    request_id: rid,
                    contact_id: contact,
                })?)
                .await?
                .into_inner();
            println!("sent: {} email", r.email);
        }
        ReportCommand::Forgot { login } => {
            let r = sessions
                .request_password_reset(client.request(pb::RequestPasswordResetRequest {
                    request_id: rid,
                    login,
                })?)
                .await?
                .into_inner();
            println!("{}", r.message);
        }
        ReportCommand::ResetPassword { link } => {
            let token = link.rsplit('/').next().unwrap_or_default().to_owned();
            let new_password = read_password()?;
            let r = sessions
                .reset_password(client.request(pb::ResetPasswordRequest {
                    request_id: rid,
                    token,
                    new_password,
                })?)
                .await?
                .into_inner();
            println!("password set; logged in as {} ({})", r.email, r.contact_id);
        }
        ReportCommand::PortalLinkCreate {
            customer,
            kinds,
            expires,
        } => {
            let kinds = kinds
                .iter()
                .map(|k| document_kind(k))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let r = access
                .create_portal_link(client.request(pb::CreatePortalLinkRequest {
                    request_id: rid,
                    customer_id: customer,
                    kinds,
                    expires_at: expires,
                })?)
                .await?
                .into_inner();
            println!("link id: {}", r.link_id);
            println!("url: {}", r.url);
            eprintln!(
                "The URL is a bearer secret: hand it only to the customer. It is not shown again."
            );
        }
        ReportCommand::PortalLinkResolve { token } => {
            let token = token.rsplit('/').next().unwrap_or_default().to_owned();
            let r = access
                .resolve_portal_link(client.request(pb::ResolvePortalLinkRequest { token })?)
                .await?
                .into_inner();
            let kinds: Vec<String> = r
                .kinds
                .iter()
                .map(|k| format!("{:?}", pb::DocumentKind::try_from(*k).unwrap_or_default()))
                .collect();
            println!("customer: {}", r.customer_id);
            println!("documents: {}", kinds.join(", "));
            println!("resolved {} times", r.resolve_count);
        }
        ReportCommand::PortalLinkDelete { id } => {
            let r = access
                .delete_portal_link(client.request(pb::DeletePortalLinkRequest {
                    request_id: rid,
                    link_id: id,
                })?)
                .await?
                .into_inner();
            println!("deleted at position {}", r.position);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::csv;

    #[test]
    fn csv_fields_are_quoted_when_needed_and_never_read_as_formulas() {
        assert_eq!(csv("ACME Ltd"), "ACME Ltd");
        assert_eq!(csv("Smith, Jones & Co"), "\"Smith, Jones & Co\"");
        assert_eq!(csv("the \"best\""), "\"the \"\"best\"\"\"");
        assert_eq!(
            csv("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(csv("+44 113 496 0000"), "'+44 113 496 0000");
        assert_eq!(csv("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv("-1"), "'-1");
    }
}
