//! Writing a whole log at once: importing a restored one, and salvaging the
//! intact frames of a damaged one to replace it.

use super::dir::{lock_dir, sync_dir};
use super::frames::{self, COMMIT, EVENT, KEYS};
use super::keys::encode;
use super::{Commit, EVENTS_FILE, FileLog, INDEX_DIR, SCAN_CHUNK, mark, storage};
use crate::log::{LogError, RequestRecord};
use access_catalogue::envelope::Envelope;
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

/// Every intact frame of a file: its events in file order, and its request
/// records by last position, and the vault's key frames by the position of
/// the event they came before.
pub(super) type Salvaged = (
    Vec<Envelope>,
    HashMap<u64, (String, RequestRecord)>,
    KeysBefore,
);

/// Key frames' bodies by the position of the event they came before.
pub(crate) type KeysBefore = std::collections::BTreeMap<u64, Vec<Vec<u8>>>;

/// Reads every intact frame of the file at `path`, past damaged bytes.
pub(super) fn salvage_file(path: &Path) -> Result<Salvaged, LogError> {
    let bytes = std::fs::read(path).map_err(storage)?;
    let (mut events, mut records) = (Vec::new(), HashMap::new());
    let mut keys = KeysBefore::new();
    let mut last = 0u64;
    let mut at = 0;
    while at < bytes.len() {
        let Some(len) = frames::intact_at(&bytes[at..]) else {
            at += 1;
            continue;
        };
        let body = frames::claimed_body(&bytes[at..]).unwrap_or_default();
        if bytes[at] == EVENT {
            if let Ok(e) = Envelope::decode(body) {
                last = e.position;
                events.push(e);
            }
        } else if bytes[at] == KEYS {
            keys.entry(last + 1).or_default().push(body.to_vec());
        } else if bytes[at] == COMMIT
            && let Ok(Commit {
                last_position,
                request: Some(request),
            }) = postcard::from_bytes::<Commit>(body)
        {
            records.insert(last_position, request);
        }
        at += len;
    }
    Ok((events, records, keys))
}

/// Writes `envelopes` (a whole log, in order) as frames into `path`, with a
/// commit frame after each run of one request id, or after the positions
/// `records` names (keyed by last position). Renumbers positions from 1 when
/// `renumber` is set. Returns how many were written.
pub(crate) fn write_frames(
    path: &Path,
    envelopes: impl IntoIterator<Item = Result<Envelope, LogError>>,
    mut records: HashMap<u64, (String, RequestRecord)>,
    mut keys: KeysBefore,
    renumber: bool,
) -> Result<u64, LogError> {
    let mut file = std::io::BufWriter::new(File::create(path).map_err(storage)?);
    let mut out = Vec::new();
    let mut position = 0u64;
    let mut open_request: Option<String> = None;
    // Whether the frames so far end between appends.
    let mut between = true;
    let mut flush = |out: &mut Vec<u8>| {
        std::io::Write::write_all(&mut file, out).map_err(storage)?;
        out.clear();
        Ok::<_, LogError>(())
    };
    for envelope in envelopes {
        let mut envelope = envelope?;
        if renumber {
            envelope.position = position + 1;
        }
        if envelope.position != position + 1 {
            return Err(LogError::Corrupt {
                position: envelope.position,
                reason: format!("expected position {}", position + 1),
            });
        }
        if let Some(id) = open_request.take()
            && id != envelope.request_id
        {
            let commit = Commit {
                last_position: position,
                request: None,
            };
            frames::push(&mut out, COMMIT, &encode(&commit));
            between = true;
        }
        position = envelope.position;
        if between {
            // Between appends: the vault's key frames that came before it.
            while let Some(entry) = keys.first_entry().filter(|e| *e.key() <= position) {
                for body in entry.remove() {
                    frames::push(&mut out, KEYS, &body);
                }
            }
        }
        frames::push(&mut out, EVENT, &envelope.encode());
        between = false;
        match records.remove(&position) {
            Some(request) => {
                let commit = Commit {
                    last_position: position,
                    request: Some(request),
                };
                frames::push(&mut out, COMMIT, &encode(&commit));
                between = true;
            }
            None => open_request = Some(envelope.request_id),
        }
        if out.len() > SCAN_CHUNK {
            flush(&mut out)?;
        }
    }
    if open_request.is_some() {
        let commit = Commit {
            last_position: position,
            request: None,
        };
        frames::push(&mut out, COMMIT, &encode(&commit));
    }
    flush(&mut out)?;
    let file = file.into_inner().map_err(storage)?;
    file.sync_all().map_err(storage)?;
    Ok(position)
}

impl FileLog {
    /// Writes `envelopes` (a whole log, in order) into a new log in the empty
    /// directory `dir`, as they are: hashes and chains untouched, positions
    /// numbered 1, 2, 3… (a JetStream log's have gaps; no hash covers them).
    /// Returns how many were written. Request records are not carried over.
    pub fn import(
        dir: &Path,
        envelopes: impl IntoIterator<Item = Envelope>,
    ) -> Result<u64, LogError> {
        if dir.exists() && std::fs::read_dir(dir).map_err(storage)?.next().is_some() {
            return Err(LogError::Storage(format!(
                "{} is not empty: a restore only goes into an empty directory",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(storage)?;
        let partial = dir.join("events.partial");
        let written = write_frames(
            &partial,
            envelopes.into_iter().map(Ok),
            HashMap::new(),
            KeysBefore::new(),
            true,
        )?;
        std::fs::rename(&partial, dir.join(EVENTS_FILE)).map_err(storage)?;
        sync_dir(dir)?;
        Ok(written)
    }

    /// Every intact event frame left in the stopped log in `dir`, in file
    /// order, reading past damaged bytes: what a repair can still use.
    pub fn salvage(dir: &Path) -> Result<Vec<Envelope>, LogError> {
        let _lock = lock_dir(dir)?;
        Ok(salvage_file(&dir.join(EVENTS_FILE))?.0)
    }

    /// Replaces the stopped log in `dir` with `envelopes` (a whole, verified
    /// history, positions 1, 2, 3…), keeping the old file beside it as
    /// `events.damaged-<n>`; the index and the synced mark are made again at
    /// the next open. Returns where the old file went.
    pub fn replace(dir: &Path, envelopes: Vec<Envelope>) -> Result<std::path::PathBuf, LogError> {
        let _lock = lock_dir(dir)?;
        // The request records that survive keep answering retries.
        // So do the vault's keys the log still carries.
        let (_, records, keys) = salvage_file(&dir.join(EVENTS_FILE))?;
        let partial = dir.join("events.repaired");
        write_frames(
            &partial,
            envelopes.into_iter().map(Ok),
            records,
            keys,
            false,
        )?;
        let aside = (1..)
            .map(|n| dir.join(format!("{EVENTS_FILE}.damaged-{n}")))
            .find(|p| !p.exists())
            .unwrap_or_else(|| dir.join(format!("{EVENTS_FILE}.damaged")));
        std::fs::rename(dir.join(EVENTS_FILE), &aside).map_err(storage)?;
        std::fs::rename(&partial, dir.join(EVENTS_FILE)).map_err(storage)?;
        let _ = std::fs::remove_dir_all(dir.join(INDEX_DIR));
        let _ = std::fs::remove_file(dir.join(mark::MARK_FILE));
        sync_dir(dir)?;
        Ok(aside)
    }
}
