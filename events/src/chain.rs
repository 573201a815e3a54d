//! The per-stream SHA-256 hash chain and the verifier that walks it.
//!
//! Each event's hash covers every envelope field except its global position
//! (assigned by the backend, and checked separately for gaps) and the hash
//! itself, plus the previous event's hash of the same stream. Changing, removing
//! or reordering any stored event therefore breaks the chain at that event.

use crate::envelope::{Actor, Envelope, StreamId};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use uuid::Uuid;

/// The hash a stream's first event links to.
pub const GENESIS: [u8; 32] = [0; 32];

const DOMAIN: &[u8] = b"access-events/chain/v1\0";

#[derive(Serialize)]
struct Hashed<'a> {
    envelope_version: u16,
    stream: &'a StreamId,
    stream_version: u64,
    event_id: &'a Uuid,
    event_type: &'a str,
    schema_version: u16,
    occurred_at_ms: i64,
    tenant: &'a Option<String>,
    actor: &'a Actor,
    correlation_id: &'a Uuid,
    causation_id: &'a Option<Uuid>,
    request_id: &'a str,
    prev_hash: &'a [u8; 32],
    payload: &'a [u8],
}

/// Computes the hash an envelope must carry, from its fields and `prev_hash`.
pub fn hash_of(e: &Envelope) -> [u8; 32] {
    let hashed = Hashed {
        envelope_version: e.envelope_version,
        stream: &e.stream,
        stream_version: e.stream_version,
        event_id: &e.event_id,
        event_type: &e.event_type,
        schema_version: e.schema_version,
        occurred_at_ms: e.occurred_at_ms,
        tenant: &e.tenant,
        actor: &e.actor,
        correlation_id: &e.correlation_id,
        causation_id: &e.causation_id,
        request_id: &e.request_id,
        prev_hash: &e.prev_hash,
        payload: &e.payload,
    };
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(postcard::to_stdvec(&hashed).unwrap_or_default());
    h.finalize().into()
}

/// The first place where the log is not what was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "break at position {position}{}: {what}",
    if stream.is_empty() { String::new() } else { format!(" (stream {stream})") }
)]
pub struct ChainBreak {
    /// Global position of the offending event (or the expected one, for a gap).
    pub position: u64,
    /// Its stream, if it could be read.
    pub stream: String,
    /// What is wrong, in words.
    pub what: String,
}

/// Walks envelopes in global order and finds the first break.
#[derive(Debug, Default)]
pub struct ChainVerifier {
    next_position: u64,
    dense: bool,
    heads: HashMap<StreamId, (u64, [u8; 32])>,
    events: u64,
}

impl ChainVerifier {
    /// A verifier for a log whose positions increase but may skip numbers
    /// (JetStream, where request records take sequences of their own).
    pub fn allowing_gaps() -> Self {
        ChainVerifier {
            dense: false,
            ..Self::new()
        }
    }

    /// The verifier that fits `log`'s numbering.
    pub fn for_log(log: &dyn crate::log::EventLog) -> Self {
        if log.dense_positions() {
            Self::new()
        } else {
            Self::allowing_gaps()
        }
    }

    /// A verifier expecting the log to start at position 1.
    pub fn new() -> Self {
        ChainVerifier {
            next_position: 1,
            dense: true,
            ..Default::default()
        }
    }

    /// Checks the next envelope of the global order.
    pub fn check(&mut self, e: &Envelope) -> Result<(), ChainBreak> {
        let fail = |what: String| ChainBreak {
            position: e.position,
            stream: e.stream.to_string(),
            what,
        };
        let out_of_place = if self.dense {
            e.position != self.next_position
        } else {
            e.position < self.next_position
        };
        if out_of_place {
            return Err(ChainBreak {
                position: self.next_position,
                stream: String::new(),
                what: format!(
                    "expected position {}, found {}",
                    self.next_position, e.position
                ),
            });
        }
        let (version, prev) = self.heads.get(&e.stream).copied().unwrap_or((0, GENESIS));
        if e.stream_version != version + 1 {
            return Err(fail(format!(
                "stream version {} follows {version}",
                e.stream_version
            )));
        }
        if e.prev_hash != prev {
            return Err(fail(
                "previous-hash link does not match the stream's last event".into(),
            ));
        }
        if hash_of(e) != e.hash {
            return Err(fail(
                "content does not match its hash (altered event)".into(),
            ));
        }
        self.heads
            .insert(e.stream.clone(), (e.stream_version, e.hash));
        self.next_position = e.position + 1;
        self.events += 1;
        Ok(())
    }

    /// How many events and streams were verified so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.events, self.heads.len() as u64)
    }

    /// The verified head of every stream: version and hash.
    pub fn heads(&self) -> &HashMap<StreamId, (u64, [u8; 32])> {
        &self.heads
    }
}
