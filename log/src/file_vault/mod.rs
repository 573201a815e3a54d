//! Persons' keys in a file of their own (embedded mode), beside the log.
//!
//! The file `keys` is a run of checksummed records (the log's framing, see
//! [`crate::file_log::frames`]): `V` holds a key ref and its key, `X` a ref
//! whose key was destroyed. Destroying a key overwrites its record in place
//! with zeros (and syncs), so the key's bytes leave the file rather than
//! waiting for a compaction; the `X` record is also the tombstone that tells
//! an erased person from a key that went missing ([`VaultError::Missing`],
//! damage, never read as an erasure).
//!
//! A new key is appended without a sync: once the vault is attached to the
//! log ([`FileVault::attach`]) it travels in the log's next group commit (see
//! [`journal`]), which is the one sync an invitation waits for. Without a
//! log attached (tests, restores), each new key is synced on its own.
//!
//! Memory: an index of 16 bytes a key (hash and offset); the keys themselves
//! are read from the file (the page cache) and cached in front
//! ([`crate::vault::CachedVault`]).

pub mod journal;

use crate::file_log::FileLog;
use crate::file_log::dir::{lock_dir, open_rw};
use crate::file_log::frames::{self, FrameError, Frames, VAULT_ERASED, VAULT_KEY};
use crate::log::EventLog;
use crate::vault::{Vault, VaultError};
use access_catalogue::personal::Key;
use futures::future::BoxFuture;
use hashbrown::HashTable;
use journal::KeyJournal;
use std::fs::File;
use std::hash::BuildHasher;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

/// The vault's file of records.
const KEYS_FILE: &str = "keys";

/// How often the journal's epoch is retired while keys are being made.
const ROTATE_EVERY: Duration = Duration::from_secs(2);

/// Events after which an epoch is retired even without new keys, so a start
/// after a crash never reads far back in the log.
const ROTATE_AFTER_EVENTS: u64 = 50_000;

/// Longest key ref a record holds.
const MAX_REF: usize = 4096;

fn failed(e: impl std::fmt::Display) -> VaultError {
    VaultError::Unavailable(e.to_string())
}

/// The file and its index, under one lock.
struct Records {
    file: File,
    len: u64,
    /// (hash of the ref, offset of its latest record).
    index: HashTable<(u64, u64)>,
    hasher: std::collections::hash_map::RandomState,
}

/// What a record says about a ref.
enum Found {
    Key(u64, Key),
    Erased,
}

impl Records {
    fn hash(&self, key_ref: &str) -> u64 {
        self.hasher.hash_one(key_ref)
    }

    fn find(&self, key_ref: &str) -> Result<Option<Found>, VaultError> {
        let hash = self.hash(key_ref);
        for &(_, offset) in self.index.iter_hash(hash).filter(|(h, _)| *h == hash) {
            let (kind, body) = Records::read_at(&self.file, offset, self.len)?;
            let (r, key) = split(&body).ok_or_else(|| {
                VaultError::Damaged(format!("the record at byte {offset} is not a key record"))
            })?;
            if r != key_ref.as_bytes() {
                continue;
            }
            return Ok(Some(match kind {
                VAULT_KEY => Found::Key(offset, key),
                _ => Found::Erased,
            }));
        }
        Ok(None)
    }

    /// Points the ref's entry at `offset` (its latest record).
    fn remember(&mut self, key_ref: &[u8], offset: u64) -> Result<(), VaultError> {
        let hash = self
            .hasher
            .hash_one(std::str::from_utf8(key_ref).map_err(|_| {
                VaultError::Damaged(format!("the record at byte {offset} names no key ref"))
            })?);
        let mut replaced = false;
        for (h, o) in self.index.iter_hash_mut(hash) {
            if *h != hash {
                continue;
            }
            let (_, body) = Records::read_at(&self.file, *o, self.len)?;
            if split(&body).is_some_and(|(r, _)| r == key_ref) {
                *o = offset;
                replaced = true;
                break;
            }
        }
        if !replaced {
            self.index.insert_unique(hash, (hash, offset), |(h, _)| *h);
        }
        Ok(())
    }

    fn read_at(file: &File, offset: u64, len: u64) -> Result<(u8, Vec<u8>), VaultError> {
        let mut reader = Frames::new(file, offset, len, 256);
        match reader.next_frame() {
            Ok(Some(f)) => Ok((f.kind, f.body.to_vec())),
            _ => Err(VaultError::Damaged(format!(
                "the record at byte {offset} of the vault's file is damaged"
            ))),
        }
    }

    /// Appends one record (not synced).
    fn append(&mut self, kind: u8, key_ref: &str, key: &Key) -> Result<u64, VaultError> {
        let out = record(kind, key_ref, key);
        let offset = self.len;
        if let Err(e) = self.file.write_all_at(&out, offset) {
            // Nothing half-written may stay where the next record goes.
            let _ = self.file.set_len(offset);
            return Err(failed(e));
        }
        self.len += out.len() as u64;
        self.remember(key_ref.as_bytes(), offset)?;
        Ok(offset)
    }
}

/// One record, framed: the ref, then 32 bytes of key (zeros once erased).
fn record(kind: u8, key_ref: &str, key: &Key) -> Vec<u8> {
    let mut body = Vec::with_capacity(key_ref.len() + 32);
    body.extend_from_slice(key_ref.as_bytes());
    body.extend_from_slice(key);
    let mut out = Vec::with_capacity(body.len() + frames::HEADER);
    frames::push(&mut out, kind, &body);
    out
}

/// A record's body: the ref, then 32 bytes of key (zeros once erased).
fn split(body: &[u8]) -> Option<(&[u8], Key)> {
    let at = body.len().checked_sub(32)?;
    let key = body[at..].try_into().ok()?;
    Some((&body[..at], key))
}

/// The embedded mode's key vault.
pub struct FileVault {
    dir: PathBuf,
    _lock: File,
    records: Mutex<Records>,
    journal: Arc<KeyJournal>,
    /// Set once a log takes new keys into its group commits.
    journaled: AtomicBool,
    /// One epoch change at a time.
    rotation: Mutex<()>,
    head: OnceLock<tokio::sync::watch::Receiver<u64>>,
    stop: Arc<AtomicBool>,
}

/// A vault read and checked by [`FileVault::read`], its file not yet changed.
pub struct ReadVault {
    vault: FileVault,
    /// A tail of unsynced records a crash cut short: (where the whole
    /// records end, the file's length).
    torn: Option<(u64, u64)>,
}

impl ReadVault {
    /// The vault, ready for use: a torn tail is cut now.
    pub fn open(self) -> Result<FileVault, VaultError> {
        let ReadVault { vault, torn } = self;
        if let Some((end, len)) = torn {
            tracing::warn!(
                vault = %vault.dir.display(),
                offset = end,
                bytes = len - end,
                "the key vault ends in records a crash cut short; they were never synced and are removed (the log holds their keys)"
            );
            let records = vault.records();
            records.file.set_len(end).map_err(failed)?;
            records.file.sync_all().map_err(failed)?;
            drop(records);
        }
        Ok(vault)
    }
}

impl FileVault {
    /// Opens (or creates) the vault in `dir`, checking every record; a tail a
    /// crash tore off unsynced records is cut (the log holds those keys), any
    /// other damage is named.
    pub fn open(dir: &Path) -> Result<Self, VaultError> {
        std::fs::create_dir_all(dir).map_err(failed)?;
        Self::read(dir)?.open()
    }

    /// Reads and checks the existing vault in `dir` under its lock, changing
    /// nothing: a start reads it beside the log's own check, and only
    /// [`ReadVault::open`], once the log is accepted, cuts a torn tail.
    pub fn read(dir: &Path) -> Result<ReadVault, VaultError> {
        let lock = lock_dir(dir).map_err(failed)?;
        let journal = Arc::new(KeyJournal::open(dir)?);
        let file = open_rw(&dir.join(KEYS_FILE)).map_err(failed)?;
        let len = file.metadata().map_err(failed)?.len();
        let mut records = Records {
            file,
            len,
            index: HashTable::new(),
            hasher: Default::default(),
        };
        if len < journal.synced_len() {
            return Err(VaultError::Damaged(format!(
                "{} holds {len} bytes, but {} were synced: keys are missing",
                dir.join(KEYS_FILE).display(),
                journal.synced_len()
            )));
        }
        let end = scan(&mut records, journal.synced_len(), dir)?;
        Ok(ReadVault {
            vault: FileVault {
                dir: dir.to_owned(),
                _lock: lock,
                records: Mutex::new(records),
                journal,
                journaled: AtomicBool::new(false),
                rotation: Mutex::new(()),
                head: OnceLock::new(),
                stop: Arc::new(AtomicBool::new(false)),
            },
            torn: (end < len).then_some((end, len)),
        })
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `dir` holds a vault of this kind.
    pub fn exists_in(dir: &Path) -> bool {
        dir.join(KEYS_FILE).exists()
    }

    /// Moves the records of the vault in `from` (made by [`FileVault::restore`]
    /// into a directory of its own) into `into`, in one rename.
    pub fn move_records(from: &Path, into: &Path) -> Result<(), VaultError> {
        std::fs::rename(from.join(KEYS_FILE), into.join(KEYS_FILE)).map_err(failed)?;
        File::open(into).and_then(|d| d.sync_all()).map_err(failed)
    }

    /// Stores keys and tombstones read from a backup or an earlier vault
    /// (`None`: destroyed), then syncs.
    pub fn restore(&self, entries: &[(String, Option<Key>)]) -> Result<(), VaultError> {
        let mut records = self.records();
        for (key_ref, key) in entries {
            check_ref(key_ref)?;
            match key {
                Some(k) => records.append(VAULT_KEY, key_ref, k)?,
                None => records.append(VAULT_ERASED, key_ref, &[0; 32])?,
            };
        }
        records.file.sync_data().map_err(failed)
    }

    /// Lets `log` carry new keys in its group commits: puts back the keys of
    /// the live epochs' frames that the vault's file lost in a crash, begins
    /// a new epoch and starts retiring epochs in the background.
    pub fn attach(self: &Arc<Self>, log: &FileLog) -> Result<(), VaultError> {
        let found = log
            .attach_keys(self.journal.clone())
            .map_err(|e| VaultError::Damaged(e.to_string()))?;
        let mut put_back = 0;
        {
            let mut records = self.records();
            for (key_ref, key) in found {
                // A ref with any record is either there or erased: an erased
                // key is never brought back.
                if records.find(&key_ref)?.is_none() {
                    records.append(VAULT_KEY, &key_ref, &key)?;
                    put_back += 1;
                }
            }
        }
        if put_back > 0 {
            tracing::info!(
                keys = put_back,
                "keys the vault lost in a crash were put back from the log"
            );
        }
        let _ = self.head.set(log.head());
        self.rotate()?;
        self.journaled.store(true, Ordering::Release);
        let weak = Arc::downgrade(self);
        let stop = self.stop.clone();
        std::thread::Builder::new()
            .name("key-vault-epochs".into())
            .spawn(move || retire_epochs(weak, stop))
            .map_err(failed)?;
        Ok(())
    }

    /// Syncs the file and retires every epoch before a new one, so no key in
    /// the log can be opened any more.
    fn rotate(&self) -> Result<(), VaultError> {
        let _one = self.rotation.lock().unwrap_or_else(|p| p.into_inner());
        let head = self.head.get().map_or(0, |h| *h.borrow());
        let current = self.journal.begin(head)?;
        let len = {
            let records = self.records();
            records.file.sync_data().map_err(failed)?;
            records.len
        };
        self.journal.retire(current, len)
    }

    /// Ends the background work and retires the epoch, so the next start
    /// reads nothing back from the log.
    pub fn close(&self) -> Result<(), VaultError> {
        self.stop.store(true, Ordering::Release);
        if self.journaled.load(Ordering::Acquire) {
            self.rotate()?;
        }
        Ok(())
    }

    fn rotation_due(&self) -> bool {
        let head = self.head.get().map_or(0, |h| *h.borrow());
        self.journal.queued_since_epoch() > 0
            || self
                .journal
                .current_from()
                .is_some_and(|from| head.saturating_sub(from) >= ROTATE_AFTER_EVENTS)
    }
}

impl Drop for FileVault {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Retires epochs every few seconds while keys are made; a failure is
/// reported and tried again (the log still holds the keys meanwhile).
fn retire_epochs(vault: Weak<FileVault>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Acquire) {
        std::thread::park_timeout(ROTATE_EVERY);
        let Some(vault) = vault.upgrade() else { return };
        if stop.load(Ordering::Acquire) || !vault.rotation_due() {
            continue;
        }
        if let Err(e) = vault.rotate() {
            tracing::error!(error = %e, vault = %vault.dir.display(), "syncing the key vault failed; new keys stay in the log until it succeeds");
        }
    }
}

fn check_ref(key_ref: &str) -> Result<(), VaultError> {
    if key_ref.is_empty() || key_ref.len() > MAX_REF {
        return Err(VaultError::Unavailable(format!(
            "a key ref must be 1 to {MAX_REF} bytes"
        )));
    }
    Ok(())
}

/// Reads every record into the index; returns where the intact records end.
fn scan(records: &mut Records, synced: u64, dir: &Path) -> Result<u64, VaultError> {
    let damaged = |offset: u64, what: &str| {
        VaultError::Damaged(format!(
            "{}: {what} at byte {offset}",
            dir.join(KEYS_FILE).display()
        ))
    };
    let len = records.len;
    // A reader of its own, so each record goes into the index as it is read.
    let file = records.file.try_clone().map_err(failed)?;
    let mut reader = Frames::new(&file, 0, len, 256 * 1024);
    let end = loop {
        match reader.next_frame() {
            Ok(Some(f)) => match split(f.body) {
                Some((r, _)) if !r.is_empty() && matches!(f.kind, VAULT_KEY | VAULT_ERASED) => {
                    records.remember(r, f.offset)?;
                }
                _ => return Err(damaged(f.offset, "a record that is not a key record")),
            },
            Ok(None) => break len,
            Err(FrameError::Bad { offset, reason }) => {
                if offset < synced || intact_after(&file, offset, len)? {
                    return Err(damaged(offset, reason));
                }
                break offset;
            }
            Err(FrameError::Io(e)) => return Err(failed(e)),
        }
    };
    records.len = end;
    Ok(end)
}

/// Whether an intact record starts anywhere after the bad one at `at`.
fn intact_after(file: &File, at: u64, len: u64) -> Result<bool, VaultError> {
    let mut rest = vec![0u8; (len - at) as usize];
    file.read_exact_at(&mut rest, at).map_err(failed)?;
    Ok((1..rest.len()).any(|i| frames::intact_at(&rest[i..]).is_some()))
}

impl Vault for FileVault {
    fn get(&self, key_ref: &str) -> BoxFuture<'_, Result<Option<Key>, VaultError>> {
        let found = match self.records().find(key_ref) {
            Ok(Some(Found::Key(_, k))) => Ok(Some(k)),
            Ok(Some(Found::Erased)) => Ok(None),
            Ok(None) => Err(VaultError::Missing(key_ref.to_owned())),
            Err(e) => Err(e),
        };
        Box::pin(async move { found })
    }

    fn get_or_create(&self, key_ref: &str) -> BoxFuture<'_, Result<Key, VaultError>> {
        let result = (|| {
            check_ref(key_ref)?;
            let mut records = self.records();
            let found = records.find(key_ref)?;
            if let Some(Found::Key(_, k)) = found {
                return Ok(k);
            }
            let made: Key = rand::random();
            records.append(VAULT_KEY, key_ref, &made)?;
            // A forgotten person invited again: the new key is synced now,
            // so a crash can never leave the tombstone as the last word.
            if found.is_some() || !self.journaled.load(Ordering::Acquire) {
                records.file.sync_data().map_err(failed)?;
            } else {
                self.journal.queue(key_ref, made);
            }
            Ok(made)
        })();
        Box::pin(async move { result })
    }

    fn destroy(&self, key_ref: &str) -> BoxFuture<'_, Result<(), VaultError>> {
        let result = (|| {
            check_ref(key_ref)?;
            {
                let mut records = self.records();
                match records.find(key_ref)? {
                    Some(Found::Key(offset, _)) => {
                        let erased = record(VAULT_ERASED, key_ref, &[0; 32]);
                        records.file.write_all_at(&erased, offset).map_err(failed)?;
                    }
                    Some(Found::Erased) => return Ok(()),
                    None => {
                        records.append(VAULT_ERASED, key_ref, &[0; 32])?;
                    }
                }
                records.file.sync_data().map_err(failed)?;
            }
            // The key may still sit in the log under a live epoch: retire it.
            if self.journaled.load(Ordering::Acquire) {
                self.rotate()?;
            }
            Ok(())
        })();
        Box::pin(async move { result })
    }

    fn all(&self) -> BoxFuture<'_, Result<Vec<(String, Key)>, VaultError>> {
        let result = (|| {
            let records = self.records();
            let mut latest = std::collections::HashMap::new();
            let mut reader = Frames::new(&records.file, 0, records.len, 256 * 1024);
            while let Some(f) = reader
                .next_frame()
                .map_err(|e| VaultError::Damaged(e.to_string()))?
            {
                if let Some((r, key)) = split(f.body) {
                    let r = String::from_utf8_lossy(r).into_owned();
                    latest.insert(r, (f.kind == VAULT_KEY).then_some(key));
                }
            }
            Ok(latest
                .into_iter()
                .filter_map(|(r, k)| k.map(|k| (r, k)))
                .collect())
        })();
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests;
