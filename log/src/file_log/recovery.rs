//! Opening the log: every frame of `events` is checked, the appends the index
//! lacks are indexed, and what a crash tore is told apart from damage.
//!
//! Only bytes that were never part of an acknowledged append can be a torn
//! tail: an incomplete last append above the synced mark (see [`super::mark`])
//! and the index's checkpoint, with no intact frame after the first bad byte
//! (a crash cuts a write short; it does not leave whole frames behind a hole).
//! Anything else (a bad frame below the mark, intact frames after a bad one,
//! positions out of order, a file shorter than what was acknowledged, an index
//! that disagrees with the file) is damage: the open fails naming the file,
//! the offset, the position and the stream, and nothing is moved or cut.

use super::mark::Mark;
use super::{
    CHECKPOINT_KEY, Checkpoint, Commit, EVENTS_FILE, SCAN_CHUNK, StreamHead, decode, encode,
    head_key, index_event, request_key, storage, sync_dir,
};
use crate::file_log::frames::{self, EVENT, FrameError, Frames, HEADER};
use crate::log::LogError;
use access_catalogue::damage::Damage;
use access_catalogue::envelope::{Envelope, StreamId};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The most bytes after a bad frame that a crash can have left unwritten: one
/// sync's worth of groups, with room to spare. More than this is damage.
const MAX_TORN: u64 = 64 * 1024 * 1024;

/// The index's checkpoint as stored (none yet: the start of the file).
pub(super) fn stored_checkpoint(index: &fjall::PartitionHandle) -> Result<Checkpoint, LogError> {
    match index.get(CHECKPOINT_KEY).map_err(storage)? {
        Some(v) => decode(&v, 0),
        None => Ok(Checkpoint::default()),
    }
}

/// An event frame read during the scan, not yet closed by its commit.
struct Open {
    offset: u64,
    position: u64,
    /// Decoded only where the index needs it (after its checkpoint).
    envelope: Option<Envelope>,
}

/// Where the scan stopped short of the file's end, and why.
struct Stop {
    offset: u64,
    position: u64,
    what: String,
}

/// The scan's state: what is whole so far, and the index entries to add.
struct Scan<'a> {
    keyspace: &'a fjall::Keyspace,
    index: &'a fjall::PartitionHandle,
    stored: Checkpoint,
    /// The last whole append seen.
    whole: Checkpoint,
    /// Whether the index's checkpoint fell on the end of a whole append.
    stored_seen: bool,
    open: Vec<Open>,
    batch: fjall::Batch,
    heads: HashMap<StreamId, StreamHead>,
    batched: usize,
    indexed_any: bool,
}

impl Scan<'_> {
    fn expected(&self) -> u64 {
        self.whole.position + self.open.len() as u64 + 1
    }

    /// Takes one frame; `Err` is where the file stops being a log.
    fn take(&mut self, offset: u64, kind: u8, body: &[u8], end: u64) -> Result<(), Stop> {
        let expected = self.expected();
        let stop = |what: String| Stop {
            offset,
            position: expected,
            what,
        };
        if kind == EVENT {
            let indexed = offset < self.stored.offset;
            let (position, envelope) = if indexed {
                let position = peek_position(body)
                    .ok_or_else(|| stop("an event frame whose envelope is unreadable".into()))?;
                (position, None)
            } else {
                let e = Envelope::decode(body)
                    .map_err(|e| stop(format!("an event frame that does not decode: {e}")))?;
                (e.position, Some(e))
            };
            if position != expected {
                return Err(stop(format!(
                    "position {position} where position {expected} belongs"
                )));
            }
            self.open.push(Open {
                offset,
                position,
                envelope,
            });
            return Ok(());
        }
        if kind == frames::KEYS {
            // Keys for the group after it: only between appends.
            if !self.open.is_empty() {
                return Err(stop("a key frame inside an append".into()));
            }
            return Ok(());
        }
        if kind != frames::COMMIT {
            return Err(stop("a frame that does not belong in the log".into()));
        }
        // A commit the index holds already is only checked for its place:
        // its request record is not decoded (a million of them at a start).
        let indexed = end <= self.stored.offset;
        let (last_position, span, request) = if indexed {
            let (last, span) = peek_commit(body)
                .ok_or_else(|| stop("a commit frame that does not decode".into()))?;
            (last, span, None)
        } else {
            let commit: Commit = postcard::from_bytes(body)
                .map_err(|e| stop(format!("a commit frame that does not decode: {e}")))?;
            let span = commit
                .request
                .as_ref()
                .map(|(_, r)| (r.first_position, r.last_position));
            (commit.last_position, span, commit.request)
        };
        let first = self.open.first().map(|o| o.position);
        let in_place = first.is_some() && last_position.checked_add(1) == Some(expected);
        let record_fits = span.is_none_or(|(from, to)| Some(from) == first && to == last_position);
        if !in_place || !record_fits {
            return Err(stop(format!(
                "a commit of position {last_position} out of place"
            )));
        }
        for open in self.open.drain(..) {
            if let Some(e) = open.envelope {
                index_event(&e, open.offset, |k, v| self.batch.insert(self.index, k, v));
                self.heads.insert(
                    e.stream,
                    StreamHead {
                        version: e.stream_version,
                        hash: e.hash,
                    },
                );
                self.batched += 1;
            }
        }
        self.whole = Checkpoint {
            position: last_position,
            offset: end,
        };
        if end == self.stored.offset {
            self.stored_seen = self.whole.position == self.stored.position;
        }
        if end > self.stored.offset {
            if let Some((id, record)) = &request {
                self.batch
                    .insert(self.index, request_key(id), encode(record));
            }
            if self.batched >= 8192 {
                self.commit().map_err(|e| stop(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Writes the index entries gathered so far with the heads they moved.
    fn commit(&mut self) -> Result<(), LogError> {
        if self.whole.offset <= self.stored.offset {
            return Ok(());
        }
        let mut batch = std::mem::replace(&mut self.batch, self.keyspace.batch());
        for (stream, head) in self.heads.drain() {
            batch.insert(self.index, head_key(&stream), encode(&head));
        }
        batch.insert(self.index, CHECKPOINT_KEY, encode(&self.whole));
        batch.commit().map_err(storage)?;
        self.batched = 0;
        self.indexed_any = true;
        Ok(())
    }
}

/// The position an encoded envelope holds, read without decoding the rest:
/// its first two fields are the envelope version and the position, as
/// postcard varints.
fn peek_position(body: &[u8]) -> Option<u64> {
    let (_version, rest) = varint(body)?;
    varint(rest).map(|(position, _)| position)
}

/// A [`Commit`] read in place: its request id and reply are borrowed, not
/// copied, so a start does not allocate for each of a million commits.
/// Decoded by the same rules as [`Commit`], so open and check agree.
#[derive(serde::Deserialize)]
struct CommitView<'a> {
    last_position: u64,
    #[serde(borrow)]
    request: Option<(&'a str, RecordView<'a>)>,
}

/// A [`RequestRecord`](crate::log::RequestRecord) read in place.
#[derive(serde::Deserialize)]
struct RecordView<'a> {
    _fingerprint: [u8; 32],
    first_position: u64,
    last_position: u64,
    _reply: &'a [u8],
}

/// A commit frame's last position and its request record's span.
fn peek_commit(body: &[u8]) -> Option<(u64, Option<(u64, u64)>)> {
    let view: CommitView<'_> = postcard::from_bytes(body).ok()?;
    let span = view
        .request
        .map(|(_, r)| (r.first_position, r.last_position));
    Some((view.last_position, span))
}

fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

/// Checks every frame of the file, indexes the whole appends after the
/// index's checkpoint, cuts off a torn tail, and refuses damage. Returns
/// where the log ends.
pub(super) fn recover(
    keyspace: &fjall::Keyspace,
    index: &fjall::PartitionHandle,
    file: &File,
    dir: &Path,
    mark: Option<Mark>,
) -> Result<Checkpoint, LogError> {
    let place = dir.join(EVENTS_FILE).display().to_string();
    let damaged = |d: Damage| LogError::Damaged(d);
    let stored = stored_checkpoint(index)?;
    let len = file.metadata().map_err(storage)?.len();
    let mark = mark.unwrap_or_default();
    if mark.offset > len {
        return Err(damaged(
            Damage::new(
                &place,
                format!(
                    "the log ends at byte {len}, but appends up to byte {} were acknowledged (its synced mark); acknowledged history is missing",
                    mark.offset
                ),
            )
            .at_offset(len)
            .at_position(mark.position),
        ));
    }
    if stored.offset > len {
        return Err(damaged(
            Damage::new(
                &place,
                format!(
                    "the log ends at byte {len}, but its index holds appends up to byte {}; acknowledged history is missing",
                    stored.offset
                ),
            )
            .at_offset(len)
            .at_position(stored.position),
        ));
    }
    // Below the floor everything was synced and acknowledged.
    let floor = mark.offset.max(stored.offset);
    let mut scan = Scan {
        keyspace,
        index,
        stored,
        whole: Checkpoint::default(),
        stored_seen: stored.offset == 0,
        open: Vec::new(),
        batch: keyspace.batch(),
        heads: HashMap::new(),
        batched: 0,
        indexed_any: false,
    };
    let mut frames = Frames::new(file, 0, len, SCAN_CHUNK);
    let stop = loop {
        let frame = match frames.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break None,
            Err(FrameError::Bad { offset, reason }) => {
                break Some(Stop {
                    offset,
                    position: scan.expected(),
                    what: format!("a damaged frame ({reason})"),
                });
            }
            Err(FrameError::Io(e)) => return Err(storage(e)),
        };
        let (offset, kind, end) = (frame.offset, frame.kind, frame.end());
        if let Err(stop) = scan.take(offset, kind, frame.body, end) {
            break Some(stop);
        }
    };
    scan.commit()?;
    if scan.indexed_any {
        keyspace
            .persist(fjall::PersistMode::SyncAll)
            .map_err(storage)?;
    }
    let whole = scan.whole;
    if let Some(stop) = &stop {
        let followed = stop.offset < len && intact_frame_after(file, stop.offset, len)?;
        if stop.offset < floor || followed {
            let why = if followed {
                "intact frames follow it, so it is not a tail a crash tore"
            } else {
                "below what was synced and acknowledged"
            };
            let stream = stream_at(file, index, stop.offset, len);
            return Err(damaged(
                Damage::new(&place, format!("{}; {why}", stop.what))
                    .at_offset(stop.offset)
                    .at_position(stream.as_ref().map_or(stop.position, |s| s.1))
                    .in_stream(stream.map(|s| s.0)),
            ));
        }
    }
    if !scan.stored_seen {
        return Err(damaged(
            Damage::new(
                &place,
                format!(
                    "the log's index says position {} ends at byte {}, where no append of the file ends; if only the index is wrong, delete log/index to rebuild it from the file",
                    stored.position, stored.offset
                ),
            )
            .at_offset(stored.offset)
            .at_position(stored.position),
        ));
    }
    if whole.offset < floor || whole.position < mark.position {
        let at = scan.open.first().map_or(whole.offset, |o| o.offset);
        return Err(damaged(
            Damage::new(
                &place,
                format!(
                    "the log's whole appends end at byte {}, below what was acknowledged (byte {floor}, position {})",
                    whole.offset, mark.position
                ),
            )
            .at_offset(at)
            .at_position(whole.position + 1),
        ));
    }
    if whole.offset < len {
        let why = stop.map_or("an append without its commit".to_owned(), |s| {
            format!("{} at byte {}", s.what, s.offset)
        });
        cut_torn_tail(file, dir, whole.offset, len, &why)?;
    }
    Ok(whole)
}

/// Whether a whole, intact frame starts anywhere after the bad one at `at`.
fn intact_frame_after(file: &File, at: u64, len: u64) -> Result<bool, LogError> {
    if len - at > MAX_TORN {
        return Ok(true);
    }
    let mut rest = vec![0u8; (len - at) as usize];
    file.read_exact_at(&mut rest, at).map_err(storage)?;
    Ok((1..rest.len()).any(|i| frames::intact_at(&rest[i..]).is_some()))
}

/// The stream and position of the event whose frame starts at `at`, if its
/// bytes still say (a checksum failure often leaves them readable), else as
/// the index remembers it.
fn stream_at(
    file: &File,
    index: &fjall::PartitionHandle,
    at: u64,
    len: u64,
) -> Option<(String, u64)> {
    let mut header = [0u8; HEADER];
    file.read_exact_at(&mut header, at).ok()?;
    let claimed = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as u64;
    if claimed <= frames::MAX_BODY as u64 && at + HEADER as u64 + claimed <= len {
        let mut bytes = vec![0u8; HEADER + claimed as usize];
        file.read_exact_at(&mut bytes, at).ok()?;
        if let Some(e) = frames::claimed_body(&bytes).and_then(|b| Envelope::decode(b).ok()) {
            return Some((e.stream.to_string(), e.position));
        }
    }
    // The index's entries point at frames: find the one pointing here.
    let wanted = at.to_be_bytes();
    index.prefix(b"s").find_map(|item| {
        let (k, v) = item.ok()?;
        if v.as_ref() != wanted {
            return None;
        }
        let name = k.get(1..k.len().checked_sub(9)?)?;
        let stream = String::from_utf8(name.to_vec()).ok()?;
        Some((stream, 0))
    })
}

/// Moves the bytes after the last whole append aside and truncates the file
/// there: they were never acknowledged (a crash during their write).
fn cut_torn_tail(file: &File, dir: &Path, at: u64, len: u64, why: &str) -> Result<(), LogError> {
    let aside = dir.join(format!("{EVENTS_FILE}.torn-{at}"));
    let mut tail = vec![0u8; (len - at) as usize];
    file.read_exact_at(&mut tail, at).map_err(storage)?;
    std::fs::write(&aside, &tail).map_err(storage)?;
    tracing::warn!(
        dir = %dir.display(),
        offset = at,
        bytes = len - at,
        reason = why,
        kept = %aside.display(),
        "the log ends in an append a crash cut short; it was never acknowledged and is removed"
    );
    file.set_len(at).map_err(storage)?;
    file.sync_all().map_err(storage)?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::RequestRecord;

    #[test]
    fn the_position_is_read_from_an_envelopes_first_bytes() {
        let r = crate::conformance::request("r", &crate::conformance::stream("a"), 0, 1);
        let e = r
            .seal(
                &r.streams[0].stream,
                &r.streams[0].events[0],
                1,
                [0; 32],
                300,
            )
            .expect("seal");
        assert_eq!(peek_position(&e.encode()), Some(300));
        assert_eq!(peek_position(&[0x80]), None);
    }

    #[test]
    fn a_commit_peeked_reads_as_decoded() {
        let record = RequestRecord {
            fingerprint: [0xff; 32],
            first_position: 129,
            last_position: 70_000,
            reply: vec![0x80; 300],
        };
        let commits = [
            Commit {
                last_position: 5,
                request: None,
            },
            Commit {
                last_position: 70_000,
                request: Some(("req-ü".repeat(40), record)),
            },
        ];
        for commit in commits {
            let body = encode(&commit);
            let span = commit
                .request
                .as_ref()
                .map(|(_, r)| (r.first_position, r.last_position));
            assert_eq!(peek_commit(&body), Some((commit.last_position, span)));
            // Cut anywhere, it is not a commit.
            for cut in 0..body.len() {
                assert_eq!(peek_commit(&body[..cut]), None, "cut at {cut}");
            }
        }
    }
}
