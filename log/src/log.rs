//! The `EventLog` trait: what every backend (the file log, JetStream) must provide, and
//! the subscription that every consumer (projector, mailer) reads through.

use access_catalogue::envelope::{Actor, Envelope, StreamId};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// One event to append, before the backend gives it a place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// Its id, chosen by the caller so retries keep it.
    pub event_id: Uuid,
    /// Payload type name.
    pub event_type: String,
    /// Payload schema version.
    pub schema_version: u16,
    /// Encoded payload.
    pub payload: Vec<u8>,
}

/// The events of one command for one stream, with the version it was decided on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamAppend {
    /// The stream.
    pub stream: StreamId,
    /// The version the decision saw (0: the stream must not exist yet).
    pub expected_version: u64,
    /// What to append, in order.
    pub events: Vec<NewEvent>,
}

/// Everything one command appends: all of it or none of it is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendRequest {
    /// The caller's idempotency key.
    pub request_id: String,
    /// Digest of the command's payload: the same request id with another
    /// fingerprint is refused.
    pub fingerprint: [u8; 32],
    /// The tenant concerned, if any.
    pub tenant: Option<String>,
    /// Who caused it.
    pub actor: Actor,
    /// The business flow it belongs to.
    pub correlation_id: Uuid,
    /// What caused it, if known.
    pub causation_id: Option<Uuid>,
    /// When it was decided, Unix milliseconds.
    pub occurred_at_ms: i64,
    /// The streams touched, each with its expected version.
    pub streams: Vec<StreamAppend>,
    /// The command's answer (no secrets), stored with the request id so a retry
    /// is answered from the first result.
    pub reply: Vec<u8>,
}

/// What the log remembers of a request id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Digest of the first payload seen with this id.
    pub fingerprint: [u8; 32],
    /// Position of its first event.
    pub first_position: u64,
    /// Position of its last event.
    pub last_position: u64,
    /// Its answer.
    pub reply: Vec<u8>,
}

/// A durable append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// Position of the command's first event.
    pub first_position: u64,
    /// Position of its last event: what queries wait for to read their writes.
    pub last_position: u64,
    /// The stored answer.
    pub reply: Vec<u8>,
    /// True when this was a retry answered from the first result.
    pub duplicate: bool,
}

/// Why an append was not stored. Nothing of the request is stored in any case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// A stream moved on since the decision was made.
    #[error("stream {stream} is at version {actual}, not {expected}")]
    Conflict {
        /// The stream.
        stream: StreamId,
        /// What the decision saw.
        expected: u64,
        /// What the log has.
        actual: u64,
    },
    /// The request id was used before with another payload.
    #[error("request id {0:?} was already used for a different command")]
    RequestIdReused(String),
    /// The request itself is malformed (no events, a stream twice, too large).
    #[error("invalid append: {0}")]
    Invalid(String),
    /// A stream it would extend is damaged: nothing is appended onto it.
    #[error("event log damaged: {0}")]
    Damaged(access_catalogue::damage::Damage),
    /// The log cannot take writes now (disk, shutdown); safe to retry later.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
}

/// Why a read failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// The log cannot be reached now (a remote log's connection is down or
    /// too slow); safe to retry.
    #[error("event log unreachable: {0}")]
    Unavailable(String),
    /// The storage failed.
    #[error("event log storage: {0}")]
    Storage(String),
    /// Stored history is damaged (altered, cut short, out of order): the
    /// reader refuses it rather than serve something shorter or altered.
    #[error("the event log is damaged: {0}")]
    Damaged(access_catalogue::damage::Damage),
    /// Stored bytes could not be decoded.
    #[error("event at {position} unreadable: {reason}")]
    Corrupt {
        /// Where.
        position: u64,
        /// What the decoder said.
        reason: String,
    },
}

/// An append-only, totally ordered, durable log of envelopes.
pub trait EventLog: Send + Sync + 'static {
    /// Appends one command's events atomically; returns once they are durable.
    fn append(&self, request: AppendRequest) -> BoxFuture<'_, Result<Committed, AppendError>>;

    /// What the log remembers of a request id.
    fn request(&self, request_id: &str) -> BoxFuture<'_, Result<Option<RequestRecord>, LogError>>;

    /// Every event of one stream, in order.
    fn read_stream(&self, stream: &StreamId) -> BoxFuture<'_, Result<Vec<Envelope>, LogError>>;

    /// The events of one stream, in order, as this copy of the log holds
    /// them once it holds everything up to `position` (and perhaps more):
    /// for a reader of what stood at a position it already has, which need
    /// not ask whether other writers went further (see [`Self::read_stream`]).
    fn read_stream_upto(
        &self,
        stream: &StreamId,
        position: u64,
    ) -> BoxFuture<'_, Result<Vec<Envelope>, LogError>> {
        let _ = position;
        self.read_stream(stream)
    }

    /// Up to `max` events from position `from` (inclusive) on, in global order.
    fn read_from(&self, from: u64, max: usize) -> BoxFuture<'_, Result<Vec<Envelope>, LogError>>;

    /// The position of the last durable event, as it moves.
    fn head(&self) -> watch::Receiver<u64>;

    /// The position of the last durable event as the log itself has it now,
    /// which for a shared log may be ahead of [`EventLog::head`] (another
    /// replica's write not yet seen here). Costs a round trip there.
    fn latest(&self) -> BoxFuture<'_, Result<u64, LogError>> {
        let head = *self.head().borrow();
        Box::pin(async move { Ok(head) })
    }

    /// A backend's own live feed from `from` on, when it has one better than
    /// reading in batches as the head moves (JetStream's ordered consumer).
    fn tail(&self, _from: u64) -> Option<BoxStream<'static, Result<Envelope, LogError>>> {
        None
    }

    /// Whether positions run 1, 2, 3… without gaps (true for the embedded log).
    fn dense_positions(&self) -> bool {
        true
    }

    /// The most events one append may carry (a request over it is refused
    /// as invalid); writers of large batches split them to fit.
    fn max_events_per_append(&self) -> usize {
        usize::MAX
    }

    /// A chain verifier that fits this log's numbering.
    fn chain_verifier(&self) -> access_catalogue::chain::ChainVerifier {
        access_catalogue::chain::ChainVerifier::for_positions(self.dense_positions())
    }

    /// The backend's own complete check of the history, where it has one:
    /// the file log's reads every frame, chain and index entry (commit
    /// frames, offsets, heads, request records) once, which covers all a
    /// walk of the chains through [`EventLog::read_from`] finds and what
    /// reading cannot show. `None` where reading is the check.
    fn check_whole(&self) -> BoxFuture<'_, Result<Option<WholeCheck>, LogError>> {
        Box::pin(async { Ok(None) })
    }

    /// Whether the log can take appends now (false while a remote log is
    /// unreachable): what the health check reports.
    fn is_available(&self) -> bool {
        true
    }
}

/// What a backend's complete check of its history found.
#[derive(Clone, Debug, Default)]
pub struct WholeCheck {
    /// Events checked.
    pub events: u64,
    /// Streams checked.
    pub streams: u64,
    /// Everything found wrong, in log order (empty: intact).
    pub damage: Vec<access_catalogue::damage::Damage>,
}

/// Every event from position `from` on: first the stored ones, then live ones
/// as they become durable. Never skips or repeats an event.
pub fn subscribe(
    log: Arc<dyn EventLog>,
    from: u64,
) -> BoxStream<'static, Result<Envelope, LogError>> {
    if let Some(live) = log.tail(from) {
        return live;
    }
    struct State {
        log: Arc<dyn EventLog>,
        next: u64,
        buffer: std::collections::VecDeque<Envelope>,
        head: watch::Receiver<u64>,
    }
    let head = log.head();
    let state = State {
        log,
        next: from.max(1),
        buffer: Default::default(),
        head,
    };
    Box::pin(futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(e) = s.buffer.pop_front() {
                s.next = e.position + 1;
                return Some((Ok(e), s));
            }
            if *s.head.borrow_and_update() >= s.next {
                match s.log.read_from(s.next, 512).await {
                    Ok(batch) if !batch.is_empty() => {
                        s.buffer.extend(batch);
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // Transient storage errors are reported once per retry
                        // interval; the consumer decides whether to stop.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        return Some((Err(e), s));
                    }
                }
            }
            if s.head.changed().await.is_err() {
                return None;
            }
        }
    }))
}

/// Largest encoded envelope any backend accepts: room for the largest event
/// a request's limits allow (a tenant's email template), far below NATS's
/// own message limit (1 MiB).
pub const MAX_ENVELOPE_BYTES: usize = 256 * 1024;

/// Largest event payload an append may carry: the envelope's limit less the
/// most its other fields (ids, tenant, actor, request id, hashes) can take.
pub const MAX_PAYLOAD_BYTES: usize = MAX_ENVELOPE_BYTES - 4 * 1024;

impl AppendRequest {
    /// Refuses what no backend may store: a bad request id, no events, or a
    /// stream named twice.
    pub fn check_shape(&self) -> Result<(), AppendError> {
        let invalid = |m: &str| Err(AppendError::Invalid(m.to_owned()));
        if self.request_id.is_empty() || self.request_id.len() > 256 {
            return invalid("request id must be 1 to 256 bytes");
        }
        if self.streams.is_empty() || self.streams.iter().any(|s| s.events.is_empty()) {
            return invalid("an append needs at least one event per stream");
        }
        let mut seen = std::collections::HashSet::new();
        if !self.streams.iter().all(|s| seen.insert(&s.stream)) {
            return invalid("a stream may appear once per append");
        }
        Ok(())
    }

    /// The envelope of one of this request's events, sealed into its stream's
    /// hash chain after `prev_hash` (the stream's head before it).
    pub fn seal(
        &self,
        stream: &StreamId,
        event: &NewEvent,
        stream_version: u64,
        prev_hash: [u8; 32],
        position: u64,
    ) -> Result<Envelope, AppendError> {
        self.seal_encoded(stream, event, stream_version, prev_hash, position)
            .map(|(envelope, _)| envelope)
    }

    /// [`AppendRequest::seal`], with the envelope's encoded bytes (encoded
    /// once, for the size check and for storing).
    pub fn seal_encoded(
        &self,
        stream: &StreamId,
        event: &NewEvent,
        stream_version: u64,
        prev_hash: [u8; 32],
        position: u64,
    ) -> Result<(Envelope, Vec<u8>), AppendError> {
        let mut envelope = Envelope {
            envelope_version: access_catalogue::envelope::ENVELOPE_VERSION,
            position,
            stream: stream.clone(),
            stream_version,
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            occurred_at_ms: self.occurred_at_ms,
            tenant: self.tenant.clone(),
            actor: self.actor.clone(),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            request_id: self.request_id.clone(),
            prev_hash,
            hash: [0; 32],
            payload: event.payload.clone(),
        };
        envelope.hash = access_catalogue::chain::hash_of(&envelope);
        let bytes = envelope.encode();
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(AppendError::Invalid(
                "an event is larger than the log accepts".into(),
            ));
        }
        Ok((envelope, bytes))
    }
}
