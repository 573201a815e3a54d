//! Where command and query errors become gRPC statuses (DESIGN rule 10),
//! each with the typed reason a client matches on in `ErrorInfo`.

use crate::app::AppError;
use crate::domain::values::FieldViolation;
use crate::domain::{DomainError, Reason};
use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The error domain in `ErrorInfo` details.
const DOMAIN: &str = "access.v1";

fn with_reason(code: Code, message: String, reason: Reason) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason.as_str(), DOMAIN, HashMap::new()),
    )
}

/// `INVALID_ARGUMENT` with one field violation per problem, in the same shape
/// as the protocol's own limit checks give it.
pub fn invalid(violations: &[FieldViolation]) -> Status {
    let violations: Vec<access_proto::limits::Violation> = violations
        .iter()
        .map(|v| access_proto::limits::Violation {
            field: v.field.clone(),
            description: v.description.clone(),
        })
        .collect();
    access_proto::codec::invalid_request(&violations)
}

/// A caller whose key is refused: `UNAUTHENTICATED` for a missing, malformed,
/// unknown or revoked key, `PERMISSION_DENIED` for a key of the wrong kind.
pub fn key_refused(reason: Reason) -> Status {
    let (code, message) = match reason {
        Reason::ApiKeyRequired => (
            Code::Unauthenticated,
            "an API key is required: send 'authorization: Bearer <key>'",
        ),
        Reason::ApiKeyRevoked => (Code::Unauthenticated, "the API key was revoked"),
        Reason::OperatorKeyRequired => {
            (Code::PermissionDenied, "only the operator key may do this")
        }
        Reason::TenantKeyRequired => (
            Code::PermissionDenied,
            "the operator key does not act within a tenant; use the tenant's API key",
        ),
        _ => (Code::Unauthenticated, "the API key is not valid"),
    };
    with_reason(code, message.into(), reason)
}

/// A replica that cannot tell yet whether a key exists: it is behind the log.
pub fn key_not_yet_known() -> Status {
    with_reason(
        Code::Unavailable,
        "this replica cannot check the API key yet: it is behind the log; retry shortly".into(),
        Reason::ReadModelBehind,
    )
}

/// A session token that is not valid (any more).
pub fn session_invalid() -> Status {
    with_reason(
        Code::Unauthenticated,
        "the session is not valid or has expired".into(),
        Reason::SessionInvalid,
    )
}

/// Too much work of one kind in flight: retry shortly.
pub fn busy(message: &str) -> Status {
    with_reason(Code::ResourceExhausted, message.into(), Reason::Busy)
}

/// A fault: logged with its cause by the caller, shown as a bare `INTERNAL`.
pub fn internal() -> Status {
    Status::internal("internal error")
}

/// Maps a command or query error to its status; faults are logged with their
/// cause chain and shown as a bare `INTERNAL`.
pub fn to_status(error: AppError) -> Status {
    match error {
        AppError::Domain(d) => match d {
            DomainError::Invalid(v) => invalid(&v),
            DomainError::NotFound(what) => with_reason(
                Code::NotFound,
                format!("{what} not found"),
                Reason::NotFound,
            ),
            DomainError::AlreadyExists(m) => {
                with_reason(Code::AlreadyExists, m, Reason::AlreadyExists)
            }
            DomainError::FailedPrecondition { reason, message } => {
                with_reason(Code::FailedPrecondition, message, reason)
            }
            DomainError::PermissionDenied { reason, message } => {
                with_reason(Code::PermissionDenied, message, reason)
            }
            DomainError::TooManyAttempts {
                retry_after_ms,
                message,
            } => {
                let mut details = ErrorDetails::with_error_info(
                    Reason::TooManyAttempts.as_str(),
                    DOMAIN,
                    HashMap::new(),
                );
                details.set_retry_info(Some(std::time::Duration::from_millis(
                    retry_after_ms.max(0) as u64,
                )));
                Status::with_error_details(Code::ResourceExhausted, message, details)
            }
            DomainError::Unauthenticated { reason, message } => {
                with_reason(Code::Unauthenticated, message, reason)
            }
        },
        AppError::Conflict(m) => with_reason(Code::Aborted, m, Reason::Conflict),
        AppError::RequestIdReused => with_reason(
            Code::InvalidArgument,
            "request_id: this request id was already used for a different command".into(),
            Reason::RequestIdReused,
        ),
        AppError::Unavailable(m) => {
            tracing::warn!(error = %m, "event log unavailable");
            with_reason(
                Code::Unavailable,
                "the event log is unavailable; retry shortly".into(),
                Reason::LogUnavailable,
            )
        }
        AppError::Damaged(d) => {
            // The operator's log line names the file and the stream; the
            // caller learns what it may know whichever tenant the damaged
            // event belongs to: that this history is refused, and where.
            tracing::error!(damage = %d, "refused: stored history is damaged");
            let at = d
                .position
                .map(|p| format!(" at position {p}"))
                .unwrap_or_default();
            with_reason(
                Code::FailedPrecondition,
                format!(
                    "the stored history this needs is damaged{at}; nothing was changed, and an operator must repair it"
                ),
                Reason::HistoryDamaged,
            )
        }
        AppError::TooLarge(m) => with_reason(Code::InvalidArgument, m, Reason::TooLarge),
        AppError::Busy(m) => busy(&m),
        AppError::Behind(b) => {
            with_reason(Code::Unavailable, b.to_string(), Reason::ReadModelBehind)
        }
        AppError::Internal(e) => {
            tracing::error!(error = ?e, "internal error");
            internal()
        }
    }
}
