//! Webhooks in the read models: their settings, and how their deliveries
//! stand, for `GetWebhook` and for the delivery worker.

use super::store::ReadModels;
use super::tables::{FactorRow, TenantTables};
use access_catalogue::catalogue::{FeedPoint, WebhookEvent, WebhookSettings};
use serde::{Deserialize, Serialize};

/// A secret a webhook's deliveries are signed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    /// Its generation.
    pub generation: u32,
    /// The server key it is derived from.
    pub server_key_id: u8,
}

/// A run of failed tries at one delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The event being delivered.
    pub at: FeedPoint,
    /// Its id.
    pub event_id: String,
    /// Tries when last recorded.
    pub attempts: u32,
    /// The last answer.
    pub error: String,
    /// When the run began (Unix milliseconds).
    pub since_ms: i64,
}

/// A replay under way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRow {
    /// Where it began.
    pub after: FeedPoint,
    /// Delivered through here.
    pub cursor: FeedPoint,
    /// It ends after this log position.
    pub through: u64,
    /// Posted so far.
    pub count: u64,
}

/// One webhook of a tenant (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRow {
    /// Its id.
    pub webhook_id: String,
    /// Where and what.
    pub settings: WebhookSettings,
    /// The secret deliveries are signed with.
    pub secret: SecretRef,
    /// The one it replaced, and when (Unix milliseconds): deliveries carry
    /// its signature too for a day.
    pub previous_secret: Option<(SecretRef, i64)>,
    /// The live feed delivered through here.
    pub cursor: FeedPoint,
    /// Deliveries accepted since it was added, replays included.
    pub delivered: u64,
    /// The last accepted delivery's event id and when it was recorded.
    pub last_delivered: Option<(String, i64)>,
    /// Failing now: the delivery being retried.
    pub failing: Option<Failure>,
    /// Given up at this delivery, waiting to be resumed.
    pub gave_up: Option<Failure>,
    /// A replay under way.
    pub replay: Option<ReplayRow>,
    /// Events on its stream: the version its next change expects. Its
    /// decisions are made from this row at this version, not by folding a
    /// stream that grows with every delivery record.
    pub stream_version: u64,
}

/// A webhook's row follows its events; a removed webhook has none.
pub(super) fn apply_webhook(t: &mut TenantTables, id: &str, event: WebhookEvent, at_ms: i64) {
    if let WebhookEvent::WebhookCreated(e) = event {
        t.webhooks.insert(
            id.into(),
            WebhookRow {
                webhook_id: e.webhook_id,
                settings: e.settings,
                secret: SecretRef {
                    generation: 1,
                    server_key_id: e.server_key_id,
                },
                previous_secret: None,
                cursor: e.starts_after,
                delivered: 0,
                last_delivered: None,
                failing: None,
                gave_up: None,
                replay: None,
                stream_version: 1,
            },
        );
        return;
    }
    let Some(row) = t.webhooks.get_mut(id) else {
        return;
    };
    row.stream_version += 1;
    match event {
        WebhookEvent::WebhookCreated(_) => {}
        WebhookEvent::WebhookUpdated(e) => row.settings = e.settings,
        WebhookEvent::WebhookSecretRotated(e) => {
            row.previous_secret = Some((row.secret, at_ms));
            row.secret = SecretRef {
                generation: e.generation,
                server_key_id: e.server_key_id,
            };
        }
        WebhookEvent::WebhookRemoved(_) => {
            t.webhooks.remove(id);
        }
        WebhookEvent::WebhookDelivered(e) => {
            match (&mut row.replay, e.replay) {
                (Some(r), true) => {
                    r.cursor = e.through;
                    r.count += u64::from(e.count);
                }
                (_, true) => {}
                (_, false) => row.cursor = e.through,
            }
            row.delivered += u64::from(e.count);
            row.last_delivered = Some((e.last_event_id, at_ms));
            row.failing = None;
        }
        WebhookEvent::WebhookFailing(e) => {
            let since_ms = match &row.failing {
                Some(f) if f.at == e.at => f.since_ms,
                _ => at_ms,
            };
            row.failing = Some(Failure {
                at: e.at,
                event_id: e.event_id,
                attempts: e.attempts,
                error: e.error,
                since_ms,
            });
        }
        WebhookEvent::WebhookGaveUp(e) => {
            let since_ms = row.failing.take().map_or(at_ms, |f| f.since_ms);
            row.gave_up = Some(Failure {
                at: e.at,
                event_id: e.event_id,
                attempts: e.attempts,
                error: e.error,
                since_ms,
            });
        }
        WebhookEvent::WebhookResumed(_) => row.gave_up = None,
        WebhookEvent::WebhookReplayRequested(e) => {
            row.replay = Some(ReplayRow {
                after: e.after,
                cursor: e.after,
                through: e.through,
                count: 0,
            });
        }
        WebhookEvent::WebhookReplayFinished(_) => row.replay = None,
    }
}

impl ReadModels {
    /// A tenant's webhook, if it exists and was not removed.
    pub fn webhook(&self, tenant: &str, webhook_id: &str) -> Option<WebhookRow> {
        let tables = self.read();
        tables
            .tenant(tenant)
            .and_then(|t| t.webhooks.get(webhook_id).cloned())
    }

    /// A tenant's webhooks, in id order.
    pub fn webhooks_of(&self, tenant: &str) -> Vec<WebhookRow> {
        let tables = self.read();
        tables
            .tenant(tenant)
            .map_or_else(Vec::new, |t| t.webhooks.values().cloned().collect())
    }

    /// When a second factor of the contact was last removed (0: never).
    pub fn factors_removed_at(&self, tenant: &str, contact_id: &str) -> i64 {
        let tables = self.read();
        let Some(key) = tables.ids.find(contact_id) else {
            return 0;
        };
        tables
            .tenant(tenant)
            .and_then(|t| t.factors_removed_at.get(&key).copied())
            .unwrap_or(0)
    }

    /// The second factors a contact has enrolled, oldest first.
    pub fn second_factors(&self, tenant: &str, contact_id: &str) -> Vec<FactorRow> {
        let tables = self.read();
        let Some(key) = tables.ids.find(contact_id) else {
            return Vec::new();
        };
        tables
            .tenant(tenant)
            .and_then(|t| t.second_factors.get(&key))
            .cloned()
            .unwrap_or_default()
    }

    /// Every tenant's webhooks, as (tenant, webhook id): what the delivery
    /// worker keeps running.
    pub fn all_webhooks(&self) -> Vec<(String, String)> {
        let tables = self.read();
        tables
            .tenants
            .iter()
            .flat_map(|(tenant, t)| {
                t.webhooks
                    .keys()
                    .map(|id| (tenant.to_string(), id.to_string()))
            })
            .collect()
    }
}
