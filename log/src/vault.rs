//! Where persons' keys live, outside the log, and reading events with their
//! personal values opened (see `access_catalogue::personal`): forgetting a
//! person destroys the key, so their values read as erased for ever.

use access_catalogue::personal::Key;
use futures::StreamExt;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use crate::sled_vault::SledVault;

/// Why the vault could not answer.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// It could not be reached or read now; worth retrying.
    #[error("key vault: {0}")]
    Unavailable(String),
    /// A key the log needs is neither there nor destroyed by an erasure: the
    /// vault is damaged or incomplete. Never read as an erasure.
    #[error("key vault: the key {0:?} is missing, and no erasure destroyed it")]
    Missing(String),
    /// The vault's own files are damaged (named, with what was found).
    #[error("key vault: {0}")]
    Damaged(String),
}

/// Where persons' keys live, outside the log.
pub trait Vault: Send + Sync {
    /// The key of `key_ref`; `None` if it was destroyed (a vault that keeps
    /// a record of destroyed keys answers [`VaultError::Missing`] for a key
    /// that is simply not there).
    fn get(&self, key_ref: &str) -> BoxFuture<'_, Result<Option<Key>, VaultError>>;
    /// The key of `key_ref`, made and stored durably first if there is none.
    fn get_or_create(&self, key_ref: &str) -> BoxFuture<'_, Result<Key, VaultError>>;
    /// Destroys the key for good (every stored copy).
    fn destroy(&self, key_ref: &str) -> BoxFuture<'_, Result<(), VaultError>>;
    /// Forgets any copy held in memory (another process destroyed the key).
    fn evict(&self, _key_ref: &str) {}
    /// Every key there is, for a backup.
    fn all(&self) -> BoxFuture<'_, Result<Vec<(String, Key)>, VaultError>>;
    /// Up to `max` keys read in bulk, oldest first, for a reader about to
    /// read much of the log; none from a vault whose single reads cost no
    /// round trip.
    fn bulk(&self, _max: usize) -> BoxFuture<'_, Result<Vec<(String, Key)>, VaultError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    /// Fills a cache in front of the vault with [`Vault::bulk`]'s keys, as
    /// many as it keeps, and says how many it holds then; a vault without a
    /// cache does nothing.
    fn warm(&self) -> BoxFuture<'_, Result<usize, VaultError>> {
        Box::pin(async { Ok(0) })
    }
}

/// How many keys [`CachedVault`] keeps before it starts over.
const CACHED_KEYS: usize = 100_000;

/// Keeps keys in memory in front of a vault; only keys that exist are kept,
/// so a key made by another process is found when first needed.
pub struct CachedVault {
    inner: Arc<dyn Vault>,
    keys: Mutex<HashMap<String, Key>>,
    /// Counts evictions: keys read in bulk before one are not taken, as one
    /// of them may be a key destroyed since.
    evictions: std::sync::atomic::AtomicU64,
}

impl CachedVault {
    /// A cache in front of `inner`.
    pub fn new(inner: Arc<dyn Vault>) -> Arc<Self> {
        Arc::new(CachedVault {
            inner,
            keys: Mutex::new(HashMap::new()),
            evictions: Default::default(),
        })
    }

    fn cached(&self, key_ref: &str) -> Option<Key> {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key_ref)
            .copied()
    }

    fn remember(&self, key_ref: &str, key: Key) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: at a million persons every key in memory would cost more
        // than the read models. Keys of recent persons are the ones asked for.
        if keys.len() >= CACHED_KEYS {
            keys.clear();
        }
        keys.insert(key_ref.to_owned(), key);
    }
}

impl Vault for CachedVault {
    fn get(&self, key_ref: &str) -> BoxFuture<'_, Result<Option<Key>, VaultError>> {
        let key_ref = key_ref.to_owned();
        Box::pin(async move {
            if let Some(k) = self.cached(&key_ref) {
                return Ok(Some(k));
            }
            let found = self.inner.get(&key_ref).await?;
            if let Some(k) = found {
                self.remember(&key_ref, k);
            }
            Ok(found)
        })
    }

    fn get_or_create(&self, key_ref: &str) -> BoxFuture<'_, Result<Key, VaultError>> {
        let key_ref = key_ref.to_owned();
        Box::pin(async move {
            if let Some(k) = self.cached(&key_ref) {
                return Ok(k);
            }
            let k = self.inner.get_or_create(&key_ref).await?;
            self.remember(&key_ref, k);
            Ok(k)
        })
    }

    fn destroy(&self, key_ref: &str) -> BoxFuture<'_, Result<(), VaultError>> {
        let key_ref = key_ref.to_owned();
        Box::pin(async move {
            self.evict(&key_ref);
            self.inner.destroy(&key_ref).await
        })
    }

    fn evict(&self, key_ref: &str) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        self.evictions
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        keys.remove(key_ref);
    }

    fn all(&self) -> BoxFuture<'_, Result<Vec<(String, Key)>, VaultError>> {
        self.inner.all()
    }

    fn warm(&self) -> BoxFuture<'_, Result<usize, VaultError>> {
        use std::sync::atomic::Ordering;
        Box::pin(async move {
            let before = self.evictions.load(Ordering::SeqCst);
            let read = self.inner.bulk(CACHED_KEYS).await?;
            let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            if self.evictions.load(Ordering::SeqCst) == before {
                for (key_ref, key) in read {
                    if keys.len() >= CACHED_KEYS {
                        break;
                    }
                    keys.insert(key_ref, key);
                }
            }
            Ok(keys.len())
        })
    }
}

/// Seals every personal value of `event` (on `stream`) with its person's
/// key, making the key first if needed; the event is then safe to store.
pub async fn seal(
    vault: &dyn Vault,
    stream: &str,
    event: &mut access_catalogue::catalogue::Event,
) -> Result<(), VaultError> {
    for (value, key_ref) in event.personal_mut(stream) {
        // Empty, or sealed already (a retried decision).
        if value.is_empty() || value.key_ref().is_some() {
            continue;
        }
        let key = vault.get_or_create(&key_ref).await?;
        value.seal(&key_ref, &key);
    }
    if event.storable() {
        Ok(())
    } else {
        Err(VaultError::Unavailable(
            "a personal value could not be sealed".into(),
        ))
    }
}

/// Keys asked of the vault at once while reading a batch of events.
const VAULT_READS_AT_ONCE: usize = 32;

/// Decodes envelopes and opens their personal values with the keys the
/// vault still has (each key fetched once).
pub async fn decode_open(
    vault: &dyn Vault,
    envelopes: &[access_catalogue::Envelope],
) -> Result<Vec<access_catalogue::catalogue::Event>, DecodeOpenError> {
    let mut events = envelopes
        .iter()
        .map(access_catalogue::catalogue::Event::decode)
        .collect::<Result<Vec<_>, _>>()?;
    open_where(vault, envelopes, &mut events, |_| true).await?;
    Ok(events)
}

/// Opens the personal values of the `events` decoded from `envelopes` (in
/// the same order) that `wanted` picks; the others stay sealed (a reader
/// that never looks at them needs neither their keys nor their decryption).
pub async fn open_where(
    vault: &dyn Vault,
    envelopes: &[access_catalogue::Envelope],
    events: &mut [access_catalogue::catalogue::Event],
    wanted: impl Fn(&access_catalogue::catalogue::Event) -> bool,
) -> Result<(), DecodeOpenError> {
    // Each key once, and the vault asked for several side by side: a batch
    // read from a remote vault costs a few round trips, not one a person.
    let mut wanted_refs: Vec<(String, usize)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, event) in events.iter_mut().enumerate() {
        if !wanted(event) {
            continue;
        }
        for key_ref in event.sealed_refs() {
            if seen.insert(key_ref.clone()) {
                wanted_refs.push((key_ref, i));
            }
        }
    }
    let found: Vec<_> = futures::stream::iter(wanted_refs)
        .map(|(key_ref, i)| async move { (vault.get(&key_ref).await, key_ref, i) })
        .buffered(VAULT_READS_AT_ONCE)
        .collect()
        .await;
    let mut keys = HashMap::new();
    for (got, key_ref, i) in found {
        match got {
            Ok(Some(key)) => {
                keys.insert(key_ref, key);
            }
            Ok(None) => {}
            Err(VaultError::Missing(what)) => {
                let envelope = &envelopes[i];
                return Err(DecodeOpenError::Missing(
                    access_catalogue::damage::Damage::new(
                        "the key vault",
                        format!(
                            "the key {what:?} that a personal value is sealed under is missing, and no erasure destroyed it"
                        ),
                    )
                    .at_position(envelope.position)
                    .in_stream(Some(envelope.stream.to_string())),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    for event in events.iter_mut().filter(|e| wanted(e)) {
        event.open(&keys);
    }
    Ok(())
}

/// Why events could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeOpenError {
    /// A payload does not decode.
    #[error(transparent)]
    Codec(#[from] access_catalogue::codec::CodecError),
    /// The vault did not answer.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A key is missing from the vault without an erasure: damage.
    #[error("{0}")]
    Missing(access_catalogue::damage::Damage),
}
