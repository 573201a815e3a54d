//! `access.v1.Access`: customers, invitations, access and access checks.
//!
//! Each command RPC is one call of [`AccessService::command`] with its
//! parser from `convert`, then the reply built from the outcome.

use super::Shared;
use super::convert::{self, rfc3339};
use super::status::to_status;
use super::views::{contact_to_pb, customer_to_pb};
use crate::app::{AccessAction, Command, CreateCustomerCommand, Outcome, UpdateCustomerCommand};
use crate::domain::policy::Staff;
use crate::domain::values::{RequestId, TenantId};
use crate::projections::{ContactRow, CustomerRow, SiteVisibility};
use access_proto::v1 as pb;
use access_proto::v1::access_server::Access;
use tonic::{Request, Response, Status};

/// The access service.
#[derive(Clone)]
pub struct AccessService(pub Shared);

/// A staff command that ran: its outcome, and who asked.
struct Ran<R> {
    outcome: Outcome<R>,
    tenant: TenantId,
    staff: Staff,
}

impl AccessService {
    /// What every staff command does: the caller's key, the message parsed
    /// into a command, the message's fingerprint under `method`, the run.
    async fn command<M, C>(
        &self,
        request: &Request<M>,
        method: &'static str,
        parse: impl FnOnce(TenantId, Staff, &M) -> Result<(RequestId, C), Status>,
    ) -> Result<Ran<C::Reply>, Status>
    where
        M: prost::Message + Clone,
        C: Command,
    {
        let c = self.0.staff_command(request, method, |_| {}, parse).await?;
        let outcome = self
            .0
            .app
            .execute(&c.ctx, &c.cmd)
            .await
            .map_err(to_status)?;
        Ok(Ran {
            outcome,
            tenant: c.tenant,
            staff: c.staff,
        })
    }

    /// A customer of the tenant the caller may read, after `position`.
    async fn customer(
        &self,
        tenant: &TenantId,
        staff: &Staff,
        customer_id: &str,
        position: u64,
    ) -> Result<CustomerRow, Status> {
        let app = &self.0.app;
        let found = app.customer(tenant, staff, customer_id, position).await;
        found.map_err(to_status)
    }

    /// A contact of the tenant the caller may read, with its customer, after `position`.
    async fn contact(
        &self,
        tenant: &TenantId,
        staff: &Staff,
        contact_id: &str,
        position: u64,
    ) -> Result<(ContactRow, CustomerRow), Status> {
        let app = &self.0.app;
        let found = app.contact(tenant, staff, contact_id, position).await;
        found.map_err(to_status)
    }

    /// The reply of a command that changed a customer: the customer as written.
    async fn customer_reply(
        &self,
        ran: Ran<String>,
    ) -> Result<Response<pb::CustomerReply>, Status> {
        let position = ran.outcome.position;
        let row = self
            .customer(&ran.tenant, &ran.staff, &ran.outcome.reply, position)
            .await?;
        Ok(Response::new(pb::CustomerReply {
            position,
            customer: Some(customer_to_pb(&row)),
        }))
    }

    /// The reply of a command that changed a contact: the contact as written.
    async fn contact_reply(&self, ran: Ran<String>) -> Result<Response<pb::ContactReply>, Status> {
        let position = ran.outcome.position;
        let (contact, _) = self
            .contact(&ran.tenant, &ran.staff, &ran.outcome.reply, position)
            .await?;
        Ok(Response::new(pb::ContactReply {
            position,
            contact: Some(contact_to_pb(contact, self.0.app.now_ms())),
        }))
    }

    async fn change_access(
        &self,
        request: Request<pb::ContactCommand>,
        action: AccessAction,
        method: &'static str,
    ) -> Result<Response<pb::ContactReply>, Status> {
        let ran = self
            .command(&request, method, |t, s, r| convert::access(t, s, action, r))
            .await?;
        self.contact_reply(ran).await
    }
}

#[tonic::async_trait]
impl Access for AccessService {
    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn create_customer(
        &self,
        request: Request<pb::CreateCustomerRequest>,
    ) -> Result<Response<pb::CreateCustomerReply>, Status> {
        let ran = self
            .command(&request, "CreateCustomer", |t, s, r| {
                convert::write_customer(t, s, &r.request_id, &r.customer)
                    .map(|(id, cmd)| (id, CreateCustomerCommand(cmd)))
            })
            .await?;
        Ok(Response::new(pb::CreateCustomerReply {
            position: ran.outcome.position,
            customer_id: ran.outcome.reply,
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn update_customer(
        &self,
        request: Request<pb::UpdateCustomerRequest>,
    ) -> Result<Response<pb::CustomerReply>, Status> {
        let ran = self
            .command(&request, "UpdateCustomer", |t, s, r| {
                convert::write_customer(t, s, &r.request_id, &r.customer)
                    .map(|(id, cmd)| (id, UpdateCustomerCommand(cmd)))
            })
            .await?;
        self.customer_reply(ran).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn set_customer_status(
        &self,
        request: Request<pb::SetCustomerStatusRequest>,
    ) -> Result<Response<pb::CustomerReply>, Status> {
        let ran = self
            .command(&request, "SetCustomerStatus", convert::set_status)
            .await?;
        self.customer_reply(ran).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn set_document_visibility(
        &self,
        request: Request<pb::SetDocumentVisibilityRequest>,
    ) -> Result<Response<pb::CustomerReply>, Status> {
        let ran = self
            .command(&request, "SetDocumentVisibility", convert::set_documents)
            .await?;
        self.customer_reply(ran).await
    }

    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        let (_, tenant, staff) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let row = self
            .customer(&tenant, &staff, r.customer_id.trim(), r.min_position)
            .await?;
        Ok(Response::new(customer_to_pb(&row)))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn invite_customer(
        &self,
        request: Request<pb::InviteCustomerRequest>,
    ) -> Result<Response<pb::InviteCustomerReply>, Status> {
        let ran = self
            .command(&request, "InviteCustomer", convert::invite)
            .await?;
        let (position, reply) = (ran.outcome.position, ran.outcome.reply);
        Ok(Response::new(pb::InviteCustomerReply {
            position,
            contact_id: reply.contact_id,
            invitation_id: reply.invitation_id,
            expires_at: rfc3339(reply.expires_at_ms),
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn resend_invitation(
        &self,
        request: Request<pb::ResendInvitationRequest>,
    ) -> Result<Response<pb::ResendInvitationReply>, Status> {
        let ran = self
            .command(&request, "ResendInvitation", convert::resend)
            .await?;
        let (position, reply) = (ran.outcome.position, ran.outcome.reply);
        Ok(Response::new(pb::ResendInvitationReply {
            position,
            invitation_id: reply.invitation_id,
            expires_at: rfc3339(reply.expires_at_ms),
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

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn unlock_login(
        &self,
        request: Request<pb::ContactCommand>,
    ) -> Result<Response<pb::ContactReply>, Status> {
        self.change_access(request, AccessAction::Unlock, "UnlockLogin")
            .await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn reset_second_factors(
        &self,
        request: Request<pb::ContactCommand>,
    ) -> Result<Response<pb::ContactReply>, Status> {
        self.change_access(
            request,
            AccessAction::ResetSecondFactors,
            "ResetSecondFactors",
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn remove_second_factor(
        &self,
        request: Request<pb::RemoveSecondFactorRequest>,
    ) -> Result<Response<pb::ContactReply>, Status> {
        let ran = self
            .command(
                &request,
                "RemoveSecondFactor",
                convert::remove_second_factor,
            )
            .await?;
        self.contact_reply(ran).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn update_contact(
        &self,
        request: Request<pb::UpdateContactRequest>,
    ) -> Result<Response<pb::UpdateContactReply>, Status> {
        let ran = self
            .command(&request, "UpdateContact", convert::update_contact)
            .await?;
        let (position, reply) = (ran.outcome.position, ran.outcome.reply);
        let (contact, _) = self
            .contact(&ran.tenant, &ran.staff, &reply.contact_id, position)
            .await?;
        Ok(Response::new(pb::UpdateContactReply {
            position,
            contact: Some(contact_to_pb(contact, self.0.app.now_ms())),
            email_sent: reply
                .sent
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn approve_user(
        &self,
        request: Request<pb::ContactCommand>,
    ) -> Result<Response<pb::ContactReply>, Status> {
        self.change_access(request, AccessAction::Approve, "ApproveUser")
            .await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn reject_user(
        &self,
        request: Request<pb::ContactCommand>,
    ) -> Result<Response<pb::ContactReply>, Status> {
        self.change_access(request, AccessAction::Reject, "RejectUser")
            .await
    }

    async fn get_contact(
        &self,
        request: Request<pb::GetContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        let (_, tenant, staff) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let id = convert::contact_id(&r.contact_id)?;
        let (contact, _) = self
            .contact(&tenant, &staff, id.as_str(), r.min_position)
            .await?;
        let factors = self
            .0
            .app
            .second_factors(tenant.as_str(), &contact.contact_id);
        let mut contact = contact_to_pb(contact, self.0.app.now_ms());
        contact.second_factors = factors
            .into_iter()
            .map(|f| pb::SecondFactor {
                factor_id: f.factor_id.into(),
                kind: f.kind.as_str().into(),
                name: f.name.into(),
            })
            .collect();
        Ok(Response::new(contact))
    }

    async fn get_site_visibility(
        &self,
        request: Request<pb::GetSiteVisibilityRequest>,
    ) -> Result<Response<pb::SiteVisibility>, Status> {
        let (_, tenant, staff) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let id = convert::contact_id(&r.contact_id)?;
        let (contact, _) = self
            .contact(&tenant, &staff, id.as_str(), r.min_position)
            .await?;
        let tenant_row = self.0.app.tenant(&tenant, 0).await.map_err(to_status)?;
        let v = SiteVisibility::resolve(&contact.site_rule, &tenant_row);
        Ok(Response::new(pb::SiteVisibility {
            contact_id: id.to_string(),
            visible_sites: v.visible_sites,
            order_site: v.order_site,
            stock_totals: v.stock_totals,
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn add_portal_user(
        &self,
        request: Request<pb::AddPortalUserRequest>,
    ) -> Result<Response<pb::AddPortalUserReply>, Status> {
        super::logins::add_portal_user(&self.0, request).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn set_temporary_password(
        &self,
        request: Request<pb::SetTemporaryPasswordRequest>,
    ) -> Result<Response<pb::SetTemporaryPasswordReply>, Status> {
        super::logins::set_temporary_password(&self.0, request).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn send_password_reset(
        &self,
        request: Request<pb::SendPasswordResetRequest>,
    ) -> Result<Response<pb::SendPasswordResetReply>, Status> {
        let ran = self
            .command(&request, "SendPasswordReset", convert::send_password_reset)
            .await?;
        Ok(Response::new(pb::SendPasswordResetReply {
            position: ran.outcome.position,
            email: ran.outcome.reply.as_str().into(),
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn create_portal_link(
        &self,
        request: Request<pb::CreatePortalLinkRequest>,
    ) -> Result<Response<pb::CreatePortalLinkReply>, Status> {
        super::portal_links::create(&self.0, request).await
    }

    async fn resolve_portal_link(
        &self,
        request: Request<pb::ResolvePortalLinkRequest>,
    ) -> Result<Response<pb::ResolvePortalLinkReply>, Status> {
        super::portal_links::resolve(&self.0, request).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn delete_portal_link(
        &self,
        request: Request<pb::DeletePortalLinkRequest>,
    ) -> Result<Response<pb::DeletePortalLinkReply>, Status> {
        super::portal_links::delete(&self.0, request).await
    }

    async fn list_access(
        &self,
        request: Request<pb::ListAccessRequest>,
    ) -> Result<Response<pb::ListAccessReply>, Status> {
        super::reports::list_access(&self.0, request).await
    }

    async fn list_customers_without_login(
        &self,
        request: Request<pb::ListCustomersRequest>,
    ) -> Result<Response<pb::ListCustomersReply>, Status> {
        super::reports::customers_without_login(&self.0, request).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn bulk_invite(
        &self,
        request: Request<pb::BulkInviteRequest>,
    ) -> Result<Response<pb::BulkInviteReply>, Status> {
        super::reports::bulk_invite(&self.0, request).await
    }

    async fn billable_users(
        &self,
        request: Request<pb::BillableUsersRequest>,
    ) -> Result<Response<pb::BillableUsersReply>, Status> {
        super::reports::billable_users(&self.0, request).await
    }

    async fn check_access(
        &self,
        request: Request<pb::CheckAccessRequest>,
    ) -> Result<Response<pb::CheckAccessReply>, Status> {
        let (_, tenant, staff) = self.0.auth.staff(&request).await?;
        staff.may_check_access().map_err(|e| to_status(e.into()))?;
        let r = request.get_ref();
        let action = convert::action(r)?;
        let app = &self.0.app;
        let (contact_id, amr) = match (r.contact_id.trim(), r.session_token.trim()) {
            (id, "") if !id.is_empty() => (convert::contact_id(id)?.to_string(), Vec::new()),
            ("", token) if !token.is_empty() => app
                .session(&tenant, token)
                .map(|claims| (claims.contact_id, claims.amr))
                .ok_or_else(super::status::session_invalid)?,
            _ => {
                let mut f = convert::Fields::default();
                f.parse::<()>(
                    "contact_id",
                    Err("give a contact id or a session token, not both".into()),
                );
                return Err(f.finish().err().unwrap_or_else(super::status::internal));
            }
        };
        let answer = app
            .check_access(&tenant, &staff, &contact_id, &action, r.min_position)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CheckAccessReply {
            allowed: answer.decision.allowed,
            reason: answer.decision.reason.as_str().into(),
            message: answer.decision.message,
            contact_id,
            customer_id: answer.customer_id,
            order_site: answer.order_site,
            acr: crate::app::acr_of(&amr).into(),
            amr,
        }))
    }
}
