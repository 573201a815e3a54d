//! Reads from the server: direct-get batches of frames, and where the last
//! event is.

use super::direct::{self, Refusal};
use super::frame::{self, EVENTS_HEADER, ReadFrame};
use super::{Core, storage};
use crate::log::LogError;

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
        let answer = direct::batch(&self.client, &self.name, &request)
            .await
            .map_err(|r| match r {
                Refusal::Unavailable(why) => LogError::Unavailable(why),
                Refusal::Refused(why) => LogError::Storage(why),
            })?;
        let mut last = from.saturating_sub(1);
        let mut out = Vec::with_capacity(answer.messages.len());
        for message in answer.messages {
            let seq = direct::header(&message, "Nats-Sequence")
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| LogError::Storage("a read without a sequence".into()))?;
            let subject = direct::header(&message, "Nats-Subject").unwrap_or_default();
            last = last.max(seq);
            let frame = frame::read(&message.payload, seq)?;
            out.push((seq, subject, frame));
        }
        Ok((out, last, answer.more))
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
