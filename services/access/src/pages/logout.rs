//! Signing out of the provider, `/t/<tenant>/logout` (OpenID Connect
//! RP-Initiated Logout 1.0): the provider session's cookie goes, the
//! session's live grants end and their clients are told over the back
//! channel; then back to the client's registered post-logout URI, or a
//! page that says it is done. Without an ID token of this very session
//! the contact is asked first, so no other site can sign them out.

use super::*;
use crate::app::IdTokenHint;
use axum::extract::RawQuery;

/// What a sign-out request asks, checked.
struct SignOut {
    /// The session the ID token names, when it is the browser's own.
    hint: Option<IdTokenHint>,
    /// Where to go afterwards, when registered for the token's client.
    redirect: Option<String>,
}

fn parse(pages: &Pages, tenant: &TenantId, query: &str, headers: &HeaderMap) -> SignOut {
    let params: HashMap<String, String> =
        serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .unwrap_or_default()
            .into_iter()
            .collect();
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let hint = get("id_token_hint")
        .and_then(|t| pages.app.id_token_hint(tenant.as_str(), t).ok().flatten())
        .filter(|h| get("client_id").is_none_or(|c| c == h.client_id));
    let redirect = match (&hint, get("post_logout_redirect_uri")) {
        (Some(h), Some(uri)) => pages
            .app
            .oidc_client_now(tenant.as_str(), &h.client_id)
            .ok()
            .flatten()
            .filter(|c| {
                c.settings
                    .post_logout_redirect_uris
                    .iter()
                    .any(|r| r == uri)
            })
            .map(|_| match get("state") {
                Some(state) => crate::app::with_query(uri, &[("state", state)]),
                None => uri.to_owned(),
            }),
        _ => None,
    };
    // The hint counts only for the session this browser is in.
    let own = pages.provider_session(tenant, headers);
    let hint = hint.filter(|h| {
        own.as_ref()
            .is_some_and(|(contact, sid)| *contact == h.contact_id && *sid == h.session_id)
    });
    SignOut { hint, redirect }
}

impl Pages {
    async fn sign_out(
        &self,
        tenant: &TenantId,
        headers: &HeaderMap,
        redirect: Option<String>,
    ) -> Response {
        if let Some((contact, sid)) = self.provider_session(tenant, headers)
            && let Err(e) = self.app.end_session(tenant.as_str(), &contact, &sid).await
        {
            return failure(self, e);
        }
        let cleared = self.clear_session_cookie(tenant.as_str());
        match redirect {
            Some(to) => {
                let mut response =
                    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
                if let Ok(v) = HeaderValue::from_str(&cleared) {
                    response.headers_mut().append(header::SET_COOKIE, v);
                }
                response
            }
            None => {
                let row = self.tenant(tenant.as_str());
                self.message(
                    StatusCode::OK,
                    row.as_ref().map(|t| (tenant.as_str(), t)),
                    "signed_out_title",
                    self.t("signed_out_body"),
                    None,
                    None,
                    vec![cleared],
                )
                .into_response()
            }
        }
    }
}

pub(super) async fn logout_page(
    State(pages): State<Shared>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (Ok(tenant), Some(row)) = (TenantId::parse(&tenant), pages.tenant(&tenant)) else {
        return not_found_page(&pages).into_response();
    };
    let query = query.unwrap_or_default();
    let asked = parse(&pages, &tenant, &query, &headers);
    if asked.hint.is_some() {
        return pages.sign_out(&tenant, &headers, asked.redirect).await;
    }
    let action = format!("/t/{tenant}/logout?{query}");
    let (csrf_cookie, set) = pages.csrf_cookie(&headers);
    let mut page = pages.message(
        StatusCode::OK,
        Some((tenant.as_str(), &row)),
        "sign_out_title",
        pages.tf("sign_out_body", &[("tenant", &row.name)]),
        Some((
            &action,
            pages.t("sign_out_button"),
            pages.csrf(&csrf_cookie, &action),
        )),
        None,
        set.into_iter().collect(),
    );
    // The confirmed sign-out goes on to the client's registered address.
    page.form_origin = asked.redirect.as_deref().and_then(origin_of);
    page.into_response()
}

pub(super) async fn logout_submit(
    State(pages): State<Shared>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    Peer(peer): Peer,
    headers: HeaderMap,
    StrictForm(form): StrictForm<CsrfForm>,
) -> Response {
    let query = query.unwrap_or_default();
    let action = format!("/t/{tenant}/logout?{query}");
    if let Some(refused) = pages.guard(peer, &headers, &action, &form.csrf) {
        return refused;
    }
    let Ok(tenant) = TenantId::parse(&tenant) else {
        return not_found_page(&pages).into_response();
    };
    let asked = parse(&pages, &tenant, &query, &headers);
    pages.sign_out(&tenant, &headers, asked.redirect).await
}
