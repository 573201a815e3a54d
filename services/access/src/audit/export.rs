//! Exporting the log (or one tenant's part of it) for an archive: every
//! event up to the head when the export began, each checked against its
//! chain, and the whole log's digest at the end so the archive can carry a
//! signed checkpoint over exactly what it holds (never over damage).

use crate::app::AppError;
use access_catalogue::damage::Damage;
use access_log::checkpoint::LogDigest;
use access_log::log::EventLog;
use tokio::sync::mpsc;

/// Events read from the log per request.
const BATCH: usize = 2048;

/// One part of an export.
#[derive(Debug)]
pub enum Exported {
    /// An event, with the export's scope and head on the first one.
    Event {
        /// Its position.
        position: u64,
        /// Its encoded envelope.
        envelope: Vec<u8>,
        /// `log` or `tenant <id>`, and the head exported up to; first event only.
        first: Option<(String, u64)>,
    },
    /// The digest of the whole log up to the head, after the last event of a
    /// whole-log export.
    Digest(LogDigest),
}

/// Sends the events of `tenant` (or all of them) up to the head to `out`;
/// stops early if the receiver goes away.
pub async fn export(
    log: &dyn EventLog,
    tenant: Option<&str>,
    out: mpsc::Sender<Result<Exported, AppError>>,
) {
    let head = *log.head().borrow();
    let scope = tenant.map_or_else(|| "log".to_owned(), |t| format!("tenant {t}"));
    let mut first = Some((scope, head));
    let mut next = 1;
    let mut digest = LogDigest::default();
    let mut chain = log.chain_verifier();
    'export: while next <= head {
        let batch = match log.read_from(next, BATCH).await {
            Ok(batch) if !batch.is_empty() => batch,
            Ok(_) => break,
            Err(e) => {
                let _ = out.send(Err(e.into())).await;
                return;
            }
        };
        for e in batch {
            next = e.position + 1;
            if e.position > head {
                break 'export;
            }
            if let Err(broken) = chain.check(&e) {
                let damage = Damage::new("the log", broken.what)
                    .at_position(broken.position)
                    .in_stream(Some(broken.stream));
                let _ = out.send(Err(AppError::Damaged(damage))).await;
                return;
            }
            digest.add(&e);
            if tenant.is_some_and(|t| e.stream.tenant() != t) {
                continue;
            }
            let item = Exported::Event {
                position: e.position,
                envelope: e.encode(),
                first: first.take(),
            };
            if out.send(Ok(item)).await.is_err() {
                return;
            }
        }
    }
    if tenant.is_none() && digest.events > 0 {
        let _ = out.send(Ok(Exported::Digest(digest))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use access_log::conformance::{request, stream};
    use access_log::file_log::FileLog;

    async fn exported(log: &dyn EventLog) -> Vec<Result<Exported, AppError>> {
        let (tx, mut rx) = mpsc::channel(64);
        export(log, None, tx).await;
        let mut out = Vec::new();
        while let Some(part) = rx.recv().await {
            out.push(part);
        }
        out
    }

    #[tokio::test]
    async fn an_export_stops_at_a_broken_chain_and_signs_nothing() {
        let dir = tempfile::tempdir().expect("a directory");
        let intact = FileLog::open(&dir.path().join("a")).expect("a log");
        intact
            .append(request("r1", &stream("s"), 0, 3))
            .await
            .expect("appended");
        let parts = exported(&intact).await;
        assert_eq!(parts.len(), 4, "three events and the digest");
        assert!(matches!(parts.last(), Some(Ok(Exported::Digest(_)))));

        // The same events with a payload changed under an intact frame.
        let mut events = intact.read_from(1, 10).await.expect("events");
        drop(intact);
        events[1].payload = b"rewritten".to_vec();
        FileLog::import(&dir.path().join("b"), events).expect("imported");
        let tampered = FileLog::open(&dir.path().join("b")).expect("opens");
        let parts = exported(&tampered).await;
        assert!(
            matches!(parts.last(), Some(Err(AppError::Damaged(d))) if d.position == Some(2)),
            "{parts:?}"
        );
        assert!(!parts.iter().any(|p| matches!(p, Ok(Exported::Digest(_)))));
    }
}
