//! The fields and forms the flows share, and how an error becomes what a
//! contact reads.

use super::*;

pub(super) fn password_field(pages: &Pages, existing: bool, error: String) -> Field {
    Field {
        name: "password",
        label: pages.t(if existing {
            "existing_password_label"
        } else {
            "password_label"
        }),
        kind: "password",
        autocomplete: if existing {
            "current-password"
        } else {
            "new-password"
        },
        checked: !existing,
        error,
        ..Field::default()
    }
}

pub(super) fn email_field(pages: &Pages, email: &str) -> Field {
    Field {
        name: "email",
        label: pages.t("email_label"),
        kind: "email",
        autocomplete: "username",
        value: email.to_owned(),
        readonly: true,
        ..Field::default()
    }
}

#[derive(Deserialize)]
pub(super) struct PasswordForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) password: String,
}

pub(super) fn fresh_request() -> Option<(RequestId, [u8; 32])> {
    let id = uuid::Uuid::now_v7().to_string();
    Some((RequestId::parse(&id).ok()?, crate::secrets::sha256(&id)))
}

/// The words for a refused password, or `None` if the refusal is about the link.
pub(super) fn password_error(pages: &Pages, e: &AppError) -> Option<String> {
    match e {
        AppError::Domain(DomainError::Invalid(v)) => Some(
            v.iter()
                .map(|v| sentence(&v.description))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        AppError::Domain(DomainError::Unauthenticated { .. }) => Some(pages.t("wrong_existing")),
        AppError::Domain(DomainError::TooManyAttempts { .. }) => Some(pages.t("throttled")),
        _ => None,
    }
}

/// A rule's words as a sentence: capital first, full stop last.
pub(super) fn sentence(words: &str) -> String {
    let mut chars = words.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

pub(super) fn link_state_of(e: &AppError) -> Option<LinkState> {
    match e {
        AppError::Domain(DomainError::FailedPrecondition { reason, .. }) => match reason {
            Reason::LinkExpired => Some(LinkState::Expired),
            Reason::LinkUsed => Some(LinkState::Used),
            Reason::LinkSuperseded => Some(LinkState::Superseded),
            _ => Some(LinkState::Withdrawn),
        },
        _ => None,
    }
}

/// An unexpected failure: logged, and a plain page.
pub(super) fn failure(pages: &Pages, e: AppError) -> Response {
    let (status, words) = match e {
        AppError::Unavailable(_) | AppError::Behind(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
        AppError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "failure"),
        AppError::Domain(DomainError::NotFound(_)) => return not_found_page(pages).into_response(),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "failure"),
    };
    tracing::warn!(error = %e, "a page could not do what was asked");
    pages
        .message(
            status,
            None,
            &format!("{words}_title"),
            pages.t(&format!("{words}_body")),
            None,
            None,
            Vec::new(),
        )
        .into_response()
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    pub(super) csrf: String,
}

#[derive(Deserialize)]
pub(super) struct TenantQuery {
    #[serde(default)]
    pub(super) tenant: String,
}

pub(super) fn login_field(pages: &Pages, value: &str, error: String) -> Field {
    Field {
        name: "login",
        label: pages.t("login_label"),
        kind: "text",
        autocomplete: "username",
        value: value.to_owned(),
        error,
        ..Field::default()
    }
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) login: String,
    #[serde(default)]
    pub(super) current: String,
    #[serde(default)]
    pub(super) password: String,
    /// The second step of a sign-in: the challenge the password earned...
    #[serde(default)]
    pub(super) challenge: String,
    /// ...and a code of the contact's authenticator app, or a recovery code.
    #[serde(default)]
    pub(super) code: String,
    /// A passkey sign-in: the ceremony's token...
    #[serde(default)]
    pub(super) passkey_token: String,
    /// ...and the browser's answer (WebAuthn's JSON form).
    #[serde(default)]
    pub(super) credential: String,
    /// Enrolling in the sign-in: an app's enrolment (with `code`)...
    #[serde(default)]
    pub(super) enrolment_token: String,
    /// ...or a passkey's registration (with `credential` and `name`).
    #[serde(default)]
    pub(super) passkey_registration: String,
    /// What the contact calls the passkey.
    #[serde(default)]
    pub(super) name: String,
}
