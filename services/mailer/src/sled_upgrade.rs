//! The embedded mailer's state as earlier versions kept it (a sled database
//! of folded state, ledger and checkpoint), moved once into the ledger file.
//! Only the checkpoint and the outcomes still to report carry over: the rest
//! is read from the log when a mail needs it.

use crate::delivery::DeliveryReport;
use crate::ledger::{self, Ledger};
use anyhow::Context;
use std::path::Path;

/// The files sled keeps in its directory.
const SLED_FILES: [&str; 3] = ["conf", "db", "blobs"];

/// Opens the ledger in `dir`, first moving an earlier sled state there.
pub(crate) fn open(dir: &Path) -> anyhow::Result<Ledger> {
    let earlier = dir.join("db").exists() && !dir.join(ledger::FILE).exists();
    if !earlier {
        return Ledger::open(dir);
    }
    let (checkpoint, pending) = read(dir)?;
    // Written under a temporary name and renamed: a crash part-way leaves
    // the sled state to be moved again.
    let moving = dir.join("moving");
    let _ = std::fs::remove_dir_all(&moving);
    let ledger = Ledger::open(&moving)?;
    let outcomes: Vec<(u64, DeliveryReport)> = pending
        .into_iter()
        .map(|r| (checkpoint.map_or(0, |c| c.0), r))
        .collect();
    ledger.record(&outcomes, checkpoint)?;
    drop(ledger);
    std::fs::rename(moving.join(ledger::FILE), dir.join(ledger::FILE))?;
    std::fs::File::open(dir)?.sync_all()?;
    let _ = std::fs::remove_dir_all(&moving);
    for name in SLED_FILES {
        let path = dir.join(name);
        let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
    }
    for entry in std::fs::read_dir(dir)?.flatten() {
        if entry.file_name().to_string_lossy().starts_with("snap.") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    tracing::info!(dir = %dir.display(), "the mailer's earlier state was moved into its ledger");
    Ledger::open(dir)
}

type Earlier = (Option<(u64, [u8; 32])>, Vec<DeliveryReport>);

fn read(dir: &Path) -> anyhow::Result<Earlier> {
    let db = sled::Config::new()
        .path(dir)
        .open()
        .with_context(|| format!("opening the mailer's earlier state in {}", dir.display()))?;
    let get = |k: &[u8]| db.get(k).context("reading the mailer's earlier state");
    let position = get(b"checkpoint")?
        .map(|v| postcard::from_bytes::<u64>(&v))
        .transpose()
        .context("the earlier checkpoint")?;
    let hash = get(b"checkpoint-hash")?
        .map(|v| postcard::from_bytes::<[u8; 32]>(&v))
        .transpose()
        .context("the earlier checkpoint's hash")?;
    let mut pending = Vec::new();
    for item in db.scan_prefix(b"report\0") {
        let (_, v) = item.context("reading the mailer's earlier state")?;
        if let Ok(report) = postcard::from_bytes::<DeliveryReport>(&v) {
            pending.push(report);
        }
    }
    Ok((position.zip(hash), pending))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_earlier_sled_state_moves_once_with_its_checkpoint_and_pending_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let report = DeliveryReport {
            tenant: "acme".into(),
            contact_id: "c1".into(),
            source_event_id: "m1".into(),
            kind: "invitation".into(),
            failure: None,
        };
        {
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            db.insert(b"checkpoint", postcard::to_stdvec(&41u64).unwrap())
                .unwrap();
            db.insert(b"checkpoint-hash", postcard::to_stdvec(&[7u8; 32]).unwrap())
                .unwrap();
            db.insert(b"report\0m1", postcard::to_stdvec(&report).unwrap())
                .unwrap();
            db.insert(b"contact\0acme\0c1", b"an address".to_vec())
                .unwrap();
            db.flush().unwrap();
        }
        let ledger = open(dir.path()).unwrap();
        assert_eq!(ledger.checkpoint(), (41, Some([7; 32])));
        assert_eq!(ledger.pending(10), vec![report]);
        assert!(!dir.path().join("db").exists(), "sled's files are gone");
        drop(ledger);
        let again = open(dir.path()).unwrap();
        assert_eq!(again.checkpoint(), (41, Some([7; 32])));
    }
}
