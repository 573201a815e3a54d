//! The read models in memory, their snapshots, and the projector task that
//! feeds them.

use super::apply;
use super::snapshot;
use super::tables::Tables;
use access_catalogue::catalogue::{Event, IdentityEvent};
use access_catalogue::chain::{ChainFollower, content_matches};
use access_catalogue::damage::Damage;
use access_catalogue::personal::contact_ref;
use access_log::log::{EventLog, subscribe};
use access_log::vault::{DecodeOpenError, Vault, open_where};
use anyhow::Context;
use futures::{FutureExt, StreamExt};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Layout version of the rows and their snapshot; a snapshot of another
/// layout is dropped and the read models are rebuilt from the log.
const SCHEMA_VERSION: u32 = 18;

/// A snapshot is written once the log has been quiet this long...
const QUIET: Duration = Duration::from_secs(1);
/// ...or, under steady load, once this many events were applied since the
/// last one (a start replays at most this many).
const FORCED_AFTER_EVENTS: u64 = 200_000;
/// A stop writes a snapshot only if the last one took less than this.
const QUICK_SNAPSHOT: Duration = Duration::from_millis(500);

/// The read models of one replica.
#[derive(Debug)]
pub struct ReadModels {
    /// Written only by the projector, which is also the only one to write
    /// a snapshot: a snapshot's long read never has a writer waiting on it,
    /// so readers are never held up behind one.
    tables: RwLock<Tables>,
    /// Resolve counts of portal links: operational figures kept apart from
    /// the rebuildable rows, so a rebuild does not reset them.
    counters: Mutex<HashMap<String, u64>>,
    /// Where snapshots go (`None`: temporary read models).
    dir: Option<PathBuf>,
    applied_tx: watch::Sender<u64>,
    /// Checks each event against its stream's chain before it is applied.
    follower: Mutex<ChainFollower>,
    /// The last snapshot written or loaded.
    last_snapshot: Mutex<SnapshotMark>,
    /// A snapshot is being made durable.
    publishing: AtomicBool,
    /// Set by a stop: a snapshot being written ends at its next chunk.
    abandon: AtomicBool,
}

/// A snapshot written and not yet durable.
struct Pending {
    file: std::fs::File,
    at: u64,
    counts: Vec<(String, u64)>,
    started: Instant,
}

/// Where the last snapshot stands and what it cost.
#[derive(Debug, Clone, Copy)]
struct SnapshotMark {
    at: u64,
    took: Duration,
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

/// Files of the earlier layout (a sled database) in the read models' directory.
const SLED_FILES: &[&str] = &["db", "conf", "blobs"];

/// Whether `dir` holds read models of the earlier layout (sled writes `conf`).
fn holds_sled(dir: &Path) -> bool {
    dir.join("conf").exists()
}

/// Takes the resolve counts out of read models of the earlier layout and
/// removes it: its rows are rebuilt from the log.
fn upgrade_from_sled(dir: &Path) -> anyhow::Result<()> {
    if !holds_sled(dir) {
        return Ok(());
    }
    tracing::info!(dir = %dir.display(), "read models of the earlier layout; keeping their resolve counts and rebuilding the rest from the log");
    let counts = {
        let db = sled::Config::new()
            .path(dir)
            .open()
            .with_context(|| format!("opening earlier read models in {}", dir.display()))?;
        let tree = db.open_tree("counters")?;
        let mut counts = Vec::new();
        for item in tree.iter() {
            let (k, v) = item?;
            if let Ok(n) = <[u8; 8]>::try_from(v.as_ref()) {
                counts.push((
                    String::from_utf8_lossy(&k).into_owned(),
                    u64::from_be_bytes(n),
                ));
            }
        }
        counts
    };
    snapshot::write_counts(dir, &counts)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if SLED_FILES.contains(&name.as_ref()) || name.starts_with("snap.") {
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
}

impl ReadModels {
    /// Whether [`ReadModels::open`] on `dir` only reads: the directory is
    /// there and holds no read models of the earlier layout to move.
    pub fn only_read_by_open(dir: &Path) -> bool {
        dir.is_dir() && !holds_sled(dir)
    }

    /// Opens the read models kept in `dir`: loads their snapshot, if it is
    /// whole and of this layout, or starts empty (the projector then
    /// replays the log).
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating read models in {}", dir.display()))?;
        upgrade_from_sled(dir)?;
        let started = Instant::now();
        let tables = match snapshot::read(dir, SCHEMA_VERSION) {
            Ok(Some(tables)) => tables,
            Ok(None) => Tables::default(),
            Err(e) => {
                // Read models are disposable: the log rebuilds them.
                tracing::warn!(dir = %dir.display(), error = format!("{e:#}"), "the read models' snapshot cannot be used; rebuilding them from the log");
                Tables::default()
            }
        };
        let took = started.elapsed();
        let at = tables.checkpoint;
        tracing::info!(
            position = at,
            ms = took.as_millis() as u64,
            "read models loaded"
        );
        let counters = snapshot::read_counts(dir).into_iter().collect();
        Ok(Self::with(
            tables,
            counters,
            Some(dir.to_owned()),
            SnapshotMark { at, took },
        ))
    }

    /// Read models that live in memory and vanish when dropped: for answers
    /// about the past, replayed from the log on demand.
    pub fn temporary() -> anyhow::Result<Self> {
        let mark = SnapshotMark {
            at: 0,
            took: Duration::ZERO,
        };
        Ok(Self::with(Tables::default(), HashMap::new(), None, mark))
    }

    fn with(
        tables: Tables,
        counters: HashMap<String, u64>,
        dir: Option<PathBuf>,
        last_snapshot: SnapshotMark,
    ) -> Self {
        let (applied_tx, _) = watch::channel(tables.checkpoint);
        ReadModels {
            tables: RwLock::new(tables),
            counters: Mutex::new(counters),
            dir,
            applied_tx,
            follower: Mutex::new(ChainFollower::new(FOLLOWED_STREAMS)),
            last_snapshot: Mutex::new(last_snapshot),
            publishing: AtomicBool::new(false),
            abandon: AtomicBool::new(false),
        }
    }

    /// The tables, to read.
    pub(super) fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses read models the log does not back: built up to a position
    /// past the log's head, or at an event the log now holds differently
    /// (the log lost or changed history they were built from).
    pub async fn check_against(&self, log: &dyn EventLog, place: &Path) -> anyhow::Result<()> {
        let (checkpoint, hash) = {
            let tables = self.read();
            (tables.checkpoint, tables.checkpoint_hash)
        };
        let place = format!("the read models ({})", place.display());
        access_log::consumer::check_consumer(log, &place, checkpoint, hash).await?;
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

    /// Applies envelopes in log order; skips what was applied before.
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
        if fresh.is_empty() {
            return Ok(());
        }
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
        // Each event's hash and payload on both cores; the links in order.
        let read = side_by_side(fresh, |e| (content_matches(e), Event::decode(e)));
        let mut events = Vec::with_capacity(fresh.len());
        {
            let mut follower = self.follower.lock().unwrap_or_else(|p| p.into_inner());
            for (e, (content_ok, event)) in fresh.iter().zip(read) {
                follower.check_hashed(e, content_ok)?;
                events.push(event?);
            }
        }
        open_where(vault, fresh, &mut events, apply::reads_personal)
            .await
            .map_err(|e| match e {
                DecodeOpenError::Missing(d) => anyhow::Error::from(d),
                other => anyhow::Error::from(other),
            })?;
        // Nothing below fails: a batch is applied whole, and readers see
        // the checkpoint move only after it.
        let last = {
            let mut tables = self.tables.write().unwrap_or_else(|p| p.into_inner());
            for (e, event) in fresh.iter().zip(events) {
                apply::apply(&mut tables, e, event);
            }
            tables.checkpoint
        };
        self.applied_tx.send_replace(last);
        Ok(())
    }

    /// Applied events not in the last snapshot (0 for temporary read models).
    fn unsnapshotted(&self) -> u64 {
        if self.dir.is_none() {
            return 0;
        }
        let mark = self.last_snapshot.lock().unwrap_or_else(|p| p.into_inner());
        self.checkpoint().saturating_sub(mark.at)
    }

    /// Writes a snapshot of the read models as they are now, not yet
    /// durable; `None` if one is being made durable still (one at a time).
    /// Blocking; the projector calls it between batches.
    fn begin_snapshot(&self) -> anyhow::Result<Option<Pending>> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        if self.publishing.swap(true, Ordering::AcqRel) {
            return Ok(None);
        }
        // The projector decides a snapshot is due before the last one is
        // durable; without this it wrote the same tables twice.
        if self.unsnapshotted() == 0 {
            self.publishing.store(false, Ordering::Release);
            return Ok(None);
        }
        let started = Instant::now();
        let written = {
            let tables = self.read();
            snapshot::write_unsynced(dir, SCHEMA_VERSION, &tables, &self.abandon)
                .map(|f| (f, tables.checkpoint))
        };
        let (file, at) = match written {
            Ok(done) => done,
            Err(e) => {
                self.publishing.store(false, Ordering::Release);
                return Err(e);
            }
        };
        let counts: Vec<(String, u64)> = {
            let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
            counters.iter().map(|(k, v)| (k.clone(), *v)).collect()
        };
        Ok(Some(Pending {
            file,
            at,
            counts,
            started,
        }))
    }

    /// Makes a written snapshot durable and the one a start loads.
    fn finish_snapshot(&self, pending: Pending) -> anyhow::Result<()> {
        let published = match &self.dir {
            Some(dir) => snapshot::publish(dir, pending.file)
                .and_then(|()| snapshot::write_counts(dir, &pending.counts)),
            None => Ok(()),
        };
        self.publishing.store(false, Ordering::Release);
        published?;
        let took = pending.started.elapsed();
        let at = pending.at;
        *self.last_snapshot.lock().unwrap_or_else(|p| p.into_inner()) = SnapshotMark { at, took };
        metrics::gauge!("access_read_model_snapshot_seconds").set(took.as_secs_f64());
        tracing::debug!(
            position = at,
            ms = took.as_millis() as u64,
            "read-model snapshot written"
        );
        Ok(())
    }

    /// Writes a snapshot, durably, if events were applied since the last one.
    pub fn flush(&self) -> anyhow::Result<()> {
        if self.unsnapshotted() == 0 {
            return Ok(());
        }
        match self.begin_snapshot()? {
            Some(pending) => self.finish_snapshot(pending),
            None => Ok(()),
        }
    }

    /// Counts one resolve of a link; returns the count so far.
    pub fn count_resolve(&self, link_id: &str) -> anyhow::Result<u64> {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let n = counters.entry(link_id.to_owned()).or_default();
        *n += 1;
        Ok(*n)
    }
}

/// Writes a snapshot off the async threads; a failure (a full disk) is
/// reported and tried again at the next occasion: serving goes on.
async fn snapshot_now(
    models: &Arc<ReadModels>,
    durable_before_return: bool,
    stop: &watch::Receiver<bool>,
) {
    let m = models.clone();
    // The projector waits only while the tables are written out; the sync,
    // slow under a busy disk, runs beside it.
    let mut begun = tokio::task::spawn_blocking(move || m.begin_snapshot());
    let mut stop = stop.clone();
    let written = tokio::select! {
        written = &mut begun => written,
        // A stop does not wait for a snapshot of a quiet moment (most of a
        // second at a million contacts): it ends at its next chunk, and
        // the next start replays what it lacked.
        () = async { drop(stop.wait_for(|s| *s).await) }, if !durable_before_return => {
            models.abandon.store(true, Ordering::Release);
            let _ = begun.await;
            return;
        }
    };
    let error = match written {
        Ok(Ok(Some(pending))) => {
            let m = models.clone();
            let finished = tokio::task::spawn_blocking(move || m.finish_snapshot(pending));
            if !durable_before_return {
                tokio::spawn(async move {
                    if let Ok(Err(e)) = finished.await {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "could not write the read models' snapshot; a restart replays more of the log until one is written"
                        );
                    }
                });
                return;
            }
            match finished.await {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e,
                Err(e) => anyhow::Error::from(e),
            }
        }
        Ok(Ok(None)) => return,
        Ok(Err(e)) => e,
        Err(e) => anyhow::Error::from(e),
    };
    tracing::warn!(
        error = format!("{error:#}"),
        "could not write the read models' snapshot; a restart replays more of the log until one is written"
    );
}

/// How far behind the log (in positions: a JetStream message's events
/// take a thousand) the read models start before the vault's keys are read
/// ahead in bulk.
const WARM_BEHIND: u64 = 1_000_000;

/// Most events gathered for the next batch while one is applied.
const GATHER_AHEAD: usize = 4096;

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
    // How far behind the log a start left the read models: told once they
    // caught up, since a start serves at the head only then.
    let replaying = std::time::Instant::now();
    let from = models.checkpoint();
    let mut behind_until = log.latest().await.ok().filter(|&head| head > from);
    if behind_until.is_some_and(|head| head - from >= WARM_BEHIND) {
        // Far behind, the keys of most persons will be needed: a remote
        // vault reads them in bulk far faster than one by one.
        match vault.warm().await {
            Ok(keys) => tracing::debug!(keys, "persons' keys read ahead"),
            Err(e) => {
                tracing::warn!(error = %e, "persons' keys could not be read ahead; reading them as needed")
            }
        }
    }
    let mut events = subscribe(log, from + 1);
    let mut batch: Vec<access_catalogue::Envelope> = Vec::with_capacity(64);
    // Events taken while the last batch was applied, and what ended them.
    let mut ahead: Vec<access_catalogue::Envelope> = Vec::new();
    let mut ahead_failed = None;
    let mut ended = false;
    let mut failures = 0u32;
    loop {
        if let Some(head) = behind_until
            && models.checkpoint() >= head
        {
            tracing::info!(
                events = head - from,
                ms = replaying.elapsed().as_millis() as u64,
                "read models caught up with the log after the start"
            );
            behind_until = None;
        }
        let mut failed = None;
        if batch.is_empty() {
            std::mem::swap(&mut batch, &mut ahead);
            failed = ahead_failed.take();
        }
        if batch.is_empty() && failed.is_none() {
            if ended {
                break;
            }
            let due = models.unsnapshotted() > 0;
            let first = tokio::select! {
                item = events.next() => Some(item),
                _ = shutdown.wait_for(|stop| *stop) => break,
                _ = tokio::time::sleep(QUIET), if due => None,
            };
            let Some(first) = first else {
                // The log is quiet: a good moment for a snapshot.
                snapshot_now(&models, false, &shutdown).await;
                continue;
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
        let applied = if batch.is_empty() {
            Ok(())
        } else {
            // While a batch is applied (waiting on the vault's keys, mostly)
            // the next one gathers: catching up, batches grow large, and each
            // costs the vault one round trip, not one per hundred events.
            let applying = models.apply(&batch, vault.as_ref());
            tokio::pin!(applying);
            loop {
                tokio::select! {
                    biased;
                    done = &mut applying => break done,
                    item = events.next(), if !ended && ahead_failed.is_none() && ahead.len() < GATHER_AHEAD => match item {
                        Some(Ok(e)) => ahead.push(e),
                        Some(Err(e)) => ahead_failed = Some(e),
                        None => ended = true,
                    },
                }
            }
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
        if models.unsnapshotted() >= FORCED_AFTER_EVENTS {
            snapshot_now(&models, false, &shutdown).await;
        }
        if let Some(at) = newest {
            let lag_ms = (crate::clock::system_now_ms() - at).max(0);
            metrics::gauge!("access_projection_lag_seconds").set(lag_ms as f64 / 1000.0);
        }
        metrics::gauge!("access_projection_checkpoint").set(models.checkpoint() as f64);
    }
    // A stop stays quick: a snapshot that takes long is left to the quiet
    // moments, and the next start replays what it lacks.
    let quick = models.last_snapshot.lock().map(|m| m.took < QUICK_SNAPSHOT);
    if quick.unwrap_or(false) && !models.abandon.load(Ordering::Acquire) {
        snapshot_now(&models, true, &shutdown).await;
    }
}

/// Events below which a batch is handled on one core (a thread costs more
/// than it saves).
const SIDE_BY_SIDE_FROM: usize = 256;

/// `f` over `items`, half of them on a second thread when there are many.
fn side_by_side<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if items.len() < SIDE_BY_SIDE_FROM {
        return items.iter().map(&f).collect();
    }
    let (first, second) = items.split_at(items.len() / 2);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| second.iter().map(&f).collect::<Vec<_>>());
        let mut out: Vec<R> = first.iter().map(&f).collect();
        match other.join() {
            Ok(rest) => out.extend(rest),
            // A panic there is a panic here, not a silently shorter batch.
            Err(panic) => std::panic::resume_unwind(panic),
        }
        out
    })
}
