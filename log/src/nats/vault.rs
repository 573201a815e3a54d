//! Persons' keys on NATS (distributed mode): a key-value bucket next to the
//! log's stream, as replicated as the log, one revision per key. Destroying a
//! key purges every revision of it.

use super::direct::{self, Refusal};
use crate::vault::{Vault, VaultError};
use access_catalogue::personal::Key;
use async_nats::jetstream::{self, kv};
use futures::future::BoxFuture;

/// Keys read at once, and about the most bytes, by one bulk read.
const BULK_BATCH: usize = 1024;
const BULK_BYTES: usize = 1024 * 1024;

/// The bucket's name for a log stream.
fn bucket(stream: &str) -> String {
    format!("{stream}_VAULT")
}

/// Keys in a JetStream key-value bucket.
pub struct KvVault {
    /// The connection, to answer at once while it is down.
    client: async_nats::Client,
    store: kv::Store,
    /// The bucket's stream, for reads from its leader.
    stream: jetstream::stream::Stream,
    bucket: String,
}

fn failed(e: impl std::fmt::Display) -> VaultError {
    VaultError::Unavailable(e.to_string())
}

impl KvVault {
    /// Opens the vault of `stream`, creating the bucket with `replicas` copies.
    pub async fn open(
        js: &jetstream::Context,
        name: &str,
        replicas: usize,
    ) -> Result<Self, VaultError> {
        // A cluster that is starting (or electing) has no JetStream leader
        // for a few seconds: keep asking for a while before giving up, as
        // the log's own open does.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match Self::try_open(js, name, replicas).await {
                Ok(vault) => return Ok(vault),
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(error = %e, "the key vault's bucket is not ready; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn try_open(
        js: &jetstream::Context,
        name: &str,
        replicas: usize,
    ) -> Result<Self, VaultError> {
        let store = match js.get_key_value(bucket(name)).await {
            Ok(store) => store,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: bucket(name),
                    description: "customer portal access: persons' keys for personal data".into(),
                    history: 1,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: replicas.max(1),
                    ..Default::default()
                })
                .await
                .map_err(failed)?,
        };
        let stream = js
            .get_stream(format!("KV_{}", bucket(name)))
            .await
            .map_err(failed)?;
        Ok(KvVault {
            client: js.client(),
            store,
            stream,
            bucket: bucket(name),
        })
    }

    /// The bucket's stream, for a health probe.
    pub fn stream(&self) -> jetstream::stream::Stream {
        self.stream.clone()
    }

    /// A subject of the bucket where nothing is ever written, for a probe.
    pub fn probe_subject(&self) -> String {
        format!("$KV.{}.probe", self.bucket)
    }

    /// Refuses at once while the connection is known to be down.
    fn reachable(&self) -> Result<(), VaultError> {
        match super::offline(&self.client) {
            Some(why) => Err(VaultError::Unavailable(why)),
            None => Ok(()),
        }
    }

    /// The key as the bucket's leader has it: a key made a moment ago on
    /// another replica may not have reached the member that served a read.
    /// `None` when an erasure destroyed it; [`VaultError::Missing`] when it
    /// was never there.
    async fn read_at_leader(&self, key_ref: &str) -> Result<Option<Key>, VaultError> {
        let subject = format!("$KV.{}.{key_ref}", self.bucket);
        match self.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => {
                let removed = message
                    .headers
                    .get("KV-Operation")
                    .is_some_and(|op| op.as_str() == "DEL" || op.as_str() == "PURGE");
                if removed || message.payload.is_empty() {
                    Ok(None)
                } else {
                    Self::key_of(&message.payload).map(Some)
                }
            }
            // Never written: a destroyed key leaves its purge marker, so a
            // key that is simply not there is missing, not erased.
            Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {
                Err(VaultError::Missing(key_ref.to_owned()))
            }
            Err(e) => Err(failed(e)),
        }
    }

    /// Stores keys read from a backup (a restore into the distributed mode).
    pub async fn restore(&self, keys: &[(String, Key)]) -> Result<(), VaultError> {
        for (key_ref, key) in keys {
            self.store
                .put(key_ref, key.to_vec().into())
                .await
                .map_err(failed)?;
        }
        Ok(())
    }

    fn key_of(bytes: &[u8]) -> Result<Key, VaultError> {
        bytes
            .try_into()
            .map_err(|_| VaultError::Unavailable("a stored key is not 32 bytes".into()))
    }
}

impl Vault for KvVault {
    fn get(&self, key_ref: &str) -> BoxFuture<'_, Result<Option<Key>, VaultError>> {
        let key_ref = key_ref.to_owned();
        Box::pin(async move {
            self.reachable()?;
            match self.store.get(&key_ref).await.map_err(failed)? {
                Some(bytes) if !bytes.is_empty() => Ok(Some(Self::key_of(&bytes)?)),
                // Absent here: destroyed, or not yet seen by this member.
                _ => self.read_at_leader(&key_ref).await,
            }
        })
    }

    fn get_or_create(&self, key_ref: &str) -> BoxFuture<'_, Result<Key, VaultError>> {
        let key_ref = key_ref.to_owned();
        Box::pin(async move {
            self.reachable()?;
            let made: Key = rand::random();
            match self.store.create(&key_ref, made.to_vec().into()).await {
                Ok(_) => Ok(made),
                // Most likely another replica made it a moment ago (the
                // client reports that as "already exists" or, when its own
                // check read a member that had not seen it, as a wrong last
                // sequence): the bucket's leader has the answer.
                // The winner's write may still be in flight (the server
                // refuses a concurrent create before the first commits):
                // give it a moment.
                Err(e) => {
                    for _ in 0..40 {
                        // Cut off meanwhile: say so now, not after the tries.
                        self.reachable()?;
                        match self.read_at_leader(&key_ref).await {
                            Ok(Some(key)) => return Ok(key),
                            Ok(None) | Err(VaultError::Missing(_)) => {}
                            Err(other) => return Err(other),
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                    }
                    Err(failed(e))
                }
            }
        })
    }

    fn destroy(&self, key_ref: &str) -> BoxFuture<'_, Result<(), VaultError>> {
        let key_ref = key_ref.to_owned();
        Box::pin(async move {
            self.reachable()?;
            self.store.purge(&key_ref).await.map_err(failed)
        })
    }

    fn bulk(&self, max: usize) -> BoxFuture<'_, Result<Vec<(String, Key)>, VaultError>> {
        Box::pin(async move {
            self.reachable()?;
            let prefix = format!("$KV.{}.", self.bucket);
            let stream = format!("KV_{}", self.bucket);
            let mut out = Vec::new();
            let mut seq = 1;
            loop {
                let request =
                    serde_json::json!({ "seq": seq, "batch": BULK_BATCH, "max_bytes": BULK_BYTES });
                let batch = direct::batch(&self.client, &stream, &request)
                    .await
                    .map_err(|r| match r {
                        Refusal::Unavailable(why) | Refusal::Refused(why) => {
                            VaultError::Unavailable(why)
                        }
                    })?;
                let Some(last) = batch.messages.last() else {
                    return Ok(out);
                };
                seq = direct::header(last, "Nats-Sequence")
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| VaultError::Unavailable("a read without a sequence".into()))?
                    + 1;
                for message in &batch.messages {
                    // Destroyed keys leave a marker with no key.
                    let removed = direct::header(message, "KV-Operation")
                        .is_some_and(|op| op == "DEL" || op == "PURGE");
                    let key_ref = direct::header(message, "Nats-Subject")
                        .and_then(|s| s.strip_prefix(&prefix).map(str::to_owned));
                    if let (false, Some(key_ref), Ok(key)) =
                        (removed, key_ref, Self::key_of(&message.payload))
                    {
                        out.push((key_ref, key));
                    }
                }
                if out.len() >= max || !batch.more {
                    out.truncate(max);
                    return Ok(out);
                }
            }
        })
    }

    fn all(&self) -> BoxFuture<'_, Result<Vec<(String, Key)>, VaultError>> {
        Box::pin(async move {
            use futures::StreamExt;
            let mut names = self.store.keys().await.map_err(failed)?;
            let mut out = Vec::new();
            while let Some(name) = names.next().await {
                let name = name.map_err(failed)?;
                if let Some(key) = self.get(&name).await? {
                    out.push((name, key));
                }
            }
            Ok(out)
        })
    }
}
