//! `access.v1.Access`: customers, invitations and access, for tenant staff.

use super::convert::{self, fingerprint, rfc3339, site_rule_to_pb};
use super::status::to_status;
use super::{Shared, context};
use crate::app::{AccessAction, AppError};
use crate::domain::DomainError;
use crate::projections::ContactRow;
use access_proto::v1 as pb;
use access_proto::v1::access_server::Access;
use tonic::{Request, Response, Status};

/// The access service.
#[derive(Clone)]
pub struct AccessService(pub Shared);

fn contact_to_pb(row: ContactRow) -> pb::Contact {
    pb::Contact {
        status: row.status().into(),
        site_rule: Some(site_rule_to_pb(&row.site_rule)),
        contact_id: row.contact_id,
        customer_id: row.customer_id,
        email: row.email,
        invitation_id: row.invitation_id,
    }
}

impl AccessService {
    /// A contact of the tenant after the read model reached `position`.
    async fn contact(
        &self,
        tenant: &str,
        contact_id: &str,
        position: u64,
    ) -> Result<pb::Contact, Status> {
        let app = &self.0.app;
        app.wait_for(position).await.map_err(to_status)?;
        let row = app
            .models
            .contact(tenant, contact_id)
            .map_err(|e| to_status(AppError::Internal(e)))?
            .ok_or_else(|| to_status(DomainError::NotFound("contact").into()))?;
        Ok(contact_to_pb(row))
    }

    async fn change_access(
        &self,
        request: Request<pb::ContactCommand>,
        action: AccessAction,
        method: &str,
    ) -> Result<Response<pb::ContactReply>, Status> {
        let (principal, tenant) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let (request_id, cmd) = convert::access(tenant.clone(), action, r)?;
        let fp = fingerprint(method, r, |m| m.request_id.clear());
        let ctx = context(
            &request,
            request_id,
            fp,
            Some(tenant.clone()),
            principal.actor(),
        );
        let outcome = self.0.app.execute(&ctx, &cmd).await.map_err(to_status)?;
        let contact = self
            .contact(tenant.as_str(), &outcome.reply, outcome.position)
            .await?;
        Ok(Response::new(pb::ContactReply {
            position: outcome.position,
            contact: Some(contact),
        }))
    }
}

#[tonic::async_trait]
impl Access for AccessService {
    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn create_customer(
        &self,
        request: Request<pb::CreateCustomerRequest>,
    ) -> Result<Response<pb::CreateCustomerReply>, Status> {
        let (principal, tenant) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let (request_id, cmd) = convert::create_customer(tenant.clone(), r)?;
        let fp = fingerprint("CreateCustomer", r, |m| m.request_id.clear());
        let ctx = context(&request, request_id, fp, Some(tenant), principal.actor());
        let outcome = self.0.app.execute(&ctx, &cmd).await.map_err(to_status)?;
        Ok(Response::new(pb::CreateCustomerReply {
            position: outcome.position,
            customer_id: outcome.reply,
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn invite_customer(
        &self,
        request: Request<pb::InviteCustomerRequest>,
    ) -> Result<Response<pb::InviteCustomerReply>, Status> {
        let (principal, tenant) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let (request_id, cmd) = convert::invite(tenant.clone(), r)?;
        let fp = fingerprint("InviteCustomer", r, |m| m.request_id.clear());
        let ctx = context(&request, request_id, fp, Some(tenant), principal.actor());
        let outcome = self.0.app.execute(&ctx, &cmd).await.map_err(to_status)?;
        Ok(Response::new(pb::InviteCustomerReply {
            position: outcome.position,
            contact_id: outcome.reply.contact_id,
            invitation_id: outcome.reply.invitation_id,
            expires_at: rfc3339(outcome.reply.expires_at_ms),
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn resend_invitation(
        &self,
        request: Request<pb::ResendInvitationRequest>,
    ) -> Result<Response<pb::ResendInvitationReply>, Status> {
        let (principal, tenant) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let (request_id, cmd) = convert::resend(tenant.clone(), r)?;
        let fp = fingerprint("ResendInvitation", r, |m| m.request_id.clear());
        let ctx = context(&request, request_id, fp, Some(tenant), principal.actor());
        let outcome = self.0.app.execute(&ctx, &cmd).await.map_err(to_status)?;
        Ok(Response::new(pb::ResendInvitationReply {
            position: outcome.position,
            invitation_id: outcome.reply.invitation_id,
            expires_at: rfc3339(outcome.reply.expires_at_ms),
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn disable_access(
        &self,
        request: Request<pb::ContactCommand>,
    ) -> Result<Response<pb::ContactReply>, Status> {
        self.change_access(request, AccessAction::Disable, "DisableAccess")
            .await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn restore_access(
        &self,
        request: Request<pb::ContactCommand>,
    ) -> Result<Response<pb::ContactReply>, Status> {
        self.change_access(request, AccessAction::Restore, "RestoreAccess")
            .await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn revoke_access(
        &self,
        request: Request<pb::ContactCommand>,
    ) -> Result<Response<pb::ContactReply>, Status> {
        self.change_access(request, AccessAction::Revoke, "RevokeAccess")
            .await
    }

    async fn get_contact(
        &self,
        request: Request<pb::GetContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        let (_, tenant) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let id = convert::contact_id(&r.contact_id)?;
        Ok(Response::new(
            self.contact(tenant.as_str(), id.as_str(), r.min_position)
                .await?,
        ))
    }

    async fn get_site_visibility(
        &self,
        request: Request<pb::GetSiteVisibilityRequest>,
    ) -> Result<Response<pb::SiteVisibility>, Status> {
        let (_, tenant) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let id = convert::contact_id(&r.contact_id)?;
        let app = &self.0.app;
        app.wait_for(r.min_position).await.map_err(to_status)?;
        let v = app
            .models
            .site_visibility(tenant.as_str(), id.as_str())
            .map_err(|e| to_status(AppError::Internal(e)))?
            .ok_or_else(|| to_status(DomainError::NotFound("contact").into()))?;
        Ok(Response::new(pb::SiteVisibility {
            contact_id: id.to_string(),
            visible_sites: v.visible_sites,
            order_site: v.order_site,
            stock_totals: v.stock_totals,
        }))
    }
}
