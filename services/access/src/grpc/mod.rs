//! The `access.v1` gRPC servers.
//!
//! Each RPC authenticates, parses its message into a command (collecting field
//! violations), runs it through [`App`], and maps errors in [`status`].

mod audit;
pub mod auth;
pub mod convert;
pub mod gate;
mod logins;
mod operator;
mod portal_links;
mod reports;
mod service;
mod sessions;
pub mod status;
mod tenant_admin;
pub mod views;

pub use audit::AuditService;
pub use operator::OperatorService;
pub use service::AccessService;
pub use sessions::SessionsService;
pub use tenant_admin::TenantAdminService;

use crate::app::{App, CommandContext};
use crate::domain::values::{RequestId, TenantId};
use access_catalogue::Actor;
use auth::Authenticator;
use tonic::Request;
use uuid::Uuid;

/// What every service shares.
#[derive(Clone)]
pub struct Shared {
    /// Commands and queries.
    pub app: App,
    /// Caller authentication.
    pub auth: Authenticator,
    /// The log's signed checkpoints.
    pub checkpoints: std::sync::Arc<crate::checkpoints::Checkpoints>,
    /// How far this process's mailer has come, when it sends mail.
    pub mail: Option<tokio::sync::watch::Receiver<access_mailer::Progress>>,
}

/// The correlation id a caller sent in `x-correlation-id`, or a fresh one.
pub(crate) fn correlation_id<T>(request: &Request<T>) -> Uuid {
    request
        .metadata()
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v).ok())
        .unwrap_or_else(Uuid::new_v4)
}

/// The context of a command sent in `request`.
fn context<T>(
    request: &Request<T>,
    request_id: RequestId,
    fingerprint: [u8; 32],
    tenant: Option<TenantId>,
    actor: Actor,
) -> CommandContext {
    CommandContext {
        request_id,
        fingerprint,
        tenant,
        actor,
        correlation_id: correlation_id(request),
    }
}
