//! The embedded backend: a sled database written by one thread that
//! group-commits and acknowledges only after the data is on stable storage.
//!
//! ## Layout (one sled tree, so one batch is one atomic write)
//! - `e` + position (u64 BE) → encoded [`Envelope`]
//! - `s` + stream + `0x00` + stream version (u64 BE) → position
//! - `h` + stream → [`StreamHead`] (version and last hash)
//! - `r` + request id → [`RequestRecord`]
//! - `m` + `head` → global head position
//!
//! ## Durability
//! sled 0.34's `flush` writes its log buffers with `sync_file_range`, which syncs
//! neither file metadata nor the drive's write cache. After every group commit
//! the writer therefore also calls `fdatasync` on sled's data file (`db`), and
//! acknowledges the commit's appends only after that returns. sled writes an
//! oversized page (over a quarter of a segment) as a separate file under
//! `blobs/`; every blob file not yet synced is `fsync`ed, with its directory,
//! in the same step. Envelopes are capped at [`MAX_ENVELOPE_BYTES`].

use crate::chain::GENESIS;
use crate::envelope::{Envelope, StreamId};
use crate::log::{AppendError, AppendRequest, Committed, EventLog, LogError, RequestRecord};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{mpsc, oneshot, watch};

pub use crate::log::MAX_ENVELOPE_BYTES;

/// Most appends folded into one group commit.
const MAX_GROUP: usize = 256;

const HEAD_KEY: &[u8] = b"mhead";

/// The last version and hash of a stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamHead {
    /// Number of events in the stream.
    pub version: u64,
    /// Hash of its last event.
    pub hash: [u8; 32],
}

/// Counters of the writer, for tests and metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Group commits written.
    pub commits: std::sync::atomic::AtomicU64,
    /// Appends acknowledged through them.
    pub appends: std::sync::atomic::AtomicU64,
}

struct Job {
    request: AppendRequest,
    done: oneshot::Sender<Result<Committed, AppendError>>,
}

/// The sled-backed [`EventLog`].
#[derive(Clone)]
pub struct SledLog {
    db: sled::Db,
    jobs: mpsc::Sender<Job>,
    head: watch::Receiver<u64>,
    stats: Arc<WriterStats>,
    /// Set while sled holds writes that did not reach the disk: reads that
    /// could see them (request records, streams) are refused meanwhile.
    unsynced: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for SledLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledLog")
            .field("head", &*self.head.borrow())
            .finish()
    }
}

fn storage(e: impl std::fmt::Display) -> LogError {
    LogError::Storage(e.to_string())
}

fn event_key(position: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'e';
    k[1..].copy_from_slice(&position.to_be_bytes());
    k
}

fn stream_prefix(stream: &StreamId) -> Vec<u8> {
    let mut k = Vec::with_capacity(stream.as_str().len() + 10);
    k.push(b's');
    k.extend_from_slice(stream.as_str().as_bytes());
    k.push(0);
    k
}

fn head_key(stream: &StreamId) -> Vec<u8> {
    let mut k = vec![b'h'];
    k.extend_from_slice(stream.as_str().as_bytes());
    k
}

fn request_key(request_id: &str) -> Vec<u8> {
    let mut k = vec![b'r'];
    k.extend_from_slice(request_id.as_bytes());
    k
}

fn decode<T: for<'a> Deserialize<'a>>(bytes: &[u8], position: u64) -> Result<T, LogError> {
    postcard::from_bytes(bytes).map_err(|e| LogError::Corrupt {
        position,
        reason: e.to_string(),
    })
}

impl SledLog {
    /// Writes `envelopes` (a whole log, in order) into a new log in the empty
    /// directory `dir`, as they are: hashes and chains untouched, positions
    /// numbered 1, 2, 3… (a JetStream log's have gaps; no hash covers them).
    /// Returns how many were written. Request records are not carried over.
    pub fn import(
        dir: &Path,
        envelopes: impl IntoIterator<Item = Envelope>,
    ) -> Result<u64, LogError> {
        if dir.exists() && std::fs::read_dir(dir).map_err(storage)?.next().is_some() {
            return Err(LogError::Storage(format!(
                "{} is not empty: a restore only goes into an empty directory",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(storage)?;
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(None)
            .open()
            .map_err(storage)?;
        let mut heads: HashMap<StreamId, StreamHead> = HashMap::new();
        let mut batch = sled::Batch::default();
        let mut position = 0u64;
        for mut envelope in envelopes {
            position += 1;
            envelope.position = position;
            let mut skey = stream_prefix(&envelope.stream);
            skey.extend_from_slice(&envelope.stream_version.to_be_bytes());
            batch.insert(&event_key(position)[..], envelope.encode());
            batch.insert(skey, postcard::to_stdvec(&position).map_err(storage)?);
            heads.insert(
                envelope.stream.clone(),
                StreamHead {
                    version: envelope.stream_version,
                    hash: envelope.hash,
                },
            );
            if position.is_multiple_of(4096) {
                db.apply_batch(std::mem::take(&mut batch))
                    .map_err(storage)?;
            }
        }
        for (stream, head) in &heads {
            batch.insert(
                head_key(stream),
                postcard::to_stdvec(head).map_err(storage)?,
            );
        }
        batch.insert(HEAD_KEY, postcard::to_stdvec(&position).map_err(storage)?);
        db.apply_batch(batch).map_err(storage)?;
        db.flush().map_err(storage)?;
        File::open(dir.join("db"))
            .and_then(|f| f.sync_data())
            .map_err(storage)?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(storage)?;
        Ok(position)
    }

    /// Opens (or creates) the log in `dir` and starts its writer thread.
    pub fn open(dir: &Path) -> Result<Self, LogError> {
        std::fs::create_dir_all(dir).map_err(storage)?;
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(None)
            .open()
            .map_err(|e| {
                if e.to_string().contains("could not acquire lock") {
                    LogError::Storage(format!(
                        "{} is in use by another process: only one accessd may open a data directory",
                        dir.display()
                    ))
                } else {
                    storage(e)
                }
            })?;
        // The directory entry of a new data file must be durable too.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(storage)?;
        let data_file = File::open(dir.join("db")).map_err(storage)?;
        let head = match db.get(HEAD_KEY).map_err(storage)? {
            Some(v) => decode::<u64>(&v, 0)?,
            None => 0,
        };
        let (head_tx, head_rx) = watch::channel(head);
        let (jobs_tx, jobs_rx) = mpsc::channel(4096);
        let stats = Arc::new(WriterStats::default());
        let unsynced = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = Writer {
            unsynced: unsynced.clone(),
            db: db.clone(),
            data_file,
            dir: dir.to_path_buf(),
            head,
            head_tx,
            stats: stats.clone(),
            unflushed: false,
            synced_blobs: HashSet::new(),
            disk_full_trigger: std::env::var_os(DISK_FULL_TRIGGER_VAR).map(PathBuf::from),
        };
        std::thread::Builder::new()
            .name("event-log-writer".into())
            .spawn(move || writer.run(jobs_rx))
            .map_err(storage)?;
        Ok(SledLog {
            db,
            jobs: jobs_tx,
            head: head_rx,
            stats,
            unsynced,
        })
    }

    fn refuse_while_unsynced(&self) -> Result<(), LogError> {
        if self.unsynced.load(Ordering::Acquire) {
            // Not a fault of the data: the disk refused a sync (full, say).
            return Err(LogError::Unavailable(
                "the log holds writes not yet on disk; retry shortly".into(),
            ));
        }
        Ok(())
    }

    /// Counters of the writer thread.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// The stored head of one stream.
    pub fn stream_head(&self, stream: &StreamId) -> Result<StreamHead, LogError> {
        match self.db.get(head_key(stream)).map_err(storage)? {
            Some(v) => decode(&v, 0),
            None => Ok(StreamHead::default()),
        }
    }

    fn read_position(&self, position: u64) -> Result<Envelope, LogError> {
        let bytes = self
            .db
            .get(event_key(position))
            .map_err(storage)?
            .ok_or_else(|| LogError::Corrupt {
                position,
                reason: "missing event".into(),
            })?;
        Envelope::decode(&bytes).map_err(|e| LogError::Corrupt {
            position,
            reason: e.to_string(),
        })
    }
}

impl EventLog for SledLog {
    fn append(&self, request: AppendRequest) -> BoxFuture<'_, Result<Committed, AppendError>> {
        Box::pin(async move {
            let (done, rx) = oneshot::channel();
            self.jobs
                .send(Job { request, done })
                .await
                .map_err(|_| AppendError::Unavailable("the log writer has stopped".into()))?;
            rx.await
                .map_err(|_| AppendError::Unavailable("the log writer has stopped".into()))?
        })
    }

    fn request(&self, request_id: &str) -> BoxFuture<'_, Result<Option<RequestRecord>, LogError>> {
        let key = request_key(request_id);
        Box::pin(async move {
            self.refuse_while_unsynced()?;
            match self.db.get(key).map_err(storage)? {
                Some(v) => Ok(Some(decode(&v, 0)?)),
                None => Ok(None),
            }
        })
    }

    fn read_stream(&self, stream: &StreamId) -> BoxFuture<'_, Result<Vec<Envelope>, LogError>> {
        let prefix = stream_prefix(stream);
        Box::pin(async move {
            self.refuse_while_unsynced()?;
            let mut out = Vec::new();
            for item in self.db.scan_prefix(prefix) {
                let (_, v) = item.map_err(storage)?;
                out.push(self.read_position(decode::<u64>(&v, 0)?)?);
            }
            Ok(out)
        })
    }

    fn read_from(&self, from: u64, max: usize) -> BoxFuture<'_, Result<Vec<Envelope>, LogError>> {
        Box::pin(async move {
            let head = *self.head.borrow();
            let mut out = Vec::new();
            if from > head {
                return Ok(out);
            }
            for item in self
                .db
                .range(event_key(from.max(1))..=event_key(head))
                .take(max)
            {
                let (k, v) = item.map_err(storage)?;
                let position = u64::from_be_bytes(k[1..9].try_into().unwrap_or_default());
                out.push(Envelope::decode(&v).map_err(|e| LogError::Corrupt {
                    position,
                    reason: e.to_string(),
                })?);
            }
            Ok(out)
        })
    }

    fn head(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }
}

/// The single writer: owns the head position and every write to the tree.
struct Writer {
    db: sled::Db,
    data_file: File,
    dir: PathBuf,
    head: u64,
    head_tx: watch::Sender<u64>,
    stats: Arc<WriterStats>,
    unflushed: bool,
    unsynced: Arc<std::sync::atomic::AtomicBool>,
    synced_blobs: HashSet<std::ffi::OsString>,
    /// Test-only: while this file exists, every sync fails as on a full disk
    /// (`ACCESS_FAULT_DISK_FULL`), so the refusal and the recovery can be
    /// exercised against the real binary.
    disk_full_trigger: Option<PathBuf>,
}

/// The variable naming the test-only full-disk trigger file.
pub const DISK_FULL_TRIGGER_VAR: &str = "ACCESS_FAULT_DISK_FULL";

/// What a group commit stages before it writes.
#[derive(Default)]
struct Staged {
    batch: sled::Batch,
    heads: HashMap<StreamId, StreamHead>,
    requests: HashMap<String, RequestRecord>,
    next: u64,
}

/// What became of one request in a group commit.
enum Staging {
    /// Staged; acknowledged once the group is durable.
    New(Committed),
    /// A retry, answered from its first result.
    Duplicate(Committed),
    /// A retry of an append staged in the same group: acknowledged only if
    /// the group is written.
    DuplicateInGroup(Committed),
    /// Refused before anything was staged.
    Refused(AppendError),
}

impl Writer {
    fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        loop {
            // Writes that reached sled but not the disk (a full disk, say) are
            // synced again every half second until they are, so the log
            // recovers by itself when space returns, even with no appends.
            let first = if self.unflushed {
                match jobs.try_recv() {
                    Ok(job) => job,
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        std::thread::sleep(std::time::Duration::from_millis(500));
                        self.retry_sync();
                        continue;
                    }
                }
            } else {
                match jobs.blocking_recv() {
                    Some(job) => job,
                    None => break,
                }
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match jobs.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
            self.commit(group);
        }
        if let Err(e) = self.sync() {
            tracing::error!(error = %e, dir = %self.dir.display(), "final event log flush failed");
        }
    }

    /// Tries again to sync writes the disk refused; publishes them if it can.
    fn retry_sync(&mut self) {
        if self.sync().is_ok() {
            tracing::info!("event log writes reached the disk again");
            self.unflushed = false;
            self.unsynced.store(false, Ordering::Release);
            self.head_tx.send_replace(self.head);
        }
    }

    fn commit(&mut self, group: Vec<Job>) {
        if self.unflushed {
            // A previous commit reached sled but not the disk: nothing new is
            // accepted until it does, so no later append overtakes it.
            if let Err(e) = self.sync() {
                for job in group {
                    let _ = job.done.send(Err(AppendError::Unavailable(e.to_string())));
                }
                return;
            }
            self.unflushed = false;
            self.unsynced.store(false, Ordering::Release);
            self.head_tx.send_replace(self.head);
        }
        let mut staged = Staged {
            next: self.head + 1,
            ..Default::default()
        };
        let outcomes: Vec<(Job, Staging)> = group
            .into_iter()
            .map(|job| {
                let staging = self.stage(&job.request, &mut staged);
                (job, staging)
            })
            .collect();
        let new_head = staged.next - 1;
        let written = if new_head > self.head {
            self.write(staged.batch, new_head)
        } else {
            Ok(())
        };
        if let Err(e) = &written {
            tracing::error!(error = %e, "event log group commit failed; its appends are refused");
        }
        let mut acknowledged = 0;
        let answers: Vec<_> = outcomes
            .into_iter()
            .map(|(job, staging)| {
                let result = match staging {
                    Staging::Refused(e) => Err(e),
                    Staging::Duplicate(c) => Ok(c),
                    Staging::DuplicateInGroup(c) => match &written {
                        Ok(()) => Ok(c),
                        Err(e) => Err(AppendError::Unavailable(e.to_string())),
                    },
                    Staging::New(c) => match &written {
                        Ok(()) => {
                            acknowledged += 1;
                            Ok(c)
                        }
                        Err(e) => Err(AppendError::Unavailable(e.to_string())),
                    },
                };
                (job, result)
            })
            .collect();
        // Counted before anyone is answered, so a caller that saw its answer
        // also sees it counted.
        if acknowledged > 0 {
            metrics::histogram!("access_group_commit_size").record(acknowledged as f64);
            self.stats.commits.fetch_add(1, Ordering::Relaxed);
            self.stats
                .appends
                .fetch_add(acknowledged, Ordering::Relaxed);
        }
        for (job, result) in answers {
            // The caller may have gone away; the append stands either way.
            let _ = job.done.send(result);
        }
    }

    /// Applies the batch and makes it durable; publishes the new head only then.
    fn write(&mut self, mut batch: sled::Batch, new_head: u64) -> Result<(), LogError> {
        batch.insert(HEAD_KEY, postcard::to_stdvec(&new_head).map_err(storage)?);
        self.db.apply_batch(batch).map_err(storage)?;
        // From here the batch is in sled's memory and will reach the disk with
        // the next successful flush, so positions must not be reused.
        self.head = new_head;
        if let Err(e) = self.sync() {
            self.unflushed = true;
            self.unsynced.store(true, Ordering::Release);
            return Err(e);
        }
        self.head_tx.send_replace(new_head);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), LogError> {
        if self.disk_full_trigger.as_ref().is_some_and(|t| t.exists()) {
            return Err(LogError::Storage(
                "No space left on device (os error 28; injected)".into(),
            ));
        }
        self.db.flush().map_err(storage)?;
        self.data_file.sync_data().map_err(storage)?;
        self.sync_blobs().map_err(storage)
    }

    /// fsyncs blob files sled created since the last commit, and their directory.
    fn sync_blobs(&mut self) -> std::io::Result<()> {
        let dir = self.dir.join("blobs");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut present = HashSet::new();
        let mut new = false;
        for entry in entries {
            let name = entry?.file_name();
            if !self.synced_blobs.contains(&name) {
                File::open(dir.join(&name))?.sync_all()?;
                new = true;
            }
            present.insert(name);
        }
        if new {
            File::open(&dir)?.sync_all()?;
        }
        self.synced_blobs = present;
        Ok(())
    }

    fn stored_head(&self, staged: &Staged, stream: &StreamId) -> Result<StreamHead, AppendError> {
        if let Some(h) = staged.heads.get(stream) {
            return Ok(*h);
        }
        match self.db.get(head_key(stream)) {
            Ok(Some(v)) => {
                postcard::from_bytes(&v).map_err(|e| AppendError::Unavailable(e.to_string()))
            }
            Ok(None) => Ok(StreamHead::default()),
            Err(e) => Err(AppendError::Unavailable(e.to_string())),
        }
    }

    /// Validates one request and adds its entries to the group's batch.
    fn stage(&self, r: &AppendRequest, staged: &mut Staged) -> Staging {
        match self.try_stage(r, staged) {
            Ok(staging) => staging,
            Err(e) => Staging::Refused(e),
        }
    }

    fn try_stage(&self, r: &AppendRequest, staged: &mut Staged) -> Result<Staging, AppendError> {
        r.check_shape()?;
        if let Some(rec) = staged.requests.get(&r.request_id) {
            // A retry of an append in this very group: it shares that append's fate.
            if rec.fingerprint != r.fingerprint {
                return Err(AppendError::RequestIdReused(r.request_id.clone()));
            }
            return Ok(Staging::DuplicateInGroup(Committed {
                first_position: rec.first_position,
                last_position: rec.last_position,
                reply: rec.reply.clone(),
                duplicate: true,
            }));
        }
        let previous = match self.db.get(request_key(&r.request_id)) {
            Ok(Some(v)) => Some(
                postcard::from_bytes::<RequestRecord>(&v)
                    .map_err(|e| AppendError::Unavailable(e.to_string()))?,
            ),
            Ok(None) => None,
            Err(e) => return Err(AppendError::Unavailable(e.to_string())),
        };
        if let Some(rec) = previous {
            if rec.fingerprint != r.fingerprint {
                return Err(AppendError::RequestIdReused(r.request_id.clone()));
            }
            return Ok(Staging::Duplicate(Committed {
                first_position: rec.first_position,
                last_position: rec.last_position,
                reply: rec.reply,
                duplicate: true,
            }));
        }
        for s in &r.streams {
            let head = self.stored_head(staged, &s.stream)?;
            if head.version != s.expected_version {
                return Err(AppendError::Conflict {
                    stream: s.stream.clone(),
                    expected: s.expected_version,
                    actual: head.version,
                });
            }
        }
        // Everything checked: build the envelopes into a private batch first, so
        // a too-large event leaves the shared batch untouched.
        let mut position = staged.next;
        let first_position = position;
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut heads = Vec::new();
        for s in &r.streams {
            let mut head = self.stored_head(staged, &s.stream)?;
            for e in &s.events {
                let prev = if head.version == 0 {
                    GENESIS
                } else {
                    head.hash
                };
                let envelope = r.seal(&s.stream, e, head.version + 1, prev, position)?;
                let bytes = envelope.encode();
                let mut skey = stream_prefix(&s.stream);
                skey.extend_from_slice(&envelope.stream_version.to_be_bytes());
                entries.push((event_key(position).to_vec(), bytes));
                entries.push((skey, postcard::to_stdvec(&position).unwrap_or_default()));
                head = StreamHead {
                    version: envelope.stream_version,
                    hash: envelope.hash,
                };
                position += 1;
            }
            heads.push((s.stream.clone(), head));
        }
        let record = RequestRecord {
            fingerprint: r.fingerprint,
            first_position,
            last_position: position - 1,
            reply: r.reply.clone(),
        };
        for (k, v) in entries {
            staged.batch.insert(k, v);
        }
        for (stream, head) in heads {
            staged.batch.insert(
                head_key(&stream),
                postcard::to_stdvec(&head).unwrap_or_default(),
            );
            staged.heads.insert(stream, head);
        }
        staged.batch.insert(
            request_key(&r.request_id),
            postcard::to_stdvec(&record).unwrap_or_default(),
        );
        staged.requests.insert(r.request_id.clone(), record.clone());
        staged.next = position;
        Ok(Staging::New(Committed {
            first_position,
            last_position: position - 1,
            reply: record.reply,
            duplicate: false,
        }))
    }
}
