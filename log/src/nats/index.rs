//! The replica's index of the log: every stream's events and every request
//! record, on local disk, filled in the log's order as frames arrive.
//!
//! A message of the log holds the events of many streams (a frame per
//! command, or per group of commands), so the server can no longer hand out
//! one stream by subject: this index does. It is a cache, never the truth:
//! it names the stream it was built from and starts again empty for any
//! other, and it holds nothing the log does not. Each event's chain link and
//! hash are checked as it goes in, so what it serves holds together.
//!
//! Keys: `e` stream `\0` version → position and envelope; `r` request id →
//! record; `c` → the last sequence
//! applied. A batch of messages and `c` are committed together, so the
//! index is always a prefix of the log.

use super::frame::ReadFrame;
use crate::log::{LogError, RequestRecord};
use access_catalogue::chain::{GENESIS, content_matches};
use access_catalogue::damage::Damage;
use access_catalogue::envelope::{Envelope, StreamId};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

/// Most bytes of entries one memtable keeps.
const MEMTABLE_BYTES: u32 = 4 * 1024 * 1024;

/// Streams whose heads the index keeps in memory.
const KNOWN_HEADS: usize = 100_000;

/// Batches of applied events kept for the feed's readers: one that falls
/// further behind reads the log itself, so a slow reader holds at most
/// this many batches in memory.
const PUBLISHED_BATCHES: usize = 16;

/// The local index of one JetStream log.
pub(crate) struct Index {
    keyspace: fjall::Keyspace,
    part: fjall::PartitionHandle,
    /// The last sequence applied: every message up to it is in.
    applied: watch::Sender<u64>,
    /// Where it is kept, for messages.
    place: String,
    /// Held while a batch is applied.
    applying: std::sync::Mutex<()>,
    /// The events of each batch applied, in order, for the log's feed.
    published: broadcast::Sender<Arc<Published>>,
    /// The heads (version and hash) of streams lately applied, as
    /// committed; forgotten all at once when there are too many.
    heads: std::sync::Mutex<HashMap<StreamId, (u64, [u8; 32])>>,
    /// A directory of its own, removed with it, when none was given.
    _temporary: Option<tempfile::TempDir>,
}

fn storage(e: impl std::fmt::Display) -> LogError {
    LogError::Storage(format!("the log's local index: {e}"))
}

fn event_prefix(stream: &StreamId) -> Vec<u8> {
    let mut k = Vec::with_capacity(stream.as_str().len() + 10);
    k.push(b'e');
    k.extend_from_slice(stream.as_str().as_bytes());
    k.push(0);
    k
}

fn event_key(stream: &StreamId, version: u64) -> Vec<u8> {
    let mut k = event_prefix(stream);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

fn request_key(request_id: &str) -> Vec<u8> {
    [b"r", request_id.as_bytes()].concat()
}

const APPLIED_KEY: &[u8] = b"c";
/// The file beside the index naming the stream it was built from.
const BUILT_FROM: &str = "built-from";

fn be_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// Checks that `e`, read from the message `seq`, follows its stream's last
/// event (`prev`: version and hash) and matches its own hash.
pub(crate) fn check_link(e: &Envelope, prev: (u64, [u8; 32]), seq: u64) -> Result<(), LogError> {
    let fault = if e.stream_version != prev.0 + 1 {
        Some(format!(
            "stream version {} follows {}",
            e.stream_version, prev.0
        ))
    } else if e.prev_hash != prev.1 {
        Some("previous-hash link does not match the stream's last event".into())
    } else if !content_matches(e) {
        Some("content does not match its hash (altered event)".into())
    } else {
        None
    };
    match fault {
        None => Ok(()),
        Some(what) => Err(LogError::Damaged(
            Damage::new(format!("the JetStream message {seq}"), what)
                .at_position(e.position)
                .in_stream(Some(e.stream.to_string())),
        )),
    }
}

/// One batch the index applied, as the log's feed hears it.
pub(crate) struct Published {
    /// The first and last message sequences it covers (every message in
    /// between, events or none).
    pub first: u64,
    /// See `first`.
    pub last: u64,
    /// Their events, in order.
    pub events: Vec<Envelope>,
}

/// One message to apply: its sequence and frame.
pub(crate) struct Applied {
    /// The message's sequence.
    pub seq: u64,
    /// What it holds.
    pub frame: ReadFrame,
}

impl Index {
    /// Opens the index in `dir` (a temporary directory if none) for the
    /// stream `built_from` names; an index of any other stream is emptied.
    pub fn open(dir: Option<&Path>, built_from: &str) -> Result<Self, LogError> {
        let (dir, temporary) = match dir {
            Some(d) => (d.to_path_buf(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("access-log-index")
                    .tempdir()
                    .map_err(storage)?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        std::fs::create_dir_all(&dir).map_err(storage)?;
        let marker = dir.join(BUILT_FROM);
        let data = dir.join("keys");
        let same = std::fs::read_to_string(&marker).is_ok_and(|s| s == built_from);
        if !same {
            if data.exists() {
                tracing::info!(dir = %dir.display(), "the local index was built from another stream; starting it again");
                std::fs::remove_dir_all(&data).map_err(storage)?;
            }
            std::fs::write(&marker, built_from).map_err(storage)?;
        }
        let keyspace = fjall::Config::new(&data).open().map_err(storage)?;
        let part = keyspace
            .open_partition(
                "index",
                fjall::PartitionCreateOptions::default().max_memtable_size(MEMTABLE_BYTES),
            )
            .map_err(storage)?;
        let applied = part
            .get(APPLIED_KEY)
            .map_err(storage)?
            .and_then(|v| be_u64(&v))
            .unwrap_or(0);
        Ok(Index {
            keyspace,
            part,
            applied: watch::Sender::new(applied),
            place: format!("the log's local index in {}", dir.display()),
            applying: std::sync::Mutex::new(()),
            published: broadcast::Sender::new(PUBLISHED_BATCHES),
            heads: Default::default(),
            _temporary: temporary,
        })
    }

    /// The last sequence applied.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Follows the last sequence applied.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// The events of every batch applied from now on, in the log's order,
    /// each batch once its entries are in.
    pub fn published(&self) -> broadcast::Receiver<Arc<Published>> {
        self.published.subscribe()
    }

    /// The last event of `stream` in the index: version, hash and position.
    pub fn head(&self, stream: &StreamId) -> Result<Option<(u64, [u8; 32], u64)>, LogError> {
        let Some(entry) = self.part.prefix(event_prefix(stream)).next_back() else {
            return Ok(None);
        };
        let (_, value) = entry.map_err(storage)?;
        let e = self.decode_entry(&value)?;
        Ok(Some((e.stream_version, e.hash, e.position)))
    }

    /// Every event of `stream` in the index, in order.
    pub fn stream(&self, stream: &StreamId) -> Result<Vec<Envelope>, LogError> {
        self.part
            .prefix(event_prefix(stream))
            .map(|entry| {
                let (_, value) = entry.map_err(storage)?;
                self.decode_entry(&value)
            })
            .collect()
    }

    fn decode_entry(&self, value: &[u8]) -> Result<Envelope, LogError> {
        let position = be_u64(value).ok_or_else(|| self.damaged("a short entry"))?;
        let mut e = Envelope::decode(&value[8..]).map_err(|e| self.damaged(&e.to_string()))?;
        e.position = position;
        Ok(e)
    }

    fn damaged(&self, what: &str) -> LogError {
        LogError::Damaged(Damage::new(self.place.clone(), what.to_owned()))
    }

    /// The stream's event before `e` as the index has it (version and
    /// hash): the head of a stream applied lately, or found by point reads (cheap in an LSM tree, where a missing
    /// key is mostly answered by its filter): the event at `e`'s version
    /// must be absent, the one before present. Otherwise the stream's real
    /// last event, for the check to name what is wrong.
    fn before(
        &self,
        e: &Envelope,
        known: &HashMap<StreamId, (u64, [u8; 32])>,
    ) -> Result<(u64, [u8; 32]), LogError> {
        // The head of a stream applied lately, as committed: nothing is at
        // the next version yet.
        if let Some(&(version, hash)) = known.get(&e.stream)
            && version + 1 == e.stream_version
        {
            return Ok((version, hash));
        }
        let taken = self
            .part
            .contains_key(event_key(&e.stream, e.stream_version))
            .map_err(storage)?;
        if !taken {
            if e.stream_version == 1 {
                return Ok((0, GENESIS));
            }
            let key = event_key(&e.stream, e.stream_version - 1);
            if let Some(value) = self.part.get(key).map_err(storage)? {
                let prev = self.decode_entry(&value)?;
                return Ok((prev.stream_version, prev.hash));
            }
        }
        Ok(self
            .head(&e.stream)?
            .map_or((0, GENESIS), |(v, h, _)| (v, h)))
    }

    /// The record of `request_id`, if the index has it.
    pub fn request(&self, request_id: &str) -> Result<Option<RequestRecord>, LogError> {
        match self.part.get(request_key(request_id)).map_err(storage)? {
            None => Ok(None),
            Some(v) => postcard::from_bytes(&v)
                .map(Some)
                .map_err(|e| self.damaged(&e.to_string())),
        }
    }

    /// Applies messages that follow the last one applied, in order, checking
    /// each event against its stream's chain. Messages at or below it are
    /// skipped (a feed that started again). Damage applies nothing of the
    /// batch. The events applied are then published to the feed, under the
    /// same lock, so its readers see batches in the log's order.
    pub fn apply(&self, messages: Vec<Applied>) -> Result<(), LogError> {
        // The follower and a read filling a gap may both apply: one at a time.
        let _one = self.applying.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = self.applied();
        let mut batch = self.keyspace.batch();
        let count = messages.iter().map(|m| m.frame.envelopes.len()).sum();
        let mut heads: HashMap<&StreamId, (u64, [u8; 32])> = HashMap::with_capacity(count);
        let mut requests: HashMap<&str, ()> = HashMap::new();
        let mut known = self.heads.lock().unwrap_or_else(|p| p.into_inner());
        for m in messages.iter().filter(|m| m.seq > self.applied()) {
            if m.seq <= last {
                return Err(LogError::Storage(format!(
                    "the log's feed went back from {last} to {}",
                    m.seq
                )));
            }
            last = m.seq;
            for (e, raw) in m.frame.envelopes.iter().zip(&m.frame.raw) {
                let prev = match heads.get(&e.stream) {
                    Some(h) => *h,
                    None => self.before(e, &known)?,
                };
                check_link(e, prev, m.seq)?;
                heads.insert(&e.stream, (e.stream_version, e.hash));
                let mut value = Vec::with_capacity(8 + raw.len());
                value.extend_from_slice(&e.position.to_be_bytes());
                value.extend_from_slice(raw);
                batch.insert(&self.part, event_key(&e.stream, e.stream_version), value);
            }
            for r in &m.frame.requests {
                // The first record of an id is its answer for ever.
                if requests.contains_key(r.request_id.as_str())
                    || self.request(&r.request_id)?.is_some()
                {
                    continue;
                }
                requests.insert(&r.request_id, ());
                let (first_position, last_position) = r.positions(m.seq);
                let record = RequestRecord {
                    fingerprint: r.fingerprint,
                    first_position,
                    last_position,
                    reply: r.reply.clone(),
                };
                let bytes = postcard::to_stdvec(&record).map_err(storage)?;
                batch.insert(&self.part, request_key(&r.request_id), bytes);
            }
        }
        if last == self.applied() {
            return Ok(());
        }
        batch.insert(&self.part, APPLIED_KEY, last.to_be_bytes());
        batch.commit().map_err(storage)?;
        // What is committed is what the index holds: streams' heads known.
        if known.len() + heads.len() > KNOWN_HEADS {
            known.clear();
        }
        for (stream, head) in heads {
            known.insert(stream.clone(), head);
        }
        drop(known);
        drop(requests);
        let before = self.applied.send_replace(last);
        let mut events = Vec::with_capacity(count);
        for m in messages.into_iter().filter(|m| m.seq > before) {
            events.extend(m.frame.envelopes);
        }
        // No reader is no error: the feed starts from the log when one comes.
        let _ = self.published.send(Arc::new(Published {
            first: before + 1,
            last,
            events,
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::AppendRequest;
    use access_catalogue::envelope::{Actor, Aggregate};

    fn sealed(stream: &StreamId, version: u64, prev: [u8; 32], seq: u64, i: usize) -> Envelope {
        let r = AppendRequest {
            request_id: "acme/r".into(),
            fingerprint: [0; 32],
            tenant: Some("acme".into()),
            actor: Actor::Operator,
            correlation_id: uuid::Uuid::nil(),
            causation_id: None,
            occurred_at_ms: 0,
            streams: vec![],
            reply: vec![],
        };
        let event = crate::log::NewEvent {
            event_id: uuid::Uuid::new_v4(),
            event_type: "Test".into(),
            schema_version: 1,
            payload: vec![1, 2, 3],
        };
        r.seal(
            stream,
            &event,
            version,
            prev,
            super::super::frame::position(seq, i),
        )
        .unwrap()
    }

    fn message(seq: u64, envelopes: Vec<Envelope>, request: Option<&str>) -> Applied {
        let n = envelopes.len() as u32;
        let raw = envelopes
            .iter()
            .map(|e| {
                let mut sealed = e.clone();
                sealed.position = 0;
                bytes::Bytes::from(sealed.encode())
            })
            .collect();
        Applied {
            seq,
            frame: ReadFrame {
                envelopes,
                raw,
                requests: request
                    .map(|id| super::super::frame::FrameRequest {
                        request_id: id.into(),
                        fingerprint: [seq as u8; 32],
                        reply: vec![],
                        first: (0, 0),
                        last: (0, n - 1),
                    })
                    .into_iter()
                    .collect(),
            },
        }
    }

    #[test]
    fn streams_heads_and_requests_come_back_as_applied() {
        let index = Index::open(None, "S@1").unwrap();
        let c = StreamId::new(Aggregate::Contact, "acme", "c1").unwrap();
        let e1 = sealed(&c, 1, GENESIS, 3, 0);
        let e2 = sealed(&c, 2, e1.hash, 3, 1);
        let e3 = sealed(&c, 3, e2.hash, 5, 0);
        index
            .apply(vec![message(
                3,
                vec![e1.clone(), e2.clone()],
                Some("acme/a"),
            )])
            .unwrap();
        index
            .apply(vec![message(5, vec![e3.clone()], Some("acme/a"))])
            .unwrap();
        assert_eq!(index.stream(&c).unwrap(), vec![e1, e2, e3.clone()]);
        assert_eq!(index.head(&c).unwrap(), Some((3, e3.hash, 5000)));
        let record = index.request("acme/a").unwrap().unwrap();
        assert_eq!((record.first_position, record.last_position), (3000, 3001));
        assert_eq!(record.fingerprint, [3; 32], "the first record stays");
        assert_eq!(index.applied(), 5);
    }

    #[test]
    fn a_broken_link_or_altered_event_applies_nothing() {
        let index = Index::open(None, "S@1").unwrap();
        let c = StreamId::new(Aggregate::Contact, "acme", "c1").unwrap();
        let e1 = sealed(&c, 1, GENESIS, 1, 0);
        let skipped = sealed(&c, 3, e1.hash, 2, 0);
        let bad = index.apply(vec![
            message(1, vec![e1.clone()], None),
            message(2, vec![skipped], None),
        ]);
        assert!(matches!(bad, Err(LogError::Damaged(_))), "{bad:?}");
        assert_eq!(index.applied(), 0);
        assert!(index.stream(&c).unwrap().is_empty());
        // A second event at a version the stream already has: a fork.
        index
            .apply(vec![message(1, vec![e1.clone()], None)])
            .unwrap();
        let fork = sealed(&c, 1, GENESIS, 2, 0);
        assert!(matches!(
            index.apply(vec![message(2, vec![fork], None)]),
            Err(LogError::Damaged(_))
        ));
        assert_eq!(index.stream(&c).unwrap(), vec![e1]);
        let index = Index::open(None, "S@1").unwrap();
        let mut altered = sealed(&c, 1, GENESIS, 1, 0);
        altered.payload = vec![9];
        assert!(matches!(
            index.apply(vec![message(1, vec![altered], None)]),
            Err(LogError::Damaged(_))
        ));
    }

    #[test]
    fn an_index_of_another_stream_starts_again() {
        let dir = tempfile::tempdir().unwrap();
        let c = StreamId::new(Aggregate::Contact, "acme", "c1").unwrap();
        {
            let index = Index::open(Some(dir.path()), "S@1").unwrap();
            index
                .apply(vec![message(1, vec![sealed(&c, 1, GENESIS, 1, 0)], None)])
                .unwrap();
        }
        assert_eq!(Index::open(Some(dir.path()), "S@1").unwrap().applied(), 1);
        let other = Index::open(Some(dir.path()), "S@2").unwrap();
        assert_eq!(other.applied(), 0);
        assert!(other.stream(&c).unwrap().is_empty());
    }
}
