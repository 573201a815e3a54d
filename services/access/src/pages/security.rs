//! The contact's security page (`/t/<tenant>/security`), while signed in to
//! the provider: adding a passkey, and adding an authenticator app (its key
//! as a QR code and as text, the first code, and then the recovery codes,
//! once).

use super::failure;
use super::fields::fresh_request;
use super::guard::cookies;
use super::{Peer, Shared, StrictForm, not_found_page};
use crate::app::{AppError, CommandContext};
use crate::domain::DomainError;
use crate::domain::values::{GeneratedId, TenantId};
use crate::projections::FactorKind;
use access_catalogue::Actor;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;

#[derive(Deserialize)]
pub(super) struct EnrolForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    enrolment_token: String,
    #[serde(default)]
    code: String,
}

/// The security page's passkey form.
#[derive(Deserialize)]
pub(super) struct PasskeyForm {
    #[serde(default)]
    pub(super) csrf: String,
    /// What the contact calls the passkey.
    #[serde(default)]
    pub(super) name: String,
    /// The ceremony's token.
    #[serde(default)]
    pub(super) passkey_registration: String,
    /// The browser's answer.
    #[serde(default)]
    pub(super) credential: String,
}

/// An `otpauth://` URI as an inline SVG QR code (no image request, nothing
/// for a content policy to refuse).
pub(super) fn qr_svg(uri: &str) -> String {
    let Ok(code) = qrcode::QrCode::new(uri.as_bytes()) else {
        return String::new();
    };
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    // The XML declaration has no place inside HTML.
    match svg.find("<svg") {
        Some(start) => svg[start..].to_owned(),
        None => String::new(),
    }
}

impl super::Pages {
    /// The session token of the provider session in this browser, if
    /// valid, and its contact.
    pub(super) fn session_token(
        &self,
        tenant: &TenantId,
        headers: &HeaderMap,
    ) -> Option<(String, String)> {
        let token = cookies(headers).remove(super::authorize::SESSION_COOKIE)?;
        let claims = self.app.session(tenant, &token)?;
        Some((token, claims.contact_id))
    }

    /// The page: the contact's passkeys and a button to add one, and an
    /// authenticator app to add where there is none. `totp_error` says why
    /// a code was refused; `passkey_note` how the last passkey went.
    pub(super) async fn security_page(
        &self,
        tenant: &TenantId,
        headers: &HeaderMap,
        status: StatusCode,
        (totp_error, passkey_note): (String, String),
    ) -> Response {
        let Some(row) = self.tenant(tenant.as_str()) else {
            return not_found_page(self).into_response();
        };
        let Some((token, contact_id)) = self.session_token(tenant, headers) else {
            return self
                .message(
                    StatusCode::OK,
                    Some((tenant.as_str(), &row)),
                    "security_title",
                    self.t("signin_first"),
                    None,
                    None,
                    Vec::new(),
                )
                .into_response();
        };
        // Adding a factor takes a recent sign-in, not a session left open.
        if !self
            .app
            .session(tenant, &token)
            .is_some_and(|claims| self.app.fresh_enough(&claims))
        {
            return self
                .message(
                    StatusCode::OK,
                    Some((tenant.as_str(), &row)),
                    "security_title",
                    self.t("signin_recent"),
                    None,
                    None,
                    Vec::new(),
                )
                .into_response();
        }
        let factors = self.app.second_factors(tenant.as_str(), &contact_id);
        let passkeys: Vec<String> = factors
            .iter()
            .filter(|f| f.kind == FactorKind::Passkey)
            .map(|f| f.name.to_string())
            .collect();
        let has_totp = factors.iter().any(|f| f.kind == FactorKind::Totp);
        let start = if has_totp {
            None
        } else {
            match self
                .app
                .begin_totp_enrolment(tenant, crate::app::Enroller::Session(&token))
            {
                Ok(start) => Some(start),
                Err(e) => return failure(self, e),
            }
        };
        let passkey = self.passkey_registration(tenant, &token).await;
        let at_limit = passkeys.len() >= crate::domain::passkeys::MAX_PASSKEYS;
        let passkey_note = if at_limit && passkey_note.is_empty() {
            self.t("passkey_limit")
        } else {
            passkey_note
        };
        let action = format!("/t/{tenant}/security");
        let passkey_action = format!("/t/{tenant}/security/passkey");
        let (csrf_cookie, set) = self.csrf_cookie(headers);
        self.render(
            "security.html",
            status,
            context! {
                t => &self.strings,
                title => self.t("security_title"),
                tenant_id => tenant.as_str(),
                tenant_name => &row.name,
                logo_url => &row.branding.logo_url,
                has_totp => has_totp,
                offer_totp => start.is_some(),
                qr => start.as_ref().map(|s| qr_svg(&s.uri)),
                secret => start.as_ref().map(|s| s.secret.clone()),
                token => start.as_ref().map(|s| s.enrolment_token.clone()),
                action => &action,
                csrf => self.csrf(&csrf_cookie, &action),
                error => totp_error,
                passkeys => passkeys,
                passkey => passkey,
                passkey_action => &passkey_action,
                passkey_csrf => self.csrf(&csrf_cookie, &passkey_action),
                passkey_note => passkey_note,
            },
            set.into_iter().collect(),
        )
        .into_response()
    }
}

pub(super) async fn security_page(
    State(pages): State<Shared>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Ok(tenant) = TenantId::parse(&tenant) else {
        return not_found_page(&pages).into_response();
    };
    pages
        .security_page(&tenant, &headers, StatusCode::OK, Default::default())
        .await
}

/// The security page's passkey form.
pub(super) async fn passkey_submit(
    State(pages): State<Shared>,
    Path(tenant): Path<String>,
    Peer(peer): Peer,
    headers: HeaderMap,
    StrictForm(form): StrictForm<PasskeyForm>,
) -> Response {
    let Ok(tenant) = TenantId::parse(&tenant) else {
        return not_found_page(&pages).into_response();
    };
    let action = format!("/t/{tenant}/security/passkey");
    if let Some(refused) = pages.guard(peer, &headers, &action, &form.csrf) {
        return refused;
    }
    super::passkeys::register(&pages, &tenant, &headers, &form).await
}

pub(super) async fn security_submit(
    State(pages): State<Shared>,
    Path(tenant): Path<String>,
    Peer(peer): Peer,
    headers: HeaderMap,
    StrictForm(form): StrictForm<EnrolForm>,
) -> Response {
    let Ok(tenant) = TenantId::parse(&tenant) else {
        return not_found_page(&pages).into_response();
    };
    let action = format!("/t/{tenant}/security");
    if let Some(refused) = pages.guard(peer, &headers, &action, &form.csrf) {
        return refused;
    }
    let Some((token, contact_id)) = pages.session_token(&tenant, &headers) else {
        return pages
            .security_page(&tenant, &headers, StatusCode::OK, Default::default())
            .await;
    };
    let (Ok(contact), Some((request_id, fingerprint))) =
        (GeneratedId::parse(&contact_id), fresh_request())
    else {
        return not_found_page(&pages).into_response();
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
    let confirmed = pages
        .app
        .confirm_totp_enrolment(
            &ctx,
            &tenant,
            crate::app::Enroller::Session(&token),
            &form.enrolment_token,
            &form.code,
        )
        .await;
    match confirmed {
        Ok(outcome) => {
            let Some(row) = pages.tenant(tenant.as_str()) else {
                return not_found_page(&pages).into_response();
            };
            pages
                .render(
                    "security.html",
                    StatusCode::OK,
                    context! {
                        t => &pages.strings,
                        title => pages.t("security_title"),
                        tenant_id => tenant.as_str(),
                        tenant_name => &row.name,
                        logo_url => &row.branding.logo_url,
                        codes => outcome.reply.0,
                    },
                    Vec::new(),
                )
                .into_response()
        }
        // A wrong or late code: a fresh key to scan, and why.
        Err(AppError::Domain(DomainError::Invalid(_))) => {
            pages
                .security_page(
                    &tenant,
                    &headers,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    (pages.t("wrong_code"), String::new()),
                )
                .await
        }
        Err(e) => failure(&pages, e),
    }
}
