//! Errors of the command and query paths.

use crate::domain::DomainError;
use crate::projections::Behind;

/// Why a command or query failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The domain refused it.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Concurrent changes kept conflicting.
    #[error("{0}")]
    Conflict(String),
    /// The request id was used before for a different command.
    #[error("this request id was already used for a different command")]
    RequestIdReused,
    /// The log cannot take writes now.
    #[error("the event log is unavailable: {0}")]
    Unavailable(String),
    /// The stored history this needs is damaged: refused, never read around.
    #[error("{0}")]
    Damaged(access_catalogue::damage::Damage),
    /// What the command would record is larger than the log takes.
    #[error("{0}")]
    TooLarge(String),
    /// Too much work of this kind is in flight: retry shortly.
    #[error("{0}")]
    Busy(String),
    /// The read model did not reach the asked position in time.
    #[error(transparent)]
    Behind(Behind),
    /// A fault of ours; the cause is logged, not shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    /// Wraps a storage or decoding fault.
    pub fn storage(e: impl std::fmt::Display) -> Self {
        AppError::Internal(anyhow::anyhow!("{e}"))
    }
}

impl From<access_log::LogError> for AppError {
    fn from(e: access_log::LogError) -> Self {
        match e {
            access_log::LogError::Unavailable(m) => AppError::Unavailable(m),
            access_log::LogError::Damaged(d) => AppError::Damaged(d),
            other => AppError::storage(other),
        }
    }
}

impl From<access_log::log::AppendError> for AppError {
    fn from(e: access_log::log::AppendError) -> Self {
        use access_log::log::AppendError;
        match e {
            AppendError::Conflict { .. } => AppError::Conflict(e.to_string()),
            AppendError::RequestIdReused(_) => AppError::RequestIdReused,
            AppendError::Invalid(m) => AppError::Internal(anyhow::anyhow!(m)),
            AppendError::Unavailable(m) => AppError::Unavailable(m),
            AppendError::Damaged(d) => AppError::Damaged(d),
        }
    }
}

impl From<access_log::vault::DecodeOpenError> for AppError {
    fn from(e: access_log::vault::DecodeOpenError) -> Self {
        match e {
            access_log::vault::DecodeOpenError::Vault(v) => AppError::Unavailable(v.to_string()),
            access_log::vault::DecodeOpenError::Missing(d) => AppError::Damaged(d),
            other => AppError::storage(other),
        }
    }
}
