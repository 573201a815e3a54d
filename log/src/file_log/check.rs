//! The full check of the embedded log, changing nothing: every frame, every
//! position and commit, every stream's hash chain, and the index's entries
//! against the file. What `accessd check` and `VerifyLog` report.

use super::mark::Mark;
use super::{
    BLOCK, Commit, HEAD_PREFIX, SCAN_CHUNK, StreamHead, block_key, head_key, is_block_start,
    request_key, stream_key,
};
use crate::file_log::frames::{COMMIT, EVENT, FrameError, Frames, KEYS};
use crate::log::RequestRecord;
use access_catalogue::chain::ChainVerifier;
use access_catalogue::damage::Damage;
use access_catalogue::envelope::{Envelope, StreamId};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a check nobody waited for any more reports (it is not read).
const ABANDONED: &str = "the check was abandoned before its end";

/// Most pieces of damage one check lists (the first of each stream).
const MAX_LISTED: usize = 100;

/// What a full check of a log found.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// Events whose frames were read whole.
    pub events: u64,
    /// Streams seen.
    pub streams: u64,
    /// The last position of a whole append.
    pub head: u64,
    /// Everything found wrong, in file order (empty: intact).
    pub damage: Vec<Damage>,
    /// The hash of the event at each position asked about, if read.
    pub hashes: HashMap<u64, [u8; 32]>,
}

impl CheckReport {
    fn found(&mut self, damage: Damage) {
        if self.damage.len() < MAX_LISTED {
            self.damage.push(damage);
        }
    }
}

/// What the check reads besides the file.
pub(super) struct Inputs<'a> {
    pub place: &'a str,
    pub file: &'a File,
    /// Read up to here (a live log: its synced end).
    pub len: u64,
    pub mark: Option<Mark>,
    /// The index, when it is to be checked too.
    pub index: Option<&'a fjall::PartitionHandle>,
    /// Whether appends may land while checking (heads may run ahead).
    pub live: bool,
    /// Positions whose hashes the caller wants.
    pub hashes_of: &'a [u64],
    /// Set once nobody waits for the report: the check ends early.
    pub dropped: Option<&'a AtomicBool>,
}

/// Checks the file and, if given, its index.
pub(super) fn check(inputs: Inputs<'_>) -> CheckReport {
    let Inputs {
        place,
        file,
        len,
        mark,
        index,
        live,
        hashes_of,
        dropped,
    } = inputs;
    let abandoned = || dropped.is_some_and(|d| d.load(Ordering::Relaxed));
    let mut report = CheckReport::default();
    let damage = |what: String| Damage::new(place, what);
    let mut verifier = ChainVerifier::new();
    let mut broken: HashSet<StreamId> = HashSet::new();
    let mut open: Vec<(u64, Envelope)> = Vec::new();
    let mut whole_end = 0u64;
    let mut frames = Frames::new(file, 0, len, SCAN_CHUNK);
    loop {
        if abandoned() {
            report.found(damage(ABANDONED.into()));
            return report;
        }
        let expected = report.head + open.len() as u64 + 1;
        let frame = match frames.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(FrameError::Bad { offset, reason }) => {
                report.found(
                    damage(format!(
                        "a damaged frame ({reason}); bytes {offset} to {len} were not checked further"
                    ))
                    .at_offset(offset)
                    .at_position(expected),
                );
                break;
            }
            Err(FrameError::Io(e)) => {
                report.found(damage(format!("the file could not be read: {e}")));
                break;
            }
        };
        let (offset, end) = (frame.offset, frame.end());
        if frame.kind == EVENT {
            match Envelope::decode(frame.body) {
                Ok(e) if e.position == expected => open.push((offset, e)),
                Ok(e) => {
                    report.found(
                        damage(format!(
                            "position {} where position {expected} belongs; the rest was not checked",
                            e.position
                        ))
                        .at_offset(offset)
                        .at_position(expected)
                        .in_stream(Some(e.stream.to_string())),
                    );
                    break;
                }
                Err(e) => {
                    report.found(
                        damage(format!("an event frame that does not decode: {e}"))
                            .at_offset(offset)
                            .at_position(expected),
                    );
                    break;
                }
            }
            continue;
        }
        if frame.kind == KEYS && open.is_empty() {
            continue;
        }
        let commit = (frame.kind == COMMIT)
            .then(|| postcard::from_bytes::<Commit>(frame.body).ok())
            .flatten();
        let first = open.first().map(|(_, e)| e.position);
        let fits = commit.as_ref().is_some_and(|c| {
            first.is_some()
                && c.last_position.checked_add(1) == Some(expected)
                && c.request.as_ref().is_none_or(|(_, r)| {
                    Some(r.first_position) == first && r.last_position == c.last_position
                })
        });
        let Some(commit) = commit.filter(|_| fits) else {
            report.found(
                damage("a commit frame that does not close the append before it".into())
                    .at_offset(offset)
                    .at_position(expected),
            );
            break;
        };
        for (at, e) in open.drain(..) {
            report.events += 1;
            if hashes_of.contains(&e.position) {
                report.hashes.insert(e.position, e.hash);
            }
            if let Some(index) = index {
                check_entries(index, &e, at, place, &mut report);
            }
            if broken.contains(&e.stream) {
                verifier.skip(&e);
                continue;
            }
            if let Err(b) = verifier.check(&e) {
                report.found(
                    damage(b.what)
                        .at_offset(at)
                        .at_position(e.position)
                        .in_stream(Some(e.stream.to_string())),
                );
                broken.insert(e.stream.clone());
                verifier.skip(&e);
            }
        }
        if let (Some(index), Some((id, record))) = (index, &commit.request) {
            let stored = index.get(request_key(id)).ok().flatten();
            let same = stored
                .and_then(|v| postcard::from_bytes::<RequestRecord>(&v).ok())
                .is_some_and(|r| r == *record);
            if !same {
                report.found(
                    damage(
                        "the index's record of this append's request differs from the file's"
                            .into(),
                    )
                    .at_offset(offset)
                    .at_position(commit.last_position),
                );
            }
        }
        report.head = commit.last_position;
        whole_end = end;
    }
    if whole_end < len && report.damage.is_empty() {
        report.found(
            damage("an append without its commit at the end of the file".into())
                .at_offset(whole_end)
                .at_position(report.head + 1),
        );
    }
    if let Some(mark) = mark
        && (mark.offset > whole_end || mark.position > report.head)
    {
        report.found(
            damage(format!(
                "appends up to byte {} were acknowledged, but whole appends end at byte {whole_end}: acknowledged history is missing",
                mark.offset
            ))
            .at_offset(whole_end)
            .at_position(report.head + 1),
        );
    }
    report.streams = verifier.counts().1;
    if let Some(index) = index {
        check_heads(
            index,
            abandoned,
            &verifier,
            live,
            (file, len),
            place,
            &mut report,
        );
    }
    if abandoned() {
        report.found(damage(ABANDONED.into()));
    }
    report
}

/// The index's entries for one event: its stream entry and, at a block
/// start, the block's offset.
fn check_entries(
    index: &fjall::PartitionHandle,
    e: &Envelope,
    at: u64,
    place: &str,
    report: &mut CheckReport,
) {
    let points_here = |key: &[u8]| {
        index
            .get(key)
            .ok()
            .flatten()
            .is_some_and(|v| v.as_ref() == at.to_be_bytes())
    };
    let mut wrong = !points_here(&stream_key(&e.stream, e.stream_version));
    if is_block_start(e.position) {
        wrong |= !points_here(&block_key(e.position));
    }
    if wrong {
        report.found(
            Damage::new(
                place,
                format!(
                    "the index does not point at this event (its offsets are rebuilt from the file when log/index is removed; blocks of {BLOCK} positions)"
                ),
            )
            .at_offset(at)
            .at_position(e.position)
            .in_stream(Some(e.stream.to_string())),
        );
    }
}

/// Every stream head the index holds against the chains read: each head
/// must agree with its stream's in the file, and every stream of the file
/// must have one (counted; the streams lacking one are then named by a
/// second walk of the file, which only damage pays for).
fn check_heads(
    index: &fjall::PartitionHandle,
    abandoned: impl Fn() -> bool,
    verifier: &ChainVerifier,
    live: bool,
    scope: (&File, u64),
    place: &str,
    report: &mut CheckReport,
) {
    let mut agreeing = 0u64;
    for (n, item) in index.prefix(HEAD_PREFIX).enumerate() {
        if n % 4096 == 0 && abandoned() {
            return;
        }
        let (key, value) = match item {
            Ok(kv) => kv,
            Err(e) => {
                report.found(Damage::new(
                    place,
                    format!("the index's stream heads could not be read: {e}"),
                ));
                return;
            }
        };
        let stream = std::str::from_utf8(&key[HEAD_PREFIX.len()..])
            .ok()
            .and_then(|name| StreamId::parse(name).ok());
        let Some(stream) = stream else {
            report.found(Damage::new(
                place,
                "the index holds a stream head under a name that is not a stream's",
            ));
            continue;
        };
        let stored = postcard::from_bytes::<StreamHead>(&value).ok();
        let agrees = match (verifier.head(&stream), stored) {
            (Some((version, hash)), Some(h)) => {
                (h.version == version && h.hash == hash) || (live && h.version > version)
            }
            // A stream begun after the end this check read to.
            (None, Some(_)) if live => continue,
            _ => false,
        };
        if agrees {
            agreeing += 1;
        } else {
            report.found(
                Damage::new(
                    place,
                    "the index's head of this stream differs from the file's",
                )
                .in_stream(Some(stream.to_string())),
            );
        }
    }
    let (_, streams) = verifier.counts();
    if agreeing < streams {
        name_headless(index, scope, place, report);
    }
}

/// Names the streams of the file that have no head in the index.
fn name_headless(
    index: &fjall::PartitionHandle,
    (file, len): (&File, u64),
    place: &str,
    report: &mut CheckReport,
) {
    let mut named = HashSet::new();
    let mut frames = Frames::new(file, 0, len, SCAN_CHUNK);
    while let Ok(Some(frame)) = frames.next_frame() {
        let Some(e) = (frame.kind == EVENT)
            .then(|| Envelope::decode(frame.body).ok())
            .flatten()
        else {
            continue;
        };
        if named.contains(&e.stream) || matches!(index.get(head_key(&e.stream)), Ok(Some(_))) {
            continue;
        }
        report.found(
            Damage::new(place, "the index holds no head of this stream")
                .at_position(e.position)
                .in_stream(Some(e.stream.to_string())),
        );
        named.insert(e.stream);
        if named.len() >= MAX_LISTED {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(file: &'a File, dropped: Option<&'a AtomicBool>) -> Inputs<'a> {
        Inputs {
            place: "events",
            file,
            len: 0,
            mark: None,
            index: None,
            live: true,
            hashes_of: &[],
            dropped,
        }
    }

    #[test]
    fn a_check_nobody_waits_for_ends_at_once_and_says_so() {
        let file = tempfile::tempfile().expect("file");
        let waited = check(inputs(&file, Some(&AtomicBool::new(false))));
        assert!(waited.damage.is_empty(), "{:?}", waited.damage);
        let dropped = check(inputs(&file, Some(&AtomicBool::new(true))));
        let whats: Vec<_> = dropped.damage.iter().map(|d| d.what.as_str()).collect();
        assert_eq!(whats, [ABANDONED]);
    }
}
