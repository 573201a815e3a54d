//! Appends: the writer task and its group commits as atomic batches.

use super::{
    ALONE_IN_FLIGHT, Core, ERR_DUPLICATE_IN_BATCH, ERR_WRONG_LAST_SEQUENCE, GROUP_APPENDS, Head,
    Job, MAX_EVENTS_PER_APPEND, PubAck, Sealed, StoredRequest, unavailable,
};
use crate::log::{AppendError, AppendRequest, Committed, StreamAppend};
use access_catalogue::chain::GENESIS;
use access_catalogue::envelope::StreamId;
use async_nats::{HeaderMap, connection::State};
use bytes::Bytes;
use futures::StreamExt;
use futures::future::try_join_all;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

pub(super) fn conflict(s: &StreamAppend, head: &Head) -> AppendError {
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
pub(super) fn last_event(last_sequence: u64) -> u64 {
    last_sequence.saturating_sub(1)
}

/// The writer: takes every append waiting (up to a batch's worth) and
/// commits them as one atomic batch. JetStream's atomic batches cost the same
/// few milliseconds whatever their size, so concurrent commands share them:
/// the group commit of the distributed mode.
/// The messages an append takes in a batch: its events and its request record.
fn messages_of(job: &Job) -> usize {
    job.request
        .streams
        .iter()
        .map(|s| s.events.len())
        .sum::<usize>()
        + 1
}

pub(super) async fn write_groups(core: Arc<Core>, mut queue: mpsc::Receiver<Job>) {
    while let Some(first) = queue.recv().await {
        let mut messages = messages_of(&first);
        let mut group = vec![first];
        while group.len() < GROUP_APPENDS {
            let Ok(job) = queue.try_recv() else { break };
            messages += messages_of(&job);
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
    pub(super) async fn commit_group(&self, group: Vec<Job>) {
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
pub(super) fn answer(
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

impl Core {
    /// The first result of a request id already in the log, if any.
    pub(super) async fn answer_from_record(
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
    pub(super) async fn unless_recorded(
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
    pub(super) async fn after_refusal(&self, r: &AppendRequest) -> Result<Committed, AppendError> {
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
    pub(super) fn seal_job(
        &self,
        r: &AppendRequest,
        heads: &[Head],
    ) -> Result<Sealed, AppendError> {
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
    pub(super) async fn publish_batch(
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
    pub(super) async fn head_for(&self, s: &StreamAppend) -> Result<Head, AppendError> {
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

    pub(super) fn lock_heads(&self) -> std::sync::MutexGuard<'_, HashMap<StreamId, Head>> {
        self.heads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers the streams' new heads after a batch whose first message got
    /// sequence `first`.
    pub(super) fn remember(&self, lasts: &[(StreamId, u64, [u8; 32], usize)], first: u64) {
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

    pub(super) fn forget(&self, r: &AppendRequest) {
        let mut heads = self.lock_heads();
        for s in &r.streams {
            heads.remove(&s.stream);
        }
    }

    /// Appends one request as a batch of its own.
    pub(super) async fn append_alone(&self, r: AppendRequest) -> Result<Committed, AppendError> {
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
}
