//! `accessctl webhook`: where the tenant's public events are posted (admin
//! key; the operator key may replay, naming the tenant).

use crate::Client;
use access_proto::v1 as pb;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use clap::{Args, Subcommand};

/// Where and what.
#[derive(Args, Clone)]
pub(crate) struct WebhookSettings {
    /// Where deliveries are posted: https://, or http:// to this machine.
    #[arg(long)]
    url: String,
    /// A public event type to post (repeat for more; none: every type).
    #[arg(long = "event")]
    event_types: Vec<String>,
    /// What it is for.
    #[arg(long, default_value = "")]
    description: String,
}

impl WebhookSettings {
    fn to_pb(&self) -> pb::WebhookSettings {
        pb::WebhookSettings {
            url: self.url.clone(),
            event_types: self.event_types.clone(),
            description: self.description.clone(),
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum WebhookCommand {
    /// Adds a webhook and prints its id and signing secret (once).
    Add {
        #[command(flatten)]
        settings: WebhookSettings,
    },
    /// Replaces a webhook's settings.
    Update {
        /// The webhook's id.
        #[arg(long)]
        id: String,
        #[command(flatten)]
        settings: WebhookSettings,
    },
    /// Gives a webhook a new signing secret, printed once.
    RotateSecret {
        /// The webhook's id.
        #[arg(long)]
        id: String,
    },
    /// Removes a webhook.
    Remove {
        /// The webhook's id.
        #[arg(long)]
        id: String,
        /// Why, for the record.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Goes on delivering to a webhook that gave up.
    Resume {
        /// The webhook's id.
        #[arg(long)]
        id: String,
    },
    /// Posts a range of positions again, with the events' first ids.
    Replay {
        /// The webhook's id.
        #[arg(long)]
        id: String,
        /// The first log position.
        #[arg(long)]
        from: u64,
        /// The last log position (at most where the webhook has got to).
        #[arg(long)]
        through: u64,
        /// The tenant (with the operator key).
        #[arg(long, default_value = "")]
        tenant: String,
    },
    /// One webhook and how its deliveries stand.
    Show {
        /// The webhook's id.
        #[arg(long)]
        id: String,
    },
    /// Lists the tenant's webhooks.
    List,
}

fn print_webhook(w: &pb::Webhook) {
    let s = w.settings.clone().unwrap_or_default();
    let state = match pb::WebhookState::try_from(w.state) {
        Ok(pb::WebhookState::Failing) => "failing",
        Ok(pb::WebhookState::GaveUp) => "gave up",
        _ => "delivering",
    };
    let types = if s.event_types.is_empty() {
        "every event".to_owned()
    } else {
        s.event_types.join(", ")
    };
    println!("{}  {state:<10} {}  ({types})", w.webhook_id, s.url);
    println!(
        "    delivered {} through position {} part {}{}",
        w.delivered,
        w.delivered_through_position,
        w.delivered_through_part,
        if w.last_delivered_event_id.is_empty() {
            String::new()
        } else {
            format!(", last {}", w.last_delivered_event_id)
        }
    );
    if let Some(f) = &w.failure {
        println!(
            "    at event {} (position {}): {} tries, {}",
            f.event_id, f.position, f.attempts, f.error
        );
    }
    if let Some(r) = &w.replay {
        println!(
            "    replaying: {} posted, at position {} of {}",
            r.count, r.position, r.through_position
        );
    }
}

/// Runs one of these commands.
pub(crate) async fn run(command: WebhookCommand, client: &Client) -> anyhow::Result<()> {
    let request_id = client.request_id.clone();
    let mut admin = TenantAdminClient::new(client.channel.clone());
    let changed = match command {
        WebhookCommand::Add { settings } => {
            let r = admin
                .create_webhook(client.request(pb::CreateWebhookRequest {
                    request_id,
                    settings: Some(settings.to_pb()),
                })?)
                .await?
                .into_inner();
            println!("webhook {}\nsecret {}", r.webhook_id, r.secret);
            return Ok(());
        }
        WebhookCommand::RotateSecret { id } => {
            let r = admin
                .rotate_webhook_secret(client.request(pb::RotateWebhookSecretRequest {
                    request_id,
                    webhook_id: id,
                })?)
                .await?
                .into_inner();
            println!("secret {}", r.secret);
            return Ok(());
        }
        WebhookCommand::Show { id } => {
            let w = admin
                .get_webhook(client.request(pb::GetWebhookRequest {
                    webhook_id: id,
                    min_position: 0,
                })?)
                .await?
                .into_inner();
            print_webhook(&w);
            return Ok(());
        }
        WebhookCommand::List => {
            let r = admin
                .list_webhooks(client.request(pb::ListWebhooksRequest { min_position: 0 })?)
                .await?
                .into_inner();
            r.webhooks.iter().for_each(print_webhook);
            return Ok(());
        }
        WebhookCommand::Update { id, settings } => admin
            .update_webhook(client.request(pb::UpdateWebhookRequest {
                request_id,
                webhook_id: id,
                settings: Some(settings.to_pb()),
            })?)
            .await?
            .into_inner(),
        WebhookCommand::Remove { id, reason } => admin
            .delete_webhook(client.request(pb::DeleteWebhookRequest {
                request_id,
                webhook_id: id,
                reason,
            })?)
            .await?
            .into_inner(),
        WebhookCommand::Resume { id } => admin
            .resume_webhook(client.request(pb::ResumeWebhookRequest {
                request_id,
                webhook_id: id,
            })?)
            .await?
            .into_inner(),
        WebhookCommand::Replay {
            id,
            from,
            through,
            tenant,
        } => admin
            .replay_webhook(client.request(pb::ReplayWebhookRequest {
                request_id,
                webhook_id: id,
                from_position: from,
                through_position: through,
                tenant,
            })?)
            .await?
            .into_inner(),
    };
    match &changed.webhook {
        Some(w) => print_webhook(w),
        None => println!("removed at position {}", changed.position),
    }
    Ok(())
}
