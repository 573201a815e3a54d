//! The command executor: load the streams a decision needs, decide, append
//! everything atomically with the versions seen, and on a conflict load
//! again and decide again. A request id seen before is answered from its
//! first result without deciding anything.

use super::{App, AppError, MAX_ATTEMPTS};
use crate::domain::values::{RequestId, TenantId};
use crate::domain::{Aggregate, Change};
use access_catalogue::{Actor, StreamId};
use access_log::log::{AppendError, AppendRequest, EventLog, NewEvent, StreamAppend};
use access_log::vault::{Vault, decode_open, seal};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use uuid::Uuid;

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

impl<R> Outcome<R> {
    /// The same outcome with its reply mapped.
    pub fn map<T>(self, f: impl FnOnce(R) -> T) -> Outcome<T> {
        Outcome {
            reply: f(self.reply),
            position: self.position,
            duplicate: self.duplicate,
        }
    }
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

    /// Takes a stream's state as the read models have it at `version`
    /// instead of folding the stream (for streams that grow without bound,
    /// such as a webhook's delivery records). The append still expects
    /// `version`, so a row behind the stream is refused like any concurrent
    /// change, and the decision is made again.
    pub fn assume(&mut self, stream: &StreamId, version: u64) {
        self.versions.insert(stream.clone(), version);
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

    /// The changes as appends to their streams, each expecting the version
    /// this unit read (0 for a stream it did not read: a new one).
    pub(super) fn into_streams(self, changes: Vec<Change>) -> Vec<StreamAppend> {
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
        let started = std::time::Instant::now();
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
            Err(AppError::Unavailable(_) | AppError::Behind(_) | AppError::Busy(_)) => {
                "unavailable"
            }
            Err(AppError::Damaged(_)) => "damaged",
            Err(AppError::Internal(_)) => "internal",
        };
        metrics::counter!("access_commands_total", "command" => command, "outcome" => outcome)
            .increment(1);
        // One line per command at debug level, inside the command's span:
        // its tenant, request id and correlation id come with it.
        let ms = started.elapsed().as_millis() as u64;
        match &result {
            Err(e) => tracing::debug!(command, outcome, ms, error = %e, "command finished"),
            Ok(_) => tracing::debug!(command, outcome, ms, "command finished"),
        }
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
                occurred_at_ms: self.now_ms(),
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
                Err(e) => return Err(e.into()),
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
    pub(super) async fn until_readable(&self, stream: &StreamId, version: u64) {
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
}

impl App {
    /// Runs a command the service issues itself, in `tenant`, under a
    /// request id it derived (so every replica doing the same records it once).
    pub(super) async fn execute_derived<C: Command>(
        &self,
        request_id: &str,
        tenant: &TenantId,
        actor: Actor,
        cmd: &C,
    ) -> Result<Outcome<C::Reply>, AppError> {
        let request = RequestId::parse(request_id)
            .map_err(|m| AppError::Internal(anyhow::anyhow!("derived request id: {m}")))?;
        let ctx = CommandContext {
            fingerprint: crate::secrets::sha256(request_id),
            request_id: request,
            tenant: Some(tenant.clone()),
            actor,
            correlation_id: Uuid::new_v4(),
        };
        self.execute(&ctx, cmd).await
    }
}
