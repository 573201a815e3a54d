//! The per-stream SHA-256 hash chain and the verifier that walks it.
//!
//! Each event's hash covers every envelope field except its global position
//! (assigned by the backend, and checked separately for gaps) and the hash
//! itself, plus the previous event's hash of the same stream. Changing, removing
//! or reordering any stored event therefore breaks the chain at that event.

use crate::damage::Damage;
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
    // Serialized into a buffer kept per thread and hashed in one pass: many
    // small updates of the hasher (one per field) cost more than the copy.
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with_borrow_mut(|buffer| {
        let mut out = std::mem::take(buffer);
        out.clear();
        out.extend_from_slice(DOMAIN);
        // Serializing borrowed fields into a Vec cannot fail.
        let Ok(out) = postcard::to_extend(&hashed, out) else {
            return [0; 32];
        };
        let digest: [u8; 32] = Sha256::digest(&out).into();
        *buffer = out;
        digest
    })
}

/// How `e` fails to follow a stream whose last event had `version` and
/// `prev` as its hash, if it does.
fn link_fault(e: &Envelope, version: u64, prev: &[u8; 32]) -> Option<String> {
    link_fault_with(e, version, prev, || hash_of(e) == e.hash)
}

/// As [`link_fault`], with whether the content matches its hash told by
/// `content_ok` (computed only if the links hold).
fn link_fault_with(
    e: &Envelope,
    version: u64,
    prev: &[u8; 32],
    content_ok: impl FnOnce() -> bool,
) -> Option<String> {
    if e.stream_version != version + 1 {
        return Some(format!(
            "stream version {} follows {version}",
            e.stream_version
        ));
    }
    if e.prev_hash != *prev {
        return Some("previous-hash link does not match the stream's last event".into());
    }
    if !content_ok() {
        return Some("content does not match its hash (altered event)".into());
    }
    None
}

/// Whether an event's content matches the hash it carries: the part of a
/// check that needs no other event, so a reader may take it for many events
/// side by side and then call [`ChainFollower::check_hashed`] in order.
pub fn content_matches(e: &Envelope) -> bool {
    hash_of(e) == e.hash
}

fn damage_of(e: &Envelope, what: String) -> Damage {
    Damage::new("the event log", what)
        .at_position(e.position)
        .in_stream(Some(e.stream.to_string()))
}

/// Checks one stream's events, read whole and in order, against its chain.
/// The damage names the log generically; the backend says which file.
pub fn verify_stream(events: &[Envelope]) -> Result<(), Damage> {
    let (mut version, mut prev) = (0, GENESIS);
    for e in events {
        if let Some(what) = link_fault(e, version, &prev) {
            return Err(damage_of(e, what));
        }
        (version, prev) = (e.stream_version, e.hash);
    }
    Ok(())
}

/// Checks events as a consumer reads them in log order: each against its own
/// hash, and against its stream's last event when that is still remembered
/// (a bounded number of stream heads is kept, so memory stays flat on any
/// log; [`ChainVerifier`] is the complete check).
#[derive(Debug)]
pub struct ChainFollower {
    heads: HashMap<StreamId, (u64, [u8; 32])>,
    capacity: usize,
}

impl ChainFollower {
    /// A follower remembering at most `capacity` stream heads.
    pub fn new(capacity: usize) -> Self {
        ChainFollower {
            heads: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Checks the next event read; an event seen before (a consumer retrying
    /// a batch) passes again.
    pub fn check(&mut self, e: &Envelope) -> Result<(), Damage> {
        self.check_hashed(e, content_matches(e))
    }

    /// [`ChainFollower::check`] with [`content_matches`] taken already.
    pub fn check_hashed(&mut self, e: &Envelope, content_ok: bool) -> Result<(), Damage> {
        let fault = match self.heads.get(&e.stream) {
            Some((version, hash)) if e.stream_version <= *version => {
                let seen_again = e.stream_version < *version || e.hash == *hash;
                (!seen_again || !content_ok)
                    .then(|| "an event that differs from the one read before at its place".into())
            }
            Some((version, hash)) => link_fault_with(e, *version, hash, || content_ok),
            None if e.stream_version == 1 => link_fault_with(e, 0, &GENESIS, || content_ok),
            None => (!content_ok).then(|| "content does not match its hash (altered event)".into()),
        };
        if let Some(what) = fault {
            return Err(damage_of(e, what));
        }
        if self.heads.len() >= self.capacity && !self.heads.contains_key(&e.stream) {
            self.heads.clear();
        }
        self.heads
            .insert(e.stream.clone(), (e.stream_version, e.hash));
        Ok(())
    }
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

/// A stream's name folded to 16 bytes (truncated SHA-256): what
/// [`ChainVerifier`] keys its heads by, so that a log of millions of streams
/// is walked without a copy of every name (finding two names that fold alike
/// would take about 2^64 tries).
pub type StreamKey = [u8; 16];

/// The key [`ChainVerifier`] remembers `stream` under.
pub fn stream_key(stream: &StreamId) -> StreamKey {
    let digest = Sha256::digest(stream.as_str().as_bytes());
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// Walks envelopes in global order and finds the first break.
#[derive(Debug, Default)]
pub struct ChainVerifier {
    next_position: u64,
    dense: bool,
    /// Each stream's verified head: version and hash.
    heads: HashMap<StreamKey, (u64, [u8; 32])>,
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

    /// The verifier for a log whose positions are `dense` (no gaps) or not.
    pub fn for_positions(dense: bool) -> Self {
        if dense {
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
        let key = stream_key(&e.stream);
        let (version, prev) = self.heads.get(&key).copied().unwrap_or((0, GENESIS));
        if let Some(what) = link_fault(e, version, &prev) {
            return Err(fail(what));
        }
        self.heads.insert(key, (e.stream_version, e.hash));
        self.next_position = e.position + 1;
        self.events += 1;
        Ok(())
    }

    /// Moves past an event that failed its check, taking it as its stream's
    /// head, so one damaged event is reported once and the rest of the log
    /// is still checked.
    pub fn skip(&mut self, e: &Envelope) {
        self.heads
            .insert(stream_key(&e.stream), (e.stream_version, e.hash));
        self.next_position = e.position + 1;
    }

    /// How many events and streams were verified so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.events, self.heads.len() as u64)
    }

    /// The verified head of `stream`: version and hash.
    pub fn head(&self, stream: &StreamId) -> Option<(u64, [u8; 32])> {
        self.heads.get(&stream_key(stream)).copied()
    }
}
