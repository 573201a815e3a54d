//! Reads: request records, stream heads and direct-get batches.

use super::{Core, Head, StoredRequest, storage, unavailable};
use crate::log::{AppendError, LogError, RequestRecord};
use access_catalogue::chain::GENESIS;
use access_catalogue::envelope::{Envelope, StreamId};
use async_nats::jetstream::stream;
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::time::Duration;

impl Core {
    pub(super) fn subject_of(&self, stream: &StreamId) -> String {
        format!(
            "{}.ev.{}.{}.{}",
            self.prefix,
            stream.tenant(),
            stream.aggregate().as_str(),
            stream.id()
        )
    }

    pub(super) fn request_subject(&self, request_id: &str) -> String {
        format!(
            "{}.req.{}",
            self.prefix,
            hex::encode(Sha256::digest(request_id.as_bytes()))
        )
    }

    pub(super) async fn stream_head(&self, stream: &StreamId) -> Result<Head, AppendError> {
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

    pub(super) async fn record(&self, request_id: &str) -> Result<Option<RequestRecord>, LogError> {
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

    /// Up to `max` messages from sequence `from` on, read in one direct-get
    /// batch: those of `subject` if given, else every event (request records
    /// skipped here: a wildcard filter costs the server a scan of every
    /// subject it knows, some 0.5 s a batch at a million streams). Returns
    /// the events, the last sequence looked at, and whether more follow.
    pub(super) async fn direct_batch(
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
