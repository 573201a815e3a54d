//! The distributed backend: the log as one NATS JetStream stream, shared by any
//! number of `accessd` replicas and `mailerd` workers.
//!
//! ## Subjects
//! - `<prefix>.ev.<tenant>.<aggregate>.<id>`: one subject per aggregate stream
//!   (`contact.acme.01J…` is `access.ev.acme.contact.01J…`). The payload is the
//!   postcard envelope; its global position is the JetStream sequence, so it is
//!   stored as 0 and filled in on read. Headers: `Nats-Msg-Id` (the event id)
//!   and `Access-Event-Type`. Other teams subscribe to `<prefix>.ev.>`, or
//!   `<prefix>.ev.<tenant>.>` for one tenant.
//! - `<prefix>.req.<sha256 of the request id, hex>`: what the log remembers of
//!   one command (fingerprint, event count, reply), stored after its events.
//!
//! ## Appends
//! A command is one **atomic batch** (nats-server 2.12+, `allow_atomic`): its
//! events, then its request record, all stored or none. Atomic batches were
//! chosen over one message per command because each aggregate stream keeps
//! its own subject, so optimistic concurrency is the server's own check:
//! the first event of each stream carries `Nats-Expected-Last-Subject-Sequence`
//! (the sequence of that stream's last event as read from the stream leader,
//! or 0 for a new stream), and the request record expects its subject to be
//! empty. So a request id is unique through the log itself, for ever, not only
//! inside the server's duplicate window; `Nats-Msg-Id` on every message adds
//! the window's de-duplication of re-sent batches on top.
//!
//! Positions increase but have gaps where request records sit.
//!
//! ## Durability
//! An append is acknowledged after the batch's publish ack: stored on a
//! majority of the stream's replicas, and synced to disk when the servers run
//! with `jetstream { sync_interval: always }` (see `deploy/nats/`).

mod append;
mod open;
mod probe;
mod read;
mod settings;
mod tail;
mod vault;

pub use settings::{NatsAuth, NatsSettings, connect_client};
pub use vault::KvVault;

use crate::log::{AppendError, AppendRequest, Committed, EventLog, LogError, RequestRecord};
use access_catalogue::envelope::{Envelope, StreamId};
use append::last_event;
use async_nats::jetstream::stream;
use async_nats::{HeaderMap, connection::State};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use tail::feed;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// The server allows 1,000 messages per atomic batch; one is the request record.
const MAX_EVENTS_PER_APPEND: usize = 999;
/// Appends of one group commit, at most.
const GROUP_APPENDS: usize = 256;
/// Appends of a refused group retried at once (the server takes 50 batches
/// in flight per stream).
const ALONE_IN_FLIGHT: usize = 32;
/// Messages asked of one direct-get batch.
const READ_BATCH: usize = 256;
/// JetStream's error codes for a failed expected-sequence check (with and
/// without the sequence in the message; a cluster answers with the second).
const ERR_WRONG_LAST_SEQUENCE: [u64; 2] = [10071, 10164];
/// JetStream's error code for a batch holding an already-stored message id.
const ERR_DUPLICATE_IN_BATCH: u64 = 10201;

/// What the log stores under a request id's subject.
#[derive(Serialize, Deserialize)]
struct StoredRequest {
    fingerprint: [u8; 32],
    events: u64,
    reply: Vec<u8>,
}

/// One append's messages, and each stream's new last event: (stream,
/// version, hash, index of its message).
struct Sealed {
    messages: Vec<(String, HeaderMap, Bytes)>,
    lasts: Vec<(StreamId, u64, [u8; 32], usize)>,
}

/// A stream's last event as the stream leader has it.
#[derive(Clone, Copy)]
struct Head {
    version: u64,
    hash: [u8; 32],
    sequence: u64,
}

/// The publish ack of a batch's commit, or its refusal.
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

/// The event log on a JetStream stream.
pub struct JetStreamLog {
    core: Arc<Core>,
    jobs: mpsc::Sender<Job>,
    follower: JoinHandle<()>,
    prober: JoinHandle<()>,
    writer: JoinHandle<()>,
}

/// What the log's handle and its writer task share.
struct Core {
    client: async_nats::Client,
    stream: stream::Stream,
    name: String,
    prefix: String,
    head: Arc<watch::Sender<u64>>,
    /// The last event of streams recently read or written, so an append need
    /// not ask the leader again. A stale entry costs a refused batch, never a
    /// wrong write: the server checks every expected sequence.
    heads: std::sync::Mutex<HashMap<StreamId, Head>>,
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
        self.follower.abort();
        self.prober.abort();
        self.writer.abort();
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
            if let Some(why) = offline(&self.core.client) {
                return Err(LogError::Unavailable(why));
            }
            self.core.record(&request_id).await
        })
    }

    fn read_stream(&self, stream: &StreamId) -> BoxFuture<'_, Result<Vec<Envelope>, LogError>> {
        let subject = self.core.subject_of(stream);
        let stream = stream.clone();
        Box::pin(async move {
            if let Some(why) = offline(&self.core.client) {
                return Err(LogError::Unavailable(why));
            }
            let mut out: Vec<Envelope> = Vec::new();
            loop {
                let from = out.last().map_or(1, |e| e.position + 1);
                let (batch, _, more) = self
                    .core
                    .direct_batch(from, Some(&subject), READ_BATCH)
                    .await?;
                out.extend(batch);
                if !more {
                    break;
                }
            }
            // A stream whose chain is broken is refused, never decided on.
            access_catalogue::chain::verify_stream(&out).map_err(|d| {
                LogError::Damaged(access_catalogue::damage::Damage {
                    place: format!("the JetStream stream of subject {subject}"),
                    ..d
                })
            })?;
            if let Some(last) = out.last() {
                let mut heads = self.core.lock_heads();
                // A read that began before a commit must not undo its head.
                if heads
                    .get(&stream)
                    .is_none_or(|h| h.version < last.stream_version)
                {
                    heads.insert(
                        stream,
                        Head {
                            version: last.stream_version,
                            hash: last.hash,
                            sequence: last.position,
                        },
                    );
                }
            }
            Ok(out)
        })
    }

    fn read_from(&self, from: u64, max: usize) -> BoxFuture<'_, Result<Vec<Envelope>, LogError>> {
        Box::pin(async move {
            if let Some(why) = offline(&self.core.client) {
                return Err(LogError::Unavailable(why));
            }
            let mut from = from.max(1);
            loop {
                let (batch, last, more) = self
                    .core
                    .direct_batch(from, None, max.clamp(1, READ_BATCH))
                    .await?;
                // A batch of request records only: look further.
                if !batch.is_empty() || !more {
                    return Ok(batch);
                }
                from = last + 1;
            }
        })
    }

    fn head(&self) -> watch::Receiver<u64> {
        self.core.head.subscribe()
    }

    fn tail(&self, from: u64) -> Option<BoxStream<'static, Result<Envelope, LogError>>> {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(feed(
            self.core.client.clone(),
            self.core.stream.clone(),
            format!("{}.ev.>", self.core.prefix),
            from.max(1),
            self.core.head.subscribe(),
            tx,
        ));
        Some(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    fn dense_positions(&self) -> bool {
        false
    }

    fn latest(&self) -> BoxFuture<'_, Result<u64, LogError>> {
        Box::pin(async move {
            let mut stream = self.core.stream.clone();
            let info = stream
                .info()
                .await
                .map_err(|e| storage("reading the log's head", e))?;
            advance(&self.core.head, last_event(info.state.last_sequence));
            Ok(*self.core.head.borrow())
        })
    }

    fn is_available(&self) -> bool {
        // A writer task that ended takes no more appends either.
        self.core.client.connection_state() == State::Connected
            && !self.writer.is_finished()
            && self.core.takes_appends()
    }
}
