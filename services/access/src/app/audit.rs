//! The auditor's questions, answered from the log itself (see `crate::audit`).

use super::{App, AppError};
use crate::audit::export::Exported;
use crate::audit::{self, AccessAt, HistoryLine, HistoryQuery, Verified};
use tokio::sync::mpsc;

/// How many lines a streamed answer holds before the reader takes them.
const STREAM_BUFFER: usize = 256;

impl App {
    /// The history `query` asks for, line by line.
    pub fn history(&self, query: HistoryQuery) -> mpsc::Receiver<Result<HistoryLine, AppError>> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let (log, vault) = (self.log.clone(), self.vault.clone());
        tokio::spawn(async move { audit::replay(log.as_ref(), vault.as_ref(), query, tx).await });
        rx
    }

    /// What a customer's contacts (or one contact) could do at `at_ms`.
    pub async fn access_at(
        &self,
        tenant: &str,
        at_ms: i64,
        customer_id: Option<&str>,
        contact_id: Option<&str>,
    ) -> Result<AccessAt, AppError> {
        audit::access_at(
            self.log.as_ref(),
            self.vault.as_ref(),
            tenant,
            at_ms,
            customer_id,
            contact_id,
        )
        .await
    }

    /// Walks the chains of `tenant` (or of the whole log).
    pub async fn verify_chains(&self, tenant: Option<&str>) -> Verified {
        audit::verify(self.log.as_ref(), tenant).await
    }

    /// The log's events of `tenant` (or all of them) up to its head now.
    pub fn export(&self, tenant: Option<String>) -> mpsc::Receiver<Result<Exported, AppError>> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let log = self.log.clone();
        tokio::spawn(async move {
            crate::audit::export::export(log.as_ref(), tenant.as_deref(), tx).await
        });
        rx
    }

    /// The log's last position, asked of the log itself.
    pub async fn latest(&self) -> Result<u64, AppError> {
        Ok(self.log.latest().await?)
    }
}
