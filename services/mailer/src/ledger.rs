//! The embedded mailer's own record, in one file beside its outbox: how far it
//! has come in the log (the checkpoint and that event's hash), which mails
//! after the checkpoint are known to have gone out or been given up on, and
//! the outcomes still to be recorded on their contacts.
//!
//! The file is a run of checksummed records (the log's framing), appended and
//! synced once per batch of mail. A record cut short by a crash is the last
//! one and is cut off at the next open; a damaged record with intact ones
//! after it is damage, named, never read around. The file is rewritten
//! (temp file, sync, rename) when it grows, holding only what still counts.
//! It holds no personal data: ids, positions and the wording of failures.

use crate::delivery::DeliveryReport;
use access_catalogue::damage::Damage;
use access_log::file_log::frames::{self, Frames};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file's name in the state directory.
pub(crate) const FILE: &str = "ledger";

/// Bytes past which the file is rewritten with only what still counts.
const COMPACT_AT: u64 = 1 << 20;

/// One record of the file.
#[derive(Debug, Serialize, Deserialize)]
enum Record {
    /// Every event up to `position` (whose hash is `hash`) was handled.
    Checkpoint { position: u64, hash: [u8; 32] },
    /// The mail of the event `id` at `position` went out or was given up on.
    Handled { id: String, position: u64 },
    /// An outcome to record on its contact.
    Report(DeliveryReport),
    /// The outcome of the mail `id` is recorded on its contact.
    Reported(String),
}

#[derive(Default)]
struct Held {
    checkpoint: u64,
    hash: Option<[u8; 32]>,
    /// Mails handled, by event id, with their events' positions.
    handled: HashMap<String, u64>,
    /// Outcomes still to report, by event id.
    pending: BTreeMap<String, DeliveryReport>,
    /// Records appended since the last sync (reported outcomes).
    unsynced: bool,
}

impl Held {
    fn apply(&mut self, r: Record) {
        match r {
            Record::Checkpoint { position, hash } => {
                self.checkpoint = position;
                self.hash = Some(hash);
            }
            Record::Handled { id, position } => {
                self.handled.insert(id, position);
            }
            Record::Report(report) => {
                self.pending.insert(report.source_event_id.clone(), report);
            }
            Record::Reported(id) => {
                self.pending.remove(&id);
            }
        }
    }

    /// The records that say all of this, for a rewritten file.
    fn records(&self) -> Vec<Record> {
        let mut out = Vec::new();
        if let Some(hash) = self.hash {
            out.push(Record::Checkpoint {
                position: self.checkpoint,
                hash,
            });
        }
        // Mails before the checkpoint are never looked up again.
        out.extend(
            self.handled
                .iter()
                .filter(|(_, p)| **p > self.checkpoint)
                .map(|(id, position)| Record::Handled {
                    id: id.clone(),
                    position: *position,
                }),
        );
        out.extend(self.pending.values().cloned().map(Record::Report));
        out
    }
}

/// The embedded mailer's ledger file and what it says.
pub(crate) struct Ledger {
    path: PathBuf,
    file: Mutex<(File, u64)>,
    held: Mutex<Held>,
}

fn encode(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        // Records are plain data: encoding cannot fail.
        let body = postcard::to_stdvec(r).unwrap_or_default();
        frames::push(&mut out, frames::MAILER, &body);
    }
    out
}

impl Ledger {
    /// Opens (or creates) the ledger in `dir`, cutting a torn last record.
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Ledger> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let len = file.metadata()?.len();
        let mut held = Held::default();
        let mut reader = Frames::new(&file, 0, len, 64 * 1024);
        let mut end = 0;
        loop {
            match reader.next_frame() {
                Ok(None) => break,
                Ok(Some(f)) => {
                    let record = (f.kind == frames::MAILER)
                        .then(|| postcard::from_bytes::<Record>(f.body).ok())
                        .flatten();
                    let Some(record) = record else {
                        return Err(Damage::new(
                            path.display().to_string(),
                            format!("a record at offset {} is not a mailer record", f.offset),
                        )
                        .into());
                    };
                    end = f.end();
                    held.apply(record);
                }
                Err(frames::FrameError::Io(e)) => return Err(e.into()),
                Err(frames::FrameError::Bad { offset, reason }) => {
                    let mut rest = vec![0; (len - offset) as usize];
                    file.read_exact_at(&mut rest, offset)?;
                    if (1..rest.len()).any(|i| frames::intact_at(&rest[i..]).is_some()) {
                        return Err(Damage::new(
                            path.display().to_string(),
                            format!("{reason} at offset {offset}, with intact records after it"),
                        )
                        .into());
                    }
                    tracing::warn!(
                        offset,
                        reason,
                        "the mailer's ledger ends in a torn record; cut off"
                    );
                    break;
                }
            }
        }
        if end < len {
            file.set_len(end)?;
            file.sync_all()?;
        }
        let ledger = Ledger {
            path,
            file: Mutex::new((file, end)),
            held: Mutex::new(held),
        };
        if end > COMPACT_AT {
            ledger.compact()?;
        }
        Ok(ledger)
    }

    /// The last position handled, and its event's hash.
    pub(crate) fn checkpoint(&self) -> (u64, Option<[u8; 32]>) {
        let h = self.held();
        (h.checkpoint, h.hash)
    }

    /// Whether the mail of event `id` went out or was given up on.
    pub(crate) fn handled(&self, id: &str) -> bool {
        self.held().handled.contains_key(id)
    }

    /// Up to `max` outcomes still to report.
    pub(crate) fn pending(&self, max: usize) -> Vec<DeliveryReport> {
        self.held().pending.values().take(max).cloned().collect()
    }

    /// How many outcomes are still to report.
    pub(crate) fn pending_count(&self) -> usize {
        self.held().pending.len()
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records mails the log says were handled (learned at start), synced.
    pub(crate) fn learn(&self, mails: Vec<(String, u64)>) -> anyhow::Result<()> {
        let records = mails
            .into_iter()
            .map(|(id, position)| Record::Handled { id, position })
            .collect();
        self.append(records, true)
    }

    /// Records a batch, synced: its mails' outcomes and the new checkpoint.
    pub(crate) fn record(
        &self,
        outcomes: &[(u64, DeliveryReport)],
        checkpoint: Option<(u64, [u8; 32])>,
    ) -> anyhow::Result<()> {
        let mut records = Vec::new();
        for (position, report) in outcomes {
            records.push(Record::Handled {
                id: report.source_event_id.clone(),
                position: *position,
            });
            records.push(Record::Report(report.clone()));
        }
        if let Some((position, hash)) = checkpoint {
            records.push(Record::Checkpoint { position, hash });
        }
        self.append(records, true)
    }

    /// Records outcomes now on their contacts. Not synced: lost, they are
    /// reported again, which the service answers as already recorded.
    pub(crate) fn reported(&self, ids: Vec<String>) -> anyhow::Result<()> {
        self.append(ids.into_iter().map(Record::Reported).collect(), false)
    }

    /// Syncs what was appended without a sync.
    pub(crate) fn sync(&self) -> anyhow::Result<()> {
        if std::mem::take(&mut self.held().unsynced) {
            let file = self.file.lock().unwrap_or_else(|p| p.into_inner());
            file.0.sync_data()?;
        }
        Ok(())
    }

    fn append(&self, records: Vec<Record>, sync: bool) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let bytes = encode(&records);
        let grown = {
            let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
            let at = file.1;
            let written = file
                .0
                .write_all_at(&bytes, at)
                .and_then(|()| if sync { file.0.sync_data() } else { Ok(()) });
            if let Err(e) = written {
                // Nothing half-written may be read as said: cut it off again.
                let _ = file.0.set_len(at);
                return Err(
                    anyhow::Error::from(e).context(format!("writing {}", self.path.display()))
                );
            }
            file.1 += bytes.len() as u64;
            file.1 > COMPACT_AT
        };
        {
            let mut held = self.held();
            held.unsynced = !sync;
            for r in records {
                held.apply(r);
            }
        }
        if grown {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the file with only what still counts.
    fn compact(&self) -> anyhow::Result<()> {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = encode(&self.held().records());
        let tmp = self.path.with_extension("tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        let reopened = OpenOptions::new().read(true).write(true).open(&self.path)?;
        *file = (reopened, bytes.len() as u64);
        self.held().unsynced = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(id: &str) -> DeliveryReport {
        DeliveryReport {
            tenant: "acme".into(),
            contact_id: "c1".into(),
            source_event_id: id.into(),
            kind: "invitation".into(),
            failure: None,
        }
    }

    #[test]
    fn what_was_recorded_is_read_back_and_a_torn_last_record_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        {
            let l = Ledger::open(dir.path()).unwrap();
            l.record(&[(7, report("m1")), (8, report("m2"))], Some((9, [1; 32])))
                .unwrap();
            l.reported(vec!["m1".into()]).unwrap();
            l.sync().unwrap();
        }
        let path = dir.path().join(FILE);
        let len = std::fs::metadata(&path).unwrap().len();
        {
            let mut f = OpenOptions::new().append(true).open(&path).unwrap();
            f.write_all(&[frames::MAILER, 40, 0, 0]).unwrap();
        }
        let l = Ledger::open(dir.path()).unwrap();
        assert_eq!(l.checkpoint(), (9, Some([1; 32])));
        assert!(l.handled("m1") && l.handled("m2") && !l.handled("m3"));
        assert_eq!(l.pending(10), vec![report("m2")]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    }

    #[test]
    fn a_damaged_record_before_intact_ones_is_named() {
        let dir = tempfile::tempdir().unwrap();
        {
            let l = Ledger::open(dir.path()).unwrap();
            l.record(&[(1, report("m1"))], Some((1, [2; 32]))).unwrap();
            l.record(&[(2, report("m2"))], Some((2, [3; 32]))).unwrap();
        }
        let path = dir.path().join(FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[frames::HEADER + 2] ^= 0x10;
        std::fs::write(&path, bytes).unwrap();
        let e = Ledger::open(dir.path()).err().expect("damage");
        assert!(crate::worker::damage_of(&e).is_some(), "{e:#}");
    }

    #[test]
    fn a_rewrite_keeps_the_checkpoint_pending_outcomes_and_later_mails_only() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path()).unwrap();
        l.learn(vec![("later".into(), 50)]).unwrap();
        l.record(&[(3, report("early"))], Some((10, [4; 32])))
            .unwrap();
        l.compact().unwrap();
        drop(l);
        let l = Ledger::open(dir.path()).unwrap();
        assert_eq!(l.checkpoint(), (10, Some([4; 32])));
        assert!(l.handled("later") && !l.handled("early"));
        assert_eq!(l.pending(10), vec![report("early")]);
    }
}
