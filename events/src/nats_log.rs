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

use crate::chain::GENESIS;
use crate::envelope::{Envelope, StreamId};
use crate::log::{
    AppendError, AppendRequest, Committed, EventLog, LogError, RequestRecord, StreamAppend,
};
use async_nats::jetstream::{self, stream};
use async_nats::{HeaderMap, connection::State};
use bytes::Bytes;
use futures::StreamExt;
use futures::future::{BoxFuture, try_join_all};
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
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

/// How to authenticate to NATS.
#[derive(Clone, Default)]
pub enum NatsAuth {
    /// No credentials.
    #[default]
    None,
    /// User name and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// A bearer token.
    Token(String),
    /// An NKey seed (`SU…`).
    NKeySeed(String),
    /// A `.creds` file (JWT and NKey seed).
    CredsFile(PathBuf),
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret half.
        f.write_str(match self {
            NatsAuth::None => "none",
            NatsAuth::UserPassword { .. } => "user and password",
            NatsAuth::Token(_) => "token",
            NatsAuth::NKeySeed(_) => "nkey",
            NatsAuth::CredsFile(_) => "creds file",
        })
    }
}

/// Where the log lives on NATS and how to reach it.
#[derive(Clone, Debug)]
pub struct NatsSettings {
    /// Server URLs, comma-separated (`nats://a:4222,nats://b:4222`).
    pub url: String,
    /// The JetStream stream's name.
    pub stream: String,
    /// The first subject token of every subject the log uses.
    pub prefix: String,
    /// Stream replicas when the stream is created (3 in a cluster).
    pub replicas: usize,
    /// Credentials.
    pub auth: NatsAuth,
    /// A CA file for TLS to NATS (TLS is then required).
    pub tls_ca: Option<PathBuf>,
    /// Require TLS even without a CA file of our own.
    pub require_tls: bool,
    /// How long one request to NATS may take before the command fails with
    /// `UNAVAILABLE` instead of hanging.
    pub timeout: Duration,
    /// The server's de-duplication window for message ids.
    pub duplicate_window: Duration,
    /// The name this client shows in the server's connection list.
    pub client_name: String,
}

impl NatsSettings {
    /// Settings for `url` with the defaults: stream `ACCESS`, prefix `access`,
    /// one replica, no credentials, 5 s timeout, 2 min duplicate window.
    pub fn new(url: impl Into<String>) -> Self {
        NatsSettings {
            url: url.into(),
            stream: "ACCESS".into(),
            prefix: "access".into(),
            replicas: 1,
            auth: NatsAuth::None,
            tls_ca: None,
            require_tls: false,
            timeout: Duration::from_secs(5),
            duplicate_window: Duration::from_secs(120),
            client_name: "access".into(),
        }
    }
}

/// Connects to NATS with the settings' credentials, TLS and timeouts.
pub async fn connect_client(s: &NatsSettings) -> Result<async_nats::Client, LogError> {
    let servers = s
        .url
        .split(',')
        .map(|u| u.trim().parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LogError::Storage(format!("the NATS URL {:?}: {e}", s.url)))?;
    let mut opts = match &s.auth {
        NatsAuth::CredsFile(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| LogError::Storage(format!("reading {}: {e}", path.display())))?,
        _ => async_nats::ConnectOptions::new(),
    };
    opts = match &s.auth {
        NatsAuth::UserPassword { user, password } => {
            opts.user_and_password(user.clone(), password.clone())
        }
        NatsAuth::Token(token) => opts.token(token.clone()),
        NatsAuth::NKeySeed(seed) => opts.nkey(seed.clone()),
        NatsAuth::None | NatsAuth::CredsFile(_) => opts,
    };
    if let Some(ca) = &s.tls_ca {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    if s.require_tls {
        opts = opts.require_tls(true);
    }
    opts.name(&s.client_name)
        .request_timeout(Some(s.timeout))
        // A connection that stalls without closing (a partition, a hung
        // node) is found within a few seconds rather than NATS's two minutes.
        .ping_interval(Duration::from_secs(2))
        .connection_timeout(s.timeout)
        // Reconnect for ever, backing off up to 1 s between tries: a node
        // back from a restart is used within a second.
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100 * 2u64.saturating_pow(attempts.min(6) as u32)).min(1_000))
        })
        .connect(servers.as_slice())
        .await
        .map_err(|e| LogError::Storage(format!("connecting to NATS at {}: {e}", s.url)))
}

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
    also: std::sync::Mutex<Vec<crate::nats_probe::Probed>>,
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

impl JetStreamLog {
    /// Connects, creates the stream if it does not exist (checking it if it
    /// does), and starts following its head.
    pub async fn open(settings: &NatsSettings) -> Result<Self, LogError> {
        let client = connect_client(settings).await?;
        Self::with_client(client, settings).await
    }

    /// Like [`JetStreamLog::open`], on a connection the caller made.
    pub async fn with_client(
        client: async_nats::Client,
        settings: &NatsSettings,
    ) -> Result<Self, LogError> {
        let mut js = jetstream::new(client.clone());
        js.set_timeout(settings.timeout);
        let prefix = settings.prefix.clone();
        let subjects = vec![format!("{prefix}.ev.>"), format!("{prefix}.req.>")];
        let config = stream::Config {
            name: settings.stream.clone(),
            description: Some("customer portal access: event log".into()),
            subjects: subjects.clone(),
            storage: stream::StorageType::File,
            num_replicas: settings.replicas,
            allow_atomic_publish: true,
            allow_direct: true,
            // The log is append-only: nobody deletes or purges through NATS.
            deny_delete: true,
            deny_purge: true,
            duplicate_window: settings.duplicate_window,
            ..Default::default()
        };
        // A cluster that is starting has no JetStream leader for a few
        // seconds: keep asking for a while before giving up.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut stream = loop {
            match js.get_or_create_stream(config.clone()).await {
                Ok(stream) => break stream,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(error = %e, "JetStream not ready; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    return Err(storage(&format!("opening stream {}", settings.stream), e));
                }
            }
        };
        let info = stream
            .info()
            .await
            .map_err(|e| storage("reading the stream's settings", e))?
            .clone();
        if !info.config.allow_atomic_publish
            || !subjects.iter().all(|s| info.config.subjects.contains(s))
        {
            return Err(LogError::Storage(format!(
                "stream {} exists but does not allow atomic batches on {:?}; \
                 it was not created by this service",
                settings.stream, subjects
            )));
        }
        let start = last_event(info.state.last_sequence);
        let head = std::sync::Arc::new(watch::Sender::new(start));
        let follower = tokio::spawn(follow_head(
            client.clone(),
            stream.clone(),
            format!("{prefix}.ev.>"),
            head.clone(),
        ));
        let connected_times = connects(&client);
        let core = Arc::new(Core {
            client,
            stream,
            name: settings.stream.clone(),
            prefix,
            head,
            heads: Default::default(),
            writable: std::sync::atomic::AtomicBool::new(crate::nats_probe::writable(&info)),
            probed_on: std::sync::atomic::AtomicU64::new(connected_times),
            also: Default::default(),
        });
        let prober = tokio::spawn(probe(core.clone(), settings.timeout));
        let (jobs, queue) = mpsc::channel(4096);
        let writer = tokio::spawn(write_groups(core.clone(), queue));
        Ok(JetStreamLog {
            core,
            jobs,
            follower,
            prober,
            writer,
        })
    }

    /// Probes `other` (with a subject it stores) with the log's stream from
    /// now on: a command that also writes there (the key vault) can be
    /// stored only when both can.
    pub fn probe_also(&self, other: stream::Stream, subject: String) {
        self.core
            .also
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(crate::nats_probe::Probed {
                stream: other,
                subject,
            });
    }

    /// The subject of one aggregate stream.
    pub fn subject_of(&self, stream: &StreamId) -> String {
        self.core.subject_of(stream)
    }

    /// Seeds an empty stream with a whole log (a restored backup, an
    /// embedded log moving to the distributed mode), in order, as the events
    /// are: hashes and chains untouched; positions become this stream's
    /// sequences. Request records are not carried over.
    pub async fn import(
        &self,
        envelopes: impl IntoIterator<Item = Envelope>,
    ) -> Result<u64, LogError> {
        let mut stream = self.core.stream.clone();
        let info = stream
            .info()
            .await
            .map_err(|e| LogError::Unavailable(e.to_string()))?;
        if info.state.messages > 0 {
            return Err(LogError::Storage(format!(
                "stream {} is not empty: a restore only goes into an empty stream",
                self.core.name
            )));
        }
        let js = jetstream::new(self.core.client.clone());
        let mut pending = Vec::new();
        let mut written = 0u64;
        for mut envelope in envelopes {
            envelope.position = 0;
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", envelope.event_id.to_string().as_str());
            headers.insert("Access-Event-Type", envelope.event_type.as_str());
            let subject = self.core.subject_of(&envelope.stream);
            let ack = js
                .publish_with_headers(subject, headers, Bytes::from(envelope.encode()))
                .await
                .map_err(|e| LogError::Unavailable(e.to_string()))?;
            pending.push(ack);
            written += 1;
            // Acks in order, a window at a time: the log's order is kept.
            if pending.len() >= 256 {
                for ack in pending.drain(..) {
                    ack.await
                        .map_err(|e| LogError::Unavailable(e.to_string()))?;
                }
            }
        }
        for ack in pending {
            ack.await
                .map_err(|e| LogError::Unavailable(e.to_string()))?;
        }
        Ok(written)
    }
}

impl Core {
    fn subject_of(&self, stream: &StreamId) -> String {
        format!(
            "{}.ev.{}.{}.{}",
            self.prefix,
            stream.tenant(),
            stream.aggregate().as_str(),
            stream.id()
        )
    }

    fn request_subject(&self, request_id: &str) -> String {
        format!(
            "{}.req.{}",
            self.prefix,
            hex::encode(Sha256::digest(request_id.as_bytes()))
        )
    }

    async fn stream_head(&self, stream: &StreamId) -> Result<Head, AppendError> {
        match self
            .stream
            .get_last_raw_message_by_subject(&self.subject_of(stream))
            .await
        {
            Ok(m) => {
                let e = Envelope::decode(&m.payload)
                    .map_err(|e| unavailable("reading a stream's head", e))?;
                Ok(Head {
                    version: e.stream_version,
                    hash: e.hash,
                    sequence: m.sequence,
                })
            }
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(Head {
                version: 0,
                hash: GENESIS,
                sequence: 0,
            }),
            Err(e) => Err(unavailable("reading a stream's head", e)),
        }
    }

    async fn record(&self, request_id: &str) -> Result<Option<RequestRecord>, LogError> {
        match self
            .stream
            .get_last_raw_message_by_subject(&self.request_subject(request_id))
            .await
        {
            Ok(m) => {
                let stored: StoredRequest =
                    postcard::from_bytes(&m.payload).map_err(|e| LogError::Corrupt {
                        position: m.sequence,
                        reason: e.to_string(),
                    })?;
                Ok(Some(RequestRecord {
                    fingerprint: stored.fingerprint,
                    first_position: m.sequence.saturating_sub(stored.events),
                    last_position: m.sequence.saturating_sub(1),
                    reply: stored.reply,
                }))
            }
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(storage("reading a request record", e)),
        }
    }

    /// The first result of a request id already in the log, if any.
    async fn answer_from_record(
        &self,
        r: &AppendRequest,
    ) -> Result<Option<Committed>, AppendError> {
        let record = self
            .record(&r.request_id)
            .await
            .map_err(|e| AppendError::Unavailable(e.to_string()))?;
        match record {
            None => Ok(None),
            Some(rec) if rec.fingerprint != r.fingerprint => {
                Err(AppendError::RequestIdReused(r.request_id.clone()))
            }
            Some(rec) => Ok(Some(Committed {
                first_position: rec.first_position,
                last_position: rec.last_position,
                reply: rec.reply,
                duplicate: true,
            })),
        }
    }

    /// A conflict found before publishing, unless the request is in the log
    /// already: a retry gets the first result, not a conflict.
    async fn unless_recorded(
        &self,
        r: &AppendRequest,
        e: AppendError,
    ) -> Result<Committed, AppendError> {
        if !matches!(e, AppendError::Conflict { .. }) {
            return Err(e);
        }
        match self.answer_from_record(r).await {
            Ok(Some(first)) => Ok(first),
            Err(reused @ AppendError::RequestIdReused(_)) => Err(reused),
            _ => Err(e),
        }
    }

    /// Why a batch failed its expected-sequence checks: a concurrent retry of
    /// the same request stored it first (answered from its record), or a
    /// stream moved on (a conflict: decide again).
    async fn after_refusal(&self, r: &AppendRequest) -> Result<Committed, AppendError> {
        if let Some(first) = self.answer_from_record(r).await? {
            return Ok(first);
        }
        for s in &r.streams {
            let head = self.stream_head(&s.stream).await?;
            if head.version != s.expected_version {
                return Err(conflict(s, &head));
            }
        }
        // What moved is already back in line: deciding again is still right.
        let s = &r.streams[0];
        Err(AppendError::Conflict {
            stream: s.stream.clone(),
            expected: s.expected_version,
            actual: s.expected_version,
        })
    }

    /// One append's messages (its events, then its request record) and each
    /// stream's new last event (version, hash, index among the messages).
    fn seal_job(&self, r: &AppendRequest, heads: &[Head]) -> Result<Sealed, AppendError> {
        let mut messages = Vec::new();
        let mut lasts = Vec::new();
        for (s, head) in r.streams.iter().zip(heads) {
            let subject = self.subject_of(&s.stream);
            let mut prev = head.hash;
            for (i, e) in s.events.iter().enumerate() {
                let version = head.version + 1 + i as u64;
                let envelope = r.seal(&s.stream, e, version, prev, 0)?;
                prev = envelope.hash;
                if i + 1 == s.events.len() {
                    lasts.push((s.stream.clone(), version, envelope.hash, messages.len()));
                }
                let mut headers = HeaderMap::new();
                headers.insert("Nats-Msg-Id", e.event_id.to_string().as_str());
                headers.insert("Access-Event-Type", e.event_type.as_str());
                if i == 0 {
                    headers.insert(
                        "Nats-Expected-Last-Subject-Sequence",
                        head.sequence.to_string().as_str(),
                    );
                }
                messages.push((subject.clone(), headers, Bytes::from(envelope.encode())));
            }
        }
        let events = messages.len() as u64;
        let record = StoredRequest {
            fingerprint: r.fingerprint,
            events,
            reply: r.reply.clone(),
        };
        let subject = self.request_subject(&r.request_id);
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Expected-Last-Subject-Sequence", "0");
        headers.insert(
            "Nats-Msg-Id",
            format!("req-{}", &subject[subject.len() - 64..]).as_str(),
        );
        let payload = postcard::to_stdvec(&record).map_err(|e| unavailable("encoding", e))?;
        messages.push((subject, headers, Bytes::from(payload)));
        Ok(Sealed { messages, lasts })
    }

    /// Publishes `messages` as one atomic batch; returns the commit's ack.
    async fn publish_batch(
        &self,
        messages: Vec<(String, HeaderMap, Bytes)>,
    ) -> Result<PubAck, AppendError> {
        let batch_id = uuid::Uuid::new_v4().simple().to_string();
        let n = messages.len();
        for (i, (subject, mut headers, payload)) in messages.into_iter().enumerate() {
            headers.insert("Nats-Batch-Id", batch_id.as_str());
            headers.insert("Nats-Batch-Sequence", (i + 1).to_string().as_str());
            if i + 1 < n {
                self.client
                    .publish_with_headers(subject, headers, payload)
                    .await
                    .map_err(|e| unavailable("publishing to NATS", e))?;
            } else {
                headers.insert("Nats-Batch-Commit", "1");
                let reply = self
                    .client
                    .request_with_headers(subject, headers, payload)
                    .await
                    .map_err(|e| {
                        unavailable(
                            "no answer from NATS (the command may or may not be stored; \
                             retry with the same request id)",
                            e,
                        )
                    })?;
                return serde_json::from_slice(&reply.payload)
                    .map_err(|e| unavailable("unreadable publish ack", e));
            }
        }
        Err(AppendError::Invalid("an empty batch".into()))
    }

    /// The head an append of `s` builds on: remembered if it is the version
    /// the decision saw, none for a stream the decision creates, else the
    /// leader's (a different version is a conflict at once).
    async fn head_for(&self, s: &StreamAppend) -> Result<Head, AppendError> {
        let known = self.lock_heads().get(&s.stream).copied();
        match known {
            Some(h) if h.version == s.expected_version => return Ok(h),
            None if s.expected_version == 0 => {
                return Ok(Head {
                    version: 0,
                    hash: GENESIS,
                    sequence: 0,
                });
            }
            _ => {}
        }
        let head = self.stream_head(&s.stream).await?;
        self.lock_heads().insert(s.stream.clone(), head);
        if head.version != s.expected_version {
            return Err(conflict(s, &head));
        }
        Ok(head)
    }

    fn lock_heads(&self) -> std::sync::MutexGuard<'_, HashMap<StreamId, Head>> {
        self.heads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers the streams' new heads after a batch whose first message got
    /// sequence `first`.
    fn remember(&self, lasts: &[(StreamId, u64, [u8; 32], usize)], first: u64) {
        let mut heads = self.lock_heads();
        if heads.len() > 100_000 {
            heads.clear();
        }
        for (stream, version, hash, index) in lasts {
            heads.insert(
                stream.clone(),
                Head {
                    version: *version,
                    hash: *hash,
                    sequence: first + *index as u64,
                },
            );
        }
    }

    fn forget(&self, r: &AppendRequest) {
        let mut heads = self.lock_heads();
        for s in &r.streams {
            heads.remove(&s.stream);
        }
    }

    /// Appends one request as a batch of its own.
    async fn append_alone(&self, r: AppendRequest) -> Result<Committed, AppendError> {
        r.check_shape()?;
        let events: usize = r.streams.iter().map(|s| s.events.len()).sum();
        if events > MAX_EVENTS_PER_APPEND {
            return Err(AppendError::Invalid(format!(
                "at most {MAX_EVENTS_PER_APPEND} events per append"
            )));
        }
        if self.client.connection_state() != State::Connected {
            return Err(AppendError::Unavailable("not connected to NATS".into()));
        }
        let heads = match try_join_all(r.streams.iter().map(|s| self.head_for(s))).await {
            Ok(h) => h,
            Err(e) => return self.unless_recorded(&r, e).await,
        };
        let sealed = self.seal_job(&r, &heads)?;
        let lasts = sealed.lasts.clone();
        let ack = self.publish_batch(sealed.messages).await?;
        match ack.error {
            None if ack.seq < events as u64 + 1 => Err(AppendError::Unavailable(
                "NATS acknowledged the batch at an impossible sequence".into(),
            )),
            None => {
                let first = ack.seq - events as u64;
                self.remember(&lasts, first);
                Ok(Committed {
                    first_position: first,
                    last_position: ack.seq - 1,
                    reply: r.reply,
                    duplicate: false,
                })
            }
            Some(e) if ERR_WRONG_LAST_SEQUENCE.contains(&e.err_code) => {
                self.after_refusal(&r).await
            }
            Some(e) if e.err_code == ERR_DUPLICATE_IN_BATCH => {
                match self.answer_from_record(&r).await? {
                    Some(first) => Ok(first),
                    None => Err(AppendError::Unavailable(e.description)),
                }
            }
            Some(e) => Err(AppendError::Unavailable(format!(
                "NATS refused the batch: {} ({})",
                e.description, e.err_code
            ))),
        }
    }

    /// Up to `max` messages from sequence `from` on, read in one direct-get
    /// batch: those of `subject` if given, else every event (request records
    /// skipped here: a wildcard filter costs the server a scan of every
    /// subject it knows, some 0.5 s a batch at a million streams). Returns
    /// the events, the last sequence looked at, and whether more follow.
    async fn direct_batch(
        &self,
        from: u64,
        subject: Option<&str>,
        max: usize,
    ) -> Result<(Vec<Envelope>, u64, bool), LogError> {
        let request = match subject {
            Some(subject) => {
                serde_json::json!({ "seq": from, "next_by_subj": subject, "batch": max })
            }
            None => serde_json::json!({ "seq": from, "batch": max }),
        };
        let records = format!("{}.req.", self.prefix);
        let mut last = from.saturating_sub(1);
        let inbox = self.client.new_inbox();
        let mut replies = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| storage("reading from NATS", e))?;
        self.client
            .publish_with_reply(
                format!("$JS.API.DIRECT.GET.{}", self.name),
                inbox,
                Bytes::from(request.to_string()),
            )
            .await
            .map_err(|e| storage("reading from NATS", e))?;
        let mut out = Vec::new();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), replies.next())
                .await
                .map_err(|_| LogError::Unavailable("no answer from NATS to a read".into()))?
                .ok_or_else(|| LogError::Unavailable("the read's subscription closed".into()))?;
            let header = |name: &str| {
                message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .map(|v| v.as_str().to_owned())
            };
            match message.status.map(u16::from) {
                None => {
                    let position = header("Nats-Sequence")
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| LogError::Storage("a read without a sequence".into()))?;
                    last = last.max(position);
                    if header("Nats-Subject").is_some_and(|s| s.starts_with(&records)) {
                        continue;
                    }
                    let mut envelope =
                        Envelope::decode(&message.payload).map_err(|e| LogError::Corrupt {
                            position,
                            reason: e.to_string(),
                        })?;
                    envelope.position = position;
                    out.push(envelope);
                }
                Some(204) => {
                    let pending = header("Nats-Num-Pending")
                        .and_then(|s| s.parse::<u64>().ok())
                        .unwrap_or(0);
                    return Ok((out, last, pending > 0));
                }
                Some(404) => return Ok((out, last, false)),
                Some(code @ (408 | 503)) => {
                    return Err(LogError::Unavailable(format!(
                        "NATS could not answer a read now: {code}"
                    )));
                }
                Some(code) => {
                    return Err(LogError::Storage(format!(
                        "NATS refused a read: {code} {}",
                        message.description.unwrap_or_default()
                    )));
                }
            }
        }
    }
}

fn conflict(s: &StreamAppend, head: &Head) -> AppendError {
    AppendError::Conflict {
        stream: s.stream.clone(),
        expected: s.expected_version,
        actual: head.version,
    }
}

/// The last event's position given the stream's last sequence: every batch
/// ends with a request record, so the last event sits just before it. Asking
/// for the last message of `<prefix>.ev.>` instead would cost the server a
/// scan of every subject.
fn last_event(last_sequence: u64) -> u64 {
    last_sequence.saturating_sub(1)
}

/// The writer: takes every append waiting (up to a batch's worth) and
/// commits them as one atomic batch. JetStream's atomic batches cost the same
/// few milliseconds whatever their size, so concurrent commands share them:
/// the group commit of the distributed mode.
async fn write_groups(core: Arc<Core>, mut queue: mpsc::Receiver<Job>) {
    while let Some(first) = queue.recv().await {
        let mut messages = first
            .request
            .streams
            .iter()
            .map(|s| s.events.len())
            .sum::<usize>()
            + 1;
        let mut group = vec![first];
        while group.len() < GROUP_APPENDS {
            let Ok(job) = queue.try_recv() else { break };
            messages += job
                .request
                .streams
                .iter()
                .map(|s| s.events.len())
                .sum::<usize>()
                + 1;
            group.push(job);
            if messages >= MAX_EVENTS_PER_APPEND / 2 {
                break;
            }
        }
        metrics::histogram!("access_group_commit_size").record(group.len() as f64);
        core.commit_group(group).await;
    }
}

/// A job checked and sealed into a group.
struct Staged {
    job: Job,
    sealed: Sealed,
    events: usize,
}

impl Core {
    /// Stages each job (refusing at once what cannot go in: a malformed
    /// append, a stream already moved by an earlier job of the group, a
    /// stale version), publishes the rest as one batch, and answers each.
    async fn commit_group(&self, group: Vec<Job>) {
        if self.client.connection_state() != State::Connected {
            for job in group {
                let _ = job.done.send(Err(AppendError::Unavailable(
                    "not connected to NATS".into(),
                )));
            }
            return;
        }
        let mut staged: Vec<Staged> = Vec::new();
        // Retries of a request already in the group share its fate.
        let mut followers: Vec<(Job, usize)> = Vec::new();
        let mut touched: HashMap<StreamId, u64> = HashMap::new();
        let mut total = 0usize;
        for job in group {
            let r = &job.request;
            let events: usize = r.streams.iter().map(|s| s.events.len()).sum();
            let check = r.check_shape().and_then(|()| {
                if events > MAX_EVENTS_PER_APPEND {
                    Err(AppendError::Invalid(format!(
                        "at most {MAX_EVENTS_PER_APPEND} events per append"
                    )))
                } else {
                    Ok(())
                }
            });
            if let Err(e) = check {
                let _ = job.done.send(Err(e));
                continue;
            }
            if let Some(i) = staged
                .iter()
                .position(|s| s.job.request.request_id == r.request_id)
            {
                if staged[i].job.request.fingerprint == r.fingerprint {
                    followers.push((job, i));
                } else {
                    let id = r.request_id.clone();
                    let _ = job.done.send(Err(AppendError::RequestIdReused(id)));
                }
                continue;
            }
            if let Some(s) = r.streams.iter().find(|s| touched.contains_key(&s.stream)) {
                let actual = touched[&s.stream];
                let e = AppendError::Conflict {
                    stream: s.stream.clone(),
                    expected: s.expected_version,
                    actual,
                };
                let _ = job.done.send(Err(e));
                continue;
            }
            if total + events + 1 > MAX_EVENTS_PER_APPEND + 1 {
                // No room left in this batch: on its own, after the group.
                let result = self.append_alone(job.request).await;
                let _ = job.done.send(result);
                continue;
            }
            let heads = match try_join_all(r.streams.iter().map(|s| self.head_for(s))).await {
                Ok(h) => h,
                Err(e) => {
                    let result = self.unless_recorded(r, e).await;
                    let _ = job.done.send(result);
                    continue;
                }
            };
            let sealed = match self.seal_job(r, &heads) {
                Ok(s) => s,
                Err(e) => {
                    let _ = job.done.send(Err(e));
                    continue;
                }
            };
            for (stream, version, _, _) in &sealed.lasts {
                touched.insert(stream.clone(), *version);
            }
            total += sealed.messages.len();
            staged.push(Staged {
                job,
                sealed,
                events,
            });
        }
        if staged.is_empty() {
            return;
        }
        if staged.len() == 1 {
            // Nothing to share: the single path explains refusals itself.
            let Some(one) = staged.pop() else { return };
            let result = self.append_alone(one.job.request).await;
            answer(one.job.done, &result, false);
            for (job, _) in followers {
                answer(job.done, &result, true);
            }
            return;
        }
        let messages: Vec<_> = staged
            .iter()
            .flat_map(|s| s.sealed.messages.iter().cloned())
            .collect();
        let outcome = self.publish_batch(messages).await;
        let mut results: Vec<Result<Committed, AppendError>> = Vec::new();
        match outcome {
            Ok(PubAck { seq, error: None }) if seq < total as u64 => {
                for s in &staged {
                    self.forget(&s.job.request);
                }
                let e = AppendError::Unavailable(
                    "NATS acknowledged the batch at an impossible sequence".into(),
                );
                results.extend(staged.iter().map(|_| Err(e.clone())));
            }
            Ok(PubAck { seq, error: None }) => {
                let mut next = seq + 1 - total as u64;
                for s in &staged {
                    self.remember(&s.sealed.lasts, next);
                    results.push(Ok(Committed {
                        first_position: next,
                        last_position: next + s.events as u64 - 1,
                        reply: s.job.request.reply.clone(),
                        duplicate: false,
                    }));
                    next += s.sealed.messages.len() as u64;
                }
            }
            Ok(PubAck { error: Some(_), .. }) => {
                // One of them was refused, so all were: each goes again on its
                // own, on fresh heads, and learns its own fate. They touch no
                // stream in common, so they can go at the same time (within
                // the server's limit of batches in flight per stream).
                for s in &staged {
                    self.forget(&s.job.request);
                }
                let requests: Vec<AppendRequest> =
                    staged.iter().map(|s| s.job.request.clone()).collect();
                let alone: Vec<_> = futures::stream::iter(requests)
                    .map(|r| self.append_alone(r))
                    .buffered(ALONE_IN_FLIGHT)
                    .collect()
                    .await;
                results.extend(alone);
            }
            Err(e) => results.extend(staged.iter().map(|_| Err(e.clone()))),
        }
        for (job, leader) in followers {
            answer(job.done, &results[leader], true);
        }
        for (s, result) in staged.into_iter().zip(results) {
            let _ = s.job.done.send(result);
        }
    }
}

/// Sends `result` to one waiting append, as a retry's answer if `retry`.
fn answer(
    done: oneshot::Sender<Result<Committed, AppendError>>,
    result: &Result<Committed, AppendError>,
    retry: bool,
) {
    let result = result.clone().map(|mut c| {
        c.duplicate |= retry;
        c
    });
    let _ = done.send(result);
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

/// How often JetStream is asked whether it could store an append; more
/// often while it cannot, so that commands refused at once are taken again
/// soon after it recovers.
const PROBE_EVERY: Duration = Duration::from_secs(1);
const PROBE_WHILE_DOWN: Duration = Duration::from_millis(250);

/// Asks every second whether the log's stream (and the others a command
/// writes to) could store an append, and moves the head to the leader's:
/// the connection being up says nothing of a stream with no leader, and the
/// follower's head stalls while it resubscribes.
async fn probe(core: Arc<Core>, timeout: Duration) {
    use std::sync::atomic::Ordering;
    let timeout = timeout.min(Duration::from_secs(2));
    let main = crate::nats_probe::Probed {
        stream: core.stream.clone(),
        subject: format!("{}.req.probe", core.prefix),
    };
    loop {
        let pause = if core.writable.load(Ordering::Relaxed) {
            PROBE_EVERY
        } else {
            PROBE_WHILE_DOWN
        };
        tokio::time::sleep(pause).await;
        let connection = connects(&core.client);
        let mut ok = false;
        if offline(&core.client).is_none()
            && let Some(last) = crate::nats_probe::takes_appends(&core.client, &main, timeout).await
        {
            advance(&core.head, last_event(last));
            ok = true;
        }
        let others = core.also.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for other in &others {
            if !ok {
                break;
            }
            ok = crate::nats_probe::takes_appends(&core.client, other, timeout)
                .await
                .is_some();
        }
        core.probed_on.store(connection, Ordering::Relaxed);
        if core.writable.swap(ok, Ordering::Relaxed) != ok {
            if ok {
                tracing::info!("JetStream takes appends again");
            } else {
                tracing::warn!(
                    "JetStream cannot take appends now (no connection, no leader or no quorum)"
                );
            }
        }
    }
}

/// Keeps `head` at the last event's sequence, through reconnects.
async fn follow_head(
    client: async_nats::Client,
    stream: stream::Stream,
    filter: String,
    head: std::sync::Arc<watch::Sender<u64>>,
) {
    loop {
        let from = *head.borrow() + 1;
        let config = jetstream::consumer::push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: filter.clone(),
            headers_only: true,
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        };
        match stream.create_consumer(config).await {
            Ok(consumer) => match consumer.messages().await {
                Ok(mut messages) => {
                    while let Some(Ok(m)) = messages.next().await {
                        if let Ok(info) = m.info() {
                            advance(&head, info.stream_sequence);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "following the log's head"),
            },
            Err(e) => tracing::warn!(error = %e, "following the log's head"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
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
            crate::chain::verify_stream(&out).map_err(|d| {
                LogError::Damaged(crate::damage::Damage {
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

/// How long the feed may be silent while the log's head is past it.
const FEED_SILENCE: Duration = Duration::from_secs(2);

/// Sends every event from `from` on into `tx`, in order, through reconnects,
/// until the receiver goes away.
async fn feed(
    client: async_nats::Client,
    stream: stream::Stream,
    filter: String,
    mut from: u64,
    head: watch::Receiver<u64>,
    tx: mpsc::Sender<Result<Envelope, LogError>>,
) {
    loop {
        let config = jetstream::consumer::push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: filter.clone(),
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        };
        let failure = match stream.create_consumer(config).await {
            Ok(consumer) => match consumer.messages().await {
                Ok(mut messages) => loop {
                    let next = tokio::select! {
                        next = messages.next() => next,
                        // Silent while the log has moved past it: the
                        // consumer was lost across a reconnect (the client
                        // can take many seconds to notice); make a new one.
                        _ = tokio::time::sleep(FEED_SILENCE) => {
                            if *head.borrow() >= from {
                                break LogError::Unavailable(format!(
                                    "the log's feed is silent at {from} while the head is past it; resubscribing"
                                ));
                            }
                            continue;
                        }
                    };
                    let Some(next) = next else {
                        break LogError::Storage("the log's feed ended".into());
                    };
                    let m = match next {
                        Ok(m) => m,
                        Err(e) => break storage("the log's feed", e),
                    };
                    let Ok(position) = m.info().map(|i| i.stream_sequence) else {
                        break LogError::Storage("a fed message without its place".into());
                    };
                    match Envelope::decode(&m.payload) {
                        Ok(mut e) => {
                            e.position = position;
                            from = position + 1;
                            if tx.send(Ok(e)).await.is_err() {
                                return;
                            }
                        }
                        // Never step over an event: report it and start
                        // again at the same place (a newer build may read it).
                        Err(e) => {
                            break LogError::Corrupt {
                                position,
                                reason: e.to_string(),
                            };
                        }
                    }
                },
                Err(e) => storage("following the log", e),
            },
            Err(e) => storage("following the log", e),
        };
        if tx.send(Err(failure)).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The command-line and environment settings of the distributed mode, shared
/// by `accessd` and `mailerd`. Secrets come from files or the environment,
/// never from flags (flags show in `ps`).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct NatsArgs {
    /// NATS server URLs, comma-separated; set it to run on JetStream instead of
    /// the embedded log.
    #[arg(long, env = "ACCESS_NATS_URL")]
    pub nats_url: Option<String>,
    /// The JetStream stream holding the log.
    #[arg(long, env = "ACCESS_NATS_STREAM", default_value = "ACCESS")]
    pub nats_stream: String,
    /// The first token of the log's subjects.
    #[arg(long, env = "ACCESS_NATS_PREFIX", default_value = "access")]
    pub nats_prefix: String,
    /// Replicas of the stream when this process creates it (3 in a cluster).
    #[arg(long, env = "ACCESS_NATS_REPLICAS", default_value_t = 1)]
    pub nats_replicas: usize,
    /// NATS user; the password comes from ACCESS_NATS_PASSWORD or --nats-password-file.
    #[arg(long, env = "ACCESS_NATS_USER")]
    pub nats_user: Option<String>,
    /// A file holding the NATS password.
    #[arg(long, env = "ACCESS_NATS_PASSWORD_FILE")]
    pub nats_password_file: Option<PathBuf>,
    /// A file holding a NATS token (or set ACCESS_NATS_TOKEN).
    #[arg(long, env = "ACCESS_NATS_TOKEN_FILE")]
    pub nats_token_file: Option<PathBuf>,
    /// A file holding an NKey seed.
    #[arg(long, env = "ACCESS_NATS_NKEY_FILE")]
    pub nats_nkey_file: Option<PathBuf>,
    /// A NATS `.creds` file (JWT and seed).
    #[arg(long, env = "ACCESS_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// A CA certificate for TLS to NATS (implies --nats-tls).
    #[arg(long, env = "ACCESS_NATS_CA")]
    pub nats_ca: Option<PathBuf>,
    /// Require TLS to NATS.
    #[arg(long, env = "ACCESS_NATS_TLS")]
    pub nats_tls: bool,
    /// How long one request to NATS may take before a command fails with UNAVAILABLE.
    #[arg(long, env = "ACCESS_NATS_TIMEOUT", default_value = "5s", value_parser = crate::cli::parse_duration)]
    pub nats_timeout: Duration,
}

fn secret_from(file: &Option<PathBuf>, env: &str, what: &str) -> Result<Option<String>, String> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the {what} from {}: {e}", path.display()))?;
        return Ok(Some(text.trim().to_owned()));
    }
    Ok(std::env::var(env).ok().filter(|v| !v.is_empty()))
}

impl NatsArgs {
    /// The settings to connect with, when a URL is set; `client_name` is what
    /// the server lists the connection as.
    pub fn settings(&self, client_name: &str) -> Result<Option<NatsSettings>, String> {
        let Some(url) = &self.nats_url else {
            return Ok(None);
        };
        let mut s = NatsSettings::new(url.clone());
        s.stream = self.nats_stream.clone();
        s.prefix = self.nats_prefix.clone();
        s.replicas = self.nats_replicas.max(1);
        s.tls_ca = self.nats_ca.clone();
        s.require_tls = self.nats_tls;
        s.timeout = self.nats_timeout;
        s.client_name = client_name.to_owned();
        s.auth = if let Some(creds) = &self.nats_creds {
            NatsAuth::CredsFile(creds.clone())
        } else if let Some(user) = &self.nats_user {
            let password = secret_from(
                &self.nats_password_file,
                "ACCESS_NATS_PASSWORD",
                "NATS password",
            )?
            .ok_or("--nats-user needs ACCESS_NATS_PASSWORD or --nats-password-file")?;
            NatsAuth::UserPassword {
                user: user.clone(),
                password,
            }
        } else if let Some(token) =
            secret_from(&self.nats_token_file, "ACCESS_NATS_TOKEN", "NATS token")?
        {
            NatsAuth::Token(token)
        } else if let Some(seed) =
            secret_from(&self.nats_nkey_file, "ACCESS_NATS_NKEY", "NKey seed")?
        {
            NatsAuth::NKeySeed(seed)
        } else {
            NatsAuth::None
        };
        Ok(Some(s))
    }
}
