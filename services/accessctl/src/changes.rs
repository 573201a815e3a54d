//! A contact's details changed by staff, and registrations approved or
//! rejected.

use crate::Client;
use access_proto::v1 as pb;
use access_proto::v1::access_client::AccessClient;
use clap::Subcommand;

/// Changes to a contact by staff.
#[derive(Subcommand)]
pub enum ChangeCommand {
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
}

/// Runs one command of this module.
pub async fn run(command: ChangeCommand, client: &Client) -> anyhow::Result<()> {
    let rid = client.request_id.clone();
    let mut access = AccessClient::new(client.channel.clone());
    match command {
        ChangeCommand::UpdateContact {
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
        ChangeCommand::Approve { contact } => {
            let m = pb::ContactCommand {
                request_id: rid,
                contact_id: contact,
                reason: String::new(),
            };
            let r = access.approve_user(client.request(m)?).await?.into_inner();
            println!("status: {}", r.contact.unwrap_or_default().status);
        }
        ChangeCommand::Reject { contact } => {
            let m = pb::ContactCommand {
                request_id: rid,
                contact_id: contact,
                reason: String::new(),
            };
            let r = access.reject_user(client.request(m)?).await?.into_inner();
            println!("status: {}", r.contact.unwrap_or_default().status);
        }
    }
    Ok(())
}
