//! `accessctl oidc client`: the tenant's OpenID Connect clients (admin key).

use crate::Client;
use access_proto::v1 as pb;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use access_runtime::cli::parse_duration;
use clap::{Args, Subcommand};
use std::time::Duration;

#[derive(Subcommand)]
pub(crate) enum OidcCommand {
    /// The portals that sign contacts in.
    #[command(subcommand)]
    Client(Box<ClientCommand>),
    /// Rotates the key sign-in tokens are signed with; the old one stays
    /// published until its tokens have expired.
    RotateKey,
}

/// What a client may do.
#[derive(Args, Clone)]
pub(crate) struct ClientSettings {
    /// Shown to contacts.
    #[arg(long)]
    name: String,
    /// Where authorization answers may go, exactly (repeat for more).
    #[arg(long = "redirect", required = true)]
    redirect_uris: Vec<String>,
    /// Scopes it may ask for (repeat): openid, profile, email, offline_access.
    #[arg(long = "scope", default_values_t = ["openid".to_owned(), "profile".to_owned(), "email".to_owned()])]
    scopes: Vec<String>,
    /// How long its access tokens live (60s to 1h).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    access_ttl: Duration,
    /// How long its refresh tokens live unused (1h to 90d).
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    refresh_ttl: Duration,
    /// Where logout tokens are posted when a contact's sign-in ends.
    #[arg(long)]
    backchannel_logout_uri: Option<String>,
    /// Where the browser may go after signing out, exactly (repeat for more).
    #[arg(long = "post-logout-redirect")]
    post_logout_redirect_uris: Vec<String>,
    /// How its tokens are signed: EdDSA, or ES256 for libraries without EdDSA.
    #[arg(long, default_value = "EdDSA")]
    signing_alg: String,
    /// Where a contact who just set a password is sent to be signed in (the
    /// portal's login start).
    #[arg(long)]
    initiate_login_uri: Option<String>,
}

impl ClientSettings {
    fn to_pb(&self) -> pb::OidcClientSettings {
        let seconds = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        pb::OidcClientSettings {
            name: self.name.clone(),
            redirect_uris: self.redirect_uris.clone(),
            scopes: self.scopes.clone(),
            access_token_ttl_seconds: seconds(self.access_ttl),
            refresh_token_ttl_seconds: seconds(self.refresh_ttl),
            backchannel_logout_uri: self.backchannel_logout_uri.clone().unwrap_or_default(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            token_signing_alg: self.signing_alg.clone(),
            initiate_login_uri: self.initiate_login_uri.clone().unwrap_or_default(),
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum ClientCommand {
    /// Registers a client and prints its id (and, for a confidential one, its
    /// secret, once).
    Add {
        /// Public (no secret: a browser or device app) instead of confidential.
        #[arg(long)]
        public: bool,
        #[command(flatten)]
        settings: ClientSettings,
    },
    /// Replaces a client's settings.
    Update {
        /// The client's id.
        #[arg(long)]
        id: String,
        #[command(flatten)]
        settings: ClientSettings,
    },
    /// Gives a confidential client a new secret, printed once.
    RotateSecret {
        /// The client's id.
        #[arg(long)]
        id: String,
    },
    /// Removes a client.
    Remove {
        /// The client's id.
        #[arg(long)]
        id: String,
        /// Why, for the record.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Lists the tenant's clients (never their secrets).
    List,
}

fn print_client(c: &pb::OidcClient) {
    let kind = match pb::OidcClientKind::try_from(c.kind) {
        Ok(pb::OidcClientKind::Public) => "public",
        _ => "confidential",
    };
    let s = c.settings.clone().unwrap_or_default();
    println!(
        "{}  {kind:<12} {:<24} scopes: {}  access {}s, refresh {}s",
        c.client_id,
        s.name,
        s.scopes.join(" "),
        s.access_token_ttl_seconds,
        s.refresh_token_ttl_seconds
    );
    for uri in &s.redirect_uris {
        println!("    redirect: {uri}");
    }
}

/// Runs one of these commands.
pub(crate) async fn run(command: OidcCommand, client: &Client) -> anyhow::Result<()> {
    let rid = client.request_id.clone();
    let mut admin = TenantAdminClient::new(client.channel.clone());
    let command = match command {
        OidcCommand::Client(command) => *command,
        OidcCommand::RotateKey => {
            let r = admin
                .rotate_signing_key(
                    client.request(pb::RotateSigningKeyRequest { request_id: rid })?,
                )
                .await?
                .into_inner();
            println!(
                "signing keys {} sign from position {}",
                r.key_ids.join(", "),
                r.position
            );
            return Ok(());
        }
    };
    match command {
        ClientCommand::Add { public, settings } => {
            let kind = if public {
                pb::OidcClientKind::Public
            } else {
                pb::OidcClientKind::Confidential
            };
            let r = admin
                .register_oidc_client(client.request(pb::RegisterOidcClientRequest {
                    request_id: rid,
                    kind: kind.into(),
                    settings: Some(settings.to_pb()),
                })?)
                .await?
                .into_inner();
            println!("client id: {}", r.client_id);
            if !r.client_secret.is_empty() {
                println!("client secret (shown once): {}", r.client_secret);
            }
        }
        ClientCommand::Update { id, settings } => {
            let r = admin
                .update_oidc_client(client.request(pb::UpdateOidcClientRequest {
                    request_id: rid,
                    client_id: id,
                    settings: Some(settings.to_pb()),
                })?)
                .await?
                .into_inner();
            if let Some(c) = &r.client {
                print_client(c);
            }
        }
        ClientCommand::RotateSecret { id } => {
            let r = admin
                .rotate_oidc_client_secret(client.request(pb::RotateOidcClientSecretRequest {
                    request_id: rid,
                    client_id: id,
                })?)
                .await?
                .into_inner();
            println!("client secret (shown once): {}", r.client_secret);
        }
        ClientCommand::Remove { id, reason } => {
            let r = admin
                .remove_oidc_client(client.request(pb::RemoveOidcClientRequest {
                    request_id: rid,
                    client_id: id,
                    reason,
                })?)
                .await?
                .into_inner();
            println!("removed at position {}", r.position);
        }
        ClientCommand::List => {
            let r = admin
                .list_oidc_clients(client.request(pb::ListOidcClientsRequest { min_position: 0 })?)
                .await?
                .into_inner();
            for c in &r.clients {
                print_client(c);
            }
        }
    }
    Ok(())
}
