//! The embedded backend: an append-only file of checksummed envelopes,
//! group-committed by two threads (see [`writer`]) and acknowledged only
//! after `fdatasync`, with an index beside it that is derived from the file.
//!
//! ## Files (in the log's directory)
//! - `events`: the truth. Frames (see [`crate::file_log::frames`]): one `E` frame per
//!   envelope, then one `C` frame closing the append ([`Commit`]: its request
//!   id and record). One `fdatasync` covers every group ready at the time.
//! - `index/`: a fjall (LSM) keyspace, derived from `events` and never
//!   synced on the write path:
//!   - `s` + stream + `0x00` + stream version (u64 BE) → offset of the event's frame
//!   - `h` + stream → [`StreamHead`] (version and last hash)
//!   - `r` + request id → [`RequestRecord`]
//!   - `o` + block (u64 BE) → offset of the frame of position `block * 64 + 1`
//!   - `m` + `checkpoint` → the last position indexed and where its append ends
//!
//! ## Why a file of our own, and why fjall for the index
//! sled copies whole leaf pages on insert: envelopes written into it cost
//! about eight times the sync itself, and even the small index entries cost
//! about 10 µs each (34k events/s on one core, measured). Appending frames to
//! a file costs one `write`; an LSM takes the small entries at about 2 µs.
//!
//! `lock` is held (`flock`) while the log is open: one process per directory.
//!
//! ## Durability and recovery
//! An append is acknowledged after its frames are synced and its index
//! entries applied (so every read after the answer sees it). The index
//! reaches the disk in the background; its checkpoint is written in the same
//! atomic batch as its entries. `synced` ([`mark`]) records, after each sync,
//! where the acknowledged appends end. On open every frame is checked
//! ([`recovery`]): the appends after the index's checkpoint are indexed
//! again, and a tail a crash tore while it was being written (never
//! acknowledged: above the mark, nothing intact after it) is cut off and kept
//! beside the log as `events.torn-<offset>`, so an append is there whole or
//! not at all. Anything else is damage and the open is refused, naming it.
//! Deleting `index/` rebuilds it. A failed write or sync is cut back to
//! where the group began, so nothing of it can surface later; its appends
//! are refused as unavailable.

use crate::log::{AppendError, AppendRequest, Committed, EventLog, LogError, RequestRecord};
use access_catalogue::damage::Damage;
use access_catalogue::envelope::{Envelope, StreamId};
use frames::{COMMIT, EVENT, FrameError, Frames};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot, watch};

pub use crate::log::MAX_ENVELOPE_BYTES;
pub use check::CheckReport;
pub use writer::DISK_FULL_TRIGGER_VAR;

mod check;
pub mod frames;
mod mark;
mod recovery;
mod sled_upgrade;
mod writer;

/// Positions per entry of the sparse position → offset index.
const BLOCK: u64 = 64;

/// Bytes read at a time when scanning frames in order.
const SCAN_CHUNK: usize = 256 * 1024;

/// Bytes read at a time when reading one event of a stream.
const POINT_CHUNK: usize = 2048;

const CHECKPOINT_KEY: &[u8] = b"mcheckpoint";

const EVENTS_FILE: &str = "events";
const INDEX_DIR: &str = "index";
const LOCK_FILE: &str = "lock";

/// The last version and hash of a stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamHead {
    /// Number of events in the stream.
    pub version: u64,
    /// Hash of its last event.
    pub hash: [u8; 32],
}

/// The body of a `C` frame: the end of one append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Commit {
    /// Position of the append's last event.
    last_position: u64,
    /// Its request id and record (absent for events restored from an
    /// archive, which carries no request records).
    request: Option<(String, RequestRecord)>,
}

/// How far the index has taken in the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Checkpoint {
    /// The last position indexed.
    position: u64,
    /// Where the append holding it ends in `events`.
    offset: u64,
}

/// Counters of the writer, for tests and metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Group commits written.
    pub commits: AtomicU64,
    /// Appends acknowledged through them.
    pub appends: AtomicU64,
}

struct Job {
    request: AppendRequest,
    done: oneshot::Sender<Result<Committed, AppendError>>,
}

/// What readers share with the writer.
struct Shared {
    /// Holds the directory's lock while the log is open.
    _lock: File,
    file: File,
    keyspace: fjall::Keyspace,
    index: fjall::PartitionHandle,
    /// End of the last synced and indexed append in `events`: readers never
    /// read past it, so they never meet a frame being written.
    end: AtomicU64,
    /// The events file's path, for naming damage.
    place: String,
    /// Set when the index could not be written: reads could miss appends
    /// that are in the file, so they are refused until a restart re-indexes.
    failed: AtomicBool,
}

impl Shared {
    /// Checks a stream head read from the index against the event it names,
    /// so a damaged index never makes a new event chain onto a wrong hash.
    fn confirm_head(&self, stream: &StreamId, head: &StreamHead) -> Result<(), AppendError> {
        if head.version == 0 {
            return Ok(());
        }
        let damaged = |what: &str| {
            AppendError::Damaged(Damage::new(&self.place, what).in_stream(Some(stream.to_string())))
        };
        let offset = match self.index.get(stream_key(stream, head.version)) {
            Ok(Some(v)) => {
                offset_of(&v, 0).map_err(|_| damaged("the index's entry is not an offset"))?
            }
            Ok(None) => {
                return Err(damaged(
                    "the index has a head for this stream but not its event",
                ));
            }
            Err(e) => return Err(unavailable(e)),
        };
        let end = self.end.load(Ordering::Acquire);
        let mut frames = Frames::new(&self.file, offset, end, POINT_CHUNK);
        let found = match frames.next_frame() {
            Ok(Some(f)) if f.kind == EVENT => Envelope::decode(f.body).ok(),
            Ok(_) | Err(FrameError::Bad { .. }) => None,
            Err(FrameError::Io(e)) => return Err(unavailable(e)),
        };
        match found {
            Some(e)
                if e.stream == *stream
                    && e.stream_version == head.version
                    && e.hash == head.hash =>
            {
                Ok(())
            }
            _ => Err(damaged(
                "the index's head of this stream does not match its last event; remove log/index to rebuild it from the file",
            )),
        }
    }
}

/// The file-backed [`EventLog`] of the embedded mode.
#[derive(Clone)]
pub struct FileLog {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Job>,
    head: watch::Receiver<u64>,
    stats: Arc<WriterStats>,
}

impl std::fmt::Debug for FileLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLog")
            .field("head", &*self.head.borrow())
            .finish()
    }
}

fn storage(e: impl std::fmt::Display) -> LogError {
    LogError::Storage(e.to_string())
}

fn unavailable(e: impl std::fmt::Display) -> AppendError {
    AppendError::Unavailable(e.to_string())
}

fn stream_prefix(stream: &StreamId) -> Vec<u8> {
    let mut k = Vec::with_capacity(stream.as_str().len() + 10);
    k.push(b's');
    k.extend_from_slice(stream.as_str().as_bytes());
    k.push(0);
    k
}

fn stream_key(stream: &StreamId, version: u64) -> Vec<u8> {
    let mut k = stream_prefix(stream);
    k.extend_from_slice(&version.to_be_bytes());
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

fn block_key(position: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'o';
    k[1..].copy_from_slice(&((position - 1) / BLOCK).to_be_bytes());
    k
}

fn is_block_start(position: u64) -> bool {
    (position - 1).is_multiple_of(BLOCK)
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain owned data into a Vec cannot fail.
    postcard::to_stdvec(value).unwrap_or_default()
}

fn decode<T: for<'a> Deserialize<'a>>(bytes: &[u8], position: u64) -> Result<T, LogError> {
    postcard::from_bytes(bytes).map_err(|e| LogError::Corrupt {
        position,
        reason: e.to_string(),
    })
}

fn offset_of(bytes: &[u8], position: u64) -> Result<u64, LogError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| LogError::Corrupt {
            position,
            reason: "index entry is not an offset".into(),
        })
}

/// The index partition's settings file, which fjall reads at open.
const INDEX_CONFIG: &str = "index/partitions/index/config";

/// Where the SHA-256 of [`INDEX_CONFIG`] is kept, beside the index.
const INDEX_CONFIG_SUM: &str = "index.config.sha256";

/// Checks the index's settings against the sum taken when it was made:
/// fjall panics on some damaged settings (and aborts while unwinding), so
/// damage there must be named before fjall reads them.
fn check_index_config(dir: &Path) -> Result<(), LogError> {
    let sum_path = dir.join(INDEX_CONFIG_SUM);
    if !dir.join(INDEX_DIR).exists() {
        // A removed index is made again; its old sum goes with it.
        let _ = std::fs::remove_file(&sum_path);
        return Ok(());
    }
    let (Ok(sum), Ok(config)) = (
        std::fs::read_to_string(&sum_path),
        std::fs::read(dir.join(INDEX_CONFIG)),
    ) else {
        return Ok(());
    };
    use sha2::Digest;
    if hex::encode(sha2::Sha256::digest(&config)) != sum.trim() {
        return Err(LogError::Damaged(Damage::new(
            dir.join(INDEX_CONFIG).display().to_string(),
            "the log's index settings are damaged; the index is derived from the log file: remove log/index and start again to rebuild it",
        )));
    }
    Ok(())
}

/// Records the sum of the index's settings once they exist.
fn record_index_config(dir: &Path) {
    use sha2::Digest;
    let sum_path = dir.join(INDEX_CONFIG_SUM);
    if sum_path.exists() {
        return;
    }
    if let Ok(config) = std::fs::read(dir.join(INDEX_CONFIG)) {
        let _ = std::fs::write(&sum_path, hex::encode(sha2::Sha256::digest(&config)));
    }
}

fn open_index(dir: &Path) -> Result<(fjall::Keyspace, fjall::PartitionHandle), LogError> {
    let keyspace = fjall::Config::new(dir.join(INDEX_DIR))
        .open()
        .map_err(storage)?;
    let index = keyspace
        .open_partition("index", fjall::PartitionCreateOptions::default())
        .map_err(storage)?;
    Ok((keyspace, index))
}

/// Opens `path` for reading and writing, creating it empty if missing.
fn open_rw(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(storage)
}

/// Takes the directory's lock (`flock` on `lock`), so a second process is
/// refused; held as long as the returned file is open.
fn lock_dir(dir: &Path) -> Result<File, LogError> {
    let file = open_rw(&dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LogError::Storage(format!(
            "{} is in use by another process: only one accessd may open a data directory",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(storage(e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(storage)
}

/// Every intact frame of a file: its events in file order, and its request
/// records by last position.
type Salvaged = (Vec<Envelope>, HashMap<u64, (String, RequestRecord)>);

/// Reads every intact frame of the file at `path`, past damaged bytes.
fn salvage_file(path: &Path) -> Result<Salvaged, LogError> {
    let bytes = std::fs::read(path).map_err(storage)?;
    let (mut events, mut records) = (Vec::new(), HashMap::new());
    let mut at = 0;
    while at < bytes.len() {
        let Some(len) = frames::intact_at(&bytes[at..]) else {
            at += 1;
            continue;
        };
        let body = frames::claimed_body(&bytes[at..]).unwrap_or_default();
        if bytes[at] == EVENT {
            if let Ok(e) = Envelope::decode(body) {
                events.push(e);
            }
        } else if let Ok(Commit {
            last_position,
            request: Some(request),
        }) = postcard::from_bytes::<Commit>(body)
        {
            records.insert(last_position, request);
        }
        at += len;
    }
    Ok((events, records))
}

/// Writes `envelopes` (a whole log, in order) as frames into `path`, with a
/// commit frame after each run of one request id, or after the positions
/// `records` names (keyed by last position). Renumbers positions from 1 when
/// `renumber` is set. Returns how many were written.
pub(crate) fn write_frames(
    path: &Path,
    envelopes: impl IntoIterator<Item = Result<Envelope, LogError>>,
    mut records: HashMap<u64, (String, RequestRecord)>,
    renumber: bool,
) -> Result<u64, LogError> {
    let mut file = std::io::BufWriter::new(File::create(path).map_err(storage)?);
    let mut out = Vec::new();
    let mut position = 0u64;
    let mut open_request: Option<String> = None;
    let mut flush = |out: &mut Vec<u8>| {
        std::io::Write::write_all(&mut file, out).map_err(storage)?;
        out.clear();
        Ok::<_, LogError>(())
    };
    for envelope in envelopes {
        let mut envelope = envelope?;
        if renumber {
            envelope.position = position + 1;
        }
        if envelope.position != position + 1 {
            return Err(LogError::Corrupt {
                position: envelope.position,
                reason: format!("expected position {}", position + 1),
            });
        }
        if let Some(id) = open_request.take()
            && id != envelope.request_id
        {
            let commit = Commit {
                last_position: position,
                request: None,
            };
            frames::push(&mut out, COMMIT, &encode(&commit));
        }
        position = envelope.position;
        frames::push(&mut out, EVENT, &envelope.encode());
        match records.remove(&position) {
            Some(request) => {
                let commit = Commit {
                    last_position: position,
                    request: Some(request),
                };
                frames::push(&mut out, COMMIT, &encode(&commit));
            }
            None => open_request = Some(envelope.request_id),
        }
        if out.len() > SCAN_CHUNK {
            flush(&mut out)?;
        }
    }
    if open_request.is_some() {
        let commit = Commit {
            last_position: position,
            request: None,
        };
        frames::push(&mut out, COMMIT, &encode(&commit));
    }
    flush(&mut out)?;
    let file = file.into_inner().map_err(storage)?;
    file.sync_all().map_err(storage)?;
    Ok(position)
}

impl FileLog {
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
        let partial = dir.join("events.partial");
        let written = write_frames(
            &partial,
            envelopes.into_iter().map(Ok),
            HashMap::new(),
            true,
        )?;
        std::fs::rename(&partial, dir.join(EVENTS_FILE)).map_err(storage)?;
        sync_dir(dir)?;
        Ok(written)
    }

    /// Opens (or creates) the log in `dir`, indexes what the index lacks, and
    /// starts its writer thread. A directory in the earlier all-sled layout is
    /// converted first.
    pub fn open(dir: &Path) -> Result<Self, LogError> {
        std::fs::create_dir_all(dir).map_err(storage)?;
        let lock = lock_dir(dir)?;
        sled_upgrade::upgrade(dir)?;
        let file = open_rw(&dir.join(EVENTS_FILE))?;
        // The directory entry of a new file must be durable too.
        sync_dir(dir)?;
        let (mark_file, mark) = mark::MarkFile::open(dir)?;
        // The index is derived from the file: one that cannot be opened is
        // named, for the operator to remove and have rebuilt.
        check_index_config(dir)?;
        let (keyspace, index) = open_index(dir).map_err(|e| {
            LogError::Damaged(Damage::new(
                dir.join(INDEX_DIR).display().to_string(),
                format!("the log's index cannot be opened ({e}); it is derived from the log file: remove it and start again to rebuild it"),
            ))
        })?;
        record_index_config(dir);
        let checkpoint = recovery::recover(&keyspace, &index, &file, dir, mark)?;
        let shared = Arc::new(Shared {
            place: dir.join(EVENTS_FILE).display().to_string(),
            _lock: lock,
            file,
            keyspace,
            index,
            end: AtomicU64::new(checkpoint.offset),
            failed: AtomicBool::new(false),
        });
        let (head_tx, head_rx) = watch::channel(checkpoint.position);
        let (jobs_tx, jobs_rx) = mpsc::channel(4096);
        let stats = Arc::new(WriterStats::default());
        writer::start(
            shared.clone(),
            checkpoint,
            mark_file,
            head_tx,
            stats.clone(),
            jobs_rx,
        )
        .map_err(storage)?;
        Ok(FileLog {
            shared,
            jobs: jobs_tx,
            head: head_rx,
            stats,
        })
    }

    /// Every intact event frame left in the stopped log in `dir`, in file
    /// order, reading past damaged bytes: what a repair can still use.
    pub fn salvage(dir: &Path) -> Result<Vec<Envelope>, LogError> {
        let _lock = lock_dir(dir)?;
        Ok(salvage_file(&dir.join(EVENTS_FILE))?.0)
    }

    /// Replaces the stopped log in `dir` with `envelopes` (a whole, verified
    /// history, positions 1, 2, 3…), keeping the old file beside it as
    /// `events.damaged-<n>`; the index and the synced mark are made again at
    /// the next open. Returns where the old file went.
    pub fn replace(dir: &Path, envelopes: Vec<Envelope>) -> Result<std::path::PathBuf, LogError> {
        let _lock = lock_dir(dir)?;
        // The request records that survive keep answering retries.
        let (_, records) = salvage_file(&dir.join(EVENTS_FILE))?;
        let partial = dir.join("events.repaired");
        write_frames(&partial, envelopes.into_iter().map(Ok), records, false)?;
        let aside = (1..)
            .map(|n| dir.join(format!("{EVENTS_FILE}.damaged-{n}")))
            .find(|p| !p.exists())
            .unwrap_or_else(|| dir.join(format!("{EVENTS_FILE}.damaged")));
        std::fs::rename(dir.join(EVENTS_FILE), &aside).map_err(storage)?;
        std::fs::rename(&partial, dir.join(EVENTS_FILE)).map_err(storage)?;
        let _ = std::fs::remove_dir_all(dir.join(INDEX_DIR));
        let _ = std::fs::remove_file(dir.join(mark::MARK_FILE));
        sync_dir(dir)?;
        Ok(aside)
    }

    /// Checks the log in `dir` without changing it (the directory must not be
    /// in use): every frame, position and commit, every stream's chain, the
    /// synced mark, and the index's entries when there is an index. Reports
    /// the hashes at `hashes_of`, for checking what was built from the log.
    pub fn check_dir(dir: &Path, hashes_of: &[u64]) -> Result<CheckReport, LogError> {
        let _lock = lock_dir(dir)?;
        let path = dir.join(EVENTS_FILE);
        let file = File::open(&path).map_err(storage)?;
        let len = file.metadata().map_err(storage)?.len();
        let mark = mark::MarkFile::read(dir);
        let index = match dir.join(INDEX_DIR).exists() {
            true => {
                check_index_config(dir)?;
                Some(open_index(dir)?)
            }
            false => None,
        };
        let place = path.display().to_string();
        let mut report = check::check(check::Inputs {
            place: &place,
            file: &file,
            len,
            mark: mark.as_ref().ok().copied().flatten(),
            index: index.as_ref().map(|(_, i)| i),
            live: false,
            hashes_of,
        });
        if let Err(LogError::Damaged(d)) = mark {
            report.damage.insert(0, d);
        }
        Ok(report)
    }

    /// The same check on this open log, up to what is synced now.
    pub async fn check_live(&self) -> Result<CheckReport, LogError> {
        self.refuse_if_failed()?;
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            // The index's checkpoint is written with its entries: up to it,
            // every entry is there.
            let len = recovery::stored_checkpoint(&shared.index)
                .map(|c| c.offset)
                .unwrap_or(0)
                .min(shared.end.load(Ordering::Acquire));
            check::check(check::Inputs {
                place: &shared.place,
                file: &shared.file,
                len,
                mark: None,
                index: Some(&shared.index),
                live: true,
                hashes_of: &[],
            })
        })
        .await
        .map_err(storage)
    }

    /// Counters of the writer thread.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// The stored head of one stream.
    pub fn stream_head(&self, stream: &StreamId) -> Result<StreamHead, LogError> {
        self.refuse_if_failed()?;
        match self.shared.index.get(head_key(stream)).map_err(storage)? {
            Some(v) => decode(&v, 0),
            None => Ok(StreamHead::default()),
        }
    }

    fn refuse_if_failed(&self) -> Result<(), LogError> {
        if self.shared.failed.load(Ordering::Acquire) {
            return Err(LogError::Unavailable(
                "the log's index could not be written; restart accessd to rebuild it from the log"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Reads the event the index places at `offset` as version `version` of
    /// `stream`, refusing a frame that is damaged or holds another event.
    fn read_at(&self, offset: u64, stream: &StreamId, version: u64) -> Result<Envelope, LogError> {
        let end = self.shared.end.load(Ordering::Acquire);
        let mut frames = Frames::new(&self.shared.file, offset, end, POINT_CHUNK);
        let damaged = |what: String| {
            LogError::Damaged(
                Damage::new(&self.shared.place, what)
                    .at_offset(offset)
                    .in_stream(Some(stream.to_string())),
            )
        };
        let envelope = match frames.next_frame() {
            Ok(Some(f)) if f.kind == EVENT => Envelope::decode(f.body)
                .map_err(|e| damaged(format!("an event frame that does not decode: {e}")))?,
            Ok(_) => return Err(damaged("the index points where no event starts".into())),
            Err(FrameError::Bad { reason, .. }) => {
                return Err(damaged(format!("a damaged frame ({reason})")));
            }
            Err(FrameError::Io(e)) => return Err(storage(e)),
        };
        if envelope.stream != *stream || envelope.stream_version != version {
            return Err(damaged(format!(
                "the index points at {} version {} where version {version} belongs",
                envelope.stream, envelope.stream_version
            )));
        }
        Ok(envelope)
    }
}

impl EventLog for FileLog {
    fn append(&self, request: AppendRequest) -> BoxFuture<'_, Result<Committed, AppendError>> {
        Box::pin(async move {
            let (done, rx) = oneshot::channel();
            self.jobs
                .send(Job { request, done })
                .await
                .map_err(|_| unavailable("the log writer has stopped"))?;
            rx.await
                .map_err(|_| unavailable("the log writer has stopped"))?
        })
    }

    fn request(&self, request_id: &str) -> BoxFuture<'_, Result<Option<RequestRecord>, LogError>> {
        let key = request_key(request_id);
        Box::pin(async move {
            self.refuse_if_failed()?;
            match self.shared.index.get(key).map_err(storage)? {
                Some(v) => Ok(Some(decode(&v, 0)?)),
                None => Ok(None),
            }
        })
    }

    fn read_stream(&self, stream: &StreamId) -> BoxFuture<'_, Result<Vec<Envelope>, LogError>> {
        let prefix = stream_prefix(stream);
        let stream = stream.clone();
        Box::pin(async move {
            self.refuse_if_failed()?;
            let mut out = Vec::new();
            for item in self.shared.index.prefix(prefix) {
                let (_, v) = item.map_err(storage)?;
                let version = out.len() as u64 + 1;
                out.push(self.read_at(offset_of(&v, 0)?, &stream, version)?);
            }
            access_catalogue::chain::verify_stream(&out).map_err(|d| {
                LogError::Damaged(Damage {
                    place: self.shared.place.clone(),
                    ..d
                })
            })?;
            Ok(out)
        })
    }

    fn read_from(&self, from: u64, max: usize) -> BoxFuture<'_, Result<Vec<Envelope>, LogError>> {
        Box::pin(async move {
            // The head first: the end read after it covers every event up to it.
            let head = *self.head.borrow();
            let end = self.shared.end.load(Ordering::Acquire);
            let from = from.max(1);
            let mut out = Vec::new();
            if from > head || max == 0 {
                return Ok(out);
            }
            let damaged = |offset: u64, position: u64, what: String| {
                LogError::Damaged(
                    Damage::new(&self.shared.place, what)
                        .at_offset(offset)
                        .at_position(position),
                )
            };
            let start = match self.shared.index.get(block_key(from)).map_err(storage)? {
                Some(v) => offset_of(&v, from)?,
                None => {
                    return Err(LogError::Damaged(
                        Damage::new(
                            &self.shared.place,
                            "the index has no offset for this position",
                        )
                        .at_position(from),
                    ));
                }
            };
            // The block's first position; events before `from` are skipped unread.
            let mut position = (from - 1) / BLOCK * BLOCK + 1;
            let mut frames = Frames::new(&self.shared.file, start, end, SCAN_CHUNK);
            while out.len() < max && position <= head {
                let frame = match frames.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(FrameError::Bad { offset, reason }) => {
                        return Err(damaged(
                            offset,
                            position,
                            format!("a damaged frame ({reason})"),
                        ));
                    }
                    Err(FrameError::Io(e)) => return Err(storage(e)),
                };
                if frame.kind != EVENT {
                    continue;
                }
                if position >= from {
                    let at = frame.offset;
                    let envelope = Envelope::decode(frame.body).map_err(|e| {
                        damaged(at, position, format!("an event that does not decode: {e}"))
                    })?;
                    if envelope.position != position {
                        return Err(damaged(
                            at,
                            position,
                            format!("position {} where this one belongs", envelope.position),
                        ));
                    }
                    out.push(envelope);
                }
                position += 1;
            }
            Ok(out)
        })
    }

    fn head(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }

    fn check_storage(&self) -> BoxFuture<'_, Result<Vec<Damage>, LogError>> {
        Box::pin(async move { Ok(self.check_live().await?.damage) })
    }
}

/// One event's index entries (stream entry, block offset), given to `put`;
/// stream heads are written once per batch by the caller (a batch may not
/// hold one key twice).
fn index_event(e: &Envelope, offset: u64, mut put: impl FnMut(Vec<u8>, Vec<u8>)) {
    put(
        stream_key(&e.stream, e.stream_version),
        offset.to_be_bytes().to_vec(),
    );
    if is_block_start(e.position) {
        put(
            block_key(e.position).to_vec(),
            offset.to_be_bytes().to_vec(),
        );
    }
}
