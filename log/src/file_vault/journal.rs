//! Keys made since the vault's file was last synced travel in the log's own
//! group commit, so one `fdatasync` makes an invitation's key and events
//! durable together.
//!
//! A new key is written to the vault's file without a sync and queued here.
//! The log's stager takes the queue into the next group as one `K` frame,
//! sealed under the current *epoch key*, ahead of the group's events. Every
//! few seconds (and on every erasure, and at a clean stop) the vault's file
//! is synced and the epoch is retired: its key is removed from the journal
//! file, so the copies in the log can never be opened again. An erasure
//! therefore never leaves a readable key in the log, which is kept for ever.
//!
//! After a crash, the `K` frames of the epochs still in the journal file
//! put back the keys whose vault records had not reached the disk.
//!
//! The journal file (`journal`) holds how much of the vault's file was
//! synced and the live epochs; it is replaced whole (temp file, sync,
//! rename, directory sync) and carries a CRC.

use crate::vault::VaultError;
use access_catalogue::personal::Key;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The journal file's name in the vault's directory.
pub(super) const JOURNAL_FILE: &str = "journal";

/// One epoch: the key `K` frames are sealed under while it is current.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Epoch {
    pub(super) id: u64,
    pub(super) key: Key,
    /// The log's head when it began: its frames come after this position.
    pub(super) from_position: u64,
}

/// What the journal file holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct JournalState {
    /// Bytes of the vault's file known to be synced: damage below this is
    /// damage, not a tail a crash tore.
    pub(super) synced_len: u64,
    /// Live epochs, oldest first; the last is current.
    pub(super) epochs: Vec<Epoch>,
}

/// The body of a `K` frame.
#[derive(Serialize, Deserialize)]
struct Sealed {
    epoch: u64,
    nonce: [u8; 24],
    sealed: Vec<u8>,
}

/// Keys the log has not made durable yet, numbered in the order made.
#[derive(Default)]
struct Pending {
    keys: std::collections::VecDeque<(u64, String, Key)>,
    /// Number of the last key made.
    next: u64,
    /// Number of the last key the log made durable.
    durable: u64,
}

/// The queue of keys the log has not made durable yet, and the epochs.
pub struct KeyJournal {
    path: PathBuf,
    state: Mutex<JournalState>,
    pending: Mutex<Pending>,
    /// Keys queued since the last epoch began.
    queued: AtomicU64,
}

fn failed(e: impl std::fmt::Display) -> VaultError {
    VaultError::Unavailable(e.to_string())
}

impl KeyJournal {
    /// Reads the journal file in `dir` (an empty journal if there is none).
    pub(super) fn open(dir: &Path) -> Result<Self, VaultError> {
        let path = dir.join(JOURNAL_FILE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => decode_state(&bytes).ok_or_else(|| {
                VaultError::Damaged(format!(
                    "{} is damaged: the keys made just before the last stop cannot be checked",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => JournalState::default(),
            Err(e) => return Err(failed(e)),
        };
        Ok(KeyJournal {
            path,
            state: Mutex::new(state),
            pending: Mutex::new(Pending::default()),
            queued: AtomicU64::new(0),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, JournalState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes of the vault's file known to be synced.
    pub(super) fn synced_len(&self) -> u64 {
        self.state().synced_len
    }

    /// Where the log must be read from to find every live epoch's frames:
    /// `None` when no epoch is live.
    pub fn replay_from(&self) -> Option<u64> {
        self.state().epochs.iter().map(|e| e.from_position).min()
    }

    /// Whether keys were queued since the current epoch began.
    pub(super) fn queued_since_epoch(&self) -> u64 {
        self.queued.load(Ordering::Acquire)
    }

    /// The position the current epoch began at (`None` if there is none).
    pub(super) fn current_from(&self) -> Option<u64> {
        self.state().epochs.last().map(|e| e.from_position)
    }

    /// Queues a key made now for the log's next group.
    pub(super) fn queue(&self, key_ref: &str, key: Key) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.next += 1;
        let seq = pending.next;
        pending.keys.push_back((seq, key_ref.to_owned(), key));
        self.queued.fetch_add(1, Ordering::AcqRel);
    }

    /// Every queued key after `after` that the log has not made durable,
    /// sealed as the body of one `K` frame under the current epoch, with the
    /// last one's number; `None` when there is none.
    pub fn take(&self, after: u64) -> Option<(u64, Vec<u8>)> {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let keys: Vec<(&str, &Key)> = pending
            .keys
            .iter()
            .filter(|(seq, _, _)| *seq > after)
            .map(|(_, r, k)| (r.as_str(), k))
            .collect();
        let last = pending.keys.back().map(|(seq, _, _)| *seq)?;
        if keys.is_empty() {
            return None;
        }
        let state = self.state();
        // No epoch yet: nothing can be sealed; the keys wait.
        let epoch = state.epochs.last()?;
        let plain = postcard::to_allocvec(&keys).unwrap_or_default();
        let nonce: [u8; 24] = rand::random();
        let aad = epoch.id.to_le_bytes();
        let sealed = XChaCha20Poly1305::new((&epoch.key).into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let body = postcard::to_allocvec(&Sealed {
            epoch: epoch.id,
            nonce,
            sealed,
        })
        .unwrap_or_default();
        Some((last, body))
    }

    /// The log made the keys up to `through` durable.
    pub fn durable(&self, through: u64) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        while pending
            .keys
            .front()
            .is_some_and(|(seq, _, _)| *seq <= through)
        {
            pending.keys.pop_front();
        }
        pending.durable = pending.durable.max(through);
    }

    /// The last key the log made durable: after a failed write the log sends
    /// every key after it again.
    pub fn durable_through(&self) -> u64 {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .durable
    }

    /// The keys a `K` frame holds, if its epoch is still live (a retired
    /// epoch's frames stay sealed for ever: `None`).
    pub fn open_frame(&self, body: &[u8]) -> Option<Vec<(String, Key)>> {
        let frame: Sealed = postcard::from_bytes(body).ok()?;
        let key = self
            .state()
            .epochs
            .iter()
            .find(|e| e.id == frame.epoch)
            .map(|e| e.key)?;
        let plain = XChaCha20Poly1305::new((&key).into())
            .decrypt(
                XNonce::from_slice(&frame.nonce),
                Payload {
                    msg: &frame.sealed,
                    aad: &frame.epoch.to_le_bytes(),
                },
            )
            .ok()?;
        postcard::from_bytes(&plain).ok()
    }

    /// Begins a new epoch at the log's `head`, keeping the old ones live
    /// until [`KeyJournal::retire`]; written durably before any frame uses it.
    pub(super) fn begin(&self, head: u64) -> Result<u64, VaultError> {
        let mut state = self.state();
        let id = state.epochs.last().map_or(1, |e| e.id + 1);
        let mut next = state.clone();
        next.epochs.push(Epoch {
            id,
            key: rand::random(),
            from_position: head,
        });
        write_state(&self.path, &next)?;
        *state = next;
        self.queued.store(0, Ordering::Release);
        Ok(id)
    }

    /// Retires every epoch before `current` (their keys are now synced in
    /// the vault's first `synced_len` bytes) and forgets their keys.
    pub(super) fn retire(&self, current: u64, synced_len: u64) -> Result<(), VaultError> {
        let mut state = self.state();
        let mut next = state.clone();
        next.synced_len = synced_len;
        next.epochs.retain(|e| e.id >= current);
        write_state(&self.path, &next)?;
        *state = next;
        Ok(())
    }
}

fn decode_state(bytes: &[u8]) -> Option<JournalState> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    postcard::from_bytes(body).ok()
}

fn write_state(path: &Path, state: &JournalState) -> Result<(), VaultError> {
    let mut bytes = postcard::to_allocvec(state).map_err(failed)?;
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    let tmp = path.with_extension("tmp");
    (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok::<_, std::io::Error>(())
    })()
    .map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_opens_while_its_epoch_lives_and_never_after() {
        let dir = tempfile::tempdir().expect("dir");
        let journal = KeyJournal::open(dir.path()).expect("open");
        journal.queue("alice", [7; 32]);
        // No epoch yet: nothing is taken, the key stays queued.
        assert!(journal.take(0).is_none());
        let first = journal.begin(0).expect("begin");
        let (last, body) = journal.take(0).expect("taken");
        assert_eq!(last, 1);
        // Sent already: nothing after it; sent again after a failed write.
        assert!(journal.take(last).is_none());
        assert!(journal.take(journal.durable_through()).is_some());
        journal.durable(last);
        assert!(journal.take(0).is_none());
        let keys = vec![("alice".to_owned(), [7u8; 32])];
        let reopened = KeyJournal::open(dir.path()).expect("reopen");
        assert_eq!(reopened.open_frame(&body), Some(keys.clone()));
        let second = journal.begin(10).expect("begin again");
        assert!(second > first);
        assert_eq!(journal.open_frame(&body), Some(keys));
        journal.retire(second, 99).expect("retire");
        assert_eq!(journal.open_frame(&body), None);
        let reopened = KeyJournal::open(dir.path()).expect("reopen");
        assert_eq!(reopened.open_frame(&body), None);
        assert_eq!(reopened.synced_len(), 99);
        assert_eq!(reopened.replay_from(), Some(10));
    }

    #[test]
    fn a_damaged_journal_file_is_named() {
        let dir = tempfile::tempdir().expect("dir");
        let journal = KeyJournal::open(dir.path()).expect("open");
        journal.begin(3).expect("begin");
        let path = dir.path().join(JOURNAL_FILE);
        let mut bytes = std::fs::read(&path).expect("read");
        for i in 0..bytes.len() {
            bytes[i] ^= 0x10;
            std::fs::write(&path, &bytes).expect("write");
            assert!(
                matches!(KeyJournal::open(dir.path()), Err(VaultError::Damaged(_))),
                "flip at {i}"
            );
            bytes[i] ^= 0x10;
        }
        std::fs::write(&path, &bytes[..bytes.len() - 1]).expect("cut");
        assert!(matches!(
            KeyJournal::open(dir.path()),
            Err(VaultError::Damaged(_))
        ));
    }
}
