//! The stager: checks a group of appends against the durable state and the
//! groups in flight, seals their envelopes, builds their frames and index
//! entries.

use super::*;
use crate::file_log::frames::{self, COMMIT, EVENT, KEYS};
use crate::file_log::{
    Commit, Job, Shared, StreamHead, encode, head_key, index_event, request_key, unavailable,
};
use crate::log::{AppendError, AppendRequest, Committed, RequestRecord};
use access_catalogue::chain::GENESIS;
use access_catalogue::envelope::StreamId;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// The stager's view while it builds one group.
struct Staging<'a> {
    group: Group,
    requests: HashMap<String, RequestRecord>,
    in_flight: &'a VecDeque<InFlight>,
    durable_heads: &'a HashMap<StreamId, StreamHead>,
}

/// Stream heads the stager keeps from groups it saw become durable; past
/// this many it starts over (recent streams are the ones appended to).
const KEPT_HEADS: usize = 100_000;

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
        // Written by this writer and made durable: no need to ask the index.
        if let Some(h) = self.durable_heads.get(stream) {
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

pub(super) struct Stager {
    pub(super) shared: Arc<Shared>,
    pub(super) durable: Arc<Mutex<Durable>>,
    /// Position the next staged event gets.
    pub(super) next: u64,
    /// Where the next staged frames go.
    pub(super) end: u64,
    pub(super) seen_failures: u64,
    /// The number of the last vault key put into a staged group.
    pub(super) keys_sent: u64,
    pub(super) in_flight: VecDeque<InFlight>,
    /// Heads of streams whose groups became durable (see [`KEPT_HEADS`]).
    pub(super) durable_heads: HashMap<StreamId, StreamHead>,
}

impl Stager {
    pub(super) fn run(
        mut self,
        mut jobs: mpsc::Receiver<Job>,
        groups: std::sync::mpsc::SyncSender<Group>,
    ) {
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
            if let Some(through) = group.keys_through {
                self.keys_sent = through;
            }
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
            // Only what the index holds is certain after a failed write.
            self.durable_heads.clear();
            // Keys sent in groups that were not written go again.
            if let Some(journal) = self.shared.journal.get() {
                self.keys_sent = journal.durable_through();
            }
            self.next = durable.head + 1;
            self.end = durable.end;
            return;
        }
        while self
            .in_flight
            .front()
            .is_some_and(|g| g.new_head <= durable.head)
        {
            if let Some(g) = self.in_flight.pop_front() {
                if self.durable_heads.len() + g.heads.len() > KEPT_HEADS {
                    self.durable_heads.clear();
                }
                self.durable_heads.extend(g.heads);
            }
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
                keys_through: None,
            },
            requests: HashMap::new(),
            in_flight: &self.in_flight,
            durable_heads: &self.durable_heads,
        };
        // Keys made for these appends go first: a torn write that keeps an
        // event keeps the keys it is sealed under.
        let keys = self
            .shared
            .journal
            .get()
            .and_then(|j| j.take(self.keys_sent));
        if let Some((through, body)) = &keys {
            frames::push(&mut staging.group.frames, KEYS, body);
            staging.group.keys_through = Some(*through);
        }
        let keys_end = staging.group.frames.len();
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
        if staging.group.frames.len() == keys_end {
            // No append of this batch is written: its keys wait for the next.
            staging.group.frames.clear();
            staging.group.keys_through = None;
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
