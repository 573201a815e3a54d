//! The embedded backend: an append-only file of checksummed envelopes,
//! group-committed by two threads (see [`writer`]) and acknowledged only
//! after `fdatasync`, with an index beside it that is derived from the file.
//!
//! ## Files (in the log's directory)
//! - `events`: the truth. Frames (see [`crate::file_log::frames`]): one `E` frame per
//!   envelope, then one `C` frame closing the append ([`Commit`]: its request
//!   id and record). One `fdatasync` covers every group ready at the time.
//!   A group may start with a `K` frame: the key vault's new keys, sealed
//!   under a journal epoch (see [`crate::file_vault::journal`]); readers of
//!   events pass over it.
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

use crate::file_vault::journal::KeyJournal;
use crate::log::{
    AppendError, AppendRequest, Committed, EventLog, LogError, RequestRecord, WholeCheck,
};
use access_catalogue::damage::Damage;
use access_catalogue::envelope::{Envelope, StreamId};
use frames::{EVENT, FrameError, Frames};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot, watch};

use dir::{check_index_config, lock_dir, open_index, open_rw, record_index_config, sync_dir};
use keys::{
    HEAD_PREFIX, block_key, decode, encode, head_key, index_event, is_block_start, offset_of,
    request_key, stream_key, stream_prefix,
};
use salvage::write_frames;

pub use crate::log::MAX_ENVELOPE_BYTES;
pub use check::CheckReport;
pub use writer::DISK_FULL_TRIGGER_VAR;

mod check;
pub(crate) mod dir;
pub mod frames;
mod keys;
mod mark;
mod recovery;
mod salvage;
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
    /// The key vault's journal, once attached: new keys ride in the groups.
    journal: std::sync::OnceLock<Arc<KeyJournal>>,
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

impl FileLog {
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
            journal: std::sync::OnceLock::new(),
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
            dropped: None,
        });
        if let Err(LogError::Damaged(d)) = mark {
            report.damage.insert(0, d);
        }
        Ok(report)
    }

    /// The same check on this open log, up to what is synced now.
    /// A caller that stops waiting (a stop, a client gone) ends the check
    /// within a few frames instead of leaving it to run to the end.
    pub async fn check_live(&self) -> Result<CheckReport, LogError> {
        self.refuse_if_failed()?;
        let shared = self.shared.clone();
        let dropped = DropFlag::default();
        let seen = dropped.0.clone();
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
                dropped: Some(&seen),
            })
        })
        .await
        .map_err(storage)
    }

    /// Lets the key vault's `journal` put new keys into the groups, and
    /// returns the keys held by the frames of its live epochs (the ones the
    /// vault's file may have lost in a crash).
    pub fn attach_keys(
        &self,
        journal: Arc<KeyJournal>,
    ) -> Result<Vec<(String, access_catalogue::personal::Key)>, LogError> {
        let from = journal.replay_from();
        if self.shared.journal.set(journal.clone()).is_err() {
            return Err(LogError::Storage(
                "a key vault is attached to this log already".into(),
            ));
        }
        let Some(from) = from else {
            return Ok(Vec::new());
        };
        // The frame of the event at `from` precedes every group staged after
        // the epoch began; its block's start precedes that frame.
        let start = match from {
            0 => 0,
            p => match self.shared.index.get(block_key(p)).map_err(storage)? {
                Some(v) => offset_of(&v, p)?,
                None => 0,
            },
        };
        let end = self.shared.end.load(Ordering::Acquire);
        let mut keys = Vec::new();
        let mut frames = Frames::new(&self.shared.file, start, end, SCAN_CHUNK);
        loop {
            match frames.next_frame() {
                Ok(Some(f)) if f.kind == frames::KEYS => {
                    keys.extend(journal.open_frame(f.body).unwrap_or_default());
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(FrameError::Bad { offset, reason }) => {
                    return Err(LogError::Corrupt {
                        position: from,
                        reason: format!("a damaged frame at byte {offset} ({reason})"),
                    });
                }
                Err(FrameError::Io(e)) => return Err(storage(e)),
            }
        }
        Ok(keys)
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
            // The reads above never wait: a reader going through the whole
            // log (a check, an export) would hold its thread, and never see
            // a stop, until the end. One yield per batch lets both happen.
            tokio::task::yield_now().await;
            Ok(out)
        })
    }

    fn head(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }

    fn check_whole(&self) -> BoxFuture<'_, Result<Option<WholeCheck>, LogError>> {
        Box::pin(async move {
            let report = self.check_live().await?;
            Ok(Some(WholeCheck {
                events: report.events,
                streams: report.streams,
                damage: report.damage,
            }))
        })
    }
}

/// Set when the future holding it is dropped: how a blocking task learns
/// that nobody waits for it any more.
#[derive(Default)]
struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod drop_flag_tests {
    use super::*;

    #[test]
    fn the_flag_is_set_when_its_holder_goes_away() {
        let flag = DropFlag::default();
        let seen = flag.0.clone();
        assert!(!seen.load(Ordering::Relaxed));
        drop(flag);
        assert!(seen.load(Ordering::Relaxed));
    }
}
