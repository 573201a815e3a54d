//! `accessctl key`: the tenant's API keys (admin key).

use crate::Client;
use access_proto::v1 as pb;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use clap::Subcommand;

#[derive(Subcommand)]
pub(crate) enum KeyCommand {
    /// Issues an API key and prints it (once).
    Create {
        /// admin, in_house, rep, service, auditor or subscriber.
        #[arg(long)]
        role: String,
        /// Who or what holds the key.
        #[arg(long)]
        name: String,
        /// For rep keys: the sales rep.
        #[arg(long, default_value = "")]
        rep: String,
    },
    /// Revokes an API key.
    Revoke {
        /// The key's id.
        #[arg(long)]
        id: String,
    },
    /// Replaces a key: a new one (printed once) with the same role and holder,
    /// the old one revoked in the same step.
    Rotate {
        /// The key's id.
        #[arg(long)]
        id: String,
    },
    /// Lists the tenant's keys (never the keys themselves).
    List,
}

/// Runs one of these commands.
pub(crate) async fn run(command: KeyCommand, client: &Client) -> anyhow::Result<()> {
    let rid = client.request_id.clone();
    let mut admin = TenantAdminClient::new(client.channel.clone());
    match command {
        KeyCommand::Create { role, name, rep } => {
            let role = match role.as_str() {
                "admin" => pb::Role::Admin,
                "in_house" => pb::Role::InHouse,
                "rep" => pb::Role::Rep,
                "service" => pb::Role::Service,
                "auditor" => pb::Role::Auditor,
                "subscriber" => pb::Role::Subscriber,
                other => anyhow::bail!(
                    "unknown role {other:?}: use admin, in_house, rep, service, auditor or subscriber"
                ),
            };
            let r = admin
                .create_api_key(client.request(pb::CreateApiKeyRequest {
                    request_id: rid,
                    role: role as i32,
                    name,
                    rep_id: rep,
                })?)
                .await?
                .into_inner();
            println!("key id: {}", r.key_id);
            println!("key: {}", r.api_key);
            eprintln!("Store the key now: it is not shown again.");
        }
        KeyCommand::Revoke { id } => {
            let r = admin
                .revoke_api_key(client.request(pb::RevokeApiKeyRequest {
                    request_id: rid,
                    key_id: id,
                })?)
                .await?
                .into_inner();
            println!("revoked at position {}", r.position);
        }
        KeyCommand::Rotate { id } => {
            let r = admin
                .rotate_api_key(client.request(pb::RotateApiKeyRequest {
                    request_id: rid,
                    key_id: id,
                })?)
                .await?
                .into_inner();
            println!("key id: {}", r.key_id);
            println!("key: {}", r.api_key);
            eprintln!("Store the key now: it is not shown again. The old key no longer works.");
        }
        KeyCommand::List => {
            let r = admin
                .list_api_keys(client.request(pb::ListApiKeysRequest { min_position: 0 })?)
                .await?
                .into_inner();
            for k in r.keys {
                println!(
                    "{}  {:<8}  {}{}{}",
                    k.key_id,
                    k.role,
                    k.name,
                    if k.rep_id.is_empty() {
                        String::new()
                    } else {
                        format!(" (rep {})", k.rep_id)
                    },
                    if k.revoked { "  revoked" } else { "" }
                );
            }
        }
    }
    Ok(())
}
