//! One direct-get request to a stream answered by several messages and an
//! end marker: the log's batched reads and the key vault's many keys at once.

use bytes::Bytes;
use futures::StreamExt;
use std::time::Duration;

/// How long one answer of a batch may take to arrive.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// What a batch brought back.
pub(super) struct Batch {
    /// The messages found, in the order sent.
    pub messages: Vec<async_nats::Message>,
    /// Whether more messages match than were sent.
    pub more: bool,
}

/// Why a batch brought nothing back.
pub(super) enum Refusal {
    /// No answer, or the server cannot answer now: worth asking again.
    Unavailable(String),
    /// The server refused the request itself.
    Refused(String),
}

/// A header of `message`, as text.
pub(super) fn header(message: &async_nats::Message, name: &str) -> Option<String> {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_owned())
}

/// Sends `request` (the direct-get API's JSON) to the stream `stream` and
/// gathers its answer.
pub(super) async fn batch(
    client: &async_nats::Client,
    stream: &str,
    request: &serde_json::Value,
) -> Result<Batch, Refusal> {
    let unavailable =
        |e: &dyn std::fmt::Display| Refusal::Unavailable(format!("reading from NATS: {e}"));
    let inbox = client.new_inbox();
    let mut replies = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| unavailable(&e))?;
    client
        .publish_with_reply(
            format!("$JS.API.DIRECT.GET.{stream}"),
            inbox,
            Bytes::from(request.to_string()),
        )
        .await
        .map_err(|e| unavailable(&e))?;
    let mut messages = Vec::new();
    loop {
        let message = tokio::time::timeout(ANSWER_WITHIN, replies.next())
            .await
            .map_err(|_| Refusal::Unavailable("no answer from NATS to a read".into()))?
            .ok_or_else(|| Refusal::Unavailable("the read's subscription closed".into()))?;
        match message.status.map(u16::from) {
            None => messages.push(message),
            Some(204) => {
                let pending = header(&message, "Nats-Num-Pending")
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
                return Ok(Batch {
                    messages,
                    more: pending > 0,
                });
            }
            Some(404) => {
                return Ok(Batch {
                    messages,
                    more: false,
                });
            }
            Some(code @ (408 | 503)) => {
                return Err(Refusal::Unavailable(format!(
                    "NATS could not answer a read now: {code}"
                )));
            }
            Some(code) => {
                return Err(Refusal::Refused(format!(
                    "NATS refused a read: {code} {}",
                    message.description.unwrap_or_default()
                )));
            }
        }
    }
}
