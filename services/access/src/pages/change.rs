//! The change-password page a temporary password leads to.

use super::*;

#[allow(clippy::too_many_arguments)]
pub(super) fn change_form(
    pages: &Pages,
    headers: &HeaderMap,
    tenant_id: &str,
    tenant: &TenantRow,
    status: StatusCode,
    login: &str,
    login_error: String,
    password_error: String,
) -> Response {
    let action = format!("/change-password?tenant={tenant_id}");
    let current = Field {
        name: "current",
        label: pages.t("current_password_label"),
        kind: "password",
        autocomplete: "current-password",
        ..Field::default()
    };
    pages
        .form(
            status,
            (tenant_id, tenant),
            "change_title",
            pages.tf("change_intro", &[("tenant", &tenant.name)]),
            &action,
            vec![
                login_field(pages, login, login_error),
                current,
                password_field(pages, false, password_error),
            ],
            true,
            "submit_change",
            Some((
                format!("/forgot?tenant={tenant_id}"),
                pages.t("forgot_link"),
            )),
            headers,
            Vec::new(),
        )
        .into_response()
}

pub(super) async fn change_page(
    State(pages): State<Shared>,
    Query(q): Query<TenantQuery>,
    headers: HeaderMap,
) -> Response {
    match pages.tenant(&q.tenant) {
        Some(tenant) => change_form(
            &pages,
            &headers,
            &q.tenant,
            &tenant,
            StatusCode::OK,
            "",
            String::new(),
            String::new(),
        ),
        None => not_found_page(&pages).into_response(),
    }
}

pub(super) async fn change_submit(
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
        &format!("/change-password?tenant={}", q.tenant),
        &form.csrf,
    ) {
        return pages.form_expired().into_response();
    }
    let again = |login_error: String, password_error: String| {
        change_form(
            &pages,
            &headers,
            &q.tenant,
            &tenant,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form.login,
            login_error,
            password_error,
        )
    };
    let new = match Password::parse(&form.password) {
        Ok(p) => p,
        Err(words) => {
            return again(
                String::new(),
                if form.password.is_empty() {
                    pages.t("required")
                } else {
                    sentence(&words)
                },
            );
        }
    };
    let address = peer.map(|p| p.ip().to_string()).unwrap_or_default();
    let outcome = match pages
        .app
        .login(
            tenant_id.as_str(),
            &form.login,
            form.current.clone(),
            &address,
        )
        .await
    {
        // The password alone does not change a password guarded by an app.
        Ok(outcome) if outcome.second_factor_challenge.is_some() => {
            return again(pages.t("change_needs_second_factor"), String::new());
        }
        Ok(outcome) => outcome,
        Err(AppError::Domain(DomainError::TooManyAttempts { .. })) => {
            return again(pages.t("throttled"), String::new());
        }
        Err(AppError::Domain(DomainError::Unauthenticated { .. })) => {
            return again(pages.t("wrong_login"), String::new());
        }
        Err(e) => return failure(&pages, e),
    };
    let Ok(contact_id) = GeneratedId::parse(&outcome.contact.contact_id) else {
        return not_found_page(&pages).into_response();
    };
    let Some((request_id, fingerprint)) = fresh_request() else {
        return not_found_page(&pages).into_response();
    };
    let ctx = CommandContext {
        request_id,
        fingerprint,
        tenant: Some(tenant_id.clone()),
        actor: Actor::Contact {
            contact_id: contact_id.to_string(),
        },
        correlation_id: uuid::Uuid::new_v4(),
    };
    let cmd = ChangePasswordCommand {
        tenant: tenant_id.clone(),
        contact_id: contact_id.clone(),
        current: form.current.clone(),
        new,
        hash: Default::default(),
    };
    match pages.app.execute(&ctx, &cmd).await {
        Ok(done) => {
            pages
                .finished(
                    &headers,
                    done.position,
                    tenant_id.as_str(),
                    contact_id.as_str(),
                    false,
                    Vec::new(),
                )
                .await
        }
        Err(e) => match password_error(&pages, &e) {
            Some(words) => again(String::new(), words),
            None => failure(&pages, e),
        },
    }
}
