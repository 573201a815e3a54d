//! The mailer's state checked against the log before any mail goes out.
//!
//! - State ahead of the log (a checkpoint past its head, or at an event the
//!   log now holds differently) means the log lost or changed history the
//!   mailer acted on: refused, naming it, never served.
//! - State behind the log (a lost or older ledger) must not send again what
//!   the log records as sent: every `EmailSent` and `EmailDeliveryFailed`
//!   after the checkpoint goes into the ledger first.

use crate::worker::Mailer;
use access_catalogue::catalogue::{ContactEvent, Event};
use access_log::log::EventLog;

/// Events read from the log at a time while learning what was sent.
const BATCH: usize = 2048;

impl Mailer {
    /// Refuses state the log does not back, and records in the ledger every
    /// mail the log says went out after the checkpoint. Returns how many.
    pub async fn reconcile(&self, log: &dyn EventLog) -> anyhow::Result<u64> {
        let ledger = self.ledger()?;
        let place = || format!("the mailer's state ({})", self.state_dir().display());
        let (checkpoint, hash) = ledger.checkpoint();
        access_log::consumer::check_consumer(log, &place(), checkpoint, hash).await?;
        let head = log.latest().await?;
        let mut learned = Vec::new();
        let mut from = checkpoint + 1;
        while from <= head {
            let batch = log.read_from(from, BATCH).await?;
            let Some(last) = batch.last() else { break };
            from = last.position + 1;
            for e in batch
                .iter()
                .filter(|e| e.event_type == "EmailSent" || e.event_type == "EmailDeliveryFailed")
            {
                let id = match Event::decode(e) {
                    Ok(Event::Contact(ContactEvent::EmailSent(d))) => d.source_event_id,
                    Ok(Event::Contact(ContactEvent::EmailDeliveryFailed(d))) => d.source_event_id,
                    _ => continue,
                };
                if !ledger.handled(&id) {
                    learned.push((id, e.position));
                }
            }
        }
        let count = learned.len() as u64;
        if count > 0 {
            ledger.learn(learned)?;
            tracing::info!(
                mails = count,
                "the mailer's ledger lacked mails the log records as sent or given up on; they will not be sent again"
            );
        }
        Ok(count)
    }
}
