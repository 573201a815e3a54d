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
    println!(
        "username administrators: {}",
        t.username_administrators.join(", ")
    );
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
