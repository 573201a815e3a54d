//! The distributed backend: the log as one NATS JetStream stream, shared by any
//! number of `accessd` replicas and `mailerd` workers.
//!
//! ## Subjects and frames
//! Every message is a **frame** (`frame.rs`): whole envelopes of one scope,
//! and the records of the commands that end in it. A scope is a tenant
//! (`<prefix>.t.<tenant>`: all of its customers, contacts, invitations,
//! slots and links) or one global stream (`<prefix>.g.<aggregate>.<id>`:
//! an identity). An event's position is its message's sequence times 1000
//! plus its place in the frame, so positions increase with gaps.
//!
//! ## Appends
//! A command is, in the common case, **one plain publish**: a frame on its
//! tenant's subject with `Nats-Expected-Last-Subject-Sequence`, the sequence
//! that subject ended at when the command was checked. The server stores it
//! only if nothing else reached the tenant since, so the checks made
//! against this replica's knowledge (`write.rs`) hold: stream versions,
//! and the request id's absence, for ever and not only within a window.
//! Concurrent commands of one tenant share the next frame (group commit);
//! different tenants' frames are in flight side by side. A command that
//! spans scopes (an identity's stream, or an operator's request recorded
//! under `<prefix>.t._`) is an **atomic batch** of one frame per scope, each
//! subject's first message carrying its expected sequence.
//!
//! ## Reads
//! The server can no longer hand out one stream by subject: each replica
//! keeps a local index (`index.rs`) of every stream's events and every
//! request record, filled in order from the log and checked link by link.
//! A read waits until the index holds the replica's head; an append checks
//! against the index and the replica's own writes it has not reached yet.
//!
//! ## Durability
//! An append is acknowledged after the publish ack: stored on a majority of
//! the stream's replicas, and synced to disk when the servers run with
//! `jetstream { sync_interval: always }` (see `deploy/nats/`).

mod direct;
mod frame;
mod index;
mod lasts;
mod open;
mod probe;
mod read;
mod settings;
mod tail;
mod vault;
mod write;

pub use settings::{NatsAuth, NatsSettings, connect_client};
pub use vault::KvVault;

use crate::log::{AppendError, AppendRequest, Committed, EventLog, LogError, RequestRecord};
use access_catalogue::envelope::{Envelope, StreamId};
use async_nats::connection::State;
use async_nats::jetstream::stream;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tail::feed;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Events one append may carry (a frame's worth).
const MAX_EVENTS_PER_APPEND: usize = frame::MAX_FRAME_EVENTS;
/// Messages asked of one direct-get batch.
const READ_BATCH: usize = 256;

/// Events a reader of the log's feed may have waiting.
const FEED_AHEAD: usize = 256;
/// How long a read waits for the index's follower before reading what the
/// index lacks itself.
const PULL_AFTER: Duration = Duration::from_millis(100);

/// How long after a read had to fill the index itself the follower is taken
/// for late, and reads fill it at once.
const FOLLOWER_LATE_FOR: Duration = Duration::from_secs(1);
/// Bytes asked of a direct-get batch per event wanted: about an event's
/// stored size, so a batch of large frames is not read only to be dropped.
const BYTES_PER_EVENT: usize = 400;
/// JetStream's error codes for a failed expected-sequence check (with and
/// without the sequence in the message; a cluster answers with the second,
/// also while another write to the subject is still being agreed).
const ERR_WRONG_LAST_SEQUENCE: [u64; 2] = [10071, 10164];

/// The publish ack of a message or a batch's commit, or its refusal.
#[derive(Deserialize)]
struct PubAck {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    error: Option<ApiError>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

/// The events one message of the log holds, placed at its sequence `seq`:
/// for consumers of the stream of their own (the mailers' shared one).
pub fn events_of(payload: &[u8], seq: u64) -> Result<Vec<Envelope>, LogError> {
    frame::read(&bytes::Bytes::copy_from_slice(payload), seq).map(|f| f.envelopes)
}

/// The subjects of every tenant's messages (everything but global streams).
pub fn tenant_subjects(prefix: &str) -> String {
    format!("{prefix}.t.>")
}

/// The event log on a JetStream stream.
pub struct JetStreamLog {
    core: Arc<Core>,
    jobs: mpsc::Sender<Job>,
    prober: JoinHandle<()>,
    writer: JoinHandle<()>,
    indexer: JoinHandle<()>,
}

/// What the log's handle and its writer task share.
struct Core {
    client: async_nats::Client,
    stream: stream::Stream,
    name: String,
    prefix: String,
    head: Arc<watch::Sender<u64>>,
    /// This replica's index of streams and request records.
    index: index::Index,
    /// Why the index stopped following the log, if it did (damage).
    index_fault: std::sync::Mutex<Option<LogError>>,
    /// How long one exchange with NATS, or a wait for the index, may take.
    timeout: Duration,
    /// Held while a read fills the index past a late follower.
    pulling: tokio::sync::Mutex<()>,
    /// When the follower was last found late (a read waited for it in
    /// vain, or the log came back after a gap): it is likely still late then
    /// (its consumer lost), so reads fill the index at once.
    follower_late_at: std::sync::Mutex<Option<std::time::Instant>>,
    /// Scopes' last messages as their leader answered, shared by readers.
    lasts: lasts::Lasts<LogError>,
    /// The message the index must hold before this replica says it takes
    /// commands: the stream's last when it was opened, or found again after
    /// a gap (decisions would otherwise wait on the index's catching up).
    ready_from: std::sync::atomic::AtomicU64,
    /// Whether JetStream answered the last probe with a leader and a quorum
    /// of current replicas: an append could be stored now.
    writable: std::sync::atomic::AtomicBool,
    /// The client's connection count at that probe: an answer from before a
    /// reconnect says nothing of the server reached since.
    probed_on: std::sync::atomic::AtomicU64,
    /// Other streams a command writes to (the key vault's), probed alike.
    also: std::sync::Mutex<Vec<probe::Probed>>,
}

/// One append waiting for the writer.
struct Job {
    request: AppendRequest,
    done: oneshot::Sender<Result<Committed, AppendError>>,
}

impl std::fmt::Debug for JetStreamLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamLog")
            .field("stream", &self.core.name)
            .field("prefix", &self.core.prefix)
            .finish()
    }
}

impl Drop for JetStreamLog {
    fn drop(&mut self) {
        self.prober.abort();
        self.writer.abort();
        self.indexer.abort();
    }
}

/// A failed exchange with NATS: the log is out of reach, for now.
fn storage(context: &str, e: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(format!("{context}: {e}"))
}

fn unavailable(context: &str, e: impl std::fmt::Display) -> AppendError {
    AppendError::Unavailable(format!("{context}: {e}"))
}

/// Why nothing should be asked of NATS now, if the connection is known to be
/// down: a request would only wait out its timeout, so the caller hears at
/// once instead, and retries once the client has reconnected.
pub fn offline(client: &async_nats::Client) -> Option<String> {
    (client.connection_state() != State::Connected)
        .then(|| "NATS is not connected (reconnecting); retry shortly".to_owned())
}

/// The refusal while the last probe found no leader or no quorum.
fn no_leader() -> LogError {
    LogError::Unavailable(
        "JetStream cannot be reached now (no leader or no quorum); retry shortly".into(),
    )
}

fn advance(head: &watch::Sender<u64>, position: u64) {
    head.send_if_modified(|h| {
        let moved = position > *h;
        *h = (*h).max(position);
        moved
    });
}

/// How many times the client has connected (reconnects included).
fn connects(client: &async_nats::Client) -> u64 {
    client
        .statistics()
        .connects
        .load(std::sync::atomic::Ordering::Relaxed)
}

impl Core {
    /// Why the index stopped following the log, if it did.
    fn index_fault(&self) -> Option<LogError> {
        self.index_fault
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until the index holds every message up to `seq` (at most the
    /// timeout), or says why it cannot.
    async fn indexed(&self, seq: u64) -> Result<(), LogError> {
        let fault = || self.index_fault();
        if let Some(e) = fault() {
            return Err(e);
        }
        if self.index.applied() >= seq {
            return Ok(());
        }
        // Cut off, the index cannot move: say so at once, not after a wait.
        if let Some(why) = offline(&self.client) {
            return Err(LogError::Unavailable(why));
        }
        if !self.takes_appends() {
            return Err(no_leader());
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut applied = self.index.watch();
        let mut first = true;
        loop {
            // The follower brings it within milliseconds, as a rule; not
            // while it is known to be late.
            let patience = if first && self.follower_late() {
                Duration::ZERO
            } else {
                PULL_AFTER
            };
            first = false;
            let reached = matches!(
                tokio::time::timeout(patience, applied.wait_for(|a| *a >= seq)).await,
                Ok(Ok(_))
            );
            if reached {
                return Ok(());
            }
            if !patience.is_zero() {
                self.note_follower_late();
            }
            if let Some(e) = fault() {
                return Err(e);
            }
            if let Some(why) = offline(&self.client) {
                return Err(LogError::Unavailable(why));
            }
            if !self.takes_appends() {
                return Err(no_leader());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(LogError::Unavailable(format!(
                    "this replica's index of the log is behind (at message {}, not {seq}); retry shortly",
                    self.index.applied()
                )));
            }
            // The follower is late (its consumer went with a node, say, and
            // is not yet made again): read what is missing directly.
            if let Err(e) = self.pull_into_index(seq).await {
                tracing::debug!(error = %e, "reading the log for the index");
            }
        }
    }

    /// The messages from `from` to `to` (at most 64), asked of the stream's
    /// leader one at a time.
    async fn read_at_leader(&self, from: u64, to: u64) -> Result<read::Frames, LogError> {
        let mut out = Vec::new();
        for seq in from..=to.min(from + 63) {
            let m = self
                .stream
                .raw_message_builder()
                .sequence(seq)
                .send()
                .await
                .map_err(|e| storage("reading the log from its leader", e))?;
            let frame = frame::read(&m.payload, seq)?;
            out.push((seq, m.subject.to_string(), frame));
        }
        Ok(out)
    }

    /// Up to `max` events from position `from` on, read from the stream.
    async fn read_from(&self, from: u64, max: usize) -> Result<Vec<Envelope>, LogError> {
        if let Some(why) = offline(&self.client) {
            return Err(LogError::Unavailable(why));
        }
        let from = from.max(1);
        let max = max.max(1);
        let mut seq = frame::sequence_of(from).max(1);
        loop {
            let (frames, last, more) = self
                .direct_batch(
                    seq,
                    READ_BATCH.min(max),
                    max.saturating_mul(BYTES_PER_EVENT),
                )
                .await?;
            let out: Vec<Envelope> = frames
                .into_iter()
                .flat_map(|(_, _, f)| f.envelopes)
                .filter(|e| e.position >= from)
                .take(max)
                .collect();
            // Only messages without events (or before `from`): look further.
            if !out.is_empty() || !more {
                return Ok(out);
            }
            seq = last + 1;
        }
    }

    /// Reads the messages up to `seq` the index lacks and applies them.
    pub(super) async fn pull_into_index(&self, seq: u64) -> Result<(), LogError> {
        // Another read filling it may be waiting on a NATS that went away:
        // this one goes back to see why rather than queue behind it.
        let Ok(_one) = tokio::time::timeout(PULL_AFTER, self.pulling.lock()).await else {
            return Ok(());
        };
        while self.index.applied() < seq {
            let from = self.index.applied() + 1;
            let frames = match self.direct_batch(from, READ_BATCH, 4 * 1024 * 1024).await {
                Ok((frames, _, _)) => frames,
                // Direct reads are refused for a moment after an election:
                // the leader answers one message at a time.
                Err(_) => self.read_at_leader(from, seq).await?,
            };
            if frames.is_empty() {
                return Ok(());
            }
            let batch: Vec<index::Applied> = frames
                .into_iter()
                .map(|(seq, _, frame)| index::Applied { seq, frame })
                .collect();
            self.apply(batch)?;
        }
        Ok(())
    }

    /// Applies messages to the index and moves the head past their events
    /// (the head is never behind what this replica has read); damage stops
    /// the index for good.
    pub(super) fn apply(&self, batch: Vec<index::Applied>) -> Result<(), LogError> {
        let last = batch
            .iter()
            .rev()
            .find_map(|a| a.frame.envelopes.last().map(|e| e.position));
        if let Err(e) = self.index.apply(batch) {
            if matches!(e, LogError::Damaged(_) | LogError::Corrupt { .. }) {
                *self.index_fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
            }
            return Err(e);
        }
        if let Some(last) = last {
            advance(&self.head, last);
        }
        Ok(())
    }

    /// One stream as the index holds it, checked again as it is read back.
    fn indexed_stream(&self, stream: &StreamId) -> Result<Vec<Envelope>, LogError> {
        let out = self.index.stream(stream)?;
        // The index checked each link as it went in; what is read back
        // from its disk is checked again, never decided on if broken.
        access_catalogue::chain::verify_stream(&out).map_err(|d| {
            LogError::Damaged(access_catalogue::damage::Damage {
                place: "this replica's index of the JetStream log".into(),
                ..d
            })
        })?;
        Ok(out)
    }

    /// Notes that the follower was found late: reads fill the index
    /// themselves for a while.
    pub(super) fn note_follower_late(&self) {
        *self
            .follower_late_at
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
    }

    /// Whether the follower was found late in the last second.
    fn follower_late(&self) -> bool {
        self.follower_late_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| at.elapsed() < FOLLOWER_LATE_FOR)
    }

    /// Waits until the index holds every message of `scope` the stream's
    /// leader has now: a decision reads what any replica wrote before it,
    /// as it did when each stream was read from the server.
    async fn fresh(&self, scope: &str) -> Result<(), LogError> {
        if let Some(why) = offline(&self.client) {
            return Err(LogError::Unavailable(why));
        }
        // Without a leader the question below waits out the timeout.
        if !self.takes_appends() {
            return Err(no_leader());
        }
        let ask = async {
            // Asked perhaps after waiting for another reader's question.
            if !self.takes_appends() {
                return Err(no_leader());
            }
            match self.stream.get_last_raw_message_by_subject(scope).await {
                Ok(m) => Ok(m.sequence),
                Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(0),
                Err(e) => Err(storage("reading a scope's last message", e)),
            }
        };
        let last = self.lasts.last(scope, ask).await?;
        let head = frame::sequence_of(*self.head.borrow());
        self.indexed(last.max(head)).await
    }

    /// Whether the last probe, made on the current connection, found that
    /// JetStream could store an append.
    fn takes_appends(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.writable.load(Ordering::Relaxed)
            && self.probed_on.load(Ordering::Relaxed) == connects(&self.client)
    }
}

impl EventLog for JetStreamLog {
    fn append(&self, request: AppendRequest) -> BoxFuture<'_, Result<Committed, AppendError>> {
        Box::pin(async move {
            if let Some(why) = offline(&self.core.client) {
                return Err(AppendError::Unavailable(why));
            }
            // The last probe found no leader or no quorum: an append would
            // wait out its timeout. Checked again within a second.
            if !self.core.takes_appends() {
                return Err(AppendError::Unavailable(
                    "JetStream cannot take appends now (no leader or no quorum); retry shortly"
                        .into(),
                ));
            }
            let (done, answer) = oneshot::channel();
            self.jobs
                .send(Job { request, done })
                .await
                .map_err(|_| AppendError::Unavailable("the log is shutting down".into()))?;
            let committed = answer
                .await
                .map_err(|_| AppendError::Unavailable("the log is shutting down".into()))??;
            // Read-your-writes on this replica without waiting for the follower.
            advance(&self.core.head, committed.last_position);
            Ok(committed)
        })
    }

    fn request(&self, request_id: &str) -> BoxFuture<'_, Result<Option<RequestRecord>, LogError>> {
        let request_id = request_id.to_owned();
        Box::pin(async move {
            // Request ids are kept per tenant: `<tenant>/<id>`.
            let tenant = request_id.split_once('/').map(|(t, _)| t);
            let scope = frame::request_scope(&self.core.prefix, tenant);
            self.core.fresh(&scope).await?;
            self.core.index.request(&request_id)
        })
    }

    fn read_stream(&self, stream: &StreamId) -> BoxFuture<'_, Result<Vec<Envelope>, LogError>> {
        let stream = stream.clone();
        Box::pin(async move {
            self.core
                .fresh(&frame::scope_of(&self.core.prefix, &stream))
                .await?;
            self.core.indexed_stream(&stream)
        })
    }

    fn read_stream_upto(
        &self,
        stream: &StreamId,
        position: u64,
    ) -> BoxFuture<'_, Result<Vec<Envelope>, LogError>> {
        let stream = stream.clone();
        Box::pin(async move {
            // No question to the stream's leader: the index holding the
            // position's message is all such a reader needs.
            self.core.indexed(frame::sequence_of(position)).await?;
            self.core.indexed_stream(&stream)
        })
    }

    fn read_from(&self, from: u64, max: usize) -> BoxFuture<'_, Result<Vec<Envelope>, LogError>> {
        Box::pin(self.core.read_from(from, max))
    }

    fn head(&self) -> watch::Receiver<u64> {
        self.core.head.subscribe()
    }

    fn tail(&self, from: u64) -> Option<BoxStream<'static, Result<Envelope, LogError>>> {
        // Events ahead of a reader: enough for a projector's batch, and at
        // most a few MiB even of the largest events.
        let (tx, rx) = mpsc::channel(FEED_AHEAD);
        tokio::spawn(feed(self.core.clone(), from.max(1), tx));
        Some(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    fn dense_positions(&self) -> bool {
        false
    }

    fn max_events_per_append(&self) -> usize {
        MAX_EVENTS_PER_APPEND
    }

    fn latest(&self) -> BoxFuture<'_, Result<u64, LogError>> {
        Box::pin(async move {
            let mut stream = self.core.stream.clone();
            let info = stream
                .info()
                .await
                .map_err(|e| storage("reading the log's head", e))?;
            let last = self.core.last_event(info.state.last_sequence).await?;
            advance(&self.core.head, last);
            Ok(*self.core.head.borrow())
        })
    }

    fn is_available(&self) -> bool {
        // A writer task that ended takes no more appends either.
        self.core.client.connection_state() == State::Connected
            && !self.writer.is_finished()
            && !self.indexer.is_finished()
            && self.core.takes_appends()
            && self.core.index.applied()
                >= self
                    .core
                    .ready_from
                    .load(std::sync::atomic::Ordering::Relaxed)
    }
}
