//! The mailer's state checked against the log before any mail goes out.
//!
//! - State ahead of the log (a checkpoint past its head, or at an event the
//!   log now holds differently) means the log lost or changed history the
//!   mailer acted on: refused, naming it, never served.
//! - State behind the log (a lost or older ledger) must not send again what
//!   the log records as sent: every `EmailSent` and `EmailDeliveryFailed`
//!   after the checkpoint goes into the ledger first.

use crate::delivery::{FailedRecord, SentRecord};
use crate::state::key;
use crate::worker::{CHECKPOINT, CHECKPOINT_HASH, Mailer};
use access_catalogue::catalogue::{ContactEvent, Event};
use access_log::log::EventLog;
use anyhow::Context;

/// Events read from the log at a time while learning what was sent.
const BATCH: usize = 2048;

impl Mailer {
    /// Refuses state the log does not back, and records in the ledger every
    /// mail the log says went out after the checkpoint. Returns how many.
    pub async fn reconcile(&self, log: &dyn EventLog) -> anyhow::Result<u64> {
        let db = self.db();
        let place = || format!("the mailer's state ({})", self.state_dir().display());
        let checkpoint: u64 = match db.get(CHECKPOINT)? {
            Some(v) => postcard::from_bytes(&v).context("mailer checkpoint")?,
            None => 0,
        };
        let hash = db
            .get(CHECKPOINT_HASH)?
            .map(|v| postcard::from_bytes::<[u8; 32]>(&v))
            .transpose()
            .context("mailer checkpoint")?;
        access_log::consumer::check_consumer(log, &place(), checkpoint, hash).await?;
        let head = log.latest().await?;
        let mut learned = 0;
        let mut from = checkpoint + 1;
        while from <= head {
            let batch = log.read_from(from, BATCH).await?;
            let Some(last) = batch.last() else { break };
            from = last.position + 1;
            for e in batch
                .iter()
                .filter(|e| e.event_type == "EmailSent" || e.event_type == "EmailDeliveryFailed")
            {
                let (ledger_key, record) = match Event::decode(e) {
                    Ok(Event::Contact(ContactEvent::EmailSent(d))) => (
                        key(&["sent", &d.source_event_id]),
                        postcard::to_stdvec(&SentRecord {
                            at_ms: e.occurred_at_ms,
                        })?,
                    ),
                    Ok(Event::Contact(ContactEvent::EmailDeliveryFailed(d))) => (
                        key(&["failed", &d.source_event_id]),
                        postcard::to_stdvec(&FailedRecord {
                            reason: d.reason,
                            attempts: 0,
                        })?,
                    ),
                    _ => continue,
                };
                if db.insert(ledger_key, record)?.is_none() {
                    learned += 1;
                }
            }
        }
        if learned > 0 {
            db.flush_async().await?;
            tracing::info!(
                mails = learned,
                "the mailer's ledger lacked mails the log records as sent or given up on; they will not be sent again"
            );
        }
        Ok(learned)
    }
}
