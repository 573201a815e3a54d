//! Webhooks: where a tenant's public events are posted, signed, and how far
//! each has been delivered. The delivery records are the webhook's outbox
//! cursor: the log itself is the outbox.

use crate::codec::payload_enum;
use serde::{Deserialize, Serialize};

/// A place in the public feed: an event's log position and its part (an
/// event of the log may stand for several public events).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FeedPoint {
    /// The log position of the stored event.
    pub position: u64,
    /// The public event's part within it.
    pub part: u32,
}

/// What a tenant configures about a webhook, replaced as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSettings {
    /// Where deliveries are posted: https, or http to this machine.
    pub url: String,
    /// The public event types it receives; empty: every type.
    pub event_types: Vec<String>,
    /// What it is for, shown to staff.
    pub description: String,
}

/// A tenant added a webhook. Its signing secret is derived from the server
/// key `server_key_id`, the webhook and the secret's generation (the first
/// is 1); nothing of it is recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookCreated {
    /// The webhook's id.
    pub webhook_id: String,
    /// Where and what.
    pub settings: WebhookSettings,
    /// The server key its first secret is derived from.
    pub server_key_id: u8,
    /// It receives the public events after this place (the log's head when
    /// it was added).
    pub starts_after: FeedPoint,
}

/// A webhook's settings were replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookUpdated {
    /// The new settings.
    pub settings: WebhookSettings,
}

/// A webhook got a new signing secret; deliveries carry a signature by the
/// old one too for a day, so a receiver can switch without losing any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSecretRotated {
    /// The new secret's generation.
    pub generation: u32,
    /// The server key it is derived from.
    pub server_key_id: u8,
}

/// A webhook was removed: nothing more is posted to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRemoved {
    /// Why, for the record.
    pub reason: String,
}

/// Deliveries the receiver accepted, in order: every public event the
/// webhook takes after `after` up to and including `through`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivered {
    /// True for deliveries of a replay, false for the live feed.
    pub replay: bool,
    /// Where the deliveries recorded here began (exclusive).
    pub after: FeedPoint,
    /// The last event delivered.
    pub through: FeedPoint,
    /// How many deliveries that was.
    pub count: u32,
    /// The last delivery's event id.
    pub last_event_id: String,
}

/// The receiver refused or did not answer a delivery; it is retried with
/// backoff. Recorded once per run of failures, and then every hundredth try.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookFailing {
    /// The event being delivered.
    pub at: FeedPoint,
    /// Its id.
    pub event_id: String,
    /// Tries so far.
    pub attempts: u32,
    /// The last answer: a status code and the start of its body, or the error.
    pub error: String,
}

/// Deliveries were given up after failing for too long: the webhook waits
/// at `at`, which was not delivered, until staff resume it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookGaveUp {
    /// True when it was a replay's delivery: the replay waits, not the live feed.
    pub replay: bool,
    /// The event it stopped at.
    pub at: FeedPoint,
    /// Its id.
    pub event_id: String,
    /// Tries made.
    pub attempts: u32,
    /// The last answer.
    pub error: String,
}

/// Staff resumed a webhook that had given up: delivery goes on from where
/// it stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookResumed {}

/// The public events from `after` (exclusive) through position `through`
/// are to be posted again, before the live feed goes on. Each carries the
/// same id as the first time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookReplayRequested {
    /// Replay after this place.
    pub after: FeedPoint,
    /// Up to this log position, inclusive.
    pub through: u64,
}

/// A replay reached its end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookReplayFinished {
    /// Which replay: where it began...
    pub after: FeedPoint,
    /// ...and its last log position.
    pub through: u64,
    /// How many events it posted.
    pub count: u64,
}

payload_enum! {
    /// Events of a webhook stream.
    pub enum WebhookEvent {
        /// See [`WebhookCreated`].
        WebhookCreated(WebhookCreated) = 1,
        /// See [`WebhookUpdated`].
        WebhookUpdated(WebhookUpdated) = 1,
        /// See [`WebhookSecretRotated`].
        WebhookSecretRotated(WebhookSecretRotated) = 1,
        /// See [`WebhookRemoved`].
        WebhookRemoved(WebhookRemoved) = 1,
        /// See [`WebhookDelivered`].
        WebhookDelivered(WebhookDelivered) = 1,
        /// See [`WebhookFailing`].
        WebhookFailing(WebhookFailing) = 1,
        /// See [`WebhookGaveUp`].
        WebhookGaveUp(WebhookGaveUp) = 1,
        /// See [`WebhookResumed`].
        WebhookResumed(WebhookResumed) = 1,
        /// See [`WebhookReplayRequested`].
        WebhookReplayRequested(WebhookReplayRequested) = 1,
        /// See [`WebhookReplayFinished`].
        WebhookReplayFinished(WebhookReplayFinished) = 1,
    }
    legacy {}
}
