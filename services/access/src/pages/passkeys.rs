//! Passkeys on the pages: the button of a sign-in form (alone, or as the
//! second step after a password) and registering one on the security page.
//! The browser's part is in `app.js`; a browser without WebAuthn never
//! shows the button, and the forms work as before.

use super::fields::{LoginForm, fresh_request};
use super::render::Field;
use super::{Pages, Shared, failure, not_found_page};
use crate::app::{AppError, AuthorizationRequest, CommandContext, Enroller};
use crate::domain::values::{GeneratedId, TenantId};
use crate::domain::{DomainError, Reason};
use access_catalogue::Actor;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

impl Pages {
    /// The passkey button of a sign-in form, where one may be used.
    pub(super) fn passkey_field(
        &self,
        tenant: &TenantId,
        challenge: Option<&str>,
    ) -> Option<Field> {
        let offer = self.app.passkey_offer(tenant, challenge)?;
        Some(Field {
            name: "passkey_token",
            label: self.t(if challenge.is_some() {
                "passkey_second"
            } else {
                "passkey_signin"
            }),
            kind: "passkey",
            value: offer.ceremony_token,
            data: offer.options_json,
            ..Field::default()
        })
    }

    /// The passkey registration of the security page, where passkeys are
    /// offered.
    pub(super) async fn passkey_registration(
        &self,
        tenant: &TenantId,
        session: &str,
    ) -> Option<Field> {
        let started = self
            .app
            .begin_passkey_registration(tenant, Enroller::Session(session))
            .await
            .ok()?;
        Some(Field {
            name: "passkey_registration",
            label: self.t("passkey_add"),
            kind: "passkey",
            value: started.ceremony_token,
            data: started.options_json,
            ..Field::default()
        })
    }
}

/// A sign-in form answered with a passkey: in, or the form again and why.
pub(super) async fn passkey_signin(
    pages: &Shared,
    req: &AuthorizationRequest,
    query: &str,
    form: &LoginForm,
    (headers, address): (&HeaderMap, String),
) -> Response {
    let outcome = pages
        .app
        .finish_passkey_login(&req.tenant, &form.passkey_token, &form.credential, &address)
        .await;
    let words = match outcome {
        Ok(outcome) => {
            return super::authorize::signed_in(pages, req, query, outcome, address).await;
        }
        Err(AppError::Domain(DomainError::TooManyAttempts { .. })) => "throttled",
        Err(AppError::Domain(DomainError::Unauthenticated {
            reason: Reason::BadCredentials,
            ..
        })) => "passkey_refused",
        Err(AppError::Domain(DomainError::Unauthenticated { .. })) => "passkey_expired",
        Err(AppError::Domain(DomainError::Invalid(_))) => "passkey_refused",
        Err(AppError::Domain(
            DomainError::PermissionDenied { .. } | DomainError::FailedPrecondition { .. },
        )) => "signin_refused",
        Err(e) => return failure(pages, e),
    };
    // A passkey given as the second step: that step again, not the password.
    if !form.challenge.is_empty() && words != "passkey_expired" {
        let answer = (
            StatusCode::UNPROCESSABLE_ENTITY,
            form.challenge.as_str(),
            pages.t(words),
        );
        return pages.second_factor_form(headers, req, query, answer);
    }
    pages.signin_form(
        headers,
        req,
        query,
        StatusCode::UNPROCESSABLE_ENTITY,
        "",
        pages.t(words),
    )
}

/// The security page's passkey form: the browser's answer recorded under
/// the name the contact gave, or the page again and why.
pub(super) async fn register(
    pages: &Shared,
    tenant: &TenantId,
    headers: &HeaderMap,
    form: &super::security::PasskeyForm,
) -> Response {
    let Some((session, contact_id)) = pages.session_token(tenant, headers) else {
        return pages
            .security_page(tenant, headers, StatusCode::OK, Default::default())
            .await;
    };
    let (Ok(contact), Some((request_id, fingerprint))) =
        (GeneratedId::parse(&contact_id), fresh_request())
    else {
        return not_found_page(pages).into_response();
    };
    let ctx = CommandContext {
        request_id,
        fingerprint,
        tenant: Some(tenant.clone()),
        actor: Actor::Contact {
            contact_id: contact.to_string(),
        },
        correlation_id: uuid::Uuid::new_v4(),
    };
    let registered = pages
        .app
        .finish_passkey_registration(
            &ctx,
            tenant,
            (Enroller::Session(&session), &form.passkey_registration),
            &form.credential,
            &form.name,
        )
        .await;
    let error = match registered {
        // A session from the password alone ends with the first factor:
        // the next sign-in is with it.
        Ok(_) if pages.session_token(tenant, headers).is_none() => {
            let row = pages.tenant(tenant.as_str());
            return pages
                .message(
                    StatusCode::OK,
                    row.as_ref().map(|r| (tenant.as_str(), r)),
                    "security_title",
                    pages.t("passkey_added_signin"),
                    None,
                    None,
                    Vec::new(),
                )
                .into_response();
        }
        Ok(_) => pages.t("passkey_added"),
        Err(AppError::Domain(DomainError::Invalid(v))) if v.iter().any(|f| f.field == "name") => {
            pages.t("passkey_name_needed")
        }
        Err(AppError::Domain(DomainError::FailedPrecondition {
            reason: Reason::LimitReached,
            ..
        })) => pages.t("passkey_limit"),
        Err(AppError::Domain(DomainError::Invalid(_) | DomainError::Unauthenticated { .. })) => {
            pages.t("passkey_failed")
        }
        Err(e) => return failure(pages, e),
    };
    pages
        .security_page(tenant, headers, StatusCode::OK, (String::new(), error))
        .await
}
