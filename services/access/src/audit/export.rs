//! Exporting the log (or one tenant's part of it) for an archive: every
//! event up to the head when the export began, and the whole log's digest
//! at the end so the archive can carry a signed checkpoint over exactly
//! what it holds.

use crate::app::AppError;
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
