//! Enrolling a factor inside a sign-in: when the tenant or customer
//! requires one the contact has not enrolled, the right password leads to
//! this page instead of the portal. It adds a passkey (or, where any factor
//! will do, an authenticator app) with the password's challenge, and the
//! sign-in goes on with the factor just added.

use super::authorize::signed_in;
use super::fields::{LoginForm, fresh_request};
use super::{Pages, Shared, failure, not_found_page};
use crate::app::{AppError, AuthorizationRequest, CommandContext, Enroller, LoginOutcome};
use crate::domain::values::TenantId;
use crate::domain::{DomainError, Reason};
use access_catalogue::Actor;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::context;

impl Pages {
    /// The page: a passkey to add, and an app where any factor will do;
    /// `totp_error` and `passkey_note` say why the last try failed.
    pub(super) async fn enrol_form(
        &self,
        headers: &HeaderMap,
        (req, query): (&AuthorizationRequest, &str),
        challenge: &str,
        status: StatusCode,
        (totp_error, passkey_note): (String, String),
    ) -> Response {
        let tenant = &req.tenant;
        let Some(row) = self.tenant(tenant.as_str()) else {
            return not_found_page(self).into_response();
        };
        let must = self.app.challenge_must_enrol(challenge);
        if must.is_empty() {
            return self.signin_form(
                headers,
                req,
                query,
                StatusCode::UNPROCESSABLE_ENTITY,
                "",
                self.t("second_factor_expired"),
            );
        }
        let start = if must == "any" {
            self.app
                .begin_totp_enrolment(tenant, Enroller::Challenge(challenge))
                .ok()
        } else {
            None
        };
        let passkey = self
            .app
            .begin_passkey_registration(tenant, Enroller::Challenge(challenge))
            .await
            .ok()
            .map(|c| super::render::Field {
                name: "passkey_registration",
                label: self.t("passkey_add"),
                kind: "passkey",
                value: c.ceremony_token,
                data: c.options_json,
                ..Default::default()
            });
        let action = format!("/t/{tenant}/authorize?{query}");
        let (csrf_cookie, set) = self.csrf_cookie(headers);
        let mut cookies: Vec<String> = set.into_iter().collect();
        cookies.push(self.pending_cookie(tenant.as_str(), query));
        let intro = if must == "passkey" {
            "enrol_passkey_intro"
        } else {
            "enrol_any_intro"
        };
        let mut page = self.render(
            "security.html",
            status,
            context! {
                t => &self.strings,
                title => self.t("enrol_title"),
                intro => self.tf(intro, &[("tenant", &row.name)]),
                tenant_id => tenant.as_str(),
                tenant_name => &row.name,
                logo_url => &row.branding.logo_url,
                challenge => challenge,
                has_totp => false,
                offer_totp => start.is_some(),
                qr => start.as_ref().map(|s| super::security::qr_svg(&s.uri)),
                secret => start.as_ref().map(|s| s.secret.clone()),
                token => start.as_ref().map(|s| s.enrolment_token.clone()),
                action => &action,
                csrf => self.csrf(&csrf_cookie, &action),
                error => totp_error,
                passkey => passkey,
                passkey_action => &action,
                passkey_csrf => self.csrf(&csrf_cookie, &action),
                passkey_note => passkey_note,
            },
            cookies,
        );
        page.form_origin = super::render::origin_of(&req.redirect_uri);
        page.into_response()
    }
}

/// A fresh command of the contact a challenge is for.
fn context_for(pages: &Pages, tenant: &TenantId, challenge: &str) -> Option<CommandContext> {
    let contact_id = pages
        .app
        .verify_challenge_contact(tenant.as_str(), challenge)?;
    let (request_id, fingerprint) = fresh_request()?;
    Some(CommandContext {
        request_id,
        fingerprint,
        tenant: Some(tenant.clone()),
        actor: Actor::Contact { contact_id },
        correlation_id: uuid::Uuid::new_v4(),
    })
}

/// The enrolment page answered: a passkey registered or an app confirmed
/// with the challenge, and the sign-in goes on.
pub(super) async fn enrol_submit(
    pages: &Shared,
    (req, query): (&AuthorizationRequest, &str),
    form: &LoginForm,
    (headers, address): (&HeaderMap, String),
) -> Response {
    let tenant = &req.tenant;
    let who = Enroller::Challenge(&form.challenge);
    let again = async |words: (String, String)| {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        pages
            .enrol_form(headers, (req, query), &form.challenge, status, words)
            .await
    };
    let Some(ctx) = context_for(pages, tenant, &form.challenge) else {
        return again((String::new(), pages.t("second_factor_expired"))).await;
    };
    if !form.passkey_registration.is_empty() {
        let registered = pages
            .app
            .finish_passkey_registration(
                &ctx,
                tenant,
                (who, &form.passkey_registration),
                &form.credential,
                &form.name,
            )
            .await;
        return match registered {
            Ok(outcome) => match outcome.reply.1 {
                Some(session) => signed_in(pages, req, query, session, address).await,
                None => failure(pages, AppError::Internal(anyhow::anyhow!("no session"))),
            },
            Err(e) => match refusal(pages, &e) {
                Some(words) => again((String::new(), words)).await,
                None => failure(pages, e),
            },
        };
    }
    let confirmed = pages
        .app
        .confirm_totp_enrolment(&ctx, tenant, who, &form.enrolment_token, &form.code)
        .await;
    match confirmed {
        Ok(outcome) => {
            let (codes, session) = outcome.reply;
            match session {
                Some(session) => codes_then_on(pages, (req, query), codes, session),
                None => failure(pages, AppError::Internal(anyhow::anyhow!("no session"))),
            }
        }
        Err(AppError::Domain(DomainError::Invalid(_))) => {
            again((pages.t("wrong_code"), String::new())).await
        }
        Err(e) => match refusal(pages, &e) {
            Some(words) => again((words, String::new())).await,
            None => failure(pages, e),
        },
    }
}

/// The words for an enrolment refused, or `None` when it is no one's doing.
fn refusal(pages: &Pages, e: &AppError) -> Option<String> {
    Some(pages.t(match e {
        AppError::Domain(DomainError::Invalid(v)) if v.iter().any(|f| f.field == "name") => {
            "passkey_name_needed"
        }
        AppError::Domain(DomainError::Invalid(_)) => "passkey_failed",
        AppError::Domain(DomainError::Unauthenticated { .. }) => "second_factor_expired",
        AppError::Domain(DomainError::FailedPrecondition {
            reason: Reason::SecondFactorRequired,
            ..
        }) => "enrol_passkey_needed",
        AppError::Domain(DomainError::PermissionDenied { .. }) => "signin_refused",
        _ => return None,
    }))
}

/// The recovery codes of the app just added, once, with the way on: the
/// provider session is set, and the sign-in resumes from its request.
fn codes_then_on(
    pages: &Shared,
    (req, query): (&AuthorizationRequest, &str),
    codes: Vec<String>,
    session: LoginOutcome,
) -> Response {
    let tenant = req.tenant.as_str();
    let Some(row) = pages.tenant(tenant) else {
        return not_found_page(pages).into_response();
    };
    pages
        .render(
            "security.html",
            StatusCode::OK,
            context! {
                t => &pages.strings,
                title => pages.t("security_title"),
                tenant_id => tenant,
                tenant_name => &row.name,
                logo_url => &row.branding.logo_url,
                codes => codes,
                continue_url => format!("/t/{tenant}/authorize?{query}"),
            },
            vec![pages.session_cookie(tenant, &session.token)],
        )
        .into_response()
}
