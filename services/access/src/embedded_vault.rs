//! The embedded key vault in `<data dir>/vault`: opened, checked against the
//! log, moved once out of the earlier sled layout, and attached to the log so
//! new keys ride in its group commits.

use crate::integrity::{KeyUse, unopenable};
use access_catalogue::damage::Damage;
use access_log::file_log::FileLog;
use access_log::file_vault::{FileVault, ReadVault};
use access_log::log::EventLog;
use access_log::vault::{SledVault, Vault, VaultError};
use std::path::Path;
use std::sync::Arc;

/// Whether `dir` holds the earlier, sled-based vault (sled writes `conf`).
fn holds_sled(dir: &Path) -> bool {
    dir.join("conf").exists() && dir.join("db").exists()
}

/// Reads the vault in `dir` if it is there in this layout, changing
/// nothing, so that a start can read it beside the log's check; `None`
/// otherwise ([`open`] then does it all).
pub fn read_early(dir: &Path) -> Option<Result<ReadVault, VaultError>> {
    FileVault::exists_in(dir).then(|| FileVault::read(dir))
}

/// Opens the vault in `dir` for the log `log`, refusing a missing one when
/// the log has history, moving an earlier one into this layout, and
/// attaching it to the log. `early` is what [`read_early`] read, if it ran.
pub async fn open(
    dir: &Path,
    log: &FileLog,
    early: Option<Result<ReadVault, VaultError>>,
) -> anyhow::Result<Arc<FileVault>> {
    if let Some(read) = early {
        remove_sled_leftovers(dir)?;
        let vault = read
            .and_then(ReadVault::open)
            .map_err(|e| unopenable(dir, e.into()))?;
        return attached(dir, vault, log);
    }
    let head = *log.head().borrow();
    if head > 0 && !FileVault::exists_in(dir) && !holds_sled(dir) {
        return Err(Damage::new(
            dir.display().to_string(),
            format!(
                "the key vault is missing, but the log holds {head} events: without it every personal value would read as erased"
            ),
        )
        .into());
    }
    if !FileVault::exists_in(dir) && holds_sled(dir) {
        move_from_sled(dir, log).await?;
    }
    remove_sled_leftovers(dir)?;
    let vault = FileVault::open(dir).map_err(|e| unopenable(dir, e.into()))?;
    attached(dir, vault, log)
}

/// The vault, attached to the log so that new keys ride in its commits.
fn attached(dir: &Path, vault: FileVault, log: &FileLog) -> anyhow::Result<Arc<FileVault>> {
    let vault = Arc::new(vault);
    vault.attach(log).map_err(|e| unopenable(dir, e.into()))?;
    Ok(vault)
}

/// Opens the vault in `dir` to read it (a check), whichever layout it has;
/// `None` if there is none.
pub fn open_to_read(dir: &Path) -> anyhow::Result<Option<Box<dyn Vault>>> {
    if FileVault::exists_in(dir) {
        return Ok(Some(Box::new(FileVault::open(dir)?)));
    }
    if holds_sled(dir) {
        return Ok(Some(Box::new(SledVault::open(dir)?)));
    }
    Ok(None)
}

/// Copies every key and tombstone of the sled vault into this layout; the
/// records land in one rename, so a crash leaves one vault or the other.
async fn move_from_sled(dir: &Path, log: &FileLog) -> anyhow::Result<()> {
    let mut sled = SledVault::open(dir).map_err(|e| unopenable(dir, e.into()))?;
    if !sled.keeps_tombstones() {
        // Once, for a vault from before tombstones: every sealed value's key
        // must be there or destroyed by an erasure the log records.
        let keys = KeyUse::of(log).await?;
        for (key_ref, position, stream) in &keys.needed {
            if keys.destroyed.contains(key_ref) {
                continue;
            }
            if sled.get(key_ref).await?.is_none() {
                return Err(Damage::new(
                    dir.display().to_string(),
                    format!("the key vault lacks the key {key_ref:?}, and no erasure destroyed it"),
                )
                .at_position(*position)
                .in_stream(Some(stream.clone()))
                .into());
            }
        }
        let destroyed: Vec<String> = keys.destroyed.into_iter().collect();
        sled.adopt(&destroyed)?;
        tracing::info!(
            erased = destroyed.len(),
            "the key vault records erasures from now on"
        );
    }
    let entries = sled.entries()?;
    drop(sled);
    let moving = dir.with_extension("moving");
    let _ = std::fs::remove_dir_all(&moving);
    {
        let staged = FileVault::open(&moving)?;
        staged.restore(&entries)?;
    }
    FileVault::move_records(&moving, dir)?;
    let _ = std::fs::remove_dir_all(&moving);
    tracing::info!(
        keys = entries.len(),
        vault = %dir.display(),
        "the key vault was moved out of sled into its own file"
    );
    Ok(())
}

/// Removes what the earlier layout left in `dir` once its keys were moved.
fn remove_sled_leftovers(dir: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let sled_file =
            name == "conf" || name == "db" || name == "blobs" || name.starts_with("snap.");
        if !sled_file {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_earlier_sled_vault_is_moved_with_its_keys_and_tombstones() {
        let dir = tempfile::tempdir().expect("dir");
        let (log_dir, vault_dir) = (dir.path().join("log"), dir.path().join("vault"));
        let (alice, bob) = {
            let mut sled = SledVault::open(&vault_dir).expect("sled");
            sled.adopt(&[]).expect("adopted");
            let alice = sled.get_or_create("alice").await.expect("alice");
            let bob = sled.get_or_create("bob").await.expect("bob");
            sled.destroy("carol").await.expect("carol erased");
            (alice, bob)
        };
        let log = FileLog::open(&log_dir).expect("log");
        let vault = open(&vault_dir, &log, None).await.expect("moved");
        assert_eq!(vault.get("alice").await.expect("alice"), Some(alice));
        assert_eq!(vault.get("bob").await.expect("bob"), Some(bob));
        assert_eq!(vault.get("carol").await.expect("erased"), None);
        assert!(matches!(
            vault.get("dave").await,
            Err(access_log::vault::VaultError::Missing(_))
        ));
        assert!(!holds_sled(&vault_dir), "sled's files are gone");
        assert!(!vault_dir.with_extension("moving").exists());
        vault.close().expect("closed");
    }

    #[tokio::test]
    async fn a_missing_vault_is_damage_when_the_log_has_history() {
        let dir = tempfile::tempdir().expect("dir");
        let log_dir = dir.path().join("log");
        let log = FileLog::open(&log_dir).expect("log");
        let stream = access_catalogue::envelope::StreamId::new(
            access_catalogue::envelope::Aggregate::Customer,
            "t",
            "c",
        )
        .expect("stream");
        let request = access_log::log::AppendRequest {
            request_id: "r".into(),
            fingerprint: [0; 32],
            tenant: Some("t".into()),
            actor: access_catalogue::envelope::Actor::Operator,
            correlation_id: uuid::Uuid::new_v4(),
            causation_id: None,
            occurred_at_ms: 1,
            streams: vec![access_log::log::StreamAppend {
                stream,
                expected_version: 0,
                events: vec![access_log::log::NewEvent {
                    event_id: uuid::Uuid::new_v4(),
                    event_type: "Test".into(),
                    schema_version: 1,
                    payload: vec![1],
                }],
            }],
            reply: Vec::new(),
        };
        log.append(request).await.expect("appended");
        let refused = open(&dir.path().join("vault"), &log, None).await;
        let err = refused.err().expect("refused");
        assert!(crate::integrity::damage_of(&err).is_some(), "{err:#}");
    }
}
