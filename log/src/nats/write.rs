//! Appends: each command becomes part of a frame on its scope's subject,
//! published with the sequence that subject must still end at.
//!
//! A scope (a tenant, or one global stream) has at most one write in flight
//! from this replica; the commands that arrive meanwhile wait and go
//! together in the next frame (the group commit). A write checks each
//! command against what this replica knows of the scope up to the sequence
//! it expects (the index, and its own frames the index has not reached),
//! and the server refuses the frame if any other message reached the subject
//! since: so a stale check is never stored. A command that spans scopes
//! (an identity's stream beside a tenant's, an operator's request) goes
//! alone, as an atomic batch of one frame per scope.

use super::frame::{self, FrameRequest, MAX_FRAME_EVENTS};
use super::{Core, ERR_WRONG_LAST_SEQUENCE, Job, MAX_EVENTS_PER_APPEND, PubAck, unavailable};
use crate::log::{AppendError, AppendRequest, Committed, RequestRecord};
use access_catalogue::chain::GENESIS;
use access_catalogue::envelope::StreamId;
use async_nats::HeaderMap;
use async_nats::connection::State;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Commands of one group commit, at most.
const GROUP_COMMANDS: usize = 256;
/// Times a command goes again after its frame lost a race for its scope,
/// before its caller hears of a conflict and decides again.
const MAX_RACES: u32 = 8;

/// A stream's last event as this replica wrote it: version, hash, position.
type Written = (u64, [u8; 32], u64);

/// What this replica knows of one scope.
#[derive(Default)]
struct ScopeState {
    /// The subject's last sequence, with every message of it up to there in
    /// the index or below; `None` when it must be asked (at first, and after
    /// a refused or unanswered write).
    last: Option<u64>,
    /// Every message of the subject up to this sequence is in the index or
    /// below, even while `last` must be asked again.
    known: u64,
    /// This replica's own writes the index may not hold yet, by the
    /// sequence they were stored at.
    heads: HashMap<StreamId, (Written, u64)>,
    requests: HashMap<String, (RequestRecord, u64)>,
}

/// Times learning a scope is tried while the log says it takes appends.
const LEARN_TRIES: u32 = 10;

impl ScopeState {
    /// Takes in a message of the scope the index may not hold yet (another
    /// replica's): its streams' new heads and its records.
    fn absorb(
        &mut self,
        index: &super::index::Index,
        seq: u64,
        frame: frame::ReadFrame,
    ) -> Result<(), AppendError> {
        for e in &frame.envelopes {
            let prev = match self.heads.get(&e.stream) {
                Some(((v, h, _), _)) => (*v, *h),
                None => index
                    .head(&e.stream)
                    .map_err(AppendError::from_log)?
                    .map_or((0, GENESIS), |(v, h, _)| (v, h)),
            };
            // A stream's events already taken in (a message read twice) pass.
            if e.stream_version <= prev.0 {
                continue;
            }
            super::index::check_link(e, prev, seq).map_err(AppendError::from_log)?;
            self.heads.insert(
                e.stream.clone(),
                ((e.stream_version, e.hash, e.position), seq),
            );
        }
        for r in frame.requests {
            if self.requests.contains_key(&r.request_id)
                || index
                    .request(&r.request_id)
                    .map_err(AppendError::from_log)?
                    .is_some()
            {
                continue;
            }
            let (first_position, last_position) = r.positions(seq);
            let record = RequestRecord {
                fingerprint: r.fingerprint,
                first_position,
                last_position,
                reply: r.reply,
            };
            self.requests.insert(r.request_id, (record, seq));
        }
        Ok(())
    }

    /// Forgets what the index holds by now.
    fn prune(&mut self, applied: u64) {
        self.heads.retain(|_, (_, seq)| *seq > applied);
        self.requests.retain(|_, (_, seq)| *seq > applied);
    }
}

/// A command waiting for its frame.
struct Pending {
    job: Job,
    /// The scopes it writes to; its request's scope last.
    scopes: Vec<String>,
    races: u32,
}

/// The writer's book: each scope's state (absent while a write holds it)
/// and queue.
struct Writer {
    core: Arc<Core>,
    states: HashMap<String, Option<ScopeState>>,
    queues: HashMap<String, VecDeque<u64>>,
    pending: HashMap<u64, Pending>,
    next: u64,
}

/// A write's outcome: the states it held, and the commands to go again.
type Landed = (Vec<(String, ScopeState)>, Vec<Pending>);

/// Takes appends and writes them, one write in flight per scope, until the
/// log's handle is dropped.
pub(super) async fn write_frames(core: Arc<Core>, mut queue: mpsc::Receiver<Job>) {
    let mut w = Writer {
        core,
        states: HashMap::new(),
        queues: HashMap::new(),
        pending: HashMap::new(),
        next: 0,
    };
    let mut flights = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            job = queue.recv(), if open => match job {
                Some(job) => w.enqueue(job, 0, false),
                None => open = false,
            },
            Some((states, again)) = flights.next(), if !flights.is_empty() => {
                w.land(states, again);
            }
            else => return,
        }
        while let Ok(job) = queue.try_recv() {
            w.enqueue(job, 0, false);
        }
        for flight in w.start() {
            flights.push(flight);
        }
    }
}

impl Writer {
    fn enqueue(&mut self, job: Job, races: u32, front: bool) {
        let r = &job.request;
        let events: usize = r.streams.iter().map(|s| s.events.len()).sum();
        let refused = r.check_shape().err().or_else(|| {
            (events > MAX_EVENTS_PER_APPEND).then(|| {
                AppendError::Invalid(format!("at most {MAX_EVENTS_PER_APPEND} events per append"))
            })
        });
        if let Some(e) = refused {
            let _ = job.done.send(Err(e));
            return;
        }
        let prefix = &self.core.prefix;
        let request = frame::request_scope(prefix, r.tenant.as_deref());
        let mut scopes: Vec<String> = Vec::new();
        for s in &r.streams {
            let scope = frame::scope_of(prefix, &s.stream);
            if scope != request && !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        scopes.push(request);
        let id = self.next;
        self.next += 1;
        for scope in &scopes {
            let queue = self.queues.entry(scope.clone()).or_default();
            if front {
                queue.push_front(id);
            } else {
                queue.push_back(id);
            }
            self.states
                .entry(scope.clone())
                .or_insert_with(|| Some(ScopeState::default()));
        }
        self.pending.insert(id, Pending { job, scopes, races });
    }

    fn land(&mut self, states: Vec<(String, ScopeState)>, again: Vec<Pending>) {
        for (scope, state) in states {
            self.states.insert(scope, Some(state));
        }
        // Back at the front, in their order.
        for p in again.into_iter().rev() {
            self.enqueue(p.job, p.races, true);
        }
        // Scopes with nothing waiting and nothing learnt are forgotten, so
        // the book stays as small as the scopes in use.
        if self.states.len() > 10_000 {
            let queues = &self.queues;
            self.states.retain(|scope, state| {
                state.is_none() || queues.get(scope).is_some_and(|q| !q.is_empty())
            });
            self.queues.retain(|_, q| !q.is_empty());
        }
    }

    /// Starts every write that can go now.
    fn start(&mut self) -> Vec<futures::future::BoxFuture<'static, Landed>> {
        let mut flights = Vec::new();
        let scopes: Vec<String> = self
            .queues
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(s, _)| s.clone())
            .collect();
        for scope in scopes {
            if !matches!(self.states.get(&scope), Some(Some(_))) {
                continue;
            }
            let Some(&head) = self.queues.get(&scope).and_then(VecDeque::front) else {
                continue;
            };
            let Some(p) = self.pending.get(&head) else {
                continue;
            };
            let group: Vec<u64> = if p.scopes.len() == 1 {
                self.single_scope_group(&scope)
            } else {
                // Alone, once it heads the queue of every scope it spans
                // and none of them is in flight.
                let ready = p.scopes.iter().all(|s| {
                    matches!(self.states.get(s), Some(Some(_)))
                        && self.queues.get(s).and_then(VecDeque::front) == Some(&head)
                });
                if !ready {
                    continue;
                }
                vec![head]
            };
            let jobs: Vec<Pending> = group
                .iter()
                .filter_map(|id| self.pending.remove(id))
                .collect();
            let Some(spans) = jobs.first().map(|p| p.scopes.clone()) else {
                continue;
            };
            let mut held = Vec::new();
            for s in &spans {
                if let Some(q) = self.queues.get_mut(s) {
                    q.retain(|id| !group.contains(id));
                }
                if let Some(state) = self.states.get_mut(s).and_then(Option::take) {
                    held.push((s.clone(), state));
                }
            }
            let core = self.core.clone();
            flights.push(Box::pin(fly(core, held, jobs)) as _);
        }
        flights
    }

    /// The commands at the head of `scope`'s queue that write to it alone,
    /// up to a group's worth.
    fn single_scope_group(&self, scope: &str) -> Vec<u64> {
        let Some(queue) = self.queues.get(scope) else {
            return Vec::new();
        };
        let mut events = 0usize;
        let mut group = Vec::new();
        for id in queue {
            let Some(p) = self.pending.get(id) else { break };
            if p.scopes.len() != 1 || group.len() >= GROUP_COMMANDS {
                break;
            }
            let n: usize = p.job.request.streams.iter().map(|s| s.events.len()).sum();
            if !group.is_empty() && events + n > MAX_EVENTS_PER_APPEND {
                break;
            }
            events += n;
            group.push(*id);
        }
        group
    }
}

/// A sealed command's events in one scope.
struct Part {
    subject: String,
    envelopes: Vec<Vec<u8>>,
    /// Each stream's new last event: stream, version, hash, and its index
    /// in `envelopes`.
    lasts: Vec<(StreamId, u64, [u8; 32], usize)>,
}

/// What a command came to while its write was built.
enum Checked {
    /// Stored before (by an earlier attempt), refused, or found in
    /// conflict: its answer.
    Answered(Result<Committed, AppendError>),
    /// The same request as the command at this index of the group.
    Follows(usize),
    /// To store: its events per scope, its request's scope last.
    Sealed(Vec<Part>),
}

/// One message of a write.
struct Message {
    subject: String,
    /// The sequence the subject must end at (its first message in a write).
    expected: Option<u64>,
    frame: frame::Frame,
}

/// Where a stored command's events and record are: (message, index).
struct Placed {
    first: (usize, usize),
    last: (usize, usize),
    record: usize,
    /// Each stream's new last event.
    heads: Vec<NewHead>,
}

/// A stream's new last event in a write: where it landed.
struct NewHead {
    scope: String,
    stream: StreamId,
    version: u64,
    hash: [u8; 32],
    spot: (usize, usize),
}

/// The messages of one write and where each command landed.
struct Plan {
    messages: Vec<Message>,
    places: Vec<Option<Placed>>,
}

/// One write: learns what it must, checks and seals its commands, publishes,
/// and answers them; returns the scopes' states and what must go again.
async fn fly(core: Arc<Core>, mut held: Vec<(String, ScopeState)>, jobs: Vec<Pending>) -> Landed {
    if core.client.connection_state() != State::Connected {
        fail(
            jobs,
            &AppendError::Unavailable("not connected to NATS".into()),
        );
        return (held, Vec::new());
    }
    for (subject, state) in &mut held {
        state.prune(core.index.applied());
        let mut tries = 0;
        while state.last.is_none() {
            match core.learn(subject, state).await {
                Ok(()) => {}
                // A stream that has just chosen a leader may refuse direct
                // reads for a moment while it takes appends: try again, a
                // little, while the probe says the log is there.
                Err(AppendError::Unavailable(_))
                    if tries < LEARN_TRIES
                        && super::offline(&core.client).is_none()
                        && core.takes_appends() =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    fail(jobs, &e);
                    return (held, Vec::new());
                }
            }
        }
    }
    let mut checked: Vec<Checked> = Vec::with_capacity(jobs.len());
    let mut touched: HashMap<StreamId, (u64, [u8; 32])> = HashMap::new();
    for p in &jobs {
        let c = check(&core, &held, &jobs, &checked, &mut touched, &p.job.request);
        checked.push(c);
    }
    let plan = plan(&core, &held, &jobs, &checked);
    if plan.messages.is_empty() {
        answer_all(jobs, checked, &[], None);
        return (held, Vec::new());
    }
    match core.publish(&plan.messages).await {
        Ok(last_seq) => {
            let first_seq = (last_seq + 1).saturating_sub(plan.messages.len() as u64);
            for (scope, state) in &mut held {
                if let Some(i) = plan.messages.iter().rposition(|m| m.subject == *scope) {
                    state.last = Some(first_seq + i as u64);
                    state.known = first_seq + i as u64;
                }
            }
            let mut positions = Vec::with_capacity(jobs.len());
            for (p, placed) in jobs.iter().zip(&plan.places) {
                let Some(placed) = placed else {
                    positions.push(None);
                    continue;
                };
                let (first, last) = (
                    place(first_seq, placed.first),
                    place(first_seq, placed.last),
                );
                positions.push(Some((first, last)));
                for head in &placed.heads {
                    let at = place(first_seq, head.spot);
                    if let Some((_, state)) = held.iter_mut().find(|(s, _)| *s == head.scope) {
                        state.heads.insert(
                            head.stream.clone(),
                            ((head.version, head.hash, at), frame::sequence_of(at)),
                        );
                    }
                }
                let r = &p.job.request;
                let record_subject = &plan.messages[placed.record].subject;
                if let Some((_, state)) = held.iter_mut().find(|(s, _)| s == record_subject) {
                    let record = RequestRecord {
                        fingerprint: r.fingerprint,
                        first_position: first,
                        last_position: last,
                        reply: r.reply.clone(),
                    };
                    let seq = first_seq + placed.record as u64;
                    state.requests.insert(r.request_id.clone(), (record, seq));
                }
            }
            answer_all(jobs, checked, &positions, None);
            (held, Vec::new())
        }
        Err(Refusal::Raced) => {
            // Another writer reached a scope first: learn it again, and let
            // each command go again on what is known then (a command whose
            // streams that writer moved hears of its conflict then).
            for (_, state) in &mut held {
                state.last = None;
            }
            let mut again = Vec::new();
            for (p, c) in jobs.into_iter().zip(checked) {
                match c {
                    Checked::Answered(result) => {
                        let _ = p.job.done.send(result);
                    }
                    _ if p.races < MAX_RACES => again.push(Pending {
                        races: p.races + 1,
                        ..p
                    }),
                    _ => {
                        let s = &p.job.request.streams[0];
                        let _ = p.job.done.send(Err(AppendError::Conflict {
                            stream: s.stream.clone(),
                            expected: s.expected_version,
                            actual: s.expected_version,
                        }));
                    }
                }
            }
            if let Some(first) = again.first() {
                // Racing writers would collide again in lockstep.
                let ceiling = 200u64 << first.races.min(6);
                tokio::time::sleep(Duration::from_micros(rand::random_range(0..ceiling))).await;
            }
            (held, again)
        }
        Err(Refusal::Failed(e)) => {
            // Stored or not, nobody can say here: learn every scope again
            // (a retry with the same request id finds it if it was).
            for (_, state) in &mut held {
                state.last = None;
            }
            answer_all(jobs, checked, &[], Some(e));
            (held, Vec::new())
        }
    }
}

/// The position of a spot of a write whose first message got `first_seq`.
fn place(first_seq: u64, (message, index): (usize, usize)) -> u64 {
    frame::position(first_seq + message as u64, index)
}

fn fail(jobs: Vec<Pending>, e: &AppendError) {
    for p in jobs {
        let _ = p.job.done.send(Err(e.clone()));
    }
}

/// Checks one command against what is known of its scopes, and seals it:
/// its request id (this group, this replica's recent writes, the index),
/// then each stream's version (this group, recent writes, the index).
fn check(
    core: &Core,
    held: &[(String, ScopeState)],
    group: &[Pending],
    checked: &[Checked],
    touched: &mut HashMap<StreamId, (u64, [u8; 32])>,
    r: &AppendRequest,
) -> Checked {
    if let Some(i) = group[..checked.len()]
        .iter()
        .position(|p| p.job.request.request_id == r.request_id)
    {
        if group[i].job.request.fingerprint != r.fingerprint {
            return Checked::Answered(Err(AppendError::RequestIdReused(r.request_id.clone())));
        }
        return match &checked[i] {
            Checked::Answered(a) => Checked::Answered(a.clone().map(|mut c| {
                c.duplicate = true;
                c
            })),
            Checked::Follows(leader) => Checked::Follows(*leader),
            Checked::Sealed(_) => Checked::Follows(i),
        };
    }
    let recent = held
        .iter()
        .find_map(|(_, s)| s.requests.get(&r.request_id).map(|(rec, _)| rec.clone()));
    let recorded = match recent {
        Some(rec) => Some(rec),
        None => match core.index.request(&r.request_id) {
            Ok(rec) => rec,
            Err(e) => return Checked::Answered(Err(AppendError::from_log(e))),
        },
    };
    if let Some(rec) = recorded {
        return Checked::Answered(if rec.fingerprint == r.fingerprint {
            Ok(Committed {
                first_position: rec.first_position,
                last_position: rec.last_position,
                reply: rec.reply,
                duplicate: true,
            })
        } else {
            Err(AppendError::RequestIdReused(r.request_id.clone()))
        });
    }
    let mut parts: Vec<Part> = Vec::new();
    let mut news = Vec::new();
    for s in &r.streams {
        let known = touched.get(&s.stream).copied().or_else(|| {
            held.iter()
                .find_map(|(_, st)| st.heads.get(&s.stream).map(|((v, h, _), _)| (*v, *h)))
        });
        let (version, mut prev) = match known {
            Some(k) => k,
            None => match core.index.head(&s.stream) {
                Ok(Some((v, h, _))) => (v, h),
                Ok(None) => (0, GENESIS),
                Err(e) => return Checked::Answered(Err(AppendError::from_log(e))),
            },
        };
        if version != s.expected_version {
            return Checked::Answered(Err(AppendError::Conflict {
                stream: s.stream.clone(),
                expected: s.expected_version,
                actual: version,
            }));
        }
        let subject = frame::scope_of(&core.prefix, &s.stream);
        let at = match parts.iter().position(|p| p.subject == subject) {
            Some(at) => at,
            None => {
                parts.push(Part {
                    subject,
                    envelopes: Vec::new(),
                    lasts: Vec::new(),
                });
                parts.len() - 1
            }
        };
        for (i, e) in s.events.iter().enumerate() {
            match r.seal_encoded(&s.stream, e, version + 1 + i as u64, prev, 0) {
                Ok((envelope, bytes)) => {
                    prev = envelope.hash;
                    parts[at].envelopes.push(bytes);
                }
                Err(e) => return Checked::Answered(Err(e)),
            }
        }
        let version = version + s.events.len() as u64;
        let index = parts[at].envelopes.len() - 1;
        parts[at]
            .lasts
            .push((s.stream.clone(), version, prev, index));
        news.push((s.stream.clone(), (version, prev)));
    }
    touched.extend(news);
    // The request's scope goes last and holds the record (with no events of
    // its own for an operator's command on a tenant).
    let request = frame::request_scope(&core.prefix, r.tenant.as_deref());
    match parts.iter().position(|p| p.subject == request) {
        Some(i) => {
            let p = parts.remove(i);
            parts.push(p);
        }
        None => parts.push(Part {
            subject: request,
            envelopes: Vec::new(),
            lasts: Vec::new(),
        }),
    }
    Checked::Sealed(parts)
}

/// Lays the sealed commands out in messages: each scope's events in order,
/// a new message when one is full, each record in its request scope's
/// newest message.
fn plan(core: &Core, held: &[(String, ScopeState)], jobs: &[Pending], checked: &[Checked]) -> Plan {
    let limit = core.frame_limit();
    let mut messages: Vec<Message> = Vec::new();
    let mut open: HashMap<String, usize> = HashMap::new();
    let mut places = Vec::with_capacity(checked.len());
    // The message of `subject` with room for `bytes` more, opened if need be.
    let mut room = |messages: &mut Vec<Message>, subject: &str, bytes: usize, event: bool| {
        if let Some(&m) = open.get(subject) {
            let f = &messages[m].frame;
            if (!event || f.envelopes.len() < MAX_FRAME_EVENTS) && f.size() + bytes <= limit {
                return m;
            }
        }
        // Only a subject's first message in a write says where it must end.
        let expected = (!open.contains_key(subject)).then(|| {
            held.iter()
                .find(|(s, _)| s == subject)
                .and_then(|(_, st)| st.last)
                .unwrap_or(0)
        });
        messages.push(Message {
            subject: subject.to_owned(),
            expected,
            frame: frame::Frame::default(),
        });
        open.insert(subject.to_owned(), messages.len() - 1);
        messages.len() - 1
    };
    for (p, c) in jobs.iter().zip(checked) {
        let Checked::Sealed(parts) = c else {
            places.push(None);
            continue;
        };
        let (mut first, mut last) = (None, None);
        let mut heads = Vec::new();
        for part in parts {
            let mut spots = Vec::with_capacity(part.envelopes.len());
            for bytes in &part.envelopes {
                let m = room(&mut messages, &part.subject, bytes.len() + 5, true);
                messages[m].frame.envelopes.push(bytes.clone());
                let spot = (m, messages[m].frame.envelopes.len() - 1);
                spots.push(spot);
                first.get_or_insert(spot);
                last = Some(spot);
            }
            for (stream, version, hash, i) in &part.lasts {
                heads.push(NewHead {
                    scope: part.subject.clone(),
                    stream: stream.clone(),
                    version: *version,
                    hash: *hash,
                    spot: spots[*i],
                });
            }
        }
        let (Some(first), Some(last), Some(request)) = (first, last, parts.last()) else {
            places.push(None);
            continue;
        };
        let r = &p.job.request;
        let size = r.request_id.len() + r.reply.len() + 64;
        let m = room(&mut messages, &request.subject, size, false);
        let back = |spot: (usize, usize)| (m.saturating_sub(spot.0) as u32, spot.1 as u32);
        messages[m].frame.requests.push(FrameRequest {
            request_id: r.request_id.clone(),
            fingerprint: r.fingerprint,
            reply: r.reply.clone(),
            first: back(first),
            last: back(last),
        });
        places.push(Some(Placed {
            first,
            last,
            record: m,
            heads,
        }));
    }
    Plan { messages, places }
}

/// Answers every command of a write: stored ones at `positions` (or with
/// `failed`), the others as they were found.
fn answer_all(
    jobs: Vec<Pending>,
    checked: Vec<Checked>,
    positions: &[Option<(u64, u64)>],
    failed: Option<AppendError>,
) {
    let mut results: Vec<Result<Committed, AppendError>> = Vec::with_capacity(jobs.len());
    for (i, (p, c)) in jobs.iter().zip(&checked).enumerate() {
        let result = match c {
            Checked::Answered(a) => a.clone(),
            Checked::Follows(leader) => results[*leader].clone().map(|mut c| {
                c.duplicate = true;
                c
            }),
            Checked::Sealed(_) => match (&failed, positions.get(i).copied().flatten()) {
                (Some(e), _) => Err(e.clone()),
                (None, Some((first, last))) => Ok(Committed {
                    first_position: first,
                    last_position: last,
                    reply: p.job.request.reply.clone(),
                    duplicate: false,
                }),
                (None, None) => Err(AppendError::Unavailable(
                    "the write was stored without this command's place".into(),
                )),
            },
        };
        results.push(result);
    }
    for (p, result) in jobs.into_iter().zip(results) {
        let _ = p.job.done.send(result);
    }
}

/// Why a write was not stored.
enum Refusal {
    /// A scope's subject had moved on: nothing was stored; go again.
    Raced,
    /// NATS did not answer, or refused for another reason.
    Failed(AppendError),
}

impl Core {
    /// The most bytes one frame may take: the server's message limit less
    /// room for headers.
    fn frame_limit(&self) -> usize {
        self.client
            .server_info()
            .max_payload
            .saturating_sub(4 * 1024)
            .clamp(300 * 1024, 8 * 1024 * 1024)
    }

    /// Brings what `state` knows up to the subject's last message on the
    /// server: the subject's messages past what the index and `state` hold
    /// are read from the stream's leader and kept as recent knowledge, each
    /// event checked against its stream's last link first.
    async fn learn(&self, subject: &str, state: &mut ScopeState) -> Result<(), AppendError> {
        if let Some(e) = self.index_fault() {
            return Err(AppendError::from_log(e));
        }
        let mut last = match self.stream.get_last_raw_message_by_subject(subject).await {
            Ok(m) => m.sequence,
            Err(e)
                if e.kind()
                    == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
            {
                0
            }
            Err(e) => return Err(unavailable("reading a scope's last message", e)),
        };
        // Asked of the stream's leader, one message at a time (the gap is
        // another replica's frames since this one's last write, a few as a
        // rule): direct reads may be answered by a replica that is behind,
        // or refused for a moment after an election.
        let mut from = state.known.max(self.index.applied()) + 1;
        while from <= last {
            let m = self
                .stream
                .raw_message_builder()
                .sequence(from)
                .next_by_subject(subject)
                .send()
                .await
                .map_err(|e| unavailable("reading a scope's message", e))?;
            let read = frame::read(&m.payload, m.sequence).map_err(AppendError::from_log)?;
            state.absorb(&self.index, m.sequence, read)?;
            last = last.max(m.sequence);
            from = m.sequence + 1;
        }
        state.last = Some(last);
        state.known = last;
        Ok(())
    }

    /// Publishes one write: a single message as a plain publish, several as
    /// an atomic batch. Returns the last message's sequence.
    async fn publish(&self, messages: &[Message]) -> Result<u64, Refusal> {
        let no_answer = |e: &dyn std::fmt::Display| {
            Refusal::Failed(unavailable(
                "no answer from NATS (the command may or may not be stored; \
                 retry with the same request id)",
                e,
            ))
        };
        let batch_id = uuid::Uuid::new_v4().simple().to_string();
        let n = messages.len();
        for (i, m) in messages.iter().enumerate() {
            let mut headers = HeaderMap::new();
            headers.insert(
                frame::EVENTS_HEADER,
                m.frame.envelopes.len().to_string().as_str(),
            );
            if let Some(expected) = m.expected {
                headers.insert(
                    "Nats-Expected-Last-Subject-Sequence",
                    expected.to_string().as_str(),
                );
            }
            if n > 1 {
                headers.insert("Nats-Batch-Id", batch_id.as_str());
                headers.insert("Nats-Batch-Sequence", (i + 1).to_string().as_str());
            }
            let payload = Bytes::from(m.frame.encode());
            if i + 1 < n {
                self.client
                    .publish_with_headers(m.subject.clone(), headers, payload)
                    .await
                    .map_err(|e| no_answer(&e))?;
                continue;
            }
            if n > 1 {
                headers.insert("Nats-Batch-Commit", "1");
            }
            let reply = self
                .client
                .request_with_headers(m.subject.clone(), headers, payload)
                .await
                .map_err(|e| no_answer(&e))?;
            let ack: PubAck = serde_json::from_slice(&reply.payload)
                .map_err(|e| Refusal::Failed(unavailable("unreadable publish ack", e)))?;
            return match ack.error {
                None if ack.seq < n as u64 => Err(Refusal::Failed(AppendError::Unavailable(
                    "NATS acknowledged a write at an impossible sequence".into(),
                ))),
                None => Ok(ack.seq),
                Some(e) if ERR_WRONG_LAST_SEQUENCE.contains(&e.err_code) => Err(Refusal::Raced),
                Some(e) => Err(Refusal::Failed(AppendError::Unavailable(format!(
                    "NATS refused the write: {} ({})",
                    e.description, e.err_code
                )))),
            };
        }
        Err(Refusal::Failed(AppendError::Invalid(
            "an empty write".into(),
        )))
    }
}

impl AppendError {
    /// A read's failure, as an append's.
    fn from_log(e: crate::log::LogError) -> Self {
        match e {
            crate::log::LogError::Damaged(d) => AppendError::Damaged(d),
            other => AppendError::Unavailable(other.to_string()),
        }
    }
}
