//! The `access.v1` gRPC servers.
//!
//! Each RPC authenticates, parses its message into a command (collecting field
//! violations), runs it through [`App`], and maps errors in [`status`].

mod audit;
pub mod auth;
pub mod convert;
mod events;
mod factors;
pub mod gate;
mod imports;
mod logins;
mod oidc_clients;
mod operator;
mod passkeys;
mod portal_links;
mod reports;
mod service;
mod sessions;
pub mod status;
mod tenant_admin;
pub mod views;
mod webhooks;

pub use audit::AuditService;
pub use events::EventsService;
pub use operator::OperatorService;
pub use service::AccessService;
pub use sessions::SessionsService;
pub use tenant_admin::TenantAdminService;

use crate::app::{App, CommandContext};
use crate::domain::policy::Staff;
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

/// A staff caller's command, parsed, with the context it runs in.
pub(crate) struct StaffCommand<C> {
    /// Who asks, in which tenant, under which request id and fingerprint.
    pub ctx: CommandContext,
    /// The command.
    pub cmd: C,
    /// The caller's tenant.
    pub tenant: TenantId,
    /// What the caller may do there.
    pub staff: Staff,
}

impl Shared {
    /// What every staff command does before it runs: the caller's key, the
    /// message parsed into a command, and the message's fingerprint under
    /// `method` once `clear` has taken out what a retry may change (the
    /// request id, typed passwords).
    pub(crate) async fn staff_command<M, C>(
        &self,
        request: &Request<M>,
        method: &'static str,
        clear: impl FnOnce(&mut M),
        parse: impl FnOnce(TenantId, Staff, &M) -> Result<(RequestId, C), tonic::Status>,
    ) -> Result<StaffCommand<C>, tonic::Status>
    where
        M: prost::Message + Clone,
    {
        let (principal, tenant, staff) = self.auth.staff(request).await?;
        let (request_id, cmd) = parse(tenant.clone(), staff.clone(), request.get_ref())?;
        let fp = convert::fingerprint(method, request.get_ref(), clear);
        let ctx = context(
            request,
            request_id,
            fp,
            Some(tenant.clone()),
            principal.actor(),
        );
        Ok(StaffCommand {
            ctx,
            cmd,
            tenant,
            staff,
        })
    }
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
