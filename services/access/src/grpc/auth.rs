//! Who is calling: `authorization: Bearer <key>` checked against the operator
//! key and the tenants' API keys (stored as SHA-256 only).

use super::status::{internal, key_not_yet_known, key_refused};
use crate::domain::Reason;
use crate::domain::policy::{Role, Staff};
use crate::domain::values::TenantId;
use crate::projections::ReadModels;
use crate::secrets;
use access_catalogue::Actor;
use access_log::log::EventLog;
use std::sync::Arc;
use std::time::Duration;
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
    models: Arc<ReadModels>,
    log: Arc<dyn EventLog>,
}

impl Authenticator {
    /// An authenticator for this installation.
    pub fn new(
        operator_key_sha256: [u8; 32],
        models: Arc<ReadModels>,
        log: Arc<dyn EventLog>,
    ) -> Self {
        Authenticator {
            operator_key_sha256,
            models,
            log,
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
        let invalid = || key_refused(Reason::ApiKeyInvalid);
        let key_id = access_keyring::api_key_id_of(key).ok_or_else(invalid)?;
        let mut row = self.models.api_key(key_id).map_err(|e| {
            tracing::error!(error = ?e, "reading API keys");
            internal()
        })?;
        if row.is_none() {
            // A key issued a moment ago, maybe through another replica, may
            // not be projected here yet.
            let latest = self.log.latest().await.ok();
            let head = latest.unwrap_or_else(|| *self.log.head().borrow());
            let caught_up = self.models.checkpoint() >= head
                || self
                    .models
                    .wait_for(head, Duration::from_secs(2))
                    .await
                    .is_ok();
            // Read again in any case: the projector may have applied it since
            // the first read, even if it has caught up by now.
            row = self.models.api_key(key_id).map_err(|e| {
                tracing::error!(error = ?e, "reading API keys");
                internal()
            })?;
            if row.is_none() && (latest.is_none() || !caught_up) {
                // Behind the log, or unable to ask it: the key may exist
                // without this replica knowing yet, so "invalid" would be a
                // guess a caller could not retry.
                return Err(key_not_yet_known());
            }
        }
        let row = row.ok_or_else(invalid)?;
        if !secrets::digests_equal(&digest, &row.key_sha256) {
            return Err(invalid());
        }
        if row.revoked {
            return Err(key_refused(Reason::ApiKeyRevoked));
        }
        let role = Role::parse(&row.role).map_err(|_| invalid())?;
        Ok(Principal::Staff {
            tenant: TenantId::trusted(&row.tenant),
            key_id: key_id.to_owned(),
            role,
            rep_id: row.rep_id,
        })
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
