//! The read-model store, its queries, and the projector task that feeds it.

use super::apply::{self, Rows};
use super::keys;
use access_catalogue::catalogue::{Event, IdentityEvent};
use access_catalogue::chain::ChainFollower;
use access_catalogue::damage::Damage;
use access_catalogue::personal::contact_ref;
use access_log::log::{EventLog, subscribe};
use access_log::vault::{DecodeOpenError, Vault, decode_open};
use anyhow::Context;
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Layout version of the rows; a change rebuilds the read models on start.
const SCHEMA_VERSION: u32 = 10;

/// The read models of one replica.
#[derive(Debug)]
pub struct ReadModels {
    pub(super) tree: sled::Db,
    /// Resolve counts of portal links: operational figures kept apart from
    /// the rebuildable rows, so a rebuild does not reset them.
    pub(super) counters: sled::Tree,
    applied_tx: watch::Sender<u64>,
    /// Checks each event against its stream's chain before it is applied.
    follower: std::sync::Mutex<ChainFollower>,
}

/// Stream heads the projector's chain check remembers (about 100 bytes each).
const FOLLOWED_STREAMS: usize = 100_000;

/// The read model has not reached the position a query asked for in time.
#[derive(Debug, thiserror::Error)]
#[error("the read model is at position {at}, behind the requested {wanted}; retry shortly")]
pub struct Behind {
    /// Where it is.
    pub at: u64,
    /// What was asked.
    pub wanted: u64,
}

/// One batch's writes, with reads seeing them before they are committed.
struct Overlay<'a> {
    tree: &'a sled::Db,
    staged: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Rows for Overlay<'_> {
    fn get<T: for<'a> Deserialize<'a>>(&mut self, key: &[u8]) -> anyhow::Result<Option<T>> {
        let row = match self.staged.get(key) {
            Some(Some(staged)) => Some(postcard::from_bytes(staged)),
            Some(None) => None,
            None => self
                .tree
                .get(key)?
                .map(|stored| postcard::from_bytes(&stored)),
        };
        row.transpose().context("read-model row")
    }

    fn put<T: Serialize>(&mut self, key: Vec<u8>, row: &T) {
        self.staged
            .insert(key, Some(postcard::to_stdvec(row).unwrap_or_default()));
    }

    fn del(&mut self, key: Vec<u8>) {
        self.staged.insert(key, None);
    }
}

impl ReadModels {
    /// Opens (or creates) the read models in `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let tree = sled::Config::new()
            .path(dir)
            .open()
            .with_context(|| format!("opening read models in {}", dir.display()))?;
        let schema: Option<u32> = match tree.get(keys::SCHEMA)? {
            Some(v) => postcard::from_bytes(&v).ok(),
            None => None,
        };
        if schema != Some(SCHEMA_VERSION) {
            // Rows of another layout: read models are disposable, so start
            // over and replay the log into the current layout.
            if !tree.is_empty() {
                tracing::info!(dir = %dir.display(), "read-model layout changed; rebuilding from the log");
            }
            tree.clear()?;
            tree.insert(keys::SCHEMA, postcard::to_stdvec(&SCHEMA_VERSION)?)?;
            tree.flush()?;
        }
        let checkpoint = match tree.get(keys::CHECKPOINT)? {
            Some(v) => postcard::from_bytes(&v).context("read-model checkpoint")?,
            None => 0,
        };
        let (applied_tx, _) = watch::channel(checkpoint);
        let counters = tree.open_tree("counters")?;
        Ok(ReadModels {
            tree,
            counters,
            applied_tx,
            follower: std::sync::Mutex::new(ChainFollower::new(FOLLOWED_STREAMS)),
        })
    }

    /// Read models that live in memory and vanish when dropped: for answers
    /// about the past, replayed from the log on demand.
    pub fn temporary() -> anyhow::Result<Self> {
        let tree = sled::Config::new()
            .temporary(true)
            .open()
            .context("opening temporary read models")?;
        let counters = tree.open_tree("counters")?;
        let (applied_tx, _) = watch::channel(0);
        Ok(ReadModels {
            tree,
            counters,
            applied_tx,
            follower: std::sync::Mutex::new(ChainFollower::new(FOLLOWED_STREAMS)),
        })
    }

    /// Refuses read models the log does not back: built up to a position
    /// past the log's head, or at an event the log now holds differently
    /// (the log lost or changed history they were built from).
    pub async fn check_against(&self, log: &dyn EventLog, place: &Path) -> anyhow::Result<()> {
        let hash = self
            .tree
            .get(keys::CHECKPOINT_HASH)?
            .and_then(|v| <[u8; 32]>::try_from(v.as_ref()).ok());
        let place = format!("the read models ({})", place.display());
        access_log::consumer::check_consumer(log, &place, self.checkpoint(), hash).await?;
        Ok(())
    }

    /// The last log position applied.
    pub fn checkpoint(&self) -> u64 {
        *self.applied_tx.borrow()
    }

    /// Waits until the read model has applied `position`, at most `timeout`.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<(), Behind> {
        let mut rx = self.applied_tx.subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|at| *at >= position)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Behind {
                at: self.checkpoint(),
                wanted: position,
            }),
        }
    }

    /// Applies envelopes in log order, with the checkpoint, atomically; skips
    /// what was applied before.
    /// Personal values are opened with the keys `vault` still holds; a
    /// forgotten person's keys are dropped from this process's memory (the
    /// command destroyed them; destroying again here would destroy the new
    /// key of a person invited again since).
    pub async fn apply(
        &self,
        envelopes: &[access_catalogue::Envelope],
        vault: &dyn Vault,
    ) -> anyhow::Result<()> {
        let checkpoint = self.checkpoint();
        // Envelopes come in log order, so what is new is a suffix.
        let fresh = &envelopes[envelopes.partition_point(|e| e.position <= checkpoint)..];
        for e in fresh {
            if e.event_type == "IdentityForgotten"
                && let Ok(Event::Identity(IdentityEvent::IdentityForgotten(f))) = Event::decode(e)
            {
                vault.evict(e.stream.id());
                for (_, contact_id) in &f.contacts {
                    vault.evict(&contact_ref(contact_id));
                }
            }
        }
        {
            let mut follower = self.follower.lock().unwrap_or_else(|p| p.into_inner());
            for e in fresh {
                follower.check(e)?;
            }
        }
        let events = decode_open(vault, fresh).await.map_err(|e| match e {
            DecodeOpenError::Missing(d) => anyhow::Error::from(d),
            other => anyhow::Error::from(other),
        })?;
        let mut overlay = Overlay {
            tree: &self.tree,
            staged: HashMap::new(),
        };
        let mut last = checkpoint;
        let mut last_hash = None;
        for (e, event) in fresh.iter().zip(events) {
            apply::apply(&mut overlay, e, event)
                .with_context(|| format!("projecting event at position {}", e.position))?;
            last = e.position;
            last_hash = Some(e.hash);
        }
        if last == checkpoint {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (k, v) in overlay.staged {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        batch.insert(keys::CHECKPOINT, postcard::to_stdvec(&last)?);
        if let Some(hash) = last_hash {
            batch.insert(keys::CHECKPOINT_HASH, &hash[..]);
        }
        self.tree.apply_batch(batch)?;
        self.applied_tx.send_replace(last);
        Ok(())
    }

    /// Writes everything to disk (on shutdown).
    pub fn flush(&self) -> anyhow::Result<()> {
        self.tree.flush()?;
        Ok(())
    }

    pub(super) fn get<T: for<'a> Deserialize<'a>>(&self, key: &[u8]) -> anyhow::Result<Option<T>> {
        Ok(match self.tree.get(key)? {
            Some(b) => Some(postcard::from_bytes(&b).context("read-model row")?),
            None => None,
        })
    }
}

/// Why the projector cannot go on, if retrying cannot help: damaged history
/// (a broken chain, a missing key, an unreadable stored event) or an event
/// this build cannot decode.
fn permanent(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|c| {
        if let Some(d) = c.downcast_ref::<Damage>() {
            return Some(d.to_string());
        }
        if let Some(access_log::LogError::Damaged(d)) = c.downcast_ref() {
            return Some(d.to_string());
        }
        if let Some(DecodeOpenError::Missing(d)) = c.downcast_ref() {
            return Some(d.to_string());
        }
        c.downcast_ref::<access_catalogue::codec::CodecError>()
            .map(|codec| format!("an event this build cannot read: {codec}"))
    })
}

/// Feeds the read models from the log until `shutdown` turns true. What is
/// transient (the log or the vault not answering) is retried with backoff
/// for ever; damaged history stops it, with `parts` saying why.
pub async fn run_projector(
    models: Arc<ReadModels>,
    log: Arc<dyn EventLog>,
    vault: Arc<dyn Vault>,
    parts: crate::health::Parts,
    mut shutdown: watch::Receiver<bool>,
) {
    use crate::health::{Part, PartState};
    let mut events = subscribe(log, models.checkpoint() + 1);
    let mut batch: Vec<access_catalogue::Envelope> = Vec::with_capacity(64);
    let mut failures = 0u32;
    loop {
        let mut failed = None;
        if batch.is_empty() {
            let first = tokio::select! {
                item = events.next() => item,
                _ = shutdown.wait_for(|stop| *stop) => break,
            };
            let Some(first) = first else { break };
            match first {
                Ok(e) => batch.push(e),
                Err(e) => failed = Some(e),
            }
            // Take whatever else is ready now, so a burst is one write.
            while batch.len() < 1024 && failed.is_none() {
                match events.next().now_or_never() {
                    Some(Some(Ok(e))) => batch.push(e),
                    Some(Some(Err(e))) => failed = Some(e),
                    _ => break,
                }
            }
        }
        let newest = batch.last().map(|e| e.occurred_at_ms);
        let applied = match batch.is_empty() {
            true => Ok(()),
            false => models.apply(&batch, vault.as_ref()).await,
        };
        let error = match (applied, failed) {
            (Err(e), _) => Some(e),
            (Ok(()), Some(e)) => Some(anyhow::Error::from(e)),
            (Ok(()), None) => None,
        };
        if let Some(e) = &error
            && let Some(why) = permanent(e)
        {
            // A read model must not skip or misread an event: stop here,
            // loudly, and serve what it has, with health saying so.
            tracing::error!(error = ?e, "projector stopped: the read models serve what they had, and health is NOT_SERVING until the log is repaired");
            parts.set(Part::ReadModels, PartState::Stopped(why));
            break;
        }
        match error {
            Some(e) => {
                failures += 1;
                // Capped at a second: a retry is cheap, and a longer cap
                // left the read models asleep well after the log was back.
                let wait = Duration::from_millis(50 * 2u64.pow(failures.min(5)))
                    .min(Duration::from_secs(1));
                tracing::warn!(error = ?e, retry_in_ms = wait.as_millis() as u64, "projector could not apply events; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait_for(|stop| *stop) => break,
                }
                // Events the store took are skipped on the next try.
                let applied = models.checkpoint();
                batch.retain(|e| e.position > applied);
                continue;
            }
            None => {
                failures = 0;
                batch.clear();
            }
        }
        if let Some(at) = newest {
            let lag_ms = (crate::clock::system_now_ms() - at).max(0);
            metrics::gauge!("access_projection_lag_seconds").set(lag_ms as f64 / 1000.0);
        }
        metrics::gauge!("access_projection_checkpoint").set(models.checkpoint() as f64);
    }
    if let Err(e) = models.flush() {
        tracing::error!(error = ?e, "flushing read models");
    }
}
