//! Authorization before any work: a layer in front of every `access.v1`
//! service that authenticates the caller from the request's headers and
//! checks the role against the method's table below, before the request's
//! body is read or decoded. A caller who may never call a method is refused
//! at the cost of a key lookup. Finer rules (a rep and their customers) stay
//! with the decisions.

use super::auth::{Authenticator, Principal};
use crate::domain::Reason;
use crate::domain::policy::Role;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::Status;

/// Who may call a method at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callers {
    /// Anyone: the request carries its own credential (a link token).
    Public,
    /// The operator key only.
    Operator,
    /// API keys with one of these roles.
    Staff(&'static [Role]),
    /// The operator key, or API keys with one of these roles.
    OperatorOrStaff(&'static [Role]),
}

const ALL: &[Role] = &[
    Role::Admin,
    Role::InHouse,
    Role::Rep,
    Role::Service,
    Role::Auditor,
];
const ADMIN: &[Role] = &[Role::Admin];
const AUDIT: &[Role] = &[Role::Admin, Role::Auditor];
const CUSTOMERS: &[Role] = &[Role::Admin, Role::InHouse, Role::Service];
const LOGINS: &[Role] = &[Role::Admin, Role::InHouse, Role::Service, Role::Rep];
const PORTAL: &[Role] = &[Role::Admin, Role::InHouse, Role::Service];
const SUBSCRIBERS: &[Role] = &[Role::Subscriber];

/// Who may call the `access.v1` method at `path` (`/access.v1.Service/Method`);
/// `None` for a path that is not one of ours.
pub fn callers(path: &str) -> Option<Callers> {
    use Callers::{Operator, OperatorOrStaff, Public, Staff};
    let (service, method) = path.strip_prefix("/access.v1.")?.split_once('/')?;
    Some(match (service, method) {
        ("Operator", _) => Operator,
        ("Events", "Subscribe") => OperatorOrStaff(SUBSCRIBERS),
        ("Audit", "GetCheckpoint" | "ExportLog") => OperatorOrStaff(AUDIT),
        ("Audit", _) => Staff(AUDIT),
        ("TenantAdmin", "GetTenant") => Staff(ALL),
        ("TenantAdmin", "ReplayWebhook") => OperatorOrStaff(ADMIN),
        ("TenantAdmin", _) => Staff(ADMIN),
        (
            "Access",
            "CreateCustomer" | "UpdateCustomer" | "SetCustomerStatus" | "SetDocumentVisibility",
        ) => Staff(CUSTOMERS),
        (
            "Access",
            "GetCustomer"
            | "GetContact"
            | "GetSiteVisibility"
            | "ListAccess"
            | "ListCustomersWithoutLogin"
            | "BillableUsers",
        ) => Staff(ALL),
        ("Access", "CheckAccess" | "ResolvePortalLink") => Staff(PORTAL),
        ("Access", _) => Staff(LOGINS),
        ("Sessions", "AcceptInvitation" | "ResetPassword") => Public,
        ("Sessions", _) => Staff(PORTAL),
        _ => return None,
    })
}

/// Whether `principal` may call a method open to `callers`, and if not, why.
pub fn admit(callers: Callers, principal: &Principal) -> Result<(), Status> {
    let roles = match (callers, principal) {
        (Callers::Public, _) => return Ok(()),
        (Callers::Operator | Callers::OperatorOrStaff(_), Principal::Operator) => return Ok(()),
        (Callers::Operator, Principal::Staff { .. }) => {
            return Err(super::status::key_refused(Reason::OperatorKeyRequired));
        }
        (Callers::Staff(_), Principal::Operator) => {
            return Err(super::status::key_refused(Reason::TenantKeyRequired));
        }
        (Callers::Staff(roles) | Callers::OperatorOrStaff(roles), Principal::Staff { .. }) => roles,
    };
    match principal {
        Principal::Staff { role, .. } if !roles.contains(role) => Err(denied(format!(
            "a {} key may not call this method",
            role.as_str()
        ))),
        _ => Ok(()),
    }
}

/// `PERMISSION_DENIED` with the reason `role`, as the decisions give it.
fn denied(message: String) -> Status {
    super::status::to_status(crate::app::AppError::Domain(
        crate::domain::DomainError::PermissionDenied {
            reason: Reason::Role,
            message,
        },
    ))
}

/// The layer that puts [`Gate`] in front of the gRPC services.
#[derive(Clone)]
pub struct GateLayer {
    auth: std::sync::Arc<Authenticator>,
}

impl GateLayer {
    /// A gate checking keys with `auth`.
    pub fn new(auth: Authenticator) -> Self {
        GateLayer {
            auth: std::sync::Arc::new(auth),
        }
    }
}

impl<S> tower::Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Gate {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// Authenticates and authorizes a call before passing it on; the principal
/// rides in the request's extensions to the method.
#[derive(Clone)]
pub struct Gate<S> {
    inner: S,
    /// Shared: each call takes a handle to it, and the app behind it is
    /// too large to copy per call.
    auth: std::sync::Arc<Authenticator>,
}

impl<S, B, R> tower::Service<axum::http::Request<B>> for Gate<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<R>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: axum::http::Request<B>) -> Self::Future {
        // The clone is the one that was polled ready; keep it for this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(callers) = callers(request.uri().path()) else {
            return Box::pin(inner.call(request));
        };
        let auth = self.auth.clone();
        Box::pin(async move {
            if callers != Callers::Public {
                let header = request
                    .headers()
                    .get("authorization")
                    .map(|v| v.to_str().map_err(|_| ()));
                let admitted = match auth.authenticate_header(header).await {
                    Ok(principal) => admit(callers, &principal).map(|()| principal),
                    Err(status) => Err(status),
                };
                match admitted {
                    Ok(principal) => {
                        request.extensions_mut().insert(principal);
                    }
                    Err(status) => return Ok(status.into_http()),
                }
            }
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::values::TenantId;

    fn staff(role: Role) -> Principal {
        Principal::Staff {
            tenant: TenantId::trusted("t"),
            key_id: "k".into(),
            role,
            rep_id: None,
        }
    }

    #[test]
    fn every_method_of_the_protocol_has_its_callers() {
        let pool = prost_reflect::DescriptorPool::decode(access_proto::FILE_DESCRIPTOR_SET)
            .expect("the embedded descriptors decode");
        let mut methods = 0;
        for service in pool.services() {
            for method in service.methods() {
                let path = format!("/{}/{}", service.full_name(), method.name());
                assert!(callers(&path).is_some(), "{path} has no callers");
                methods += 1;
            }
        }
        assert!(methods > 50, "{methods}");
        assert_eq!(callers("/grpc.health.v1.Health/Check"), None);
        assert_eq!(callers("/access.v1.Nothing"), None);
    }

    #[test]
    fn the_table_follows_the_roles_of_the_policy() {
        let set_template = callers("/access.v1.TenantAdmin/SetEmailTemplate").unwrap();
        assert!(admit(set_template, &staff(Role::Admin)).is_ok());
        for role in [Role::InHouse, Role::Rep, Role::Service, Role::Auditor] {
            assert!(admit(set_template, &staff(role)).is_err(), "{role:?}");
        }
        assert!(admit(set_template, &Principal::Operator).is_err());
        let login = callers("/access.v1.Sessions/Login").unwrap();
        assert!(admit(login, &staff(Role::Auditor)).is_err());
        assert!(admit(login, &staff(Role::Service)).is_ok());
        let export = callers("/access.v1.Audit/ExportLog").unwrap();
        assert!(admit(export, &Principal::Operator).is_ok());
        assert!(admit(export, &staff(Role::Auditor)).is_ok());
        assert!(admit(export, &staff(Role::Service)).is_err());
        let accept = callers("/access.v1.Sessions/AcceptInvitation").unwrap();
        assert_eq!(accept, Callers::Public);
    }
}
