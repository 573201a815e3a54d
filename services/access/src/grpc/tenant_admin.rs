//! `access.v1.TenantAdmin`: a tenant's API keys and settings (admin keys).

use super::convert::{self, fingerprint};
use super::status::to_status;
use super::{Shared, context};
use crate::app::{AppError, Command, SetApprovalPolicy, SetUsernameAdministrators};
use crate::domain::DomainError;
use crate::domain::policy::Staff;
use crate::domain::values::TenantId;
use crate::domain::values::{Email, RequestId};
use access_events::catalogue::DefaultVisibility;
use access_proto::v1 as pb;
use access_proto::v1::tenant_admin_server::TenantAdmin;
use tonic::{Request, Response, Status};

/// The tenant administration service.
#[derive(Clone)]
pub struct TenantAdminService(pub Shared);

impl TenantAdminService {
    async fn tenant(&self, tenant: &TenantId, position: u64) -> Result<pb::Tenant, Status> {
        let app = &self.0.app;
        app.wait_for(position).await.map_err(to_status)?;
        let row = app
            .models
            .tenant(tenant.as_str())
            .map_err(|e| to_status(AppError::Internal(e)))?
            .ok_or_else(|| to_status(DomainError::NotFound("tenant").into()))?;
        Ok(pb::Tenant {
            tenant_id: tenant.to_string(),
            name: row.name,
            sites: row.sites,
            default_order_site: row.default_order_site,
            default_site: match row.default_visibility {
                DefaultVisibility::AllSites => String::new(),
                DefaultVisibility::OneSite(site) => site,
            },
            inactive_customers_may_log_in: row.inactive_customers_may_log_in,
            approval_required: row.approval_required,
            username_administrators: row.username_administrators,
        })
    }

    /// Runs a tenant command and answers with the tenant as it is after it.
    async fn run_tenant<M: prost::Message + Clone, C: Command>(
        &self,
        request: &Request<M>,
        method: &str,
        request_id: &str,
        cmd: impl FnOnce(TenantId, Staff) -> Result<C, Status>,
    ) -> Result<Response<pb::TenantReply>, Status> {
        let (principal, tenant, staff) = self.0.auth.staff(request).await?;
        let mut f = convert::Fields::default();
        let request_id = f.parse("request_id", RequestId::parse(request_id));
        f.finish()?;
        let request_id = request_id.ok_or_else(|| Status::internal("parse bookkeeping"))?;
        let cmd = cmd(tenant.clone(), staff)?;
        let fp = fingerprint(method, request.get_ref(), |_| {});
        let ctx = context(
            request,
            request_id,
            fp,
            Some(tenant.clone()),
            principal.actor(),
        );
        let outcome = self.0.app.execute(&ctx, &cmd).await.map_err(to_status)?;
        Ok(Response::new(pb::TenantReply {
            position: outcome.position,
            tenant: Some(self.tenant(&tenant, outcome.position).await?),
        }))
    }
}

#[tonic::async_trait]
impl TenantAdmin for TenantAdminService {
    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyReply>, Status> {
        let (principal, tenant, staff) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let (request_id, mut cmd) = convert::create_api_key(tenant.clone(), staff, r)?;
        // Derived from its id, so a retry can hand the same key back.
        cmd.key_sha256 = crate::secrets::sha256(&self.0.app.api_keys.key_text(cmd.key_id.as_str()));
        let fp = fingerprint("CreateApiKey", r, |m| m.request_id.clear());
        let ctx = context(&request, request_id, fp, Some(tenant), principal.actor());
        let outcome = self.0.app.execute(&ctx, &cmd).await.map_err(to_status)?;
        Ok(Response::new(pb::CreateApiKeyReply {
            position: outcome.position,
            api_key: self.0.app.api_keys.key_text(&outcome.reply),
            key_id: outcome.reply,
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyReply>, Status> {
        let (principal, tenant, staff) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let (request_id, cmd) = convert::revoke_api_key(tenant.clone(), staff, r)?;
        let fp = fingerprint("RevokeApiKey", r, |m| m.request_id.clear());
        let ctx = context(&request, request_id, fp, Some(tenant), principal.actor());
        let outcome = self.0.app.execute(&ctx, &cmd).await.map_err(to_status)?;
        // The key must fail at once: wait until the read model knows.
        self.0
            .app
            .wait_for(outcome.position)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::RevokeApiKeyReply {
            position: outcome.position,
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn update_tenant_settings(
        &self,
        request: Request<pb::UpdateTenantSettingsRequest>,
    ) -> Result<Response<pb::TenantReply>, Status> {
        let (principal, tenant, staff) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let (request_id, cmd) = convert::change_settings(tenant.clone(), staff, r)?;
        let fp = fingerprint("UpdateTenantSettings", r, |m| m.request_id.clear());
        let ctx = context(
            &request,
            request_id,
            fp,
            Some(tenant.clone()),
            principal.actor(),
        );
        let outcome = self.0.app.execute(&ctx, &cmd).await.map_err(to_status)?;
        Ok(Response::new(pb::TenantReply {
            position: outcome.position,
            tenant: Some(self.tenant(&tenant, outcome.position).await?),
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn set_username_administrators(
        &self,
        request: Request<pb::SetUsernameAdministratorsRequest>,
    ) -> Result<Response<pb::TenantReply>, Status> {
        let r = request.get_ref().clone();
        self.run_tenant(
            &request,
            "SetUsernameAdministrators",
            &r.request_id,
            |tenant, by| {
                let mut f = convert::Fields::default();
                let emails: Vec<Email> = r
                    .emails
                    .iter()
                    .enumerate()
                    .filter_map(|(i, e)| f.parse(&format!("emails[{i}]"), Email::parse(e)))
                    .collect();
                f.finish()?;
                Ok(SetUsernameAdministrators { tenant, by, emails })
            },
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn set_approval_policy(
        &self,
        request: Request<pb::SetApprovalPolicyRequest>,
    ) -> Result<Response<pb::TenantReply>, Status> {
        let r = request.get_ref().clone();
        self.run_tenant(
            &request,
            "SetApprovalPolicy",
            &r.request_id,
            |tenant, by| {
                Ok(SetApprovalPolicy {
                    tenant,
                    by,
                    approval_required: r.approval_required,
                })
            },
        )
        .await
    }

    async fn get_tenant(
        &self,
        request: Request<pb::GetTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let (_, tenant, _) = self.0.auth.staff(&request).await?;
        Ok(Response::new(
            self.tenant(&tenant, request.get_ref().min_position).await?,
        ))
    }
}
