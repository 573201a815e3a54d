//! `access.v1.Access`: customers, invitations, access and access checks.

use super::convert::{self, fingerprint, rfc3339, site_rule_to_pb};
use super::status::to_status;
use super::{Shared, context};
use crate::app::{
    AccessAction, Command, CreateCustomerCommand, RequestResetCommand, UpdateContactCommand,
    UpdateCustomerCommand,
};
use crate::domain::policy::Staff;
use crate::domain::values::TenantId;
use crate::projections::{ContactRow, CustomerRow, SiteVisibility};
use access_proto::v1 as pb;
use access_proto::v1::access_server::Access;
use tonic::{Request, Response, Status};

/// The access service.
#[derive(Clone)]
pub struct AccessService(pub Shared);

fn contact_to_pb(row: ContactRow, now: i64) -> pb::Contact {
    let (last_email, last_email_state, last_email_error) = row.last_email_words();
    let kind = row.kind_word();
    let failed_logins = row.failed_logins.len() as u32;
    let locked_until = if row.locked_until_ms > now {
        rfc3339(row.locked_until_ms)
    } else {
        String::new()
    };
    pb::Contact {
        failed_logins,
        locked_until,
        status: row.status().into(),
        site_rule: Some(site_rule_to_pb(&row.site_rule)),
        contact_id: row.contact_id,
        customer_id: row.customer_id,
        email: row.email,
        invitation_id: row.invitation_id,
        username: row.username.unwrap_or_default(),
        kind: kind.into(),
        must_change_password: row.temporary,
        has_logged_in: row.logged_in,
        last_email,
        last_email_state: last_email_state.into(),
        last_email_error,
    }
}

pub(crate) fn customer_to_pb(row: &CustomerRow) -> pb::Customer {
    let kinds = row
        .documents
        .clone()
        .unwrap_or_else(|| access_catalogue::catalogue::DocumentKind::ALL.to_vec());
    pb::Customer {
        record: Some(convert::customer_record_to_pb(&row.record)),
        status: convert::status_to_pb(row.status) as i32,
        visible_documents: kinds
            .into_iter()
            .map(|k| convert::document_kind_to_pb(k) as i32)
            .collect(),
    }
}

impl AccessService {
    /// Runs a command of the caller's tenant; returns the outcome and tenant.
    async fn run<M: prost::Message + Clone, C: Command>(
        &self,
        request: &Request<M>,
        method: &str,
        request_id: crate::domain::values::RequestId,
        principal: super::auth::Principal,
        tenant: &TenantId,
        cmd: &C,
    ) -> Result<crate::app::Outcome<C::Reply>, Status> {
        let fp = fingerprint(method, request.get_ref(), |_| {});
        let ctx = context(
            request,
            request_id,
            fp,
            Some(tenant.clone()),
            principal.actor(),
        );
        self.0.app.execute(&ctx, cmd).await.map_err(to_status)
    }

    /// A customer of the tenant the caller may read, after `position`.
    async fn customer(
        &self,
        tenant: &TenantId,
        staff: &Staff,
        customer_id: &str,
        position: u64,
    ) -> Result<CustomerRow, Status> {
        self.0
            .app
            .customer(tenant, staff, customer_id, position)
            .await
            .map_err(to_status)
    }

    /// A contact of the tenant the caller may read, with its customer, after `position`.
    async fn contact(
        &self,
        tenant: &TenantId,
        staff: &Staff,
        contact_id: &str,
        position: u64,
    ) -> Result<(ContactRow, CustomerRow), Status> {
        self.0
            .app
            .contact(tenant, staff, contact_id, position)
            .await
            .map_err(to_status)
    }

    async fn change_access(
        &self,
        request: Request<pb::ContactCommand>,
        action: AccessAction,
        method: &str,
    ) -> Result<Response<pb::ContactReply>, Status> {
        let (principal, tenant, staff) = self.0.auth.staff(&request).await?;
        let (request_id, cmd) =
            convert::access(tenant.clone(), staff.clone(), action, request.get_ref())?;
        let outcome = self
            .run(&request, method, request_id, principal, &tenant, &cmd)
            .await?;
        let (contact, _) = self
            .contact(&tenant, &staff, &outcome.reply, outcome.position)
            .await?;
        Ok(Response::new(pb::ContactReply {
            position: outcome.position,
            contact: Some(contact_to_pb(contact, self.0.app.now_ms())),
        }))
    }

    async fn customer_reply(
        &self,
        tenant: &TenantId,
        staff: &Staff,
        customer_id: &str,
        position: u64,
    ) -> Result<Response<pb::CustomerReply>, Status> {
        let row = self.customer(tenant, staff, customer_id, position).await?;
        Ok(Response::new(pb::CustomerReply {
            position,
            customer: Some(customer_to_pb(&row)),
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
        let (principal, tenant, staff) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let (request_id, cmd) =
            convert::write_customer(tenant.clone(), staff, &r.request_id, &r.customer)?;
        let cmd = CreateCustomerCommand(cmd);
        let outcome = self
            .run(
                &request,
                "CreateCustomer",
                request_id,
                principal,
                &tenant,
                &cmd,
            )
            .await?;
        Ok(Response::new(pb::CreateCustomerReply {
            position: outcome.position,
            customer_id: outcome.reply,
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn update_customer(
        &self,
        request: Request<pb::UpdateCustomerRequest>,
    ) -> Result<Response<pb::CustomerReply>, Status> {
        let (principal, tenant, staff) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let (request_id, cmd) =
            convert::write_customer(tenant.clone(), staff.clone(), &r.request_id, &r.customer)?;
        let cmd = UpdateCustomerCommand(cmd);
        let outcome = self
            .run(
                &request,
                "UpdateCustomer",
                request_id,
                principal,
                &tenant,
                &cmd,
            )
            .await?;
        self.customer_reply(&tenant, &staff, &outcome.reply, outcome.position)
            .await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn set_customer_status(
        &self,
        request: Request<pb::SetCustomerStatusRequest>,
    ) -> Result<Response<pb::CustomerReply>, Status> {
        let (principal, tenant, staff) = self.0.auth.staff(&request).await?;
        let (request_id, cmd) =
            convert::set_status(tenant.clone(), staff.clone(), request.get_ref())?;
        let outcome = self
            .run(
                &request,
                "SetCustomerStatus",
                request_id,
                principal,
                &tenant,
                &cmd,
            )
            .await?;
        self.customer_reply(&tenant, &staff, &outcome.reply, outcome.position)
            .await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn set_document_visibility(
        &self,
        request: Request<pb::SetDocumentVisibilityRequest>,
    ) -> Result<Response<pb::CustomerReply>, Status> {
        let (principal, tenant, staff) = self.0.auth.staff(&request).await?;
        let (request_id, cmd) =
            convert::set_documents(tenant.clone(), staff.clone(), request.get_ref())?;
        let outcome = self
            .run(
                &request,
                "SetDocumentVisibility",
                request_id,
                principal,
                &tenant,
                &cmd,
            )
            .await?;
        self.customer_reply(&tenant, &staff, &outcome.reply, outcome.position)
            .await
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
        let (principal, tenant, staff) = self.0.auth.staff(&request).await?;
        let (request_id, cmd) = convert::invite(tenant.clone(), staff, request.get_ref())?;
        let outcome = self
            .run(
                &request,
                "InviteCustomer",
                request_id,
                principal,
                &tenant,
                &cmd,
            )
            .await?;
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
        let (principal, tenant, staff) = self.0.auth.staff(&request).await?;
        let (request_id, cmd) = convert::resend(tenant.clone(), staff, request.get_ref())?;
        let outcome = self
            .run(
                &request,
                "ResendInvitation",
                request_id,
                principal,
                &tenant,
                &cmd,
            )
            .await?;
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

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn unlock_login(
        &self,
        request: Request<pb::ContactCommand>,
    ) -> Result<Response<pb::ContactReply>, Status> {
        self.change_access(request, AccessAction::Unlock, "UnlockLogin")
            .await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn update_contact(
        &self,
        request: Request<pb::UpdateContactRequest>,
    ) -> Result<Response<pb::UpdateContactReply>, Status> {
        let (principal, tenant, staff) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let mut f = convert::Fields::default();
        let request_id = f.parse(
            "request_id",
            crate::domain::values::RequestId::parse(&r.request_id),
        );
        let contact_id = f.parse(
            "contact_id",
            crate::domain::values::GeneratedId::parse(&r.contact_id),
        );
        let email = if r.email.trim().is_empty() {
            Some(None)
        } else {
            f.parse("email", crate::domain::values::Email::parse(&r.email))
                .map(Some)
        };
        let username = if r.username.trim().is_empty() {
            Some(None)
        } else {
            f.parse(
                "username",
                crate::domain::values::Username::parse(&r.username),
            )
            .map(Some)
        };
        let (request_id, contact_id, email, username) =
            f.finish_with((request_id, contact_id, email, username))?;
        let cmd = UpdateContactCommand {
            tenant: tenant.clone(),
            by: staff.clone(),
            contact_id,
            email,
            username,
            send_access_email: r.send_access_email,
        };
        let outcome = self
            .run(
                &request,
                "UpdateContact",
                request_id,
                principal,
                &tenant,
                &cmd,
            )
            .await?;
        let (contact, _) = self
            .contact(&tenant, &staff, &outcome.reply.contact_id, outcome.position)
            .await?;
        Ok(Response::new(pb::UpdateContactReply {
            position: outcome.position,
            contact: Some(contact_to_pb(contact, self.0.app.now_ms())),
            email_sent: outcome
                .reply
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
        Ok(Response::new(contact_to_pb(contact, self.0.app.now_ms())))
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
        let (principal, tenant, staff) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let (request_id, cmd) = convert::add_portal_user(tenant.clone(), staff, r)?;
        let fp = fingerprint("AddPortalUser", r, |m| {
            m.request_id.clear();
            // Typed passwords stay out of the stored digest (only whether one was typed).
            for p in [&mut m.management_password, &mut m.staff_password] {
                if !p.is_empty() {
                    *p = "typed".into();
                }
            }
        });
        let ctx = context(
            &request,
            request_id,
            fp,
            Some(tenant.clone()),
            principal.actor(),
        );
        let outcome = self.0.app.execute(&ctx, &cmd).await.map_err(to_status)?;
        let shown = |p: &crate::app::TemporaryPassword, label: &str| {
            if p.generated() {
                p.text(&self.0.app, &tenant, &cmd.request_id, label)
            } else {
                String::new()
            }
        };
        let reply = outcome.reply;
        Ok(Response::new(pb::AddPortalUserReply {
            position: outcome.position,
            management_contact_id: reply.management_contact_id,
            management_username: reply.management_username,
            management_temporary_password: shown(&cmd.management_password, "management"),
            staff_contact_id: reply.staff_contact_id,
            staff_username: reply.staff_username,
            staff_temporary_password: shown(&cmd.staff_password, "staff"),
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn set_temporary_password(
        &self,
        request: Request<pb::SetTemporaryPasswordRequest>,
    ) -> Result<Response<pb::SetTemporaryPasswordReply>, Status> {
        let (principal, tenant, staff) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let (request_id, cmd) = convert::set_temporary_password(tenant.clone(), staff, r)?;
        let fp = fingerprint("SetTemporaryPassword", r, |m| {
            m.request_id.clear();
            if !m.password.is_empty() {
                m.password = "typed".into();
            }
        });
        let ctx = context(
            &request,
            request_id,
            fp,
            Some(tenant.clone()),
            principal.actor(),
        );
        let outcome = self.0.app.execute(&ctx, &cmd).await.map_err(to_status)?;
        Ok(Response::new(pb::SetTemporaryPasswordReply {
            position: outcome.position,
            temporary_password: if cmd.password.generated() {
                cmd.password
                    .text(&self.0.app, &tenant, &cmd.request_id, "temporary")
            } else {
                String::new()
            },
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn send_password_reset(
        &self,
        request: Request<pb::SendPasswordResetRequest>,
    ) -> Result<Response<pb::SendPasswordResetReply>, Status> {
        let (principal, tenant, staff) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let mut f = convert::Fields::default();
        let request_id = f.parse(
            "request_id",
            crate::domain::values::RequestId::parse(&r.request_id),
        );
        let contact_id = f.parse(
            "contact_id",
            crate::domain::values::GeneratedId::parse(&r.contact_id),
        );
        let (request_id, contact_id) = f.finish_with((request_id, contact_id))?;
        let cmd = RequestResetCommand {
            tenant: tenant.clone(),
            contact_id,
            by: Some(staff),
        };
        let outcome = self
            .run(
                &request,
                "SendPasswordReset",
                request_id,
                principal,
                &tenant,
                &cmd,
            )
            .await?;
        Ok(Response::new(pb::SendPasswordResetReply {
            position: outcome.position,
            email: outcome.reply.as_str().into(),
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
        let contact_id = match (r.contact_id.trim(), r.session_token.trim()) {
            (id, "") if !id.is_empty() => convert::contact_id(id)?.to_string(),
            ("", token) if !token.is_empty() => app
                .session(&tenant, token)
                .map(|claims| claims.contact_id)
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
        let (contact, _) = self
            .contact(&tenant, &staff, &contact_id, r.min_position)
            .await?;
        let decision = app
            .check(tenant.as_str(), &contact, &action)
            .map_err(to_status)?;
        let tenant_row = app.tenant(&tenant, 0).await.map_err(to_status)?;
        let visibility = SiteVisibility::resolve(&contact.site_rule, &tenant_row);
        Ok(Response::new(pb::CheckAccessReply {
            allowed: decision.allowed,
            reason: decision.reason.as_str().into(),
            message: decision.message,
            contact_id: contact.contact_id,
            customer_id: contact.customer_id,
            order_site: visibility.order_site,
        }))
    }
}
