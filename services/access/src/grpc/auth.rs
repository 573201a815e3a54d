//! Who is calling: `authorization: Bearer <key>` checked against the operator
//! key and the tenants' API keys (stored as SHA-256 only).

use super::status::{internal, key_not_yet_known, key_refused};
use crate::app::{App, KeyRefused};
use crate::domain::Reason;
use crate::domain::policy::{Role, Staff};
use crate::domain::values::TenantId;
use crate::secrets;
use access_catalogue::Actor;
use tonic::{Request, Status};

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// The operator of this installation.
    Operator,
    /// Tenant staff or a service, through an API key.
    Staff {
        /// The key's tenant: every call acts within it.
        tenant: TenantId,
        /// The key's public id.
        key_id: String,
        /// What it may do.
        role: Role,
        /// For rep keys: the sales rep.
        rep_id: Option<String>,
    },
}

impl Principal {
    /// The actor recorded in events.
    pub fn actor(&self) -> Actor {
        match self {
            Principal::Operator => Actor::Operator,
            Principal::Staff { key_id, role, .. } => Actor::ApiKey {
                key_id: key_id.clone(),
                role: role.as_str().into(),
            },
        }
    }
}

/// Checks callers' keys.
#[derive(Clone)]
pub struct Authenticator {
    operator_key_sha256: [u8; 32],
    app: App,
}

impl Authenticator {
    /// An authenticator for this installation.
    pub fn new(operator_key_sha256: [u8; 32], app: App) -> Self {
        Authenticator {
            operator_key_sha256,
            app,
        }
    }

    /// The caller of `request`, or `UNAUTHENTICATED`: the one the gate
    /// admitted, or checked here.
    pub async fn authenticate<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        if let Some(principal) = request.extensions().get::<Principal>() {
            return Ok(principal.clone());
        }
        let header = request
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().map_err(|_| ()));
        self.authenticate_header(header).await
    }

    /// The caller who sent `header` (the `authorization` header, if any, and
    /// whether it was text), or `UNAUTHENTICATED`.
    pub async fn authenticate_header(
        &self,
        header: Option<Result<&str, ()>>,
    ) -> Result<Principal, Status> {
        let header = header.ok_or_else(|| key_refused(Reason::ApiKeyRequired))?;
        let key = header
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| key_refused(Reason::ApiKeyRequired))?;
        let digest = secrets::sha256(key);
        if secrets::digests_equal(&digest, &self.operator_key_sha256) {
            return Ok(Principal::Operator);
        }
        match self.app.api_key_holder(key, &digest).await {
            Ok(holder) => Ok(Principal::Staff {
                tenant: holder.tenant,
                key_id: holder.key_id,
                role: holder.role,
                rep_id: holder.rep_id,
            }),
            Err(KeyRefused::Refused(reason)) => Err(key_refused(reason)),
            Err(KeyRefused::NotYetKnown) => Err(key_not_yet_known()),
            Err(KeyRefused::Fault(e)) => {
                tracing::error!(error = ?e, "reading API keys");
                Err(internal())
            }
        }
    }

    /// The caller, who must be the operator.
    pub async fn operator<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        match self.authenticate(request).await? {
            Principal::Operator => Ok(Principal::Operator),
            Principal::Staff { .. } => Err(key_refused(Reason::OperatorKeyRequired)),
        }
    }

    /// The caller, who must act within a tenant: the principal, its tenant and
    /// what it may do there.
    pub async fn staff<T>(
        &self,
        request: &Request<T>,
    ) -> Result<(Principal, TenantId, Staff), Status> {
        match self.authenticate(request).await? {
            Principal::Operator => Err(key_refused(Reason::TenantKeyRequired)),
            Principal::Staff {
                tenant,
                key_id,
                role,
                rep_id,
            } => {
                let staff = Staff {
                    role,
                    rep_id: rep_id.clone(),
                };
                let principal = Principal::Staff {
                    tenant: tenant.clone(),
                    key_id,
                    role,
                    rep_id,
                };
                Ok((principal, tenant, staff))
            }
        }
    }
}
