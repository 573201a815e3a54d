//! Persons' keys on NATS (distributed mode): a key-value bucket next to the
//! log's stream, as replicated as the log, one revision per key. Destroying a
//! key purges every revision of it.

use crate::personal::{Key, Vault, VaultError};
use async_nats::jetstream::{self, kv};
use futures::future::BoxFuture;

/// The bucket's name for a log stream.
pub fn bucket(stream: &str) -> String {
    format!("{stream}_VAULT")
}

/// Keys in a JetStream key-value bucket.
pub struct KvVault {
    store: kv::Store,
}

fn failed(e: impl std::fmt::Display) -> VaultError {
    VaultError(e.to_string())
}

impl KvVault {
    /// Opens the vault of `stream`, creating the bucket with `replicas` copies.
    pub async fn open(
        js: &jetstream::Context,
        stream: &str,
        replicas: usize,
    ) -> Result<Self, VaultError> {
        let store = match js.get_key_value(bucket(stream)).await {
            Ok(store) => store,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: bucket(stream),
                    description: "customer portal access: persons' keys for personal data".into(),
                    history: 1,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: replicas.max(1),
                    ..Default::default()
                })
                .await
                .map_err(failed)?,
        };
        Ok(KvVault { store })
    }

    fn key_of(bytes: &[u8]) -> Result<Key, VaultError> {
        bytes
            .try_into()
            .map_err(|_| VaultError("a stored key is not 32 bytes".into()))
    }
}

impl Vault for KvVault {
    fn get(&self, key_ref: &str) -> BoxFuture<'_, Result<Option<Key>, VaultError>> {
        let key_ref = key_ref.to_owned();
        Box::pin(async move {
            match self.store.get(&key_ref).await.map_err(failed)? {
                Some(bytes) if !bytes.is_empty() => Ok(Some(Self::key_of(&bytes)?)),
                _ => Ok(None),
            }
        })
    }

    fn get_or_create(&self, key_ref: &str) -> BoxFuture<'_, Result<Key, VaultError>> {
        let key_ref = key_ref.to_owned();
        Box::pin(async move {
            let made: Key = rand::random();
            match self.store.create(&key_ref, made.to_vec().into()).await {
                Ok(_) => Ok(made),
                // Made a moment ago by another replica, or destroyed before:
                // read what is there.
                Err(_) => match self.store.get(&key_ref).await.map_err(failed)? {
                    Some(bytes) if !bytes.is_empty() => Self::key_of(&bytes),
                    _ => Err(VaultError(format!(
                        "the key of {key_ref} was destroyed: that person was forgotten"
                    ))),
                },
            }
        })
    }

    fn destroy(&self, key_ref: &str) -> BoxFuture<'_, Result<(), VaultError>> {
        let key_ref = key_ref.to_owned();
        Box::pin(async move { self.store.purge(&key_ref).await.map_err(failed) })
    }
}
