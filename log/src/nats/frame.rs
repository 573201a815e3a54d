//! What one JetStream message holds: a frame of whole envelopes, all of one
//! scope (a tenant, or one global stream), and the request records of the
//! commands whose events end in it.
//!
//! An event's position is its message's sequence times [`SLOTS`] plus its
//! place in the frame: positions increase with the log's order and leave
//! gaps, and a position names its message without an index.

use access_catalogue::envelope::{Envelope, GLOBAL_TENANT, StreamId};
use serde::{Deserialize, Serialize};

/// Positions per message.
pub(crate) const SLOTS: u64 = 1000;
/// Events one frame holds at most.
pub(crate) const MAX_FRAME_EVENTS: usize = (SLOTS - 1) as usize;
/// The first byte of every frame: its layout.
const LAYOUT: u8 = 1;
/// The header naming how many events a message holds, so the head's
/// position is known from a message's headers alone (`last_event`).
pub(crate) const EVENTS_HEADER: &str = "Access-Events";

/// The position of the event at `index` in the message of sequence `seq`.
pub(crate) fn position(seq: u64, index: usize) -> u64 {
    seq * SLOTS + index as u64
}

/// The sequence of the message holding `position`.
pub(crate) fn sequence_of(position: u64) -> u64 {
    position / SLOTS
}

/// A command's record, kept in the frame that ends it (the last frame of
/// its request's scope): what a retry of its request id is answered from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FrameRequest {
    /// The caller's request id.
    pub request_id: String,
    /// Digest of the first payload stored with it.
    pub fingerprint: [u8; 32],
    /// The command's stored answer.
    pub reply: Vec<u8>,
    /// Where its first event is: messages before this one, index there.
    pub first: (u32, u32),
    /// Where its last event is.
    pub last: (u32, u32),
}

impl FrameRequest {
    /// The positions of the command's first and last events, given the
    /// sequence of the message holding this record.
    pub fn positions(&self, seq: u64) -> (u64, u64) {
        let at = |(back, index): (u32, u32)| {
            position(seq.saturating_sub(u64::from(back)), index as usize)
        };
        (at(self.first), at(self.last))
    }
}

/// A frame being built: envelopes already encoded.
#[derive(Default)]
pub(crate) struct Frame {
    /// Encoded envelopes (position 0: the place fills it in on read).
    pub envelopes: Vec<Vec<u8>>,
    /// The request records of commands that end here.
    pub requests: Vec<FrameRequest>,
}

#[derive(Serialize)]
struct Out<'a> {
    envelopes: Vec<&'a [u8]>,
    requests: &'a [FrameRequest],
}

#[derive(Deserialize)]
struct In<'a> {
    #[serde(borrow)]
    envelopes: Vec<&'a [u8]>,
    requests: Vec<FrameRequest>,
}

/// A stored frame read back: its envelopes placed, and its requests.
#[derive(Debug)]
pub(crate) struct ReadFrame {
    /// The envelopes, positions filled in.
    pub envelopes: Vec<Envelope>,
    /// Each envelope's bytes as sealed (at position 0), shared with the
    /// message read: the index stores them as they are.
    pub raw: Vec<bytes::Bytes>,
    /// The request records.
    pub requests: Vec<FrameRequest>,
}

impl Frame {
    /// The stored bytes.
    pub fn encode(&self) -> Vec<u8> {
        let out = Out {
            envelopes: self.envelopes.iter().map(Vec::as_slice).collect(),
            requests: &self.requests,
        };
        // Serializing borrowed plain data into a Vec cannot fail.
        postcard::to_extend(&out, vec![LAYOUT]).unwrap_or_default()
    }

    /// Bytes this frame takes once encoded, near enough to keep a message
    /// under the server's limit.
    pub fn size(&self) -> usize {
        let envelopes: usize = self.envelopes.iter().map(|e| e.len() + 5).sum();
        let requests: usize = self
            .requests
            .iter()
            .map(|r| r.request_id.len() + r.reply.len() + 64)
            .sum();
        envelopes + requests + 16
    }
}

/// Reads a stored frame at sequence `seq`: every envelope must decode, and
/// no more of them than a frame can hold.
pub(crate) fn decode(message: &bytes::Bytes, seq: u64) -> Result<ReadFrame, String> {
    let bytes: &[u8] = message;
    let Some((&layout, rest)) = bytes.split_first() else {
        return Err("an empty message".into());
    };
    if layout != LAYOUT {
        return Err(format!("a frame of layout {layout}, unknown to this build"));
    }
    let read: In<'_> = postcard::from_bytes(rest).map_err(|e| e.to_string())?;
    if read.envelopes.len() > MAX_FRAME_EVENTS {
        return Err(format!("a frame of {} events", read.envelopes.len()));
    }
    let envelopes = read
        .envelopes
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let mut e = Envelope::decode(bytes).map_err(|e| e.to_string())?;
            e.position = position(seq, i);
            Ok(e)
        })
        .collect::<Result<Vec<_>, String>>()?;
    let raw = read
        .envelopes
        .iter()
        .map(|bytes| message.slice_ref(bytes))
        .collect();
    Ok(ReadFrame {
        envelopes,
        raw,
        requests: read.requests,
    })
}

/// [`decode`], its failure named as the log's: the message's first
/// position and why.
pub(crate) fn read(bytes: &bytes::Bytes, seq: u64) -> Result<ReadFrame, crate::log::LogError> {
    decode(bytes, seq).map_err(|reason| crate::log::LogError::Corrupt {
        position: position(seq, 0),
        reason,
    })
}

/// The subject of the scope `stream` belongs to: its tenant's, or its own
/// for a global stream (identities belong to no tenant).
pub(crate) fn scope_of(prefix: &str, stream: &StreamId) -> String {
    if stream.tenant() == GLOBAL_TENANT {
        format!("{prefix}.g.{}.{}", stream.aggregate().as_str(), stream.id())
    } else {
        format!("{prefix}.t.{}", stream.tenant())
    }
}

/// The subject whose frames hold the records of `tenant`'s request ids (the
/// operator's, `_`, without one): every attempt of one request writes there,
/// so two can never both be stored.
pub(crate) fn request_scope(prefix: &str, tenant: Option<&str>) -> String {
    let tenant = tenant
        .filter(|t| {
            !t.is_empty()
                && t.len() <= 64
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .unwrap_or(GLOBAL_TENANT);
    format!("{prefix}.t.{tenant}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use access_catalogue::envelope::Aggregate;

    #[test]
    fn positions_name_their_message_and_place() {
        assert_eq!(position(7, 3), 7003);
        assert_eq!(sequence_of(7003), 7);
        assert_eq!(sequence_of(position(12, MAX_FRAME_EVENTS - 1)), 12);
        let r = FrameRequest {
            request_id: "r".into(),
            fingerprint: [0; 32],
            reply: vec![],
            first: (1, 4),
            last: (0, 2),
        };
        assert_eq!(r.positions(10), (9004, 10002));
    }

    #[test]
    fn a_frame_round_trips_and_refuses_what_it_does_not_know() {
        let e = Envelope {
            envelope_version: access_catalogue::envelope::ENVELOPE_VERSION,
            position: 0,
            stream: StreamId::new(Aggregate::Contact, "acme", "c1").unwrap(),
            stream_version: 1,
            event_id: uuid::Uuid::nil(),
            event_type: "Test".into(),
            schema_version: 1,
            occurred_at_ms: 0,
            tenant: Some("acme".into()),
            actor: access_catalogue::envelope::Actor::Operator,
            correlation_id: uuid::Uuid::nil(),
            causation_id: None,
            request_id: "acme/r".into(),
            prev_hash: [0; 32],
            hash: [1; 32],
            payload: b"x".to_vec(),
        };
        let frame = Frame {
            envelopes: vec![e.encode(), e.encode()],
            requests: vec![FrameRequest {
                request_id: "acme/r".into(),
                fingerprint: [2; 32],
                reply: b"ok".to_vec(),
                first: (0, 0),
                last: (0, 1),
            }],
        };
        let bytes = bytes::Bytes::from(frame.encode());
        assert!(frame.size() >= bytes.len());
        let read = decode(&bytes, 5).unwrap();
        assert_eq!(read.envelopes.len(), 2);
        assert_eq!(read.envelopes[1].position, 5001);
        assert_eq!(read.requests, frame.requests);
        assert_eq!(read.raw[1], e.encode());
        assert!(decode(&bytes::Bytes::new(), 1).is_err());
        assert!(decode(&bytes::Bytes::from_static(&[9, 0, 0]), 1).is_err());
        assert!(decode(&bytes.slice(..bytes.len() - 3), 1).is_err());
    }

    #[test]
    fn scopes_are_the_tenant_or_the_global_stream() {
        let contact = StreamId::new(Aggregate::Contact, "acme", "c1").unwrap();
        let identity = StreamId::new(Aggregate::Identity, GLOBAL_TENANT, "i1").unwrap();
        assert_eq!(scope_of("access", &contact), "access.t.acme");
        assert_eq!(scope_of("access", &identity), "access.g.identity.i1");
        assert_eq!(request_scope("access", Some("acme")), "access.t.acme");
        assert_eq!(request_scope("access", None), "access.t._");
        assert_eq!(request_scope("access", Some("a.b")), "access.t._");
    }
}
