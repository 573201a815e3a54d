//! The log's directory: its files, the lock that keeps it to one process,
//! and opening the index with a check that its settings were not changed.

use super::{INDEX_DIR, LOCK_FILE, storage};
use crate::log::LogError;
use access_catalogue::damage::Damage;
use std::fs::{File, OpenOptions};
use std::path::Path;

/// The index partition's settings file, which fjall reads at open.
const INDEX_CONFIG: &str = "index/partitions/index/config";

/// Where the SHA-256 of [`INDEX_CONFIG`] is kept, beside the index.
const INDEX_CONFIG_SUM: &str = "index.config.sha256";

/// Checks the index's settings against the sum taken when it was made:
/// fjall panics on some damaged settings (and aborts while unwinding), so
/// damage there must be named before fjall reads them.
pub(super) fn check_index_config(dir: &Path) -> Result<(), LogError> {
    let sum_path = dir.join(INDEX_CONFIG_SUM);
    if !dir.join(INDEX_DIR).exists() {
        // A removed index is made again; its old sum goes with it.
        let _ = std::fs::remove_file(&sum_path);
        return Ok(());
    }
    let (Ok(sum), Ok(config)) = (
        std::fs::read_to_string(&sum_path),
        std::fs::read(dir.join(INDEX_CONFIG)),
    ) else {
        return Ok(());
    };
    use sha2::Digest;
    if hex::encode(sha2::Sha256::digest(&config)) != sum.trim() {
        return Err(LogError::Damaged(Damage::new(
            dir.join(INDEX_CONFIG).display().to_string(),
            "the log's index settings are damaged; the index is derived from the log file: remove log/index and start again to rebuild it",
        )));
    }
    Ok(())
}

/// Records the sum of the index's settings once they exist.
pub(super) fn record_index_config(dir: &Path) {
    use sha2::Digest;
    let sum_path = dir.join(INDEX_CONFIG_SUM);
    if sum_path.exists() {
        return;
    }
    if let Ok(config) = std::fs::read(dir.join(INDEX_CONFIG)) {
        let _ = std::fs::write(&sum_path, hex::encode(sha2::Sha256::digest(&config)));
    }
}

/// The most bytes of entries the index keeps in one memtable (a runtime
/// setting: changing it leaves existing indexes as they are).
const INDEX_MEMTABLE_BYTES: u32 = 4 * 1024 * 1024;

pub(super) fn open_index(
    dir: &Path,
) -> Result<(fjall::Keyspace, fjall::PartitionHandle), LogError> {
    let keyspace = fjall::Config::new(dir.join(INDEX_DIR))
        .open()
        .map_err(storage)?;
    // Small memtables: an index entry is a few dozen bytes, and the skip
    // list holding it in memory costs several times that; with fjall's
    // default (16 MiB of entries per memtable, sealed ones flushing beside
    // the active one) its pages were among the largest in a page-fault
    // profile of the seeding peak at a million contacts. A flush writes a
    // few megabytes of small entries, so flushing more often costs little.
    let index = keyspace
        .open_partition(
            "index",
            fjall::PartitionCreateOptions::default().max_memtable_size(INDEX_MEMTABLE_BYTES),
        )
        .map_err(storage)?;
    Ok((keyspace, index))
}

/// Opens `path` for reading and writing, creating it empty if missing.
pub(crate) fn open_rw(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(storage)
}

/// Takes the directory's lock (`flock` on `lock`), so a second process is
/// refused; held as long as the returned file is open.
pub(crate) fn lock_dir(dir: &Path) -> Result<File, LogError> {
    let file = open_rw(&dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LogError::Storage(format!(
            "{} is in use by another process: only one accessd may open a data directory",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(storage(e)),
    }
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(storage)
}
