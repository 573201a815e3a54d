//! One webhook's deliveries: the tenant's public feed read from where the
//! webhook's records end, each event posted in order and retried with
//! backoff until the receiver accepts it, and what was accepted recorded
//! as ranges. A crash repeats at most the deliveries since the last record,
//! each with its own id again; nothing is skipped.

use super::address::{NO_PUBLIC_ADDRESS, literal_problem};
use super::sign::{Delivery, delivery};
use super::{Fence, Options};
use crate::app::{App, AppError, FeedQuery};
use crate::domain::Reason;
use crate::domain::webhooks::Progress;
use crate::feed::Disclosure;
use crate::projections::WebhookRow;
use access_catalogue::catalogue::{FeedPoint, WebhookDelivered, WebhookFailing, WebhookGaveUp};
use access_proto::v1::events as pe;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Deliveries recorded together at most.
const RECORD_EVERY: u32 = 100;
/// Deliveries are recorded at least this often while they go on.
const RECORD_AFTER: Duration = Duration::from_secs(1);
/// A run of failures is recorded again after this many tries.
const FAILURES_RECORDED_EVERY: u32 = 100;
/// How long a secret replaced by a rotation still signs deliveries.
const OLD_SECRET_SIGNS_FOR_MS: i64 = 24 * 3600 * 1000;

/// Why a webhook's worker stopped.
#[derive(Debug)]
pub enum Ended {
    /// The webhook was removed or gave up, or another worker records it.
    Done,
    /// The replica is stopping.
    Shutdown,
    /// Something failed that a new start may get past.
    Failed(AppError),
    /// What the webhook takes changed while a delivery failed.
    Changed,
}

/// Accepted deliveries not recorded yet.
struct Pending {
    replay: bool,
    after: FeedPoint,
    through: FeedPoint,
    count: u32,
    last_id: String,
    since: Instant,
}

impl Pending {
    fn new(replay: bool, after: FeedPoint) -> Self {
        Pending {
            replay,
            after,
            through: after,
            count: 0,
            last_id: String::new(),
            since: Instant::now(),
        }
    }
}

/// One webhook, delivered until it ends.
pub struct Worker {
    pub(super) app: App,
    pub(super) http: reqwest::Client,
    pub(super) tenant: String,
    pub(super) webhook_id: String,
    pub(super) options: Options,
    pub(super) fence: Fence,
    pub(super) shutdown: watch::Receiver<bool>,
}

impl Worker {
    fn row(&self) -> Option<WebhookRow> {
        self.app.webhook_now(&self.tenant, &self.webhook_id)
    }

    /// Delivers until the webhook ends, the replica stops or a failure
    /// asks for a new start.
    pub async fn run(mut self) -> Ended {
        loop {
            let Some(row) = self.row() else {
                return Ended::Done;
            };
            if row.gave_up.is_some() {
                return Ended::Done;
            }
            match self.follow(&row).await {
                Ok(Some(Ended::Changed)) => {}
                Ok(Some(ended)) => return ended,
                // The settings changed, or a replay began or ended.
                Ok(None) => {}
                Err(AppError::Domain(crate::domain::DomainError::FailedPrecondition {
                    reason: Reason::Conflict | Reason::AlreadyDeleted,
                    ..
                })) => return Ended::Done,
                Err(e) => return Ended::Failed(e),
            }
        }
    }

    /// Reads the feed from where `row` stands and posts it; `None` when the
    /// webhook changed and must be read again.
    async fn follow(&mut self, row: &WebhookRow) -> Result<Option<Ended>, AppError> {
        let (replay, after, until) = match row.replay {
            Some(r) => (Some(r), r.cursor, Some(r.through)),
            None => (None, row.cursor, None),
        };
        let mut feed = self.app.public_feed(FeedQuery {
            tenant: self.tenant.clone(),
            after: (after.position, after.part),
            from_now: false,
            types: row.settings.event_types.clone(),
            customer_id: None,
            contact_id: None,
            disclosure: Disclosure { personal: false },
            key_id: None,
            until,
        });
        let mut pending = Pending::new(replay.is_some(), after);
        loop {
            let mut shutdown = self.shutdown.clone();
            let next = tokio::select! {
                next = tokio::time::timeout(RECORD_AFTER, feed.recv()) => next,
                () = stopping(&mut shutdown) => {
                    self.record(&mut pending).await?;
                    return Ok(Some(Ended::Shutdown));
                }
            };
            let event = match next {
                // Quiet: record what went, and look at the webhook again.
                Err(_) => {
                    self.record(&mut pending).await?;
                    if self.changed(row) {
                        return Ok(None);
                    }
                    continue;
                }
                Ok(Some(Ok(event))) => event,
                Ok(Some(Err(e))) => {
                    self.record(&mut pending).await?;
                    return Err(e);
                }
                // A replay's feed ends at its last position.
                Ok(None) => {
                    self.record(&mut pending).await?;
                    if let Some(r) = replay {
                        let finished = Progress::ReplayFinished(r.after, r.through);
                        self.app
                            .record_webhook_step(&self.tenant, &self.webhook_id, finished)
                            .await?;
                    }
                    return Ok(None);
                }
            };
            if self.changed(row) {
                self.record(&mut pending).await?;
                return Ok(None);
            }
            let at = FeedPoint {
                position: event.position,
                part: event.part,
            };
            if let Some(ended) = self.deliver(row, &event, at, &mut pending).await? {
                return Ok(Some(ended));
            }
            pending.through = at;
            pending.count += 1;
            pending.last_id = event.id;
            if pending.count >= RECORD_EVERY || pending.since.elapsed() >= RECORD_AFTER {
                self.record(&mut pending).await?;
            }
        }
    }

    /// Whether what the feed was opened for changed: the event types, a
    /// replay begun or ended, removal.
    fn changed(&self, was: &WebhookRow) -> bool {
        self.row().is_none_or(|now| {
            now.settings.event_types != was.settings.event_types
                || now.replay.is_some() != was.replay.is_some()
                || now.gave_up.is_some()
        })
    }

    /// Records the deliveries accepted since the last record.
    async fn record(&self, pending: &mut Pending) -> Result<(), AppError> {
        if pending.count == 0 {
            pending.since = Instant::now();
            return Ok(());
        }
        let step = Progress::Delivered(WebhookDelivered {
            replay: pending.replay,
            after: pending.after,
            through: pending.through,
            count: pending.count,
            last_event_id: std::mem::take(&mut pending.last_id),
        });
        self.app
            .record_webhook_step(&self.tenant, &self.webhook_id, step)
            .await?;
        *pending = Pending::new(pending.replay, pending.through);
        Ok(())
    }

    /// Posts one event until the receiver accepts it; `Some` when the
    /// worker must stop instead (given up, removed, shutting down).
    /// `opened` is the row the feed was opened for.
    async fn deliver(
        &mut self,
        opened: &WebhookRow,
        event: &pe::Event,
        at: FeedPoint,
        pending: &mut Pending,
    ) -> Result<Option<Ended>, AppError> {
        let mut attempts = 0u32;
        // A run of failures recorded before a restart goes on counting.
        let mut since_ms = None;
        loop {
            let Some(row) = self.row() else {
                return Ok(Some(Ended::Done));
            };
            // Staff may unstick a delivery by changing what the webhook takes.
            if attempts > 0 && self.changed(opened) {
                self.record(pending).await?;
                return Ok(Some(Ended::Changed));
            }
            // A lease that may have passed to another replica: post no more.
            if !self.fence.holds() {
                self.record(pending).await?;
                return Ok(Some(Ended::Done));
            }
            attempts += 1;
            let error = match self.post(&row, event).await {
                Ok(()) => return Ok(None),
                Err(error) => error,
            };
            metrics::counter!("access_webhook_attempts_total", "outcome" => "failed").increment(1);
            let now_ms = self.app.now_ms();
            let since = *since_ms.get_or_insert_with(|| match &row.failing {
                Some(f) if f.at == at => f.since_ms,
                _ => now_ms,
            });
            if attempts == 1 {
                // What went before is recorded first: the record of the
                // failure then says exactly which event is stuck.
                self.record(pending).await?;
            }
            let failing_for = Duration::from_millis(u64::try_from(now_ms - since).unwrap_or(0));
            if failing_for >= self.options.give_up_after {
                tracing::warn!(tenant = %self.tenant, webhook = %self.webhook_id, event = %event.id, attempts, %error, "giving up a webhook's deliveries; it waits to be resumed");
                self.record(pending).await?;
                let step = Progress::GaveUp(WebhookGaveUp {
                    replay: pending.replay,
                    at,
                    event_id: event.id.clone(),
                    attempts,
                    error,
                });
                self.app
                    .record_webhook_step(&self.tenant, &self.webhook_id, step)
                    .await?;
                return Ok(Some(Ended::Done));
            }
            if attempts == 1 || attempts.is_multiple_of(FAILURES_RECORDED_EVERY) {
                tracing::info!(tenant = %self.tenant, webhook = %self.webhook_id, event = %event.id, attempts, %error, "a webhook delivery failed; retrying");
                let step = Progress::Failing(WebhookFailing {
                    at,
                    event_id: event.id.clone(),
                    attempts,
                    error,
                });
                self.app
                    .record_webhook_step(&self.tenant, &self.webhook_id, step)
                    .await?;
            }
            let wait = backoff(attempts, self.options.max_backoff);
            let mut shutdown = self.shutdown.clone();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stopping(&mut shutdown) => {
                    self.record(pending).await?;
                    return Ok(Some(Ended::Shutdown));
                }
            }
        }
    }

    /// One try: `Err` says what the receiver answered, or why it did not.
    async fn post(&self, row: &WebhookRow, event: &pe::Event) -> Result<(), String> {
        if !self.options.private_addresses
            && let Some(problem) = literal_problem(&row.settings.url)
        {
            return Err(problem.to_owned());
        }
        let mut keys = vec![self.key(row.secret)?];
        // The old secret signs too for a while, unless its server key has
        // left the ring: then the current one alone.
        if let Some((old, rotated_ms)) = row.previous_secret
            && self.app.now_ms() - rotated_ms < OLD_SECRET_SIGNS_FOR_MS
            && let Ok(key) = self.key(old)
        {
            keys.push(key);
        }
        let Delivery {
            id,
            body,
            timestamp,
            signature,
        } = delivery(event, &keys, self.app.now_ms() / 1000)?;
        let answer = self
            .http
            .post(&row.settings.url)
            .header("content-type", "application/json")
            .header("user-agent", "access-webhooks/1")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = answer.status();
        if status.is_success() {
            metrics::counter!("access_webhook_attempts_total", "outcome" => "delivered")
                .increment(1);
            Ok(())
        } else {
            // Only the status: a receiver's body may hold what the tenant's
            // staff should not read through us.
            Err(format!("HTTP {}", status.as_u16()))
        }
    }

    fn key(&self, secret: crate::projections::SecretRef) -> Result<[u8; 32], String> {
        self.app
            .webhook_key(&self.tenant, &self.webhook_id, secret)
            .map_err(|e| {
                // The details are for the operator's log, not the record.
                tracing::error!(tenant = %self.tenant, webhook = %self.webhook_id, error = %e, "a webhook's secret cannot be made");
                "the signing secret is unavailable; rotate it".to_owned()
            })
    }
}

/// Returns once the replica stops (holding no guard of the flag across
/// an await).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Why a post failed, without the URL (the record names the webhook).
fn describe(e: &reqwest::Error) -> String {
    let mut cause: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cause {
        if c.to_string() == NO_PUBLIC_ADDRESS {
            return NO_PUBLIC_ADDRESS.into();
        }
        cause = c.source();
    }
    if e.is_timeout() {
        "no answer in time".into()
    } else if e.is_connect() {
        "the receiver refused or could not be reached".into()
    } else {
        "the connection failed".into()
    }
}

/// The wait before try `attempts + 1`: doubling from half a second up to
/// `max`, each with ±50 % jitter so receivers coming back are not hit at once.
fn backoff(attempts: u32, max: Duration) -> Duration {
    let base = Duration::from_millis(500)
        .saturating_mul(2u32.saturating_pow(attempts.min(20)))
        .min(max);
    base.mul_f64(rand::random_range(0.5..1.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling_with_jitter() {
        let max = Duration::from_secs(300);
        for attempts in 1..40 {
            let wait = backoff(attempts, max);
            assert!(wait <= max.mul_f64(1.5), "{attempts}: {wait:?}");
            assert!(wait >= Duration::from_millis(500), "{attempts}: {wait:?}");
        }
        assert!(backoff(30, max) >= Duration::from_secs(150));
    }
}
