//! "Forgot password": asks for a reset link by email or username, with the
//! same answer whether or not the login exists.

use super::*;

pub(super) fn forgot_form(
    pages: &Pages,
    headers: &HeaderMap,
    tenant_id: &str,
    tenant: &TenantRow,
    status: StatusCode,
    error: String,
) -> Response {
    let action = format!("/forgot?tenant={tenant_id}");
    pages
        .form(
            status,
            (tenant_id, tenant),
            "forgot_title",
            pages.tf("forgot_intro", &[("tenant", &tenant.name)]),
            &action,
            vec![login_field(pages, "", error)],
            false,
            "submit_forgot",
            None,
            headers,
            Vec::new(),
        )
        .into_response()
}

pub(super) async fn forgot_page(
    State(pages): State<Shared>,
    Query(q): Query<TenantQuery>,
    headers: HeaderMap,
) -> Response {
    match pages.tenant(&q.tenant) {
        Some(tenant) => forgot_form(
            &pages,
            &headers,
            &q.tenant,
            &tenant,
            StatusCode::OK,
            String::new(),
        ),
        None => not_found_page(&pages).into_response(),
    }
}

pub(super) async fn forgot_submit(
    State(pages): State<Shared>,
    Query(q): Query<TenantQuery>,
    Peer(peer): Peer,
    headers: HeaderMap,
    StrictForm(form): StrictForm<LoginForm>,
) -> Response {
    if !pages.admit(peer) {
        return pages.too_many().into_response();
    }
    let (Some(tenant), Ok(tenant_id)) = (pages.tenant(&q.tenant), TenantId::parse(&q.tenant))
    else {
        return not_found_page(&pages).into_response();
    };
    if !pages.csrf_ok(
        &headers,
        &format!("/forgot?tenant={}", q.tenant),
        &form.csrf,
    ) {
        return pages.form_expired().into_response();
    }
    if form.login.trim().is_empty() {
        return forgot_form(
            &pages,
            &headers,
            &q.tenant,
            &tenant,
            StatusCode::UNPROCESSABLE_ENTITY,
            pages.t("required"),
        );
    }
    if let Some((request_id, _)) = fresh_request() {
        pages
            .app
            .forgot_password(tenant_id, form.login, request_id, uuid::Uuid::new_v4());
    }
    pages
        .message(
            StatusCode::OK,
            Some((&q.tenant, &tenant)),
            "forgot_sent_title",
            pages.t("forgot_sent_body"),
            None,
            None,
            Vec::new(),
        )
        .into_response()
}
