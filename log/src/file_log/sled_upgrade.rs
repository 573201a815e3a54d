//! Converts a log directory of the earlier layout, where sled held the
//! envelopes themselves (`e` + position → envelope, `r` + request id →
//! record), into the file layout of [`crate::file_log`]. Stored bytes are
//! carried over unchanged: every envelope keeps its hash and position, every
//! request record its reply, so retries and the chains still hold.
//!
//! The steps are safe to interrupt: the new file is written beside the old
//! database and renamed into place in one step; the old database is removed
//! only after that, and again by the next open if a crash came between.

use super::write_frames;
use crate::log::{LogError, RequestRecord};
use access_catalogue::envelope::Envelope;
use std::collections::HashMap;
use std::path::Path;

/// The files sled 0.34 keeps in its directory.
fn is_sled_file(name: &str) -> bool {
    name == "db" || name == "conf" || name == "blobs" || name.starts_with("snap.")
}

fn storage(e: impl std::fmt::Display) -> LogError {
    LogError::Storage(e.to_string())
}

/// Converts `dir` if it holds the earlier layout; does nothing otherwise.
pub fn upgrade(dir: &Path) -> Result<(), LogError> {
    let events = dir.join("events");
    if !dir.join("db").exists() {
        return Ok(());
    }
    if !events.exists() {
        convert(dir, &events)?;
    }
    remove_old(dir)
}

fn convert(dir: &Path, events: &Path) -> Result<(), LogError> {
    tracing::info!(dir = %dir.display(), "converting the event log to the file layout");
    let db = sled::Config::new().path(dir).open().map_err(storage)?;
    let mut records = HashMap::new();
    for item in db.scan_prefix(b"r") {
        let (k, v) = item.map_err(storage)?;
        let record: RequestRecord = postcard::from_bytes(&v).map_err(|e| LogError::Corrupt {
            position: 0,
            reason: format!("request record: {e}"),
        })?;
        let id = String::from_utf8_lossy(&k[1..]).into_owned();
        records.insert(record.last_position, (id, record));
    }
    let envelopes = db.scan_prefix(b"e").map(|item| {
        let (k, v) = item.map_err(storage)?;
        let position = k
            .get(1..9)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes);
        Envelope::decode(&v).map_err(|e| LogError::Corrupt {
            position,
            reason: e.to_string(),
        })
    });
    let partial = dir.join("events.upgrade");
    let written = write_frames(&partial, envelopes, records, Default::default(), false)?;
    drop(db);
    std::fs::rename(&partial, events).map_err(storage)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(storage)?;
    tracing::info!(dir = %dir.display(), events = written, "event log converted");
    Ok(())
}

fn remove_old(dir: &Path) -> Result<(), LogError> {
    for entry in std::fs::read_dir(dir).map_err(storage)? {
        let entry = entry.map_err(storage)?;
        let name = entry.file_name();
        if !is_sled_file(&name.to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).map_err(storage)?;
        } else {
            std::fs::remove_file(&path).map_err(storage)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{request, stream};
    use crate::file_log::FileLog;
    use crate::log::EventLog;

    /// Writes a log the way the earlier layout did.
    fn write_old_layout(dir: &Path) -> Vec<Envelope> {
        let db = sled::Config::new().path(dir).open().expect("old db");
        let a = stream("a");
        let b = stream("b");
        let mut envelopes = Vec::new();
        let mut position = 0;
        for (id, s, count) in [("r1", &a, 2), ("r2", &b, 1), ("r3", &a, 1)] {
            let r = request(id, s, 0, count);
            let first = position + 1;
            let mut prev = envelopes
                .iter()
                .rev()
                .find(|e: &&Envelope| &e.stream == s)
                .map_or((0, access_catalogue::chain::GENESIS), |e| {
                    (e.stream_version, e.hash)
                });
            for e in &r.streams[0].events {
                position += 1;
                let env = r.seal(s, e, prev.0 + 1, prev.1, position).expect("seal");
                prev = (env.stream_version, env.hash);
                let mut key = vec![b'e'];
                key.extend_from_slice(&position.to_be_bytes());
                db.insert(key, env.encode()).expect("insert");
                envelopes.push(env);
            }
            let record = RequestRecord {
                fingerprint: r.fingerprint,
                first_position: first,
                last_position: position,
                reply: r.reply.clone(),
            };
            let mut key = vec![b'r'];
            key.extend_from_slice(id.as_bytes());
            db.insert(key, postcard::to_stdvec(&record).expect("record"))
                .expect("insert");
        }
        db.insert(b"mhead", postcard::to_stdvec(&position).expect("head"))
            .expect("insert");
        db.flush().expect("flush");
        envelopes
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_old_sled_log_opens_with_every_event_and_request_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let written = write_old_layout(dir.path());
        // sled lets go of its file lock from a thread of its own, a moment
        // after the handle is dropped; on a busy machine the open can come first.
        let mut tries = 0;
        let log = loop {
            match FileLog::open(dir.path()) {
                Err(e) if e.to_string().contains("could not acquire lock") && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other.expect("converted and opened"),
            }
        };
        assert_eq!(*log.head().borrow(), 4);
        assert_eq!(log.read_from(1, 100).await.expect("read"), written);
        assert_eq!(log.read_stream(&stream("a")).await.expect("a").len(), 3);
        // A retry of a request made before the upgrade is still answered
        // from its first result.
        let retry = log
            .append(request("r2", &stream("b"), 0, 1))
            .await
            .expect("retry");
        assert!(retry.duplicate);
        assert_eq!(retry.last_position, 3);
        // The chain continues where it was.
        let next = log
            .append(request("r4", &stream("a"), 3, 1))
            .await
            .expect("next");
        assert_eq!(next.first_position, 5);
        assert!(!dir.path().join("db").exists(), "the old database is gone");
    }
}
