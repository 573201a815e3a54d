//! `accessctl tenant`: tenants and their settings (operator and admin keys).

use crate::Client;
use access_proto::v1 as pb;
use access_proto::v1::operator_client::OperatorClient;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use clap::Subcommand;

#[derive(Subcommand)]
pub(crate) enum TenantCommand {
    /// Creates a tenant and prints its admin API key (once).
    Create {
        /// The tenant's slug.
        #[arg(long)]
        id: String,
        /// Its display name.
        #[arg(long)]
        name: String,
        /// A stock site (repeat for each).
        #[arg(long = "site", required = true)]
        sites: Vec<String>,
        /// Where orders go by default.
        #[arg(long)]
        default_order_site: String,
    },
    /// Raises the rules for new passwords (admin key) and prints them.
    PasswordPolicy {
        /// Shortest accepted (6 to 64).
        #[arg(long, default_value_t = 6)]
        min_length: u32,
        /// Needs an upper-case and a lower-case letter.
        #[arg(long)]
        mixed_case: bool,
        /// Needs a symbol.
        #[arg(long)]
        symbol: bool,
    },
}

/// Runs one of these commands.
pub(crate) async fn run(command: TenantCommand, client: &Client) -> anyhow::Result<()> {
    let rid = client.request_id.clone();
    let mut operator = OperatorClient::new(client.channel.clone());
    let mut admin = TenantAdminClient::new(client.channel.clone());
    match command {
        TenantCommand::Create {
            id,
            name,
            sites,
            default_order_site,
        } => {
            let r = operator
                .create_tenant(client.request(pb::CreateTenantRequest {
                    request_id: rid,
                    tenant_id: id,
                    name,
                    sites,
                    default_order_site,
                })?)
                .await?
                .into_inner();
            println!("tenant: {}", r.tenant_id);
            println!("admin key id: {}", r.admin_key_id);
            println!("admin key: {}", r.admin_api_key);
            eprintln!("Store the admin key now: it is not shown again.");
        }
        TenantCommand::PasswordPolicy {
            min_length,
            mixed_case,
            symbol,
        } => {
            let r = admin
                .set_password_policy(client.request(pb::SetPasswordPolicyRequest {
                    request_id: rid,
                    min_length,
                    require_mixed_case: mixed_case,
                    require_symbol: symbol,
                })?)
                .await?
                .into_inner();
            let rules = r
                .tenant
                .and_then(|t| t.password_policy)
                .map(|p| p.rules)
                .unwrap_or_default();
            println!("new passwords need:");
            for rule in rules {
                println!("  - {rule}");
            }
        }
    }
    Ok(())
}
