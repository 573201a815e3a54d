//! `synced`: how far the log is known to have been synced and acknowledged.
//!
//! The writer records the end of every group commit here after its
//! `fdatasync` (written, and synced at most once a second, so it costs the
//! write path nothing measurable). It is a lower bound of what was
//! acknowledged, kept apart from the file it describes, which is what lets an
//! open tell a tail a crash tore (never acknowledged: above the mark) from
//! damage (anything below it, or a file now shorter than it).

use super::storage;
use crate::log::LogError;
use access_catalogue::damage::Damage;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The mark's file name in the log's directory.
pub(super) const MARK_FILE: &str = "synced";

const MAGIC: &[u8; 4] = b"ALM1";
const LEN: usize = 24;

/// How often at most the mark itself is synced.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// The end of the synced appends: byte offset in `events` and last position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Mark {
    /// Where the last synced append ends.
    pub offset: u64,
    /// Its last position.
    pub position: u64,
}

impl Mark {
    fn encode(self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[..4].copy_from_slice(MAGIC);
        out[4..12].copy_from_slice(&self.offset.to_le_bytes());
        out[12..20].copy_from_slice(&self.position.to_le_bytes());
        let crc = crc32fast::hash(&out[..20]);
        out[20..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; LEN] = bytes.try_into().ok()?;
        let crc = u32::from_le_bytes(bytes[20..].try_into().ok()?);
        if &bytes[..4] != MAGIC || crc32fast::hash(&bytes[..20]) != crc {
            return None;
        }
        Some(Mark {
            offset: u64::from_le_bytes(bytes[4..12].try_into().ok()?),
            position: u64::from_le_bytes(bytes[12..20].try_into().ok()?),
        })
    }
}

/// The open mark file, written by the syncer.
pub(super) struct MarkFile {
    file: File,
    last_sync: Instant,
    unsynced: bool,
    /// Set once a write failed, so the failure is logged once.
    failing: bool,
}

impl MarkFile {
    /// Opens the mark in `dir` and reads it: `None` when there is none yet
    /// (a new log, or one written before the mark existed, or a deleted one:
    /// the index's checkpoint is then the only lower bound). A mark that is
    /// there but unreadable is damage.
    pub fn open(dir: &Path) -> Result<(Self, Option<Mark>), LogError> {
        let path = dir.join(MARK_FILE);
        let file = super::open_rw(&path)?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut bytes).map_err(storage)?;
        let mark = match bytes.len() {
            0 => None,
            _ => Some(Mark::decode(&bytes).ok_or_else(|| {
                LogError::Damaged(Damage::new(
                    path.display().to_string(),
                    "the log's synced mark is unreadable (wrong size or checksum)",
                ))
            })?),
        };
        let mark_file = MarkFile {
            file,
            last_sync: Instant::now(),
            unsynced: false,
            failing: false,
        };
        Ok((mark_file, mark))
    }

    /// Reads the mark in `dir` without creating or changing anything.
    pub fn read(dir: &Path) -> Result<Option<Mark>, LogError> {
        let path = dir.join(MARK_FILE);
        match std::fs::read(&path) {
            Ok(bytes) if bytes.is_empty() => Ok(None),
            Ok(bytes) => Mark::decode(&bytes).map(Some).ok_or_else(|| {
                LogError::Damaged(Damage::new(
                    path.display().to_string(),
                    "the log's synced mark is unreadable (wrong size or checksum)",
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(storage(e)),
        }
    }

    /// Records `mark` now and syncs it if it has not been synced for a while.
    /// A failure leaves an older mark, which is still a lower bound: logged,
    /// never fatal.
    pub fn record(&mut self, mark: Mark) {
        let written = self.file.write_all_at(&mark.encode(), 0);
        self.unsynced = true;
        let result = written.and_then(|()| {
            if self.last_sync.elapsed() >= SYNC_EVERY {
                self.sync_now()
            } else {
                Ok(())
            }
        });
        match result {
            Ok(()) => self.failing = false,
            Err(e) if !self.failing => {
                self.failing = true;
                tracing::warn!(error = %e, "recording the log's synced mark failed; an older mark stands");
            }
            Err(_) => {}
        }
    }

    /// Records `mark` and syncs it at once (on open and on close).
    pub fn record_synced(&mut self, mark: Mark) -> std::io::Result<()> {
        self.file.write_all_at(&mark.encode(), 0)?;
        self.unsynced = true;
        self.sync_now()
    }

    /// Syncs what was recorded, if anything.
    pub fn sync_now(&mut self) -> std::io::Result<()> {
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_reads_back_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut file, none) = MarkFile::open(dir.path()).expect("open");
        assert_eq!(none, None);
        let mark = Mark {
            offset: 4096,
            position: 17,
        };
        file.record_synced(mark).expect("record");
        drop(file);
        let (_, read) = MarkFile::open(dir.path()).expect("open");
        assert_eq!(read, Some(mark));
        let path = dir.path().join(MARK_FILE);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[5] ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        assert!(matches!(
            MarkFile::open(dir.path()),
            Err(LogError::Damaged(_))
        ));
    }
}
