//! Password-reset links and portal links.

use crate::{Client, document_kind, read_password};
use access_proto::v1 as pb;
use access_proto::v1::access_client::AccessClient;
use access_proto::v1::sessions_client::SessionsClient;
use clap::Subcommand;

/// Password resets and portal links.
#[derive(Subcommand)]
pub enum LinkCommand {
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

/// Runs one command of this module.
pub async fn run(command: LinkCommand, client: &Client) -> anyhow::Result<()> {
    let rid = client.request_id.clone();
    let mut access = AccessClient::new(client.channel.clone());
    let mut sessions = SessionsClient::new(client.channel.clone());
    match command {
        LinkCommand::SendReset { contact } => {
            let r = access
                .send_password_reset(client.request(pb::SendPasswordResetRequest {
                    request_id: rid,
                    contact_id: contact,
                })?)
                .await?
                .into_inner();
            println!("sent: {} email", r.email);
        }
        LinkCommand::Forgot { login } => {
            let r = sessions
                .request_password_reset(client.request(pb::RequestPasswordResetRequest {
                    request_id: rid,
                    login,
                })?)
                .await?
                .into_inner();
            println!("{}", r.message);
        }
        LinkCommand::ResetPassword { link } => {
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
        LinkCommand::PortalLinkCreate {
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
        LinkCommand::PortalLinkResolve { token } => {
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
        LinkCommand::PortalLinkDelete { id } => {
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
