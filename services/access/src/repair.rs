//! `accessd repair`: the operator's explicit act on a log that `accessd
//! check` found damaged, recorded in the log itself (`LogRepaired`).
//!
//! `--from-archive` takes the damaged events back from a whole-log backup
//! and loses nothing. `--quarantine` accepts a loss: everything from the
//! append holding the first damage on is moved aside
//! (kept beside the log as `events.quarantined-<offset>`, never deleted), the
//! log is cut there, the stores built from the lost history (read models,
//! the mailer's state) are moved aside to be rebuilt, and a `LogRepaired`
//! event says what was lost and why. Damage only the index holds is mended
//! by rebuilding the index, which loses nothing.

use access_catalogue::catalogue::{Event, LogRepaired, SystemEvent};
use access_catalogue::damage::Damage;
use access_catalogue::envelope::{Aggregate, GLOBAL_TENANT};
use access_catalogue::{Actor, StreamId};
use access_log::file_log::FileLog;
use access_log::file_log::frames::{COMMIT, Frames};
use access_log::log::{AppendRequest, EventLog, NewEvent, StreamAppend};
use anyhow::Context;
use sha2::Digest;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What the repair did, in words for the operator.
pub type Summary = String;

/// Whether a finding concerns only the index (derived, rebuilt losslessly).
fn index_only(d: &Damage) -> bool {
    d.what.starts_with("the index") || d.what.contains("log/index")
}

/// The end of the last whole append before `offset`, and its last position.
fn intact_prefix(events: &Path, offset: u64) -> anyhow::Result<(u64, u64)> {
    let file = std::fs::File::open(events)?;
    let mut frames = Frames::new(&file, 0, offset, 1 << 18);
    let (mut end, mut position) = (0, 0);
    while let Ok(Some(frame)) = frames.next_frame() {
        if frame.kind == COMMIT {
            end = frame.end();
            position = position.max(commit_position(frame.body).unwrap_or(position));
        }
    }
    Ok((end, position))
}

/// The last position a commit frame closes (its first field).
fn commit_position(body: &[u8]) -> Option<u64> {
    postcard::take_from_bytes::<u64>(body).ok().map(|(p, _)| p)
}

/// Moves `dir` aside as `<dir>.before-repair-<tag>` if it exists.
fn move_aside(dir: &Path, tag: u64) -> anyhow::Result<()> {
    if dir.exists() {
        let to = dir.with_extension(format!("before-repair-{tag}"));
        std::fs::rename(dir, &to).with_context(|| format!("moving {} aside", dir.display()))?;
    }
    Ok(())
}

/// Quarantines the damaged part of the stopped data directory `dir`.
pub async fn quarantine(dir: &Path, reason: &str) -> anyhow::Result<Summary> {
    let log_dir = dir.join("log");
    let report = FileLog::check_dir(&log_dir, &[])?;
    let first = report
        .damage
        .iter()
        .filter(|d| !index_only(d))
        .filter_map(|d| d.offset.map(|o| (o, d)))
        .min_by_key(|(o, _)| *o);
    let Some((offset, damage)) = first else {
        if report.damage.is_empty() {
            anyhow::bail!("the log is intact: nothing to repair");
        }
        // Only derived witnesses are damaged (the index, the synced mark):
        // they are made again from the log at the next start.
        let _ = std::fs::remove_dir_all(log_dir.join("index"));
        let _ = std::fs::remove_file(log_dir.join("synced"));
        return Ok("only the log's index or synced mark was damaged: they are removed and made again from the log at the next start; nothing was lost".into());
    };
    let events = log_dir.join("events");
    let (cut, kept) = intact_prefix(&events, offset)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&events)?;
    let len = file.metadata()?.len();
    let aside = log_dir.join(format!("events.quarantined-{cut}"));
    let mut rest = vec![0u8; (len - cut) as usize];
    file.read_exact_at(&mut rest, cut)?;
    std::fs::write(&aside, &rest).with_context(|| format!("writing {}", aside.display()))?;
    std::fs::File::open(&aside)?.sync_all()?;
    file.set_len(cut)?;
    file.sync_all()?;
    drop(file);
    let _ = std::fs::remove_dir_all(log_dir.join("index"));
    let _ = std::fs::remove_file(log_dir.join("synced"));
    move_aside(&dir.join("readmodels"), cut)?;
    move_aside(&dir.join("mailer"), cut)?;
    std::fs::File::open(&log_dir)?.sync_all()?;

    let position = record(
        &log_dir,
        LogRepaired {
            method: "quarantine".into(),
            first_lost_position: kept + 1,
            restored_events: 0,
            kept_aside: aside.display().to_string(),
            archive: String::new(),
            damage: damage.to_string(),
            reason: reason.to_owned(),
        },
    )
    .await?;
    Ok(format!(
        "quarantined {} bytes from byte {cut} (position {} on) into {}; the log keeps positions 1 to {kept}, and the repair is recorded at position {position}; the read models and the mailer's state were moved aside and are rebuilt at the next start",
        len - cut,
        kept + 1,
        aside.display(),
    ))
}

/// Repairs the stopped data directory `dir` from a whole-log backup archive:
/// each damaged event is taken back from the archive, the events after the
/// archive from what survives in the file, and the result must be one whole
/// history whose every chain verifies; otherwise nothing changes.
pub async fn from_archive(
    dir: &Path,
    archive_path: &Path,
    reason: &str,
) -> anyhow::Result<Summary> {
    use access_log::archive;
    let log_dir = dir.join("log");
    let report = FileLog::check_dir(&log_dir, &[])?;
    let Some(damage) = report.damage.iter().find(|d| !index_only(d)) else {
        anyhow::bail!("the log is intact: nothing to repair");
    };
    let open = || {
        std::fs::File::open(archive_path)
            .map(std::io::BufReader::new)
            .with_context(|| format!("opening {}", archive_path.display()))
    };
    let verified = archive::verify(open()?).context("the archive does not verify")?;
    anyhow::ensure!(
        verified.header.scope == "log",
        "this archive holds {}, not a whole log (back up with the operator key)",
        verified.header.scope
    );
    let from_archive = archive::envelopes(open()?, verified.trailer.events)?;
    let salvaged = FileLog::salvage(&log_dir)?;
    let mut by_position: std::collections::BTreeMap<u64, access_catalogue::Envelope> =
        std::collections::BTreeMap::new();
    for e in salvaged {
        by_position.entry(e.position).or_insert(e);
    }
    let mut restored = 0u64;
    for e in from_archive {
        match by_position.get(&e.position) {
            Some(kept) if kept.hash == e.hash => {}
            // What survives disagrees with the archive: the damage, or
            // another history. The chain check below tells which.
            _ => {
                restored += 1;
                by_position.insert(e.position, e);
            }
        }
    }
    let merged: Vec<_> = by_position.into_values().collect();
    let mut verifier = access_catalogue::chain::ChainVerifier::new();
    for e in &merged {
        verifier.check(e).map_err(|b| {
            anyhow::anyhow!(
                "the archive and what survives of the log do not make one whole history ({b}); nothing was changed. If the loss is accepted, use --quarantine"
            )
        })?;
    }
    let head = merged.last().map_or(0, |e| e.position);
    anyhow::ensure!(
        head >= report.head,
        "the repaired log would end at position {head}, before the {} the check read whole; nothing was changed",
        report.head
    );
    let aside = FileLog::replace(&log_dir, merged)?;
    let position = record(
        &log_dir,
        LogRepaired {
            method: "archive".into(),
            first_lost_position: 0,
            restored_events: restored,
            kept_aside: aside.display().to_string(),
            archive: format!(
                "{} (sha256 {})",
                archive_path.display(),
                verified.trailer.sha256
            ),
            damage: damage.to_string(),
            reason: reason.to_owned(),
        },
    )
    .await?;
    Ok(format!(
        "took {restored} events back from {}; the log holds positions 1 to {head} whole again, the damaged file is kept as {}, and the repair is recorded at position {position}",
        archive_path.display(),
        aside.display()
    ))
}

/// Appends the repair's record to the log's own stream; returns its position.
async fn record(log_dir: &Path, repaired: LogRepaired) -> anyhow::Result<u64> {
    let log = FileLog::open(log_dir)?;
    let (event_type, schema_version, payload) =
        Event::System(SystemEvent::LogRepaired(repaired)).encode();
    let stream = StreamId::new(Aggregate::System, GLOBAL_TENANT, "repairs")?;
    let request_id = format!("repair-{}", uuid::Uuid::new_v4());
    let appended = log
        .append(AppendRequest {
            fingerprint: sha2::Sha256::digest(request_id.as_bytes()).into(),
            request_id,
            tenant: None,
            actor: Actor::Operator,
            correlation_id: uuid::Uuid::new_v4(),
            causation_id: None,
            occurred_at_ms: crate::clock::system_now_ms(),
            streams: vec![StreamAppend {
                expected_version: log.stream_head(&stream)?.version,
                stream,
                events: vec![NewEvent {
                    event_id: uuid::Uuid::now_v7(),
                    event_type: event_type.to_owned(),
                    schema_version,
                    payload,
                }],
            }],
            reply: Vec::new(),
        })
        .await?;
    Ok(appended.last_position)
}
