//! The mailer's state checked against the log before any mail goes out.
//!
//! - State ahead of the log (a checkpoint past its head, or at an event the
//!   log now holds differently) means the log lost or changed history the
//!   mailer acted on: refused, naming it, never served.
//! - State behind the log (a lost or older ledger) must not send again what
//!   the log records as sent: every `EmailSent` and `EmailDeliveryFailed`
//!   after the checkpoint goes into the ledger first.

use crate::worker::{CHECKPOINT, CHECKPOINT_HASH, FailedRecord, Mailer, SentRecord, key};
use access_events::catalogue::{ContactEvent, Event};
use access_events::damage::Damage;
use access_events::log::EventLog;
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
        let head = log.latest().await?;
        if checkpoint > head {
            return Err(Damage::new(
                place(),
                format!(
                    "the mailer has handled the log up to position {checkpoint}, but the log ends at {head}: acknowledged history is missing from the log"
                ),
            )
            .at_position(head + 1)
            .into());
        }
        if checkpoint > 0
            && let Some(stored) = db.get(CHECKPOINT_HASH)?
        {
            let at = log.read_from(checkpoint, 1).await?;
            let hash: [u8; 32] = postcard::from_bytes(&stored).context("mailer checkpoint")?;
            match at.first() {
                Some(e) if e.position == checkpoint && e.hash == hash => {}
                found => {
                    return Err(Damage::new(
                        place(),
                        "the log holds another event where the mailer last read: the log changed under it",
                    )
                    .at_position(checkpoint)
                    .in_stream(found.map(|e| e.stream.to_string()))
                    .into());
                }
            }
        }
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
