//! The two threads behind every append, in a pipeline:
//! - the **stager** checks a group of appends (request ids, expected versions),
//!   seals their envelopes and builds their frames and index entries;
//! - the **syncer** writes the frames, `fdatasync`s, indexes, publishes the new
//!   head and answers.
//!
//! While the syncer waits on the disk, the stager prepares the next group on
//! top of the groups in flight (it sees their heads and request ids in its
//! overlay), and the syncer takes every group that is ready in one sync. A
//! failed write is cut off the file again; groups staged on top of it do not
//! start where the file now ends, so the syncer refuses them, and the stager
//! starts over from the durable state when it sees the failure count move.

use super::mark::{Mark, MarkFile};
use super::{
    CHECKPOINT_KEY, Checkpoint, Commit, Job, Shared, StreamHead, WriterStats, encode, head_key,
    index_event, request_key, unavailable,
};
use crate::file_log::frames::{self, COMMIT, EVENT};
use crate::log::{AppendError, AppendRequest, Committed, RequestRecord};
use access_catalogue::chain::GENESIS;
use access_catalogue::envelope::StreamId;
use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};

/// The variable naming the test-only full-disk trigger file.
pub const DISK_FULL_TRIGGER_VAR: &str = "ACCESS_FAULT_DISK_FULL";

/// Most appends folded into one staged group.
const MAX_GROUP: usize = 256;

/// Staged groups waiting for the syncer: enough to keep it busy, few enough
/// that the stager's overlay stays small.
const IN_FLIGHT: usize = 4;

/// Most staged groups one sync takes.
const MAX_GROUPS_PER_SYNC: usize = 16;

/// What the syncer has made durable, as the stager reads it.
#[derive(Clone, Copy, Debug)]
struct Durable {
    head: u64,
    end: u64,
    /// Failed writes so far: a change tells the stager to start over.
    failures: u64,
}

/// One answer the syncer gives once the group is durable.
struct Pending {
    done: oneshot::Sender<Result<Committed, AppendError>>,
    committed: Committed,
    /// Counted as a new append (not a retry of one in flight).
    new: bool,
}

/// A staged group on its way to the disk.
struct Group {
    /// Where its frames go: the end of the group before it.
    base_end: u64,
    /// The head it was staged on.
    base_head: u64,
    frames: Vec<u8>,
    /// Index entries other than heads, each key once.
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    heads: HashMap<StreamId, StreamHead>,
    new_head: u64,
    answers: Vec<Pending>,
}

/// What the stager remembers of a group until the index has it.
struct InFlight {
    new_head: u64,
    heads: HashMap<StreamId, StreamHead>,
    requests: HashMap<String, RequestRecord>,
}

/// Starts the stager and the syncer on the log opened at `checkpoint`.
pub(super) fn start(
    shared: Arc<Shared>,
    checkpoint: Checkpoint,
    mut mark: MarkFile,
    head_tx: watch::Sender<u64>,
    stats: Arc<WriterStats>,
    jobs: mpsc::Receiver<Job>,
) -> std::io::Result<()> {
    let durable = Arc::new(Mutex::new(Durable {
        head: checkpoint.position,
        end: checkpoint.offset,
        failures: 0,
    }));
    let (groups_tx, groups_rx) = std::sync::mpsc::sync_channel(IN_FLIGHT);
    // What recovery found whole is the floor from now on.
    mark.record_synced(Mark {
        offset: checkpoint.offset,
        position: checkpoint.position,
    })?;
    let syncer = Syncer {
        mark,
        shared: shared.clone(),
        durable: durable.clone(),
        head: checkpoint.position,
        end: checkpoint.offset,
        head_tx,
        stats,
        cut_back: None,
        disk_full_trigger: std::env::var_os(DISK_FULL_TRIGGER_VAR).map(PathBuf::from),
    };
    let stager = Stager {
        shared,
        durable,
        next: checkpoint.position + 1,
        end: checkpoint.offset,
        seen_failures: 0,
        in_flight: VecDeque::new(),
    };
    std::thread::Builder::new()
        .name("event-log-sync".into())
        .spawn(move || syncer.run(groups_rx))?;
    std::thread::Builder::new()
        .name("event-log-writer".into())
        .spawn(move || stager.run(jobs, groups_tx))?;
    Ok(())
}

fn duplicate(rec: RequestRecord) -> Committed {
    Committed {
        first_position: rec.first_position,
        last_position: rec.last_position,
        reply: rec.reply,
        duplicate: true,
    }
}

/// The stager's view while it builds one group.
struct Staging<'a> {
    group: Group,
    requests: HashMap<String, RequestRecord>,
    in_flight: &'a VecDeque<InFlight>,
}

impl Staging<'_> {
    fn head(&self, shared: &Shared, stream: &StreamId) -> Result<StreamHead, AppendError> {
        if let Some(h) = self.group.heads.get(stream) {
            return Ok(*h);
        }
        if let Some(h) = self
            .in_flight
            .iter()
            .rev()
            .find_map(|g| g.heads.get(stream))
        {
            return Ok(*h);
        }
        let head: StreamHead = match shared.index.get(head_key(stream)) {
            Ok(Some(v)) => postcard::from_bytes(&v).map_err(unavailable)?,
            Ok(None) => StreamHead::default(),
            Err(e) => return Err(unavailable(e)),
        };
        // The index is derived: a head it gives is checked against the event
        // it names before anything is chained onto it (one read, usually
        // from the page cache).
        shared.confirm_head(stream, &head)?;
        Ok(head)
    }

    /// A record of the request id staged here or in flight: not durable yet.
    fn staged_request(&self, request_id: &str) -> Option<&RequestRecord> {
        self.requests.get(request_id).or_else(|| {
            self.in_flight
                .iter()
                .rev()
                .find_map(|g| g.requests.get(request_id))
        })
    }
}

/// What the stager made of one request.
enum Outcome {
    /// Staged, or a retry of one staged: answered once the group is durable.
    Later(Committed, bool),
    /// Answered now (a durable retry, or refused).
    Now(Result<Committed, AppendError>),
}

struct Stager {
    shared: Arc<Shared>,
    durable: Arc<Mutex<Durable>>,
    /// Position the next staged event gets.
    next: u64,
    /// Where the next staged frames go.
    end: u64,
    seen_failures: u64,
    in_flight: VecDeque<InFlight>,
}

impl Stager {
    fn run(mut self, mut jobs: mpsc::Receiver<Job>, groups: std::sync::mpsc::SyncSender<Group>) {
        while let Some(first) = jobs.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_GROUP {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.catch_up();
            if self.shared.failed.load(Ordering::Acquire) {
                for job in batch {
                    let _ = job.done.send(Err(unavailable(
                        "the log's index could not be written; restart accessd",
                    )));
                }
                continue;
            }
            let Some((group, in_flight)) = self.stage(batch) else {
                continue;
            };
            self.next = group.new_head + 1;
            self.end = group.base_end + group.frames.len() as u64;
            self.in_flight.push_back(in_flight);
            if groups.send(group).is_err() {
                break;
            }
        }
    }

    /// Forgets groups the index has; starts over from the durable state
    /// after a failed write.
    fn catch_up(&mut self) {
        let durable = *self.durable.lock().unwrap_or_else(|p| p.into_inner());
        if durable.failures != self.seen_failures {
            self.seen_failures = durable.failures;
            self.in_flight.clear();
            self.next = durable.head + 1;
            self.end = durable.end;
            return;
        }
        while self
            .in_flight
            .front()
            .is_some_and(|g| g.new_head <= durable.head)
        {
            self.in_flight.pop_front();
        }
    }

    /// Stages a batch of jobs; answers at once what needs no write. Returns
    /// the group for the syncer, if anything waits on it.
    fn stage(&self, batch: Vec<Job>) -> Option<(Group, InFlight)> {
        let mut staging = Staging {
            group: Group {
                base_end: self.end,
                base_head: self.next - 1,
                frames: Vec::new(),
                entries: Vec::new(),
                heads: HashMap::new(),
                new_head: self.next - 1,
                answers: Vec::new(),
            },
            requests: HashMap::new(),
            in_flight: &self.in_flight,
        };
        for job in batch {
            match self.stage_one(&job.request, &mut staging) {
                Outcome::Now(result) => {
                    let _ = job.done.send(result);
                }
                Outcome::Later(committed, new) => staging.group.answers.push(Pending {
                    done: job.done,
                    committed,
                    new,
                }),
            }
        }
        if staging.group.answers.is_empty() {
            return None;
        }
        let in_flight = InFlight {
            new_head: staging.group.new_head,
            heads: staging.group.heads.clone(),
            requests: staging.requests,
        };
        Some((staging.group, in_flight))
    }

    fn stage_one(&self, r: &AppendRequest, staging: &mut Staging<'_>) -> Outcome {
        match self.try_stage(r, staging) {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Now(Err(e)),
        }
    }

    fn try_stage(
        &self,
        r: &AppendRequest,
        staging: &mut Staging<'_>,
    ) -> Result<Outcome, AppendError> {
        r.check_shape()?;
        if let Some(rec) = staging.staged_request(&r.request_id) {
            // A retry of an append not yet durable: it shares that append's fate
            // (its group is written before this one, or this one is refused).
            if rec.fingerprint != r.fingerprint {
                return Err(AppendError::RequestIdReused(r.request_id.clone()));
            }
            return Ok(Outcome::Later(duplicate(rec.clone()), false));
        }
        match self.shared.index.get(request_key(&r.request_id)) {
            Ok(Some(v)) => {
                let rec: RequestRecord = postcard::from_bytes(&v).map_err(unavailable)?;
                if rec.fingerprint != r.fingerprint {
                    return Err(AppendError::RequestIdReused(r.request_id.clone()));
                }
                return Ok(Outcome::Now(Ok(duplicate(rec))));
            }
            Ok(None) => {}
            Err(e) => return Err(unavailable(e)),
        }
        let mut heads = Vec::with_capacity(r.streams.len());
        for s in &r.streams {
            let head = staging.head(&self.shared, &s.stream)?;
            if head.version != s.expected_version {
                return Err(AppendError::Conflict {
                    stream: s.stream.clone(),
                    expected: s.expected_version,
                    actual: head.version,
                });
            }
            heads.push(head);
        }
        // Everything checked: build the frames apart first, so a too-large
        // event leaves the group untouched.
        let group = &mut staging.group;
        let base = group.base_end + group.frames.len() as u64;
        let mut frames = Vec::new();
        let mut entries = Vec::new();
        let mut position = group.new_head + 1;
        let first_position = position;
        for (s, head) in r.streams.iter().zip(heads.iter_mut()) {
            for e in &s.events {
                let prev = if head.version == 0 {
                    GENESIS
                } else {
                    head.hash
                };
                let (envelope, bytes) =
                    r.seal_encoded(&s.stream, e, head.version + 1, prev, position)?;
                let offset = base + frames.len() as u64;
                frames::push(&mut frames, EVENT, &bytes);
                index_event(&envelope, offset, |k, v| entries.push((k, v)));
                *head = StreamHead {
                    version: envelope.stream_version,
                    hash: envelope.hash,
                };
                position += 1;
            }
        }
        let record = RequestRecord {
            fingerprint: r.fingerprint,
            first_position,
            last_position: position - 1,
            reply: r.reply.clone(),
        };
        let commit = Commit {
            last_position: position - 1,
            request: Some((r.request_id.clone(), record.clone())),
        };
        frames::push(&mut frames, COMMIT, &encode(&commit));
        group.frames.extend_from_slice(&frames);
        for (s, head) in r.streams.iter().zip(heads) {
            group.heads.insert(s.stream.clone(), head);
        }
        group.entries.extend(entries);
        group
            .entries
            .push((request_key(&r.request_id), encode(&record)));
        group.new_head = position - 1;
        staging
            .requests
            .insert(r.request_id.clone(), record.clone());
        Ok(Outcome::Later(
            Committed {
                first_position,
                last_position: position - 1,
                reply: record.reply,
                duplicate: false,
            },
            true,
        ))
    }
}

struct Syncer {
    /// Where the acknowledged appends end, kept apart from the file.
    mark: MarkFile,
    shared: Arc<Shared>,
    durable: Arc<Mutex<Durable>>,
    head: u64,
    /// End of the synced appends in `events`.
    end: u64,
    head_tx: watch::Sender<u64>,
    stats: Arc<WriterStats>,
    /// Set after a failed write whose bytes could not be cut off the file
    /// again: the length to cut back to before anything else is written.
    cut_back: Option<u64>,
    /// Test-only: while this file exists, every write fails as on a full disk
    /// (`ACCESS_FAULT_DISK_FULL`), so the refusal and the recovery can be
    /// exercised against the real binary.
    disk_full_trigger: Option<PathBuf>,
}

impl Syncer {
    fn run(mut self, groups: std::sync::mpsc::Receiver<Group>) {
        while let Ok(first) = groups.recv() {
            let mut ready = vec![first];
            while ready.len() < MAX_GROUPS_PER_SYNC {
                match groups.try_recv() {
                    Ok(g) => ready.push(g),
                    Err(_) => break,
                }
            }
            self.commit(ready);
        }
        if let Err(e) = self.shared.keyspace.persist(fjall::PersistMode::SyncAll) {
            tracing::error!(error = %e, "final flush of the event log's index failed");
        }
        if let Err(e) = self.mark.sync_now() {
            tracing::error!(error = %e, "final sync of the log's synced mark failed");
        }
    }

    fn commit(&mut self, ready: Vec<Group>) {
        // Groups staged on top of a failed one do not start where the file
        // ends: refused, and the stager starts over.
        let (mut chained, mut stale) = (Vec::new(), Vec::new());
        let (mut head, mut end) = (self.head, self.end);
        for g in ready {
            if g.base_head == head && g.base_end == end {
                head = g.new_head;
                end += g.frames.len() as u64;
                chained.push(g);
            } else {
                stale.push(g);
            }
        }
        refuse(
            stale,
            "an append before it in the log could not be written; retry",
        );
        if chained.is_empty() {
            return;
        }
        let written = self.write(&chained, head, end);
        if let Err(e) = &written {
            tracing::error!(error = %e, "event log group commit failed; its appends are refused");
            refuse(chained, &e.to_string());
            return;
        }
        let mut acknowledged = 0;
        for g in &chained {
            acknowledged += g.answers.iter().filter(|a| a.new).count() as u64;
        }
        // Counted before anyone is answered, so a caller that saw its answer
        // also sees it counted.
        if acknowledged > 0 {
            metrics::histogram!("access_group_commit_size").record(acknowledged as f64);
            self.stats.commits.fetch_add(1, Ordering::Relaxed);
            self.stats
                .appends
                .fetch_add(acknowledged, Ordering::Relaxed);
        }
        for g in chained {
            for a in g.answers {
                // The caller may have gone away; the append stands either way.
                let _ = a.done.send(Ok(a.committed));
            }
        }
    }

    /// Writes and syncs the groups' frames, then indexes them; publishes the
    /// new head only then.
    fn write(&mut self, groups: &[Group], new_head: u64, end: u64) -> Result<(), AppendError> {
        if let Err(e) = self.repair() {
            self.failed();
            return Err(unavailable(e));
        }
        let file = &self.shared.file;
        let durable = if self.disk_full_trigger.as_ref().is_some_and(|t| t.exists()) {
            Err(std::io::Error::other(
                "No space left on device (os error 28; injected)",
            ))
        } else {
            groups
                .iter()
                .try_for_each(|g| file.write_all_at(&g.frames, g.base_end))
                .and_then(|()| file.sync_data())
        };
        if let Err(e) = durable {
            // Nothing of the groups may surface later: cut them off again.
            if file
                .set_len(self.end)
                .and_then(|()| file.sync_data())
                .is_err()
            {
                self.cut_back = Some(self.end);
            }
            self.failed();
            return Err(unavailable(e));
        }
        // The frames are whole and synced: readers may reach them before the
        // index entries that point at them are visible.
        self.shared.end.store(end, Ordering::Release);
        let index = &self.shared.index;
        let mut batch = self.shared.keyspace.batch();
        let mut heads = HashMap::new();
        for g in groups {
            for (k, v) in &g.entries {
                batch.insert(index, k.as_slice(), v.as_slice());
            }
            heads.extend(g.heads.iter());
        }
        for (stream, head) in heads {
            batch.insert(index, head_key(stream), encode(head));
        }
        batch.insert(
            index,
            CHECKPOINT_KEY,
            encode(&Checkpoint {
                position: new_head,
                offset: end,
            }),
        );
        if let Err(e) = batch.commit() {
            // The appends are durable but unreadable until a restart
            // re-indexes them: refuse everything rather than answer from an
            // index that misses them.
            self.shared.failed.store(true, Ordering::Release);
            tracing::error!(error = %e, "writing the event log's index failed; restart to rebuild it");
            return Err(unavailable(e));
        }
        self.mark.record(Mark {
            offset: end,
            position: new_head,
        });
        self.end = end;
        self.head = new_head;
        {
            let mut d = self.durable.lock().unwrap_or_else(|p| p.into_inner());
            d.head = new_head;
            d.end = end;
        }
        self.head_tx.send_replace(new_head);
        Ok(())
    }

    /// Tells the stager to start over from the durable state.
    fn failed(&self) {
        let mut d = self.durable.lock().unwrap_or_else(|p| p.into_inner());
        d.failures += 1;
    }

    /// Cuts off what a failed write left behind, if an earlier try could not.
    fn repair(&mut self) -> std::io::Result<()> {
        if let Some(len) = self.cut_back {
            self.shared.file.set_len(len)?;
            self.shared.file.sync_data()?;
            self.cut_back = None;
            tracing::info!("the event log's file is whole again");
        }
        Ok(())
    }
}

fn refuse(groups: Vec<Group>, why: &str) {
    for g in groups {
        for a in g.answers {
            let _ = a.done.send(Err(AppendError::Unavailable(why.to_owned())));
        }
    }
}
