//! `access.v1.Sessions`: accepting an invitation and logging in.

use super::convert::{Fields, fingerprint, rfc3339};
use super::status::to_status;
use super::{Shared, context};
use crate::app::ChangePasswordCommand;
use crate::domain::DomainError;
use crate::domain::values::{GeneratedId, Password, RequestId};
use access_proto::v1 as pb;
use access_proto::v1::sessions_server::Sessions;
use tonic::{Request, Response, Status};

/// The session a link opened: none yet for a contact waiting for approval.
async fn session_of(
    app: &crate::app::App,
    position: u64,
    s: crate::app::SessionSubject,
    given: &[String],
) -> Result<pb::Session, Status> {
    let opened = app
        .session_for(&s.tenant, &s.contact_id, position, given)
        .await
        .map_err(to_status)?;
    let email = app
        .contact_row(&s.tenant, &s.contact_id)
        .map_err(to_status)?
        .map(|c| c.email)
        .unwrap_or_default();
    let (mut pending_approval, mut second_factor_challenge) = (false, String::new());
    let (session_token, expires_at, must_change_password) = match opened {
        crate::app::Opened::Session {
            token,
            expires_at_ms,
            must_change_password,
        } => (token, rfc3339(expires_at_ms), must_change_password),
        crate::app::Opened::PendingApproval => {
            pending_approval = true;
            (String::new(), String::new(), false)
        }
        crate::app::Opened::SecondFactor(challenge) => {
            second_factor_challenge = challenge;
            (String::new(), String::new(), false)
        }
    };
    Ok(pb::Session {
        position,
        session_token,
        expires_at,
        tenant_id: s.tenant,
        contact_id: s.contact_id,
        customer_id: s.customer_id,
        email,
        must_change_password,
        pending_approval,
        second_factor_enrolment: app.challenge_must_enrol(&second_factor_challenge),
        second_factor_challenge,
    })
}

/// The answer to a login: a session, or (with a second factor to come) the
/// challenge for its second step and no token.
pub(super) fn login_session(
    app: &crate::app::App,
    tenant: &str,
    outcome: crate::app::LoginOutcome,
) -> pb::Session {
    // A password alone says nothing of who signed in: a portal that reads
    // only the contact's id must not take it for a login.
    if let Some(challenge) = outcome.second_factor_challenge {
        return pb::Session {
            position: app.head(),
            tenant_id: tenant.to_owned(),
            second_factor_enrolment: app.challenge_must_enrol(&challenge),
            second_factor_challenge: challenge,
            ..pb::Session::default()
        };
    }
    pb::Session {
        position: app.head(),
        session_token: outcome.token,
        expires_at: rfc3339(outcome.expires_at_ms),
        tenant_id: tenant.to_owned(),
        contact_id: outcome.contact.contact_id,
        customer_id: outcome.contact.customer_id,
        email: outcome.contact.email,
        must_change_password: outcome.must_change_password,
        pending_approval: false,
        second_factor_challenge: String::new(),
        second_factor_enrolment: String::new(),
    }
}

/// The sessions service.
#[derive(Clone)]
pub struct SessionsService(pub Shared);

#[tonic::async_trait]
impl Sessions for SessionsService {
    /// The portal's backend, with its tenant key, redeems a code from the pages.
    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn exchange_login_code(
        &self,
        request: Request<pb::ExchangeLoginCodeRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let (_, tenant, staff) = self.0.auth.staff(&request).await?;
        staff.may_check_access().map_err(|e| to_status(e.into()))?;
        let app = &self.0.app;
        let (session_token, expires_at_ms, must_change_password, contact_id) = app
            .exchange_login_code(&tenant, &request.get_ref().code)
            .await
            .map_err(to_status)?;
        let contact = app
            .contact_row(tenant.as_str(), &contact_id)
            .map_err(to_status)?
            .ok_or_else(|| to_status(DomainError::NotFound("contact").into()))?;
        Ok(Response::new(pb::Session {
            position: app.head(),
            session_token,
            expires_at: rfc3339(expires_at_ms),
            tenant_id: tenant.to_string(),
            contact_id,
            customer_id: contact.customer_id,
            email: contact.email,
            must_change_password,
            pending_approval: false,
            second_factor_challenge: String::new(),
            second_factor_enrolment: String::new(),
        }))
    }

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
            app.invitation_link(&r.token)
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
        let (request_id, claims, password) = f.finish_with((request_id, claims, password))?;
        let fp = fingerprint("AcceptInvitation", r, |m| {
            m.request_id.clear();
            // The password stays out of the stored digest; a retry proves it again.
            m.password.clear();
        });
        let outcome = app
            .accept_invitation(
                claims,
                password,
                request_id,
                fp,
                super::correlation_id(&request),
                // The gRPC caller is the link's holder; its address is unknown.
                "",
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(
            session_of(app, outcome.position, outcome.reply, &[]).await?,
        ))
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
            "login",
            if r.login.trim().is_empty() {
                Err("an email or username is required".to_owned())
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
            .login(
                tenant.as_str(),
                &r.login,
                r.password.clone(),
                r.client_address.trim(),
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(login_session(app, tenant.as_str(), outcome)))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn complete_second_factor(
        &self,
        request: Request<pb::CompleteSecondFactorRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        super::factors::complete(&self.0, request).await
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn begin_totp_enrolment(
        &self,
        request: Request<pb::BeginTotpEnrolmentRequest>,
    ) -> Result<Response<pb::TotpEnrolment>, Status> {
        super::factors::begin(&self.0, request).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn confirm_totp_enrolment(
        &self,
        request: Request<pb::ConfirmTotpEnrolmentRequest>,
    ) -> Result<Response<pb::ConfirmTotpEnrolmentReply>, Status> {
        super::factors::confirm(&self.0, request).await
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn begin_passkey_registration(
        &self,
        request: Request<pb::BeginPasskeyRegistrationRequest>,
    ) -> Result<Response<pb::PasskeyCeremony>, Status> {
        super::passkeys::begin_registration(&self.0, request).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn finish_passkey_registration(
        &self,
        request: Request<pb::FinishPasskeyRegistrationRequest>,
    ) -> Result<Response<pb::FinishPasskeyRegistrationReply>, Status> {
        super::passkeys::finish_registration(&self.0, request).await
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn begin_passkey_login(
        &self,
        request: Request<pb::BeginPasskeyLoginRequest>,
    ) -> Result<Response<pb::PasskeyCeremony>, Status> {
        super::passkeys::begin_login(&self.0, request).await
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn finish_passkey_login(
        &self,
        request: Request<pb::FinishPasskeyLoginRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        super::passkeys::finish_login(&self.0, request).await
    }

    /// Answers at once and the same way for every login name; the reset (if
    /// the login exists) is appended in the background, so neither the words
    /// nor the time of the answer tell whether it exists.
    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn request_password_reset(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Result<Response<pb::RequestPasswordResetReply>, Status> {
        let (_, tenant, staff) = self.0.auth.staff(&request).await?;
        staff.may_check_access().map_err(|e| to_status(e.into()))?;
        let r = request.get_ref();
        let mut f = Fields::default();
        let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
        f.parse(
            "login",
            if r.login.trim().is_empty() {
                Err("an email or username is required".to_owned())
            } else {
                Ok(())
            },
        );
        let request_id = f.finish_with((request_id,))?.0;
        self.0.app.forgot_password(
            tenant,
            r.login.clone(),
            request_id,
            super::correlation_id(&request),
        );
        Ok(Response::new(pb::RequestPasswordResetReply {
            message:
                "If this login exists and has an email, a link to set a new password is on its way."
                    .into(),
        }))
    }

    /// Needs no API key: the link token is the credential.
    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn reset_password(
        &self,
        request: Request<pb::ResetPasswordRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let app = &self.0.app;
        let r = request.get_ref();
        let mut f = Fields::default();
        let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
        let claims = f.parse(
            "token",
            app.reset_link(&r.token)
                .map_err(|_| "not a valid password-reset link".to_owned()),
        );
        let new = f.parse("new_password", Password::parse(&r.new_password));
        let (request_id, claims, new) = f.finish_with((request_id, claims, new))?;
        let fp = fingerprint("ResetPassword", r, |m| {
            m.request_id.clear();
            m.new_password.clear();
        });
        let outcome = app
            .reset_with_link(claims, new, request_id, fp, super::correlation_id(&request))
            .await
            .map_err(to_status)?;
        Ok(Response::new(
            session_of(app, outcome.position, outcome.reply, &[]).await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let (principal, tenant, staff) = self.0.auth.staff(&request).await?;
        staff.may_check_access().map_err(|e| to_status(e.into()))?;
        let app = &self.0.app;
        let r = request.get_ref();
        let mut f = Fields::default();
        let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
        let claims = f.parse(
            "session_token",
            app.session(&tenant, &r.session_token)
                .ok_or_else(|| "not a valid session, or it has expired".to_owned()),
        );
        let new = f.parse("new_password", Password::parse(&r.new_password));
        let (request_id, claims, new) = f.finish_with((request_id, claims, new))?;
        let contact_id =
            GeneratedId::parse(&claims.contact_id).map_err(|_| super::status::session_invalid())?;
        let fp = fingerprint("ChangePassword", r, |m| {
            m.request_id.clear();
            // Passwords stay out of the stored digest; a retry proves the new one.
            m.current_password.clear();
            m.new_password.clear();
            m.session_token.clear();
        });
        // One contact's retry must never answer another's request.
        let fp = crate::secrets::sha256(&format!("{}:{}", hex::encode(fp), contact_id));
        let ctx = context(
            &request,
            request_id,
            fp,
            Some(tenant.clone()),
            principal.actor(),
        );
        let cmd = ChangePasswordCommand {
            tenant: tenant.clone(),
            contact_id: contact_id.clone(),
            current: r.current_password.clone(),
            new,
            hash: Default::default(),
        };
        let outcome = app.execute(&ctx, &cmd).await.map_err(to_status)?;
        let subject = crate::app::SessionSubject {
            tenant: tenant.to_string(),
            contact_id: contact_id.to_string(),
            customer_id: String::new(),
            email: String::new(),
            identity_id: String::new(),
            pending_approval: false,
        };
        // The new session proved what the changing one did.
        let mut session = session_of(app, outcome.position, subject, &claims.amr).await?;
        if let Some(contact) = app
            .contact_row(tenant.as_str(), contact_id.as_str())
            .map_err(to_status)?
        {
            session.customer_id = contact.customer_id;
            session.email = contact.email;
        }
        Ok(Response::new(session))
    }
}
