//! The tenant's settings as its admin sees and changes them.

use crate::Client;
use access_proto::v1 as pb;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use clap::Subcommand;

/// The tenant's settings (admin key).
#[derive(Subcommand)]
pub enum SettingsCommand {
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
    /// What every sign-in must include beyond the password: `password`
    /// (nothing more), `any` (an authenticator app or a passkey) or
    /// `passkey`; for the tenant or, with --customer, for one customer
    /// (admin key). The stricter of the two applies.
    SecondFactorPolicy {
        /// password, any or passkey.
        #[arg(long, value_parser = ["password", "any", "passkey"])]
        require: String,
        /// One customer's policy instead of the tenant's.
        #[arg(long, default_value = "")]
        customer: String,
    },
    /// Makes registrations wait for approval, or not (admin key).
    Approval {
        /// true or false.
        #[arg(long)]
        required: bool,
    },
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
    println!("sign-ins require: {}", requirement_name(t.second_factor));
    println!(
        "username administrators: {}",
        t.username_administrators.join(", ")
    );
}

/// The command line's word for a sign-in requirement.
pub(crate) fn requirement_name(r: i32) -> &'static str {
    match pb::SecondFactorRequirement::try_from(r) {
        Ok(pb::SecondFactorRequirement::AnySecondFactor) => "any second factor",
        Ok(pb::SecondFactorRequirement::Passkey) => "a passkey",
        _ => "the password",
    }
}

/// Runs one command of this module.
pub async fn run(command: SettingsCommand, client: &Client) -> anyhow::Result<()> {
    let rid = client.request_id.clone();
    let mut admin = TenantAdminClient::new(client.channel.clone());
    match command {
        SettingsCommand::TenantSettings {
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
        SettingsCommand::TenantShow => {
            let r = admin
                .get_tenant(client.request(pb::GetTenantRequest { min_position: 0 })?)
                .await?
                .into_inner();
            print_tenant(&r);
        }
        SettingsCommand::Admins { emails } => {
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
        SettingsCommand::SecondFactorPolicy { require, customer } => {
            let require = match require.as_str() {
                "any" => pb::SecondFactorRequirement::AnySecondFactor,
                "passkey" => pb::SecondFactorRequirement::Passkey,
                _ => pb::SecondFactorRequirement::Password,
            };
            admin
                .set_second_factor_policy(client.request(pb::SetSecondFactorPolicyRequest {
                    request_id: rid,
                    customer_id: customer.clone(),
                    require: require.into(),
                })?)
                .await?;
            let of = if customer.is_empty() {
                "the tenant".to_owned()
            } else {
                format!("customer {customer}")
            };
            println!(
                "sign-ins of {of} require: {}",
                requirement_name(require as i32)
            );
        }
        SettingsCommand::Approval { required } => {
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
    }
    Ok(())
}
