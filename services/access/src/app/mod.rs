//! Runs commands against the log: load the streams a decision needs, decide,
//! append everything atomically with the versions seen, and on a conflict load
//! again and decide again. A request id seen before is answered from its first
//! result without deciding anything.

mod commands;
mod customers;
mod delivery;
mod erasure;
mod error;
mod handoff;
mod logins;
mod queries;
mod resets;
mod selfservice;
mod tenants;
mod throttle;

pub use commands::*;
pub use customers::*;
pub use delivery::{MailReporter, RecordDelivery};
pub use erasure::{ForgetIdentity, Forgotten};
pub use error::AppError;
pub use handoff::RedeemLoginCode;
pub use logins::*;
pub use queries::{LoginOutcome, check_in};
pub use resets::*;
pub use selfservice::{InvitationView, LinkState};
pub use tenants::*;
pub use throttle::LoginThrottle;

use crate::domain::Reason;
use crate::domain::contact::ContactState;
use crate::domain::password_policy::PasswordPolicy;
use crate::domain::values::{Password, RequestId, TenantId};
use crate::domain::{Aggregate, Change};
use crate::projections::ReadModels;
use crate::secrets::Passwords;
use access_catalogue::{Actor, StreamId};
use access_keyring::Keyring;
use access_log::log::{AppendError, AppendRequest, EventLog, NewEvent, StreamAppend};
use access_log::vault::{Vault, decode_open, seal};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The least time between two self-service reset links to one login.
const RESET_INTERVAL: Duration = Duration::from_secs(60);

/// How many times a command is decided again after a conflict.
const MAX_ATTEMPTS: usize = 5;

/// Tunables of the command and query paths.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long an invitation link lives.
    pub link_ttl: Duration,
    /// How long a session lives.
    pub session_ttl: Duration,
    /// How long a query waits for its read model to reach `min_position`.
    pub query_wait: Duration,
    /// How long a command may take in all, every round trip included.
    pub command_deadline: Duration,
    /// The public base URL of links (portal links are `<base>/p/<token>`).
    pub public_base_url: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            link_ttl: Duration::from_secs(24 * 3600),
            session_ttl: Duration::from_secs(12 * 3600),
            query_wait: Duration::from_secs(5),
            command_deadline: Duration::from_secs(10),
            public_base_url: "http://127.0.0.1:8080".into(),
        }
    }
}

/// Everything a command or query needs.
#[derive(Clone)]
pub struct App {
    /// The event log.
    pub log: Arc<dyn EventLog>,
    /// The read models.
    pub models: Arc<ReadModels>,
    /// Password hashing.
    pub passwords: Passwords,
    /// The server keys: every secret derived from them (links, sessions,
    /// login codes, API keys, portal links, temporary passwords).
    pub keyring: Keyring,
    /// Persons' keys: personal values in events are sealed under them.
    pub vault: Arc<dyn Vault>,
    /// Tunables.
    pub settings: Settings,
    /// The gate in front of every password check (lockout, delays).
    pub throttle: Arc<LoginThrottle>,
    /// When each login last asked for a reset link, to send at most one a minute.
    pub reset_throttle: Arc<std::sync::Mutex<HashMap<String, std::time::Instant>>>,
    /// The queue of "forgot password" requests, worked off by one task.
    pub forgot: Arc<std::sync::OnceLock<tokio::sync::mpsc::Sender<selfservice::Forgot>>>,
    /// Work a call left running after its answer (a failed login being
    /// recorded, a reset request queued), so that waiting for it is waiting
    /// on a fact.
    pub background: Background,
}

/// A count of work in flight after its call was answered.
#[derive(Clone, Debug, Default)]
pub struct Background(Arc<std::sync::atomic::AtomicUsize>);

/// One piece of background work; done when dropped.
#[derive(Debug)]
pub struct Busy(Arc<std::sync::atomic::AtomicUsize>);

impl Background {
    /// Counts one more piece of work until the returned guard drops.
    pub fn enter(&self) -> Busy {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Busy(self.0.clone())
    }

    /// Pieces of work in flight.
    pub fn pending(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Who sent a command, and the keys that make it idempotent and traceable.
#[derive(Clone, Debug)]
pub struct CommandContext {
    /// The caller's idempotency key.
    pub request_id: RequestId,
    /// Digest of the command's payload.
    pub fingerprint: [u8; 32],
    /// The tenant concerned, if any.
    pub tenant: Option<TenantId>,
    /// Who is acting.
    pub actor: Actor,
    /// The business flow.
    pub correlation_id: Uuid,
}

/// A command's answer and where it was written.
#[derive(Clone, Debug)]
pub struct Outcome<R> {
    /// The answer.
    pub reply: R,
    /// Log position of its last event: queries wait for this to read their writes.
    pub position: u64,
    /// True when it was a retry answered from the first result.
    pub duplicate: bool,
}

/// A command: decides on loaded state; its reply is stored with its request id.
pub trait Command: Send + Sync {
    /// The answer, stored for retries; never a secret.
    type Reply: Serialize + DeserializeOwned + Send;

    /// Loads what it needs through `unit` and decides.
    fn decide(
        &self,
        app: &App,
        unit: &mut Unit<'_>,
    ) -> impl Future<Output = Result<(Vec<Change>, Self::Reply), AppError>> + Send;

    /// Checks, before a stored reply is given to a retry, anything the reply
    /// must not be given without (a password, for commands that open a session).
    fn check_replay(
        &self,
        _app: &App,
        _reply: &Self::Reply,
    ) -> impl Future<Output = Result<(), AppError>> + Send {
        async { Ok(()) }
    }
}

/// The streams one decision read, with the versions it saw.
pub struct Unit<'a> {
    log: &'a dyn EventLog,
    vault: &'a dyn Vault,
    versions: HashMap<StreamId, u64>,
}

impl<'a> Unit<'a> {
    /// A unit reading from `app`'s log that has loaded nothing yet.
    pub fn new(app: &'a App) -> Self {
        Unit {
            log: app.log.as_ref(),
            vault: app.vault.as_ref(),
            versions: HashMap::new(),
        }
    }

    /// Folds a stream into its aggregate state and remembers its version.
    pub async fn load<A: Aggregate>(&mut self, stream: &StreamId) -> Result<A, AppError> {
        let envelopes = self.log.read_stream(stream).await.map_err(AppError::from)?;
        self.versions.insert(stream.clone(), envelopes.len() as u64);
        let events = decode_open(self.vault, &envelopes)
            .await
            .map_err(AppError::from)?;
        Ok(events
            .iter()
            .fold(A::default(), |state, event| state.evolve(event)))
    }

    fn into_streams(self, changes: Vec<Change>) -> Vec<StreamAppend> {
        let mut order: Vec<StreamAppend> = Vec::new();
        for change in changes {
            let (event_type, schema_version, payload) = change.event.encode();
            let event = NewEvent {
                event_id: Uuid::now_v7(),
                event_type: event_type.to_owned(),
                schema_version,
                payload,
            };
            match order.iter_mut().find(|s| s.stream == change.stream) {
                Some(s) => s.events.push(event),
                None => order.push(StreamAppend {
                    // A stream not loaded is one the decision creates under a
                    // fresh id: it must not exist yet.
                    expected_version: self.versions.get(&change.stream).copied().unwrap_or(0),
                    stream: change.stream,
                    events: vec![event],
                }),
            }
        }
        order
    }
}

/// Checks a new password against `policy` and the contact's email and username.
pub fn check_password(
    policy: &PasswordPolicy,
    password: &Password,
    contact: &ContactState,
    field: &str,
) -> Result<(), AppError> {
    let mut names = vec![contact.email.as_str()];
    names.extend(contact.username.as_deref());
    policy
        .check(password, &names)
        .map_err(|m| AppError::Domain(crate::domain::DomainError::invalid(field, m)))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl App {
    /// Runs a command: answers a known request id from its first result, or
    /// decides and appends, deciding again after conflicts. Every line logged
    /// on the way carries the tenant, the request id and the correlation id.
    #[tracing::instrument(
        name = "command",
        skip_all,
        fields(
            tenant = ctx.tenant.as_ref().map_or("-", |t| t.as_str()),
            request_id = ctx.request_id.as_str(),
            correlation_id = %ctx.correlation_id,
        )
    )]
    pub async fn execute<C: Command>(
        &self,
        ctx: &CommandContext,
        cmd: &C,
    ) -> Result<Outcome<C::Reply>, AppError> {
        // One deadline over the whole command: a log that stops answering
        // mid-command costs the caller this, not a timeout per round trip.
        // Cut off, the command may still be written; the caller's retry with
        // the same request id gets its first result.
        let deadline = self.settings.command_deadline;
        let result = tokio::time::timeout(deadline, self.execute_once(ctx, cmd))
            .await
            .unwrap_or_else(|_| {
                Err(AppError::Unavailable(format!(
                    "the command did not finish within {deadline:?}; retry it with the same request id"
                )))
            });
        let command = std::any::type_name::<C>()
            .rsplit("::")
            .next()
            .unwrap_or("command");
        let outcome = match &result {
            Ok(o) if o.duplicate => "duplicate",
            Ok(_) => "ok",
            Err(AppError::Domain(_) | AppError::TooLarge(_)) => "refused",
            Err(AppError::Conflict(_)) => "conflict",
            Err(AppError::RequestIdReused) => "request_id_reused",
            Err(AppError::Unavailable(_) | AppError::Behind(_)) => "unavailable",
            Err(AppError::Damaged(_)) => "damaged",
            Err(AppError::Internal(_)) => "internal",
        };
        metrics::counter!("access_commands_total", "command" => command, "outcome" => outcome)
            .increment(1);
        result
    }

    async fn execute_once<C: Command>(
        &self,
        ctx: &CommandContext,
        cmd: &C,
    ) -> Result<Outcome<C::Reply>, AppError> {
        // Request ids are the caller's: they are kept per tenant, and the
        // digest names the caller, so nobody can be answered from another
        // caller's request (a key or temporary password in particular).
        let request_id = Self::scoped_request_id(ctx.tenant.as_ref(), ctx.request_id.as_str());
        let fingerprint = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(ctx.fingerprint);
            h.update(postcard::to_stdvec(&ctx.actor).unwrap_or_default());
            <[u8; 32]>::from(h.finalize())
        };
        if let Some(record) = self
            .log
            .request(&request_id)
            .await
            .map_err(AppError::from)?
        {
            if record.fingerprint != fingerprint {
                return Err(AppError::RequestIdReused);
            }
            let reply: C::Reply = postcard::from_bytes(&record.reply).map_err(AppError::storage)?;
            cmd.check_replay(self, &reply).await?;
            return Ok(Outcome {
                reply,
                position: record.last_position,
                duplicate: true,
            });
        }
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                // Concurrent deciders of one stream would collide again in
                // lockstep: spread them out a little more each round.
                let ceiling_us = 200u64 << attempt.min(6);
                let wait = rand::random_range(0..ceiling_us);
                tokio::time::sleep(std::time::Duration::from_micros(wait)).await;
            }
            let mut unit = Unit::new(self);
            let (mut changes, reply) = cmd.decide(self, &mut unit).await?;
            // Personal values are stored sealed under their person's key.
            for change in &mut changes {
                seal(
                    self.vault.as_ref(),
                    change.stream.as_str(),
                    &mut change.event,
                )
                .await
                .map_err(|e| AppError::Unavailable(e.to_string()))?;
            }
            let encoded = postcard::to_stdvec(&reply).map_err(AppError::storage)?;
            let streams = unit.into_streams(changes);
            // Refused here, as the caller's error: the log would refuse it too,
            // as a fault.
            if let Some(event) = streams
                .iter()
                .flat_map(|s| &s.events)
                .find(|e| e.payload.len() > access_log::log::MAX_PAYLOAD_BYTES)
            {
                return Err(AppError::TooLarge(format!(
                    "this change ({}) would record {} bytes; at most {} fit in one event",
                    event.event_type,
                    event.payload.len(),
                    access_log::log::MAX_PAYLOAD_BYTES
                )));
            }
            if streams.iter().any(|s| s.stream.id() == "_") {
                return Err(AppError::Internal(anyhow::anyhow!(
                    "a decision named a stream from an invalid id"
                )));
            }
            let request = AppendRequest {
                request_id: request_id.clone(),
                fingerprint,
                tenant: ctx.tenant.as_ref().map(ToString::to_string),
                actor: ctx.actor.clone(),
                correlation_id: ctx.correlation_id,
                causation_id: None,
                occurred_at_ms: now_ms(),
                streams,
                reply: encoded,
            };
            let started = std::time::Instant::now();
            let appended = self.log.append(request).await;
            metrics::histogram!("access_append_seconds").record(started.elapsed().as_secs_f64());
            match appended {
                Ok(committed) if committed.duplicate => {
                    // A concurrent retry of the same request won the race.
                    let reply: C::Reply =
                        postcard::from_bytes(&committed.reply).map_err(AppError::storage)?;
                    cmd.check_replay(self, &reply).await?;
                    return Ok(Outcome {
                        reply,
                        position: committed.last_position,
                        duplicate: true,
                    });
                }
                Ok(committed) => {
                    return Ok(Outcome {
                        reply,
                        position: committed.last_position,
                        duplicate: false,
                    });
                }
                Err(AppendError::Conflict { stream, actual, .. }) => {
                    tracing::debug!(%stream, "conflict; deciding again");
                    self.until_readable(&stream, actual).await;
                    continue;
                }
                Err(AppendError::RequestIdReused(_)) => return Err(AppError::RequestIdReused),
                Err(AppendError::Invalid(m)) => return Err(AppError::Internal(anyhow::anyhow!(m))),
                Err(AppendError::Unavailable(m)) => return Err(AppError::Unavailable(m)),
                Err(AppendError::Damaged(d)) => return Err(AppError::Damaged(d)),
            }
        }
        Err(AppError::Conflict(
            "too many concurrent changes to the same records; retry".into(),
        ))
    }

    /// Waits, at most a second, until reads show `stream` at `version`. A
    /// conflict can come from an append that is still being written; deciding
    /// again before it can be read would only conflict again, and a burst of
    /// callers on one stream would use up their attempts that way.
    async fn until_readable(&self, stream: &StreamId, version: u64) {
        let mut head = self.log.head();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            match self.log.read_stream(stream).await {
                Ok(events) if events.last().map_or(0, |e| e.stream_version) < version => {}
                _ => return,
            }
            if !matches!(
                tokio::time::timeout_at(deadline, head.changed()).await,
                Ok(Ok(()))
            ) {
                return;
            }
        }
    }

    /// The key a caller's request id is remembered under: its tenant's, or the
    /// operator's (`_`).
    pub fn scoped_request_id(tenant: Option<&TenantId>, request_id: &str) -> String {
        format!("{}/{request_id}", tenant.map_or("_", TenantId::as_str))
    }

    /// The request id as its caller sent it, from the key an event of
    /// `tenant` stores (see [`App::scoped_request_id`]); ids stored by other
    /// means (derived ones, imports) come back as they are.
    pub fn caller_request_id<'a>(tenant: Option<&str>, stored: &'a str) -> &'a str {
        stored
            .strip_prefix(tenant.unwrap_or("_"))
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(stored)
    }

    /// Whether a self-service reset link may go to this contact now: at most
    /// one a minute, so nobody can flood a mailbox (or keep killing links).
    pub fn may_send_reset(&self, tenant: &str, contact_id: &str) -> bool {
        let now = std::time::Instant::now();
        let mut last = self
            .reset_throttle
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if last.len() > 10_000 {
            last.retain(|_, at| now.duration_since(*at) < RESET_INTERVAL);
        }
        let key = format!("{tenant}/{contact_id}");
        match last.get(&key) {
            Some(at) if now.duration_since(*at) < RESET_INTERVAL => false,
            _ => {
                last.insert(key, now);
                true
            }
        }
    }

    /// Checks a new password against its tenant's rules (from the read model:
    /// a policy changed a moment ago may not apply yet) and the login's names.
    pub fn check_new_password(
        &self,
        tenant: &TenantId,
        password: &Password,
        contact: &ContactState,
        field: &str,
    ) -> Result<(), AppError> {
        let policy = self
            .models
            .tenant(tenant.as_str())
            .map_err(AppError::Internal)?
            .map(|t| t.password_policy)
            .unwrap_or_default();
        check_password(&policy, password, contact, field)
    }

    /// Waits until the read models have reached `min_position`.
    pub async fn wait_for(&self, min_position: u64) -> Result<(), AppError> {
        if min_position == 0 {
            return Ok(());
        }
        match self
            .models
            .wait_for(min_position, self.settings.query_wait)
            .await
        {
            Ok(()) => Ok(()),
            Err(behind) => {
                // Past the log's own head, no wait will ever reach it: the
                // caller's position is wrong, and retrying cannot help.
                let head = match self.log.latest().await {
                    Ok(head) => head,
                    Err(_) => return Err(AppError::Behind(behind)),
                };
                if min_position > head {
                    Err(crate::domain::DomainError::FailedPrecondition {
                        reason: Reason::PositionBeyondLog,
                        message: format!(
                            "min_position {min_position} is beyond the log's last position {head}; use a position a reply gave"
                        ),
                    }
                    .into())
                } else {
                    Err(AppError::Behind(behind))
                }
            }
        }
    }
}
