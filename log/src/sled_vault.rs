//! Persons' keys in a sled database of their own (embedded mode), next to
//! the log.
//!
//! Destroying a key leaves a tombstone (an empty value) in its place, so the
//! vault tells an erased person (a tombstone) from a key that went missing
//! (damage: [`VaultError::Missing`], never read as an erasure). A vault from
//! before tombstones existed is adopted once ([`SledVault::adopt`]) with the
//! keys the log's erasures destroyed, and is strict from then on.

use crate::vault::{Vault, VaultError};
use access_catalogue::personal::Key;
use futures::future::BoxFuture;

/// Marks a vault that keeps tombstones (meta keys start with a NUL byte,
/// which no key ref does).
const FORMAT_KEY: &[u8] = b"\0vault-format";
const FORMAT: &[u8] = b"2";

/// The vault's page cache.
const SLED_CACHE_BYTES: u64 = 16 << 20;

fn failed(e: impl std::fmt::Display) -> VaultError {
    VaultError::Unavailable(e.to_string())
}

/// The embedded mode's key vault.
pub struct SledVault {
    tree: sled::Db,
    /// Whether destroyed keys leave tombstones, so a key that is simply not
    /// there is missing rather than erased.
    strict: bool,
}

impl SledVault {
    /// Opens (or creates) the vault in `dir`. A vault new to this build is
    /// lenient until [`SledVault::adopt`] is called.
    pub fn open(dir: &std::path::Path) -> Result<Self, VaultError> {
        // sled caches up to 1 GiB by default; keys are cached in front of
        // the vault anyway (`CachedVault`), so a small cache is enough.
        let tree = sled::Config::new()
            .path(dir)
            .cache_capacity(SLED_CACHE_BYTES)
            .open()
            .map_err(failed)?;
        let strict = tree.get(FORMAT_KEY).map_err(failed)?.is_some();
        Ok(SledVault { tree, strict })
    }

    /// Whether it keeps tombstones (created or adopted by this build).
    pub fn keeps_tombstones(&self) -> bool {
        self.strict
    }

    /// Whether it holds no key and no tombstone.
    pub fn is_empty(&self) -> bool {
        self.tree
            .iter()
            .keys()
            .all(|k| k.is_ok_and(|k| k.starts_with(b"\0")))
    }

    /// Records `destroyed` (key refs the log's erasures destroyed) as
    /// tombstones, and keeps tombstones from now on.
    pub fn adopt(&mut self, destroyed: &[String]) -> Result<(), VaultError> {
        for key_ref in destroyed {
            let present = self.tree.get(key_ref.as_bytes()).map_err(failed)?;
            if present.is_none_or(|v| !v.is_empty()) {
                self.tree
                    .insert(key_ref.as_bytes(), &[][..])
                    .map_err(failed)?;
            }
        }
        self.tree.insert(FORMAT_KEY, FORMAT).map_err(failed)?;
        self.durable()?;
        self.strict = true;
        Ok(())
    }

    fn key_of(bytes: &[u8]) -> Result<Key, VaultError> {
        bytes
            .try_into()
            .map_err(|_| VaultError::Missing("a stored key is not 32 bytes".into()))
    }

    fn durable(&self) -> Result<(), VaultError> {
        self.tree.flush().map_err(failed)?;
        Ok(())
    }

    /// Every key and tombstone (`None`), to move them into another vault.
    pub fn entries(&self) -> Result<Vec<(String, Option<Key>)>, VaultError> {
        self.tree
            .iter()
            .filter(|item| item.as_ref().map_or(true, |(k, _)| !k.starts_with(b"\0")))
            .map(|item| {
                let (k, v) = item.map_err(failed)?;
                let key = if v.is_empty() {
                    None
                } else {
                    Some(Self::key_of(&v)?)
                };
                Ok((String::from_utf8_lossy(&k).into_owned(), key))
            })
            .collect()
    }

    /// Stores keys read from a backup (a restore into an empty vault).
    pub fn restore(&self, keys: &[(String, Key)]) -> Result<(), VaultError> {
        for (key_ref, key) in keys {
            self.tree
                .insert(key_ref.as_bytes(), &key[..])
                .map_err(failed)?;
        }
        self.durable()
    }
}

impl Vault for SledVault {
    fn get(&self, key_ref: &str) -> BoxFuture<'_, Result<Option<Key>, VaultError>> {
        let found = match self.tree.get(key_ref.as_bytes()) {
            Err(e) => Err(failed(e)),
            Ok(Some(v)) if v.is_empty() => Ok(None),
            Ok(Some(v)) => Self::key_of(&v).map(Some),
            Ok(None) if self.strict => Err(VaultError::Missing(key_ref.to_owned())),
            Ok(None) => Ok(None),
        };
        Box::pin(async move { found })
    }

    fn get_or_create(&self, key_ref: &str) -> BoxFuture<'_, Result<Key, VaultError>> {
        let made: Key = rand::random();
        let key = key_ref.as_bytes();
        let result = (|| loop {
            // A tombstone is replaced: a forgotten person invited again gets
            // a new key; their erased values stay erased.
            let current = self.tree.get(key).map_err(failed)?;
            match current {
                Some(existing) if !existing.is_empty() => return Self::key_of(&existing),
                _ => {}
            }
            match self
                .tree
                .compare_and_swap(key, current, Some(&made[..]))
                .map_err(failed)?
            {
                Ok(()) => return self.durable().map(|()| made),
                // Someone else made or destroyed it meanwhile: look again.
                Err(_) => continue,
            }
        })();
        Box::pin(async move { result })
    }

    fn destroy(&self, key_ref: &str) -> BoxFuture<'_, Result<(), VaultError>> {
        let result = self
            .tree
            .insert(key_ref.as_bytes(), &[][..])
            .map_err(failed)
            .and_then(|_| self.durable());
        Box::pin(async move { result })
    }

    fn all(&self) -> BoxFuture<'_, Result<Vec<(String, Key)>, VaultError>> {
        let result = self
            .tree
            .iter()
            .filter(|item| {
                item.as_ref()
                    .map_or(true, |(k, v)| !k.starts_with(b"\0") && !v.is_empty())
            })
            .map(|item| {
                let (k, v) = item.map_err(failed)?;
                Ok((String::from_utf8_lossy(&k).into_owned(), Self::key_of(&v)?))
            })
            .collect();
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<T>(f: BoxFuture<'_, T>) -> T {
        futures::executor::block_on(f)
    }

    #[test]
    fn an_erased_key_reads_as_erased_and_a_missing_one_as_damage() {
        let dir = tempfile::tempdir().expect("dir");
        let mut vault = SledVault::open(dir.path()).expect("open");
        vault.adopt(&[]).expect("adopt");
        let key = block(vault.get_or_create("alice")).expect("made");
        assert_eq!(block(vault.get("alice")).expect("get"), Some(key));
        block(vault.destroy("alice")).expect("destroy");
        assert_eq!(block(vault.get("alice")).expect("erased"), None);
        assert!(matches!(
            block(vault.get("bob")),
            Err(VaultError::Missing(r)) if r == "bob"
        ));
        assert!(block(vault.all()).expect("all").is_empty());
        // Invited again after the erasure: a new key.
        let again = block(vault.get_or_create("alice")).expect("made again");
        assert_ne!(again, key);
    }

    #[test]
    fn a_vault_from_before_tombstones_is_lenient_until_adopted() {
        let dir = tempfile::tempdir().expect("dir");
        let mut vault = SledVault::open(dir.path()).expect("open");
        assert!(!vault.keeps_tombstones());
        assert_eq!(block(vault.get("gone")).expect("lenient"), None);
        vault.adopt(&["gone".into()]).expect("adopt");
        drop(vault);
        let vault = SledVault::open(dir.path()).expect("reopen");
        assert!(vault.keeps_tombstones());
        assert_eq!(block(vault.get("gone")).expect("erased"), None);
        assert!(block(vault.get("other")).is_err());
    }
}
