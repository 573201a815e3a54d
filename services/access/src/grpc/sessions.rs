//! `access.v1.Sessions`: accepting an invitation and logging in.

use super::convert::{Fields, fingerprint, rfc3339};
use super::status::to_status;
use super::{Shared, context};
use crate::app::{Accept, AppError};
use crate::domain::DomainError;
use crate::domain::invitation::InvitationState;
use crate::domain::streams;
use crate::domain::values::{GeneratedId, RequestId, TenantId};
use access_events::Actor;
use access_proto::v1 as pb;
use access_proto::v1::sessions_server::Sessions;
use tonic::{Request, Response, Status};

/// The sessions service.
#[derive(Clone)]
pub struct SessionsService(pub Shared);

#[tonic::async_trait]
impl Sessions for SessionsService {
    /// Needs no API key: the link token is the credential.
    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn accept_invitation(
        &self,
        request: Request<pb::AcceptInvitationRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let app = &self.0.app;
        let r = request.get_ref();
        let mut f = Fields::default();
        let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
        let claims = f.parse(
            "token",
            app.links
                .verify_invitation(&r.token)
                .map_err(|_| "not a valid invitation link".to_owned()),
        );
        let password = f.parse(
            "password",
            if r.password.is_empty() {
                Err("a password is required".to_owned())
            } else {
                Ok(r.password.clone())
            },
        );
        f.finish()?;
        let (Some(request_id), Some(claims), Some(password)) = (request_id, claims, password)
        else {
            return Err(Status::internal("parse bookkeeping"));
        };
        let not_found = || to_status(DomainError::NotFound("invitation").into());
        let tenant = TenantId::parse(&claims.tenant).map_err(|_| not_found())?;
        let invitation_id = GeneratedId::parse(&claims.invitation_id).map_err(|_| not_found())?;
        // The contact the link belongs to is the actor of its acceptance.
        let events = app
            .log
            .read_stream(&streams::invitation(&tenant, &invitation_id))
            .await
            .map_err(|e| to_status(AppError::storage(e)))?;
        let mut invitation = InvitationState::default();
        for e in &events {
            let event = access_events::catalogue::Event::decode(e)
                .map_err(|e| to_status(AppError::storage(e)))?;
            invitation = crate::domain::Aggregate::evolve(invitation, &event);
        }
        if invitation.status.is_none() {
            return Err(not_found());
        }
        let fp = fingerprint("AcceptInvitation", r, |m| {
            m.request_id.clear();
            // The password stays out of the stored digest; a retry proves it again.
            m.password.clear();
        });
        let actor = Actor::Contact {
            contact_id: invitation.contact_id.clone(),
        };
        let ctx = context(&request, request_id, fp, Some(tenant), actor);
        let cmd = Accept {
            claims,
            password,
            hashed: Default::default(),
        };
        let outcome = app.execute(&ctx, &cmd).await.map_err(to_status)?;
        let s = outcome.reply;
        let (token, expires_at_ms) = app.open_session(&s.tenant, &s.contact_id, &s.identity_id);
        Ok(Response::new(pb::Session {
            position: outcome.position,
            session_token: token,
            expires_at: rfc3339(expires_at_ms),
            tenant_id: s.tenant,
            contact_id: s.contact_id,
            customer_id: s.customer_id,
            email: s.email,
        }))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let (_, tenant, staff) = self.0.auth.staff(&request).await?;
        staff.may_check_access().map_err(|e| to_status(e.into()))?;
        let r = request.get_ref();
        let mut f = Fields::default();
        f.parse(
            "email",
            if r.email.trim().is_empty() {
                Err("an email is required".to_owned())
            } else {
                Ok(())
            },
        );
        f.parse(
            "password",
            if r.password.is_empty() {
                Err("a password is required".to_owned())
            } else {
                Ok(())
            },
        );
        f.finish()?;
        let app = &self.0.app;
        let outcome = app
            .login(tenant.as_str(), &r.email, r.password.clone())
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::Session {
            position: *app.log.head().borrow(),
            session_token: outcome.token,
            expires_at: rfc3339(outcome.expires_at_ms),
            tenant_id: tenant.to_string(),
            contact_id: outcome.contact.contact_id,
            customer_id: outcome.contact.customer_id,
            email: outcome.contact.email,
        }))
    }
}
