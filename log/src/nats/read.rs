//! Reads from the server: direct-get batches of frames, and where the last
//! event is.

use super::frame::{self, EVENTS_HEADER, ReadFrame};
use super::{Core, storage};
use crate::log::LogError;
use bytes::Bytes;
use futures::StreamExt;
use std::time::Duration;

/// Messages looked at, at most, going back from the last for one with events.
const LOOK_BACK: u64 = 1_000;

/// The frames of one direct-get batch: sequence, subject, frame.
pub(super) type Frames = Vec<(u64, String, ReadFrame)>;

impl Core {
    /// Up to `max` messages (and about `max_bytes`) from sequence `from` on,
    /// read in one direct-get batch and decoded. Returns the frames, the last sequence looked at,
    /// and whether more follow.
    pub(super) async fn direct_batch(
        &self,
        from: u64,
        max: usize,
        max_bytes: usize,
    ) -> Result<(Frames, u64, bool), LogError> {
        // A message holds one event or hundreds: the bytes bound what is
        // sent (the server always sends at least one message).
        let request = serde_json::json!({ "seq": from, "batch": max, "max_bytes": max_bytes });
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
                    let seq = header("Nats-Sequence")
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| LogError::Storage("a read without a sequence".into()))?;
                    let subject = header("Nats-Subject").unwrap_or_default();
                    last = last.max(seq);
                    let frame = frame::read(&message.payload, seq)?;
                    out.push((seq, subject, frame));
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

    /// The position of the last event at or before the message `seq` (0 if
    /// none): the log's head when `seq` is its last message. A message with
    /// no events (an operator's request record) sends the look further back.
    pub(super) async fn last_event(&self, mut seq: u64) -> Result<u64, LogError> {
        let floor = seq.saturating_sub(LOOK_BACK);
        while seq > floor {
            let message = self
                .stream
                .direct_get(seq)
                .await
                .map_err(|e| storage("reading the log's last message", e))?;
            let events = message
                .headers
                .get(EVENTS_HEADER)
                .and_then(|v| v.as_str().parse::<usize>().ok())
                .unwrap_or(0);
            if events > 0 {
                return Ok(frame::position(seq, events - 1));
            }
            seq -= 1;
        }
        Ok(0)
    }
}
