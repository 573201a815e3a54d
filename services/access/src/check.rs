//! `accessd check`: everything in a stopped data directory checked against
//! the log, changing nothing of it: the log's frames, commits, chains, mark
//! and index; the key vault against the sealed values and erasures; the read
//! models' and the mailer's checkpoints against the log.

use crate::integrity::KeyUse;
use access_catalogue::damage::Damage;
use access_log::file_log::{CheckReport, FileLog};

use std::path::Path;

/// What the check found, and what it covered.
#[derive(Debug, Default)]
pub struct DirReport {
    /// The log's own report.
    pub log: CheckReport,
    /// Everything found wrong, the log's first.
    pub damage: Vec<Damage>,
}

/// A consumer's checkpoint as stored: position and the hash there.
struct Checkpoint {
    name: &'static str,
    dir: std::path::PathBuf,
    position: u64,
    hash: Option<[u8; 32]>,
}

fn read_checkpoint(
    dir: &Path,
    name: &'static str,
    position_key: &[u8],
    hash_key: &[u8],
) -> anyhow::Result<Option<Checkpoint>> {
    if !dir.exists() {
        return Ok(None);
    }
    let db = sled::Config::new().path(dir).open()?;
    let position = match db.get(position_key)? {
        Some(v) => postcard::from_bytes(&v)?,
        None => return Ok(None),
    };
    let hash = db
        .get(hash_key)?
        .and_then(|v| <[u8; 32]>::try_from(v.as_ref()).ok());
    Ok(Some(Checkpoint {
        name,
        dir: dir.to_owned(),
        position,
        hash,
    }))
}

/// Checks the stopped data directory `dir`.
pub async fn check_data_dir(dir: &Path) -> anyhow::Result<DirReport> {
    let consumers = [
        read_checkpoint(
            &dir.join("readmodels"),
            "the read models",
            b"_checkpoint",
            b"_checkpoint_hash",
        )?,
        read_checkpoint(
            &dir.join("mailer"),
            "the mailer's state",
            b"checkpoint",
            b"checkpoint-hash",
        )?,
    ];
    let consumers: Vec<Checkpoint> = consumers.into_iter().flatten().collect();
    let positions: Vec<u64> = consumers.iter().map(|c| c.position).collect();
    let log_dir = dir.join("log");
    let log = FileLog::check_dir(&log_dir, &positions)?;
    let mut report = DirReport {
        damage: log.damage.clone(),
        log,
    };
    for c in &consumers {
        let place = format!("{} ({})", c.name, c.dir.display());
        let at = report.log.hashes.get(&c.position);
        if c.position > report.log.head {
            report.damage.push(
                Damage::new(
                    place,
                    format!(
                        "built from the log up to position {}, but the log's whole appends end at {}",
                        c.position, report.log.head
                    ),
                )
                .at_position(c.position),
            );
        } else if c.hash.is_some() && at.is_some() && c.hash.as_ref() != at {
            report.damage.push(
                Damage::new(place, "built from another event than the log holds there")
                    .at_position(c.position),
            );
        }
    }
    if report.damage.is_empty() {
        check_vault(dir, &mut report).await?;
    }
    Ok(report)
}

/// Every sealed value's key is in the vault, or destroyed by an erasure the
/// log records (read through the log, which checked clean).
async fn check_vault(dir: &Path, report: &mut DirReport) -> anyhow::Result<()> {
    let vault_dir = dir.join("vault");
    let place = vault_dir.display().to_string();
    let vault = match crate::embedded_vault::open_to_read(&vault_dir) {
        Ok(Some(vault)) => vault,
        Ok(None) => {
            if report.log.head > 0 {
                report.damage.push(Damage::new(
                    place,
                    "the key vault is missing, but the log has history",
                ));
            }
            return Ok(());
        }
        Err(e) => {
            report.damage.push(Damage::new(
                place,
                format!("the key vault cannot be read: {e}"),
            ));
            return Ok(());
        }
    };
    let log = FileLog::open(&dir.join("log"))?;
    let keys = KeyUse::of(&log).await?;
    for (key_ref, position, stream) in &keys.needed {
        if keys.destroyed.contains(key_ref) {
            continue;
        }
        let present = matches!(vault.get(key_ref).await, Ok(Some(_)));
        if !present {
            report.damage.push(
                Damage::new(
                    &place,
                    format!("the key {key_ref:?} is missing, and no erasure destroyed it"),
                )
                .at_position(*position)
                .in_stream(Some(stream.clone())),
            );
        }
    }
    Ok(())
}
