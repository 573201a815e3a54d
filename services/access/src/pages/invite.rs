//! The invitation page: a password set (or an existing one given) from the
//! emailed link, then the hand-off to the portal.

use super::*;

/// The claims of the invitation link in the cookie, if genuine.
pub(super) fn invite_claims(pages: &Pages, headers: &HeaderMap) -> Option<LinkClaims> {
    let token = cookies(headers).remove(INVITE_COOKIE)?;
    pages.app.invitation_link(&token).ok()
}

pub(super) async fn link_problem(
    pages: &Pages,
    headers: &HeaderMap,
    claims: Option<&LinkClaims>,
    state: Option<LinkState>,
) -> Page {
    let tenant = claims.and_then(|c| pages.tenant(&c.tenant).map(|t| (c.tenant.clone(), t)));
    let name = tenant
        .as_ref()
        .map(|(_, t)| t.name.clone())
        .unwrap_or_default();
    let (title, body, renew) = match state {
        Some(LinkState::Expired) => ("expired_title", pages.t("expired_body"), true),
        Some(LinkState::Superseded) => ("superseded_title", pages.t("superseded_body"), true),
        Some(LinkState::Used) => ("used_title", pages.t("used_body"), false),
        Some(LinkState::Withdrawn) => (
            "withdrawn_title",
            pages.tf("withdrawn_body", &[("tenant", &name)]),
            false,
        ),
        _ => ("unknown_title", pages.t("unknown_body"), false),
    };
    let (csrf_cookie, set) = pages.csrf_cookie(headers);
    let button = renew.then(|| {
        (
            "/invite/renew",
            pages.t("renew_button"),
            pages.csrf(&csrf_cookie, "/invite/renew"),
        )
    });
    pages.message(
        StatusCode::GONE,
        tenant.as_ref().map(|(id, t)| (id.as_str(), t)),
        title,
        body,
        button,
        None,
        set.into_iter().collect(),
    )
}

pub(super) async fn invite_page(State(pages): State<Shared>, headers: HeaderMap) -> Response {
    let Some(claims) = invite_claims(&pages, &headers) else {
        return link_problem(&pages, &headers, None, None)
            .await
            .into_response();
    };
    invite_form(&pages, &headers, &claims, StatusCode::OK, String::new()).await
}

pub(super) async fn invite_form(
    pages: &Pages,
    headers: &HeaderMap,
    claims: &LinkClaims,
    status: StatusCode,
    error: String,
) -> Response {
    let view = match pages.app.invitation_view(claims).await {
        Ok(view) => view,
        Err(_) => {
            return link_problem(pages, headers, Some(claims), None)
                .await
                .into_response();
        }
    };
    if view.state != LinkState::Usable {
        return link_problem(pages, headers, Some(claims), Some(view.state))
            .await
            .into_response();
    }
    let name = view.tenant.name.clone();
    let (title, intro, submit) = if view.has_password {
        (
            "continue_title",
            pages.tf(
                "continue_intro",
                &[("tenant", &name), ("email", &view.email)],
            ),
            "submit_continue",
        )
    } else {
        (
            "invite_title",
            pages.tf("invite_intro", &[("tenant", &name), ("email", &view.email)]),
            "submit_set",
        )
    };
    pages
        .form(
            status,
            (&view.tenant_id, &view.tenant),
            title,
            intro,
            "/invite",
            vec![
                email_field(pages, &view.email),
                password_field(pages, view.has_password, error),
            ],
            !view.has_password,
            submit,
            None,
            headers,
            Vec::new(),
        )
        .into_response()
}

pub(super) async fn invite_submit(
    State(pages): State<Shared>,
    Peer(peer): Peer,
    headers: HeaderMap,
    StrictForm(form): StrictForm<PasswordForm>,
) -> Response {
    if let Some(refused) = pages.guard(peer, &headers, "/invite", &form.csrf) {
        return refused;
    }
    let Some(claims) = invite_claims(&pages, &headers) else {
        return link_problem(&pages, &headers, None, None)
            .await
            .into_response();
    };
    if form.password.is_empty() {
        return invite_form(
            &pages,
            &headers,
            &claims,
            StatusCode::UNPROCESSABLE_ENTITY,
            pages.t("required"),
        )
        .await;
    }
    let Some((request_id, fingerprint)) = fresh_request() else {
        return not_found_page(&pages).into_response();
    };
    let tenant = claims.tenant.clone();
    match pages
        .app
        .accept_invitation(
            claims.clone(),
            form.password,
            request_id,
            fingerprint,
            uuid::Uuid::new_v4(),
            &peer.map(|p| p.ip().to_string()).unwrap_or_default(),
        )
        .await
    {
        Ok(outcome) => {
            let done = pages.cookie(INVITE_COOKIE, "", "/invite", 0);
            let reply = outcome.reply;
            pages
                .finished(
                    &headers,
                    outcome.position,
                    &tenant,
                    &reply.contact_id,
                    reply.pending_approval,
                    vec![done],
                )
                .await
        }
        Err(e) => match (password_error(&pages, &e), link_state_of(&e)) {
            (Some(words), _) => {
                invite_form(
                    &pages,
                    &headers,
                    &claims,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    words,
                )
                .await
            }
            (None, Some(state)) => link_problem(&pages, &headers, Some(&claims), Some(state))
                .await
                .into_response(),
            (None, None) => failure(&pages, e),
        },
    }
}

pub(super) async fn invite_renew(
    State(pages): State<Shared>,
    Peer(peer): Peer,
    headers: HeaderMap,
    StrictForm(form): StrictForm<CsrfForm>,
) -> Response {
    if let Some(refused) = pages.guard(peer, &headers, "/invite/renew", &form.csrf) {
        return refused;
    }
    let claims = invite_claims(&pages, &headers);
    if let Some(claims) = &claims {
        pages.app.renew_invitation(claims).await;
    }
    let tenant = claims
        .as_ref()
        .and_then(|c| pages.tenant(&c.tenant).map(|t| (c.tenant.clone(), t)));
    pages
        .message(
            StatusCode::OK,
            tenant.as_ref().map(|(id, t)| (id.as_str(), t)),
            "renew_sent_title",
            pages.t("renew_sent_body"),
            None,
            None,
            vec![pages.cookie(INVITE_COOKIE, "", "/invite", 0)],
        )
        .into_response()
}
