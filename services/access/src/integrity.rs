//! What `accessd serve` checks before it serves anything: that every store
//! beside the log is backed by the log, and the log by them.
//!
//! - The key vault must be there when the log has history: a missing vault
//!   is damage, not the erasure of every person. Erasure is only what an
//!   `IdentityForgotten` event says; the vault keeps a tombstone for each
//!   key destroyed, and a vault from before tombstones is adopted once with
//!   the keys the log's erasures name (see `embedded_vault`).
//! - Read models and the mailer's state must not be ahead of the log, nor
//!   built from an event the log now holds differently (see
//!   `ReadModels::check_against` and `Mailer::reconcile`).
//!
//! Damage found here ends the start with [`DAMAGE_EXIT_CODE`] and a message
//! naming it; nothing is rebuilt or moved over it.

use access_catalogue::catalogue::{Event, IdentityEvent};
use access_catalogue::damage::{DAMAGE_EXIT_CODE, Damage};
use access_catalogue::personal::contact_ref;
use access_log::log::EventLog;
use std::collections::HashSet;
use std::path::Path;

/// Events read at a time while looking for erasures.
const BATCH: usize = 4096;

/// The damage an error carries, if it is one.
pub fn damage_of(e: &anyhow::Error) -> Option<&Damage> {
    access_mailer::damage_of(e)
}

/// The exit code for an error: [`DAMAGE_EXIT_CODE`] for damage, else 1.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if damage_of(e).is_some() {
        DAMAGE_EXIT_CODE
    } else {
        1
    }
}

/// What an operator does about damage that stopped the start.
pub const WHAT_TO_DO: &str = "accessd refused to start because stored history is damaged; nothing was changed. \
`accessd check --data-dir <dir>` lists every damage it finds. If a derived store is named (log/index, readmodels/, mailer/), \
stop accessd, move it aside and start again: it is rebuilt from the log. If the log or the vault is named, restore the latest \
backup into a new directory (`accessd restore`) and compare with `accessctl audit verify`";

/// Which keys the log's sealed values need, and which its erasures destroyed.
#[derive(Debug, Default)]
pub struct KeyUse {
    /// Each key ref needed, with the first event that needs it.
    pub needed: Vec<(String, u64, String)>,
    /// Every key ref destroyed: each forgotten identity and the logins
    /// without an email it covered.
    pub destroyed: HashSet<String>,
    seen: HashSet<String>,
}

impl KeyUse {
    /// Reads the whole log once.
    pub async fn of(log: &dyn EventLog) -> anyhow::Result<Self> {
        let head = log.latest().await?;
        let mut out = KeyUse::default();
        let mut from = 1;
        while from <= head {
            let batch = log.read_from(from, BATCH).await?;
            let Some(last) = batch.last() else { break };
            from = last.position + 1;
            batch.iter().for_each(|e| out.add(e));
        }
        Ok(out)
    }

    /// Takes in one event (of a log read in order).
    pub fn add(&mut self, e: &access_catalogue::Envelope) {
        let Ok(mut event) = Event::decode(e) else {
            return;
        };
        for key_ref in event.sealed_refs() {
            if self.seen.insert(key_ref.clone()) {
                self.needed
                    .push((key_ref, e.position, e.stream.to_string()));
            }
        }
        if let Event::Identity(IdentityEvent::IdentityForgotten(f)) = event {
            self.destroyed.insert(e.stream.id().to_owned());
            self.destroyed
                .extend(f.contacts.iter().map(|(_, c)| contact_ref(c)));
        }
    }

    /// The first key needed that is neither in `have` nor destroyed.
    pub fn first_missing(&self, have: &HashSet<String>) -> Option<&(String, u64, String)> {
        self.needed
            .iter()
            .find(|(r, _, _)| !have.contains(r) && !self.destroyed.contains(r))
    }
}

/// A store beside the log that cannot be opened: damage naming it (a read
/// model or the mailer's state moved aside is rebuilt from the log).
pub fn unopenable(dir: &Path, e: anyhow::Error) -> anyhow::Error {
    if damage_of(&e).is_some() {
        return e;
    }
    Damage::new(
        dir.display().to_string(),
        format!("the store cannot be opened: {e:#}"),
    )
    .into()
}

/// Checks every chain and the log's storage once, in the background after
/// start (reading the whole log would hold the start up on a large one).
/// Damage found stops the log's part: health `NOT_SERVING`, naming it.
/// `checked` turns true once there is a verdict, either way.
pub async fn scrub(
    log: std::sync::Arc<dyn EventLog>,
    parts: crate::health::Parts,
    mut stop: tokio::sync::watch::Receiver<bool>,
    checked: tokio::sync::watch::Sender<bool>,
) {
    let started = std::time::Instant::now();
    let mut wait = std::time::Duration::from_millis(500);
    // A log that cannot be read now (NATS away) is tried again; only a
    // verdict on the history itself stops the log's part.
    let verified = loop {
        let verified = tokio::select! {
            v = crate::audit::verify(log.as_ref(), None) => v,
            _ = stop.wait_for(|s| *s) => return,
        };
        if !verified.unreadable {
            break verified;
        }
        tracing::warn!(error = %verified.first_break, retry_in_ms = wait.as_millis() as u64, "the background check could not read the log; retrying");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        wait = (wait * 2).min(std::time::Duration::from_secs(30));
    };
    metrics::gauge!("access_log_damaged").set(if verified.first_break.is_empty() {
        0.0
    } else {
        1.0
    });
    if verified.first_break.is_empty() {
        tracing::info!(
            events = verified.events,
            streams = verified.streams,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "the whole log verified intact"
        );
        checked.send_replace(true);
        return;
    }
    tracing::error!(damage = %verified.first_break, "the log is damaged: health is NOT_SERVING until it is repaired");
    parts.set(
        crate::health::Part::Log,
        crate::health::PartState::Stopped(verified.first_break),
    );
    checked.send_replace(true);
}
