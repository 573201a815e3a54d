//! The reset page: a new password from an emailed reset or welcome link.

use super::*;

pub(super) fn reset_claims(pages: &Pages, headers: &HeaderMap) -> Option<LinkClaims> {
    let token = cookies(headers).remove(RESET_COOKIE)?;
    pages.app.reset_link(&token).ok()
}

pub(super) async fn reset_problem(pages: &Pages, claims: Option<&LinkClaims>) -> Response {
    let tenant = claims.and_then(|c| pages.tenant(&c.tenant).map(|t| (c.tenant.clone(), t)));
    let after = tenant
        .as_ref()
        .map(|(id, _)| (format!("/forgot?tenant={id}"), pages.t("forgot_link")));
    pages
        .message(
            StatusCode::GONE,
            tenant.as_ref().map(|(id, t)| (id.as_str(), t)),
            "reset_problem_title",
            pages.t("reset_problem_body"),
            None,
            after,
            Vec::new(),
        )
        .into_response()
}

pub(super) async fn reset_form(
    pages: &Pages,
    headers: &HeaderMap,
    claims: &LinkClaims,
    status: StatusCode,
    error: String,
) -> Response {
    let (Ok(tenant_id), Ok(contact_id)) = (
        TenantId::parse(&claims.tenant),
        GeneratedId::parse(&claims.subject_id),
    ) else {
        return reset_problem(pages, Some(claims)).await;
    };
    let (Some(tenant), Ok(Some(contact))) = (
        pages.tenant(tenant_id.as_str()),
        pages
            .app
            .contact_row(tenant_id.as_str(), contact_id.as_str()),
    ) else {
        return reset_problem(pages, Some(claims)).await;
    };
    let name = tenant.name.clone();
    pages
        .form(
            status,
            (tenant_id.as_str(), &tenant),
            "reset_title",
            pages.tf(
                "reset_intro",
                &[("tenant", &name), ("email", &contact.email)],
            ),
            "/reset",
            vec![
                email_field(pages, &contact.email),
                password_field(pages, false, error),
            ],
            true,
            "submit_set",
            None,
            headers,
            Vec::new(),
        )
        .into_response()
}

pub(super) async fn reset_page(State(pages): State<Shared>, headers: HeaderMap) -> Response {
    match reset_claims(&pages, &headers) {
        Some(claims) => reset_form(&pages, &headers, &claims, StatusCode::OK, String::new()).await,
        None => reset_problem(&pages, None).await,
    }
}

pub(super) async fn reset_submit(
    State(pages): State<Shared>,
    Peer(peer): Peer,
    headers: HeaderMap,
    StrictForm(form): StrictForm<PasswordForm>,
) -> Response {
    if let Some(refused) = pages.guard(peer, &headers, "/reset", &form.csrf) {
        return refused;
    }
    let Some(claims) = reset_claims(&pages, &headers) else {
        return reset_problem(&pages, None).await;
    };
    let new = match Password::parse(&form.password) {
        Ok(p) => p,
        Err(words) => {
            let words = if form.password.is_empty() {
                pages.t("required")
            } else {
                sentence(&words)
            };
            return reset_form(
                &pages,
                &headers,
                &claims,
                StatusCode::UNPROCESSABLE_ENTITY,
                words,
            )
            .await;
        }
    };
    let Some((request_id, fingerprint)) = fresh_request() else {
        return not_found_page(&pages).into_response();
    };
    let tenant = claims.tenant.clone();
    match pages
        .app
        .reset_with_link(
            claims.clone(),
            new,
            request_id,
            fingerprint,
            uuid::Uuid::new_v4(),
        )
        .await
    {
        Ok(outcome) => {
            let done = pages.cookie(RESET_COOKIE, "", "/reset", 0);
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
                reset_form(
                    &pages,
                    &headers,
                    &claims,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    words,
                )
                .await
            }
            (None, Some(_)) => reset_problem(&pages, Some(&claims)).await,
            (None, None) => failure(&pages, e),
        },
    }
}
