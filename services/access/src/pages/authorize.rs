//! The OpenID Connect authorization endpoint, `/t/<tenant>/authorize`: the
//! sign-in page a portal sends its visitors to. A provider session (a
//! cookie for `/t/<tenant>/`) lets a returning contact through without the
//! password; a temporary password, a reset or an invitation finishes on the
//! pages that already exist and comes back here, with the request kept in
//! a cookie meanwhile.

use super::*;
use crate::app::{AuthorizationRequest, AuthorizeError, Prompt, SignedIn};
use axum::extract::RawQuery;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The provider session's cookie (its path is the tenant's issuer).
pub(super) const SESSION_COOKIE: &str = "op_session";
/// The cookie that keeps an authorization request while another page runs.
const PENDING_COOKIE: &str = "authz";
/// How long a kept authorization request waits, in seconds.
const PENDING_TTL_S: i64 = 15 * 60;
/// The longest authorization request taken.
const MAX_QUERY: usize = 4096;

fn see_other(to: &str, cookies: Vec<String>) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// The provider session's id: a digest of its token, the `sid` of the
/// tokens issued in it.
fn session_id(token: &str) -> String {
    hex::encode(&crate::secrets::sha256(token)[..16])
}

impl Pages {
    /// The contact and session id of the browser's provider session at
    /// `tenant`, if it has a genuine one.
    pub(super) fn provider_session(
        &self,
        tenant: &TenantId,
        headers: &HeaderMap,
    ) -> Option<(String, String)> {
        let (token, contact_id) = self.session_token(tenant, headers)?;
        Some((contact_id, session_id(&token)))
    }

    /// The `Set-Cookie` that ends the provider session in this browser.
    pub(super) fn clear_session_cookie(&self, tenant: &str) -> String {
        self.cookie(SESSION_COOKIE, "", &format!("/t/{tenant}/"), 0)
    }

    pub(super) fn session_cookie(&self, tenant: &str, token: &str) -> String {
        let ttl = self.app.settings().session_ttl.as_secs() as i64;
        self.cookie(SESSION_COOKIE, token, &format!("/t/{tenant}/"), ttl)
    }

    /// A cookie keeping the authorization request of `tenant` while the
    /// contact changes or resets a password.
    pub(super) fn pending_cookie(&self, tenant: &str, query: &str) -> String {
        let value = URL_SAFE_NO_PAD.encode(format!("{tenant}?{query}"));
        // Long enough for a reset mail to arrive; not so long that a request
        // planted in the browser waits for the contact's next password.
        self.cookie(PENDING_COOKIE, &value, "/", PENDING_TTL_S)
    }

    /// The origin of the client a kept authorization request of `tenant`
    /// answers to: a form on the way may lead there.
    pub(super) fn pending_client_origin(
        &self,
        headers: &HeaderMap,
        tenant: &str,
    ) -> Option<String> {
        let resume = self.pending_authorization(headers, tenant)?;
        let query = resume.split_once('?')?.1;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
        let (_, uri) = pairs.into_iter().find(|(k, _)| k == "redirect_uri")?;
        origin_of(&uri)
    }

    /// The authorization request kept for `tenant`, as the URL to resume it.
    pub(super) fn pending_authorization(
        &self,
        headers: &HeaderMap,
        tenant: &str,
    ) -> Option<String> {
        let value = cookies(headers).remove(PENDING_COOKIE)?;
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(value).ok()?).ok()?;
        let (kept, query) = text.split_once('?')?;
        (kept == tenant && query.len() <= MAX_QUERY)
            .then(|| format!("/t/{tenant}/authorize?{query}"))
    }

    /// After a password was set with a request pending: a provider session
    /// for the contact, and back to the request.
    pub(super) fn resume_authorization(
        &self,
        tenant: &str,
        token: &str,
        to: &str,
        mut cookies: Vec<String>,
    ) -> Response {
        cookies.push(self.session_cookie(tenant, token));
        cookies.push(self.cookie(PENDING_COOKIE, "", "/", 0));
        see_other(to, cookies)
    }

    pub(super) fn signin_form(
        &self,
        headers: &HeaderMap,
        req: &AuthorizationRequest,
        query: &str,
        status: StatusCode,
        login: &str,
        error: String,
    ) -> Response {
        let tenant_id = req.tenant.as_str();
        let Some(tenant) = self.tenant(tenant_id) else {
            return not_found_page(self).into_response();
        };
        let password = Field {
            name: "current",
            label: self.t("existing_password_label"),
            kind: "password",
            autocomplete: "current-password",
            ..Field::default()
        };
        let action = format!("/t/{tenant_id}/authorize?{query}");
        let mut page = self.form(
            status,
            (tenant_id, &tenant),
            "signin_title",
            self.tf(
                "signin_intro",
                &[
                    ("client", &req.client.settings.name),
                    ("tenant", &tenant.name),
                ],
            ),
            &action,
            self.passkey_field(&req.tenant, None)
                .into_iter()
                .chain([login_field(self, login, error), password])
                .collect(),
            false,
            "submit_signin",
            Some((format!("/forgot?tenant={tenant_id}"), self.t("forgot_link"))),
            headers,
            // Whatever page the contact takes from here (a forgotten
            // password, say), the request waits for them.
            vec![self.pending_cookie(tenant_id, query)],
        );
        // The answer to this form is a redirect to the client.
        page.form_origin = origin_of(&req.redirect_uri);
        page.into_response()
    }

    /// The second step of a sign-in: a code of the contact's app (or a
    /// recovery code), with the challenge the password earned.
    pub(super) fn second_factor_form(
        &self,
        headers: &HeaderMap,
        req: &AuthorizationRequest,
        query: &str,
        (status, challenge, error): (StatusCode, &str, String),
    ) -> Response {
        let tenant_id = req.tenant.as_str();
        let Some(tenant) = self.tenant(tenant_id) else {
            return not_found_page(self).into_response();
        };
        let hidden = Field {
            name: "challenge",
            kind: "hidden",
            value: challenge.to_owned(),
            ..Field::default()
        };
        let code = Field {
            name: "code",
            label: self.t("code_label"),
            kind: "text",
            autocomplete: "one-time-code",
            error,
            ..Field::default()
        };
        let action = format!("/t/{tenant_id}/authorize?{query}");
        let passkey = self.passkey_field(&req.tenant, Some(challenge));
        // An app's code is asked for where the contact has one and the
        // policy takes it.
        let has_app = self
            .app
            .verify_challenge_contact(tenant_id, challenge)
            .is_some_and(|contact| self.app.code_would_do(tenant_id, &contact));
        // A contact with passkeys only is asked for one, and for no code.
        let (intro, fields) = if has_app || passkey.is_none() {
            let fields = std::iter::once(hidden).chain(passkey).chain([code]);
            ("second_factor_intro", fields.collect::<Vec<_>>())
        } else {
            let fields = std::iter::once(hidden).chain(passkey);
            ("second_factor_passkey_intro", fields.collect())
        };
        let mut page = self.form(
            status,
            (tenant_id, &tenant),
            "second_factor_title",
            self.tf(intro, &[("tenant", &tenant.name)]),
            &action,
            fields,
            false,
            "submit_code",
            None,
            headers,
            vec![self.pending_cookie(tenant_id, query)],
        );
        page.form_origin = origin_of(&req.redirect_uri);
        page.into_response()
    }

    /// The contact is in: a code for the client, or the page that must come
    /// first (a temporary password to change), or the refusal.
    async fn let_in(
        &self,
        req: &AuthorizationRequest,
        query: &str,
        who: SignedIn,
        mut cookies: Vec<String>,
    ) -> Response {
        let tenant_id = req.tenant.as_str();
        let tenant = self.tenant(tenant_id);
        match self.app.may_sign_in(tenant_id, &who.contact_id) {
            Ok(Ok(_)) => {}
            Ok(Err(why)) => {
                let contact = self
                    .app
                    .contact_row(tenant_id, &who.contact_id)
                    .ok()
                    .flatten();
                // The client hears only that a sign-in is needed; why is
                // the contact's to read, on the page.
                if req.prompt == Prompt::None {
                    let url = self.app.authorization_error(
                        req,
                        "login_required",
                        "the contact must sign in",
                    );
                    return see_other(&url, cookies);
                }
                if contact.as_ref().is_some_and(|c| c.temporary) {
                    cookies.push(self.pending_cookie(tenant_id, query));
                    return see_other(&format!("/change-password?tenant={tenant_id}"), cookies);
                }
                let pending = contact.is_some_and(|c| {
                    c.lifecycle == crate::domain::contact::Lifecycle::PendingApproval
                });
                let (title, body) = if pending {
                    (
                        "pending_title",
                        self.tf(
                            "pending_wait_body",
                            &[("tenant", tenant.as_ref().map_or("", |t| t.name.as_str()))],
                        ),
                    )
                } else {
                    ("refused_title", sentence(&why))
                };
                return self
                    .message(
                        StatusCode::FORBIDDEN,
                        tenant.as_ref().map(|t| (tenant_id, t)),
                        title,
                        body,
                        None,
                        None,
                        cookies,
                    )
                    .into_response();
            }
            Err(e) => return failure(self, e),
        }
        match self.app.issue_code(req, &who).await {
            Ok(url) => {
                cookies.push(self.cookie(PENDING_COOKIE, "", "/", 0));
                see_other(&url, cookies)
            }
            Err(e) => failure(self, e),
        }
    }
}

/// The request, or the answer that ends it here.
fn checked(
    pages: &Pages,
    tenant: &str,
    query: &str,
) -> Result<AuthorizationRequest, Box<Response>> {
    if query.len() > MAX_QUERY {
        return Err(Box::new(bad_request(
            pages,
            "the sign-in request is too long",
        )));
    }
    pages.app.authorization_request(tenant, query).map_err(|e| {
        Box::new(match e {
            AuthorizeError::Show(words) => bad_request(pages, &words),
            AuthorizeError::Redirect { url } => see_other(&url, Vec::new()),
        })
    })
}

fn bad_request(pages: &Pages, words: &str) -> Response {
    pages
        .message(
            StatusCode::BAD_REQUEST,
            None,
            "authorize_error_title",
            sentence(words),
            None,
            None,
            Vec::new(),
        )
        .into_response()
}

pub(super) async fn authorize_page(
    State(pages): State<Shared>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Response {
    let query = query.unwrap_or_default();
    let req = match checked(&pages, &tenant, &query) {
        Ok(req) => req,
        Err(answer) => return *answer,
    };
    let session = cookies(&headers)
        .remove(SESSION_COOKIE)
        .and_then(|token| Some((pages.app.session(&req.tenant, &token)?, token)));
    let now_ms = pages.app.now_ms();
    let ttl_ms = pages.app.settings().session_ttl.as_millis() as i64;
    let usable = session.filter(|(claims, _)| {
        let auth_time_ms = claims.expires_at_ms - ttl_ms;
        req.prompt != Prompt::Login
            && req
                .max_age_s
                .is_none_or(|max| now_ms - auth_time_ms <= max.saturating_mul(1000))
            // A client that asks for a second factor gets a sign-in that
            // gave one.
            && (!req.wants_mfa || claims.amr.iter().any(|m| m == "mfa"))
    });
    match usable {
        Some((claims, token)) => {
            // Each silent sign-in records a grant: as limited per address
            // as any form.
            if !pages.admit(peer) {
                return pages.too_many().into_response();
            }
            let who = SignedIn {
                contact_id: claims.contact_id.clone(),
                auth_time_ms: claims.expires_at_ms - ttl_ms,
                session_id: session_id(&token),
                client_address: peer.map(|p| p.ip().to_string()).unwrap_or_default(),
                amr: claims.amr.clone(),
            };
            pages.let_in(&req, &query, who, Vec::new()).await
        }
        None if req.prompt == Prompt::None => see_other(
            &pages
                .app
                .authorization_error(&req, "login_required", "the contact is not signed in"),
            Vec::new(),
        ),
        None => {
            let hint = req.login_hint.clone();
            pages.signin_form(&headers, &req, &query, StatusCode::OK, &hint, String::new())
        }
    }
}

pub(super) async fn authorize_submit(
    State(pages): State<Shared>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    Peer(peer): Peer,
    headers: HeaderMap,
    StrictForm(form): StrictForm<LoginForm>,
) -> Response {
    let query = query.unwrap_or_default();
    let action = format!("/t/{tenant}/authorize?{query}");
    if let Some(refused) = pages.guard(peer, &headers, &action, &form.csrf) {
        return refused;
    }
    let req = match checked(&pages, &tenant, &query) {
        Ok(req) => req,
        Err(answer) => return *answer,
    };
    let again = |words: &str| {
        pages.signin_form(
            &headers,
            &req,
            &query,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form.login,
            pages.t(words),
        )
    };
    let address = peer.map(|p| p.ip().to_string()).unwrap_or_default();
    let enrolling = !form.passkey_registration.is_empty() || !form.enrolment_token.is_empty();
    if !form.challenge.is_empty() && enrolling {
        let on = (&headers, address);
        return super::enrol::enrol_submit(&pages, (&req, &query), &form, on).await;
    }
    if !form.credential.is_empty() {
        let on = (&headers, address);
        return super::passkeys::passkey_signin(&pages, &req, &query, &form, on).await;
    }
    if !form.challenge.is_empty() {
        let second = |words: &str| {
            let error = pages.t(words);
            let answer = (
                StatusCode::UNPROCESSABLE_ENTITY,
                form.challenge.as_str(),
                error,
            );
            pages.second_factor_form(&headers, &req, &query, answer)
        };
        if form.code.trim().is_empty() {
            return second("required");
        }
        let outcome = pages
            .app
            .complete_second_factor(req.tenant.as_str(), &form.challenge, &form.code, &address)
            .await;
        return match outcome {
            // The code was given where a passkey is required: one is added
            // now, before the portal.
            Ok(outcome) if outcome.second_factor_challenge.is_some() => {
                let challenge = outcome.second_factor_challenge.unwrap_or_default();
                let (status, words) = (StatusCode::OK, Default::default());
                let on = (&req, query.as_str());
                pages
                    .enrol_form(&headers, on, &challenge, status, words)
                    .await
            }
            Ok(outcome) => signed_in(&pages, &req, &query, outcome, address).await,
            Err(AppError::Domain(DomainError::TooManyAttempts { .. })) => second("throttled"),
            Err(AppError::Domain(DomainError::FailedPrecondition {
                reason: Reason::SecondFactorRequired,
                ..
            })) => second("passkey_required"),
            Err(AppError::Domain(DomainError::Unauthenticated {
                reason: Reason::BadCredentials,
                ..
            })) => second("wrong_code"),
            Err(AppError::Domain(DomainError::Unauthenticated { .. })) => pages.signin_form(
                &headers,
                &req,
                &query,
                StatusCode::UNPROCESSABLE_ENTITY,
                "",
                pages.t("second_factor_expired"),
            ),
            Err(AppError::Domain(
                DomainError::PermissionDenied { .. } | DomainError::FailedPrecondition { .. },
            )) => again("wrong_signin"),
            Err(e) => failure(&pages, e),
        };
    }
    if form.login.trim().is_empty() || form.current.is_empty() {
        return again("required");
    }
    let outcome = pages
        .app
        .login(
            req.tenant.as_str(),
            &form.login,
            form.current.clone(),
            &address,
        )
        .await;
    let outcome = match outcome {
        Ok(outcome) if outcome.second_factor_challenge.is_some() => {
            let challenge = outcome.second_factor_challenge.unwrap_or_default();
            if !pages.app.challenge_must_enrol(&challenge).is_empty() {
                let (status, words) = (StatusCode::OK, Default::default());
                let on = (&req, query.as_str());
                return pages
                    .enrol_form(&headers, on, &challenge, status, words)
                    .await;
            }
            let answer = (StatusCode::OK, challenge.as_str(), String::new());
            return pages.second_factor_form(&headers, &req, &query, answer);
        }
        // The client asked for more than the password: a contact without a
        // factor adds one now.
        Ok(outcome) if req.wants_mfa && !outcome.amr.iter().any(|m| m == "mfa") => {
            match pages
                .app
                .step_up_challenge(req.tenant.as_str(), &outcome.contact)
            {
                Some(challenge) => {
                    let (status, words) = (StatusCode::OK, Default::default());
                    let on = (&req, query.as_str());
                    return pages
                        .enrol_form(&headers, on, &challenge, status, words)
                        .await;
                }
                None => outcome,
            }
        }
        Ok(outcome) => outcome,
        Err(AppError::Domain(DomainError::TooManyAttempts { .. })) => return again("throttled"),
        Err(AppError::Domain(DomainError::Unauthenticated { .. })) => return again("wrong_signin"),
        // The password was right: the contact learns why they may not in.
        Err(AppError::Domain(
            DomainError::PermissionDenied { .. } | DomainError::FailedPrecondition { .. },
        )) => match pages.app.find_contact(req.tenant.as_str(), &form.login) {
            // A contact with a second factor learns nothing more from a
            // password alone, and never gets past this form with one.
            Ok(Some(contact))
                if !pages
                    .app
                    .second_factors(req.tenant.as_str(), &contact.contact_id)
                    .is_empty() =>
            {
                return again("signin_refused");
            }
            Ok(Some(contact)) => {
                let who = SignedIn {
                    contact_id: contact.contact_id,
                    auth_time_ms: pages.app.now_ms(),
                    session_id: String::new(),
                    client_address: address,
                    amr: vec!["pwd".into()],
                };
                return pages.let_in(&req, &query, who, Vec::new()).await;
            }
            _ => return again("wrong_signin"),
        },
        Err(e) => return failure(&pages, e),
    };
    signed_in(&pages, &req, &query, outcome, address).await
}

/// Lets a contact who proved who they are in: a provider session cookie,
/// and on to the client.
pub(super) async fn signed_in(
    pages: &Shared,
    req: &AuthorizationRequest,
    query: &str,
    outcome: crate::app::LoginOutcome,
    address: String,
) -> Response {
    let token = outcome.token;
    let who = SignedIn {
        contact_id: outcome.contact.contact_id,
        auth_time_ms: pages.app.now_ms(),
        session_id: session_id(&token),
        client_address: address,
        amr: outcome.amr,
    };
    let cookies = vec![pages.session_cookie(req.tenant.as_str(), &token)];
    pages.let_in(req, query, who, cookies).await
}
