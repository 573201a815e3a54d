//! What became of each mail: outcomes, the ledger's records, and the
//! delivery itself with its retries and per-tenant pacing.

use crate::state::{Core, Step};
use crate::transport::DeliveryError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What became of one email, for the contact's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    /// The tenant.
    pub tenant: String,
    /// The contact the email was about.
    pub contact_id: String,
    /// The event that called for it (the mail's id).
    pub source_event_id: String,
    /// Which email.
    pub kind: String,
    /// `None` when accepted; why not otherwise.
    pub failure: Option<String>,
}

/// Takes delivery outcomes back to the service; must be idempotent per
/// `source_event_id`, since a report may be given again after a crash.
pub trait DeliveryReporter: Send + Sync + std::fmt::Debug {
    /// Records one outcome.
    fn report(&self, report: DeliveryReport) -> futures::future::BoxFuture<'_, anyhow::Result<()>>;
}

/// How transient delivery failures are retried: exponential backoff with
/// jitter, up to a number of attempts; permanent failures are not retried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles with each further one.
    pub base: Duration,
    /// The longest wait between two attempts.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt` + 1 (attempt counts from 1), with
    /// ±50 % jitter so that many failed mails do not retry in step.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let wait = exp.min(self.cap);
        wait.mul_f64(rand::random_range(0.5..1.5))
    }
}

/// What became of one event's mail, as a shared ledger keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// `None`: accepted by the mail server; else why it was given up on.
    pub failure: Option<String>,
    /// The outcome as the service records it on the contact.
    pub report: DeliveryReport,
}

impl Core {
    /// Waits until `tenant` may send again under the configured rate.
    pub(crate) async fn wait_turn(&self, tenant: &str) {
        let Some(rate) = self.config.per_tenant_rate.filter(|r| *r > 0.0) else {
            return;
        };
        let gap = Duration::from_secs_f64(1.0 / rate);
        let now = tokio::time::Instant::now();
        let at = {
            let mut pace = self.pace.lock().unwrap_or_else(|p| p.into_inner());
            let next = pace.entry(tenant.to_owned()).or_insert(now);
            let at = (*next).max(now);
            *next = at + gap;
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// Whether a mail for this event was sent or given up on before.
    pub(crate) fn handled(&self, event_id: &str) -> bool {
        self.ledger.as_ref().is_some_and(|l| l.handled(event_id))
    }

    /// Delivers with retries. `Ok(true)`: accepted. `Ok(false)`: given up on
    /// (a permanent failure, or the attempts ran out), recorded in `batch`.
    pub(crate) async fn deliver(
        &self,
        id: &str,
        message: &lettre::Message,
        about: (&str, &str, &str),
        step: &mut Step,
    ) -> anyhow::Result<bool> {
        let (tenant, contact_id, kind) = about;
        self.wait_turn(tenant).await;
        let mut report = DeliveryReport {
            tenant: tenant.to_owned(),
            contact_id: contact_id.to_owned(),
            source_event_id: id.to_owned(),
            kind: kind.to_owned(),
            failure: None,
        };
        let policy = self.config.retry;
        let mut attempt = 1;
        loop {
            let delivered = self
                .config
                .transport
                .deliver(id, message, !step.defer_sync)
                .await;
            let error = match delivered {
                Ok(unsynced) => {
                    step.unsynced.extend(unsynced);
                    metrics::counter!("access_emails_total", "kind" => kind.to_owned(), "outcome" => "sent")
                        .increment(1);
                    step.outcome = Some(LedgerEntry {
                        failure: None,
                        report: report.clone(),
                    });
                    return Ok(true);
                }
                Err(e) => e,
            };
            let give_up = match &error {
                DeliveryError::Permanent(_) => true,
                DeliveryError::Transient(_) => attempt >= policy.max_attempts,
            };
            if give_up && step.keep_trying && matches!(error, DeliveryError::Transient(_)) {
                anyhow::bail!("mail {id} not accepted after {attempt} attempts, for now: {error}");
            }
            if give_up {
                metrics::counter!("access_emails_total", "kind" => kind.to_owned(), "outcome" => "failed")
                    .increment(1);
                tracing::warn!(mail = id, attempts = attempt, error = %error, "mail given up on");
                report.failure = Some(error.to_string());
                step.outcome = Some(LedgerEntry {
                    failure: Some(error.to_string()),
                    report: report.clone(),
                });
                return Ok(false);
            }
            metrics::counter!("access_email_retries_total", "kind" => kind.to_owned()).increment(1);
            let wait = policy.backoff(attempt);
            tracing::info!(mail = id, attempt, error = %error, wait_ms = wait.as_millis() as u64, "mail not accepted; retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}
