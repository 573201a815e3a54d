//! The pages a customer contact sees: set a password from an invitation,
//! forgot and reset password, change a temporary password, and the hand-off
//! into the tenant's portal with a one-time login code.
//!
//! Server-rendered, working without JavaScript (a small script only marks
//! the password rules as they are met). Every string is in `pages/en.json`,
//! so a translation is a file. A link's token moves from the URL into a
//! cookie on first load; every form carries a CSRF token bound to a cookie;
//! POSTs are rate limited per client address; every answer carries a strict
//! Content-Security-Policy and `Referrer-Policy: no-referrer`.

mod change;
mod forgot;
mod form;
mod guard;
mod invite;
mod reset;

use crate::app::{App, AppError, ChangePasswordCommand, CommandContext, LinkState};
use crate::domain::values::{GeneratedId, Password, RequestId, TenantId};
use crate::domain::{DomainError, Reason};
use crate::projections::TenantRow;
use access_catalogue::Actor;
use access_keyring::{Keyring, LinkClaims};
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use change::{change_page, change_submit};
use forgot::{forgot_page, forgot_submit};
use form::StrictForm;
use guard::{Peer, cookies, headers};
use invite::{invite_page, invite_renew, invite_submit};
use minijinja::{Environment, context};
use reset::{reset_page, reset_submit};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// POSTs one client address may send a minute.
const POSTS_PER_MINUTE: u32 = 30;

/// The cookie holding an invitation link's token.
const INVITE_COOKIE: &str = "invite";
/// The cookie holding a reset link's token.
const RESET_COOKIE: &str = "reset";
/// The cookie the CSRF tokens are bound to (over TLS with the `__Host-`
/// prefix, so a sibling subdomain cannot plant one).
const CSRF_COOKIE: &str = "csrf";
const CSRF_COOKIE_SECURE: &str = "__Host-csrf";

/// The largest form body the pages read.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// What the pages share.
pub struct Pages {
    app: App,
    env: Environment<'static>,
    strings: HashMap<String, String>,
    key: Keyring,
    secure: bool,
    posts: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    swept: Mutex<Instant>,
    trusted_proxies: crate::proxies::TrustedProxies,
}

type Shared = Arc<Pages>;

/// The pages' routes; `secure` when served over TLS (cookies and HSTS).
pub fn router(
    app: App,
    key: Keyring,
    secure: bool,
    trusted_proxies: crate::proxies::TrustedProxies,
) -> anyhow::Result<Router> {
    let mut env = Environment::new();
    env.add_template("base.html", include_str!("../pages/base.html"))?;
    env.add_template("form.html", include_str!("../pages/form.html"))?;
    env.add_template("message.html", include_str!("../pages/message.html"))?;
    let strings: HashMap<String, String> = serde_json::from_str(include_str!("../pages/en.json"))?;
    let pages = Arc::new(Pages {
        app,
        env,
        strings,
        key,
        secure,
        posts: Mutex::new(HashMap::new()),
        swept: Mutex::new(Instant::now()),
        trusted_proxies,
    });
    Ok(Router::new()
        .route("/invite/{token}", get(invite_link))
        .route("/invite", get(invite_page).post(invite_submit))
        .route("/invite/renew", axum::routing::post(invite_renew))
        .route("/reset/{token}", get(reset_link))
        .route("/reset", get(reset_page).post(reset_submit))
        .route("/forgot", get(forgot_page).post(forgot_submit))
        .route("/change-password", get(change_page).post(change_submit))
        .route("/brand/{file}", get(brand_css))
        .route(
            "/static/app.css",
            get(|| async { asset("text/css", include_str!("../pages/app.css")) }),
        )
        .route(
            "/static/app.js",
            get(|| async { asset("text/javascript", include_str!("../pages/app.js")) }),
        )
        .fallback(not_found)
        // The pages' forms hold a few short fields: a larger body is refused
        // unread (413).
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::from_fn_with_state(pages.clone(), headers))
        .with_state(pages))
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// A field of a form as the template shows it.
#[derive(serde::Serialize, Default)]
struct Field {
    name: &'static str,
    label: String,
    kind: &'static str,
    autocomplete: &'static str,
    value: String,
    readonly: bool,
    checked: bool,
    error: String,
}

#[derive(serde::Serialize)]
struct Rule {
    text: String,
    check: String,
}

#[derive(serde::Serialize)]
struct Problem {
    field: &'static str,
    message: String,
}

/// A page answer: its status, body and cookies to set.
struct Page {
    status: StatusCode,
    html: String,
    cookies: Vec<String>,
    /// Where the page's form may lead besides the pages themselves: the
    /// tenant's portal, which a completed form hands the contact off to.
    form_origin: Option<String>,
}

/// The extra origin a page's `form-action` allows, passed to the headers.
#[derive(Clone)]
struct FormOrigin(String);

/// The origin (`scheme://host[:port]`) of an http(s) URL, if it is one whose
/// characters are safe inside a header.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?;
    let safe = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    safe.then(|| format!("{scheme}://{host}"))
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::response::Html(self.html)).into_response();
        if let Some(origin) = self.form_origin {
            response.extensions_mut().insert(FormOrigin(origin));
        }
        for c in self.cookies {
            if let Ok(v) = HeaderValue::from_str(&c) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        response
    }
}

impl Pages {
    fn t(&self, key: &str) -> String {
        self.strings
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_owned())
    }

    /// A string with `{name}` placeholders filled.
    fn tf(&self, key: &str, values: &[(&str, &str)]) -> String {
        values
            .iter()
            .fold(self.t(key), |s, (k, v)| s.replace(&format!("{{{k}}}"), v))
    }

    fn render(
        &self,
        template: &str,
        status: StatusCode,
        ctx: minijinja::Value,
        cookies: Vec<String>,
    ) -> Page {
        let html = self
            .env
            .get_template(template)
            .and_then(|t| t.render(ctx))
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "a page did not render");
                "<!doctype html><title>Error</title><p>Something went wrong.</p>".to_owned()
            });
        Page {
            status,
            html,
            cookies,
            form_origin: None,
        }
    }

    /// A page with a title, a paragraph, maybe a button and a link.
    #[allow(clippy::too_many_arguments)]
    fn message(
        &self,
        status: StatusCode,
        tenant: Option<(&str, &TenantRow)>,
        title: &str,
        body: String,
        button: Option<(&str, String, String)>,
        after: Option<(String, String)>,
        cookies: Vec<String>,
    ) -> Page {
        let (tenant_id, name, logo) = match tenant {
            Some((id, row)) => (
                id.to_owned(),
                row.name.clone(),
                row.branding.logo_url.clone(),
            ),
            None => (String::new(), String::new(), String::new()),
        };
        let button = button.map(|(action, text, csrf)| {
            minijinja::context! { action => action, text => text, csrf => csrf }
        });
        let csrf = button
            .as_ref()
            .and_then(|b| b.get_attr("csrf").ok())
            .map(|v| v.to_string())
            .unwrap_or_default();
        self.render(
            "message.html",
            status,
            context! {
                t => &self.strings,
                title => self.t(title),
                body => body,
                tenant_id => tenant_id,
                tenant_name => name,
                logo_url => logo,
                button => button,
                csrf => csrf,
                after => after.map(|(href, text)| context! { href => href, text => text }),
            },
            cookies,
        )
    }

    fn rules(&self, tenant: &TenantRow) -> Vec<Rule> {
        let p = &tenant.password_policy;
        let words = p.describe();
        let checks = [
            format!("length:{}", p.min_length),
            "letter".into(),
            "digit".into(),
        ];
        let mut rules: Vec<Rule> = words
            .iter()
            .enumerate()
            .map(|(i, text)| Rule {
                text: text.clone(),
                check: checks.get(i).cloned().unwrap_or_default(),
            })
            .collect();
        // "letter and digit" is one line: split its check so each can show.
        if let Some(rule) = rules.get_mut(1) {
            rule.check = "letter".into();
        }
        let mut i = 2;
        if p.require_mixed_case {
            if let Some(rule) = rules.get_mut(i) {
                rule.check = "mixed".into();
            }
            i += 1;
        }
        if p.require_symbol
            && let Some(rule) = rules.get_mut(i)
        {
            rule.check = "symbol".into();
        }
        rules
    }

    /// A password form.
    #[allow(clippy::too_many_arguments)]
    fn form(
        &self,
        status: StatusCode,
        (tenant_id, tenant): (&str, &TenantRow),
        title: &str,
        intro: String,
        action: &str,
        fields: Vec<Field>,
        rules: bool,
        submit: &str,
        after: Option<(String, String)>,
        headers: &HeaderMap,
        mut cookies: Vec<String>,
    ) -> Page {
        let (csrf_cookie, set) = self.csrf_cookie(headers);
        cookies.extend(set);
        let errors: Vec<Problem> = fields
            .iter()
            .filter(|f| !f.error.is_empty())
            .map(|f| Problem {
                field: f.name,
                message: f.error.clone(),
            })
            .collect();
        let mut page = self.render(
            "form.html",
            status,
            context! {
                t => &self.strings,
                title => self.t(title),
                intro => intro,
                tenant_id => tenant_id,
                tenant_name => &tenant.name,
                logo_url => &tenant.branding.logo_url,
                action => action,
                csrf => self.csrf(&csrf_cookie, action),
                fields => fields,
                errors => errors,
                rules => if rules { self.rules(tenant) } else { Vec::new() },
                submit => self.t(submit),
                after => after.map(|(href, text)| context! { href => href, text => text }),
            },
            cookies,
        );
        page.form_origin = origin_of(&tenant.branding.portal_url);
        page
    }

    fn tenant(&self, id: &str) -> Option<TenantRow> {
        self.app.tenant_row(id).ok().flatten()
    }

    fn form_expired(&self) -> Page {
        self.message(
            StatusCode::FORBIDDEN,
            None,
            "form_expired_title",
            self.t("form_expired_body"),
            None,
            None,
            Vec::new(),
        )
    }

    fn too_many(&self) -> Page {
        self.message(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            "too_many_title",
            self.t("too_many_body"),
            None,
            None,
            Vec::new(),
        )
    }

    /// After a password was set (written at `position`): the portal with a
    /// login code, the approval page, or a page that says it is done.
    async fn finished(
        &self,
        position: u64,
        tenant_id: &str,
        contact_id: &str,
        pending: bool,
        cookies: Vec<String>,
    ) -> Response {
        if let Err(e) = self.app.wait_for(position).await {
            tracing::warn!(error = %e, "the read model is behind a page's write");
        }
        let Some(tenant) = self.tenant(tenant_id) else {
            return not_found_page(self).into_response();
        };
        let name = tenant.name.clone();
        if pending {
            return self
                .message(
                    StatusCode::OK,
                    Some((tenant_id, &tenant)),
                    "pending_title",
                    self.tf("pending_body", &[("tenant", &name)]),
                    None,
                    None,
                    cookies,
                )
                .into_response();
        }
        match self.app.hand_off_url(tenant_id, contact_id) {
            Ok(Some(url)) => {
                let mut response =
                    (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response();
                for c in cookies {
                    if let Ok(v) = HeaderValue::from_str(&c) {
                        response.headers_mut().append(header::SET_COOKIE, v);
                    }
                }
                response
            }
            _ => self
                .message(
                    StatusCode::OK,
                    Some((tenant_id, &tenant)),
                    "done_title",
                    self.tf("done_body", &[("tenant", &name)]),
                    None,
                    None,
                    cookies,
                )
                .into_response(),
        }
    }
}

fn not_found_page(pages: &Pages) -> Page {
    pages.message(
        StatusCode::NOT_FOUND,
        None,
        "not_found_title",
        pages.t("not_found_body"),
        None,
        None,
        Vec::new(),
    )
}

async fn not_found(State(pages): State<Shared>) -> Page {
    not_found_page(&pages)
}

async fn brand_css(State(pages): State<Shared>, Path(file): Path<String>) -> Response {
    let tenant = file.strip_suffix(".css").unwrap_or_default();
    let accent = pages
        .tenant(tenant)
        .map(|t| t.branding.accent_colour)
        .unwrap_or_default();
    // Only ever `#rrggbb` (checked when set): nothing else reaches the CSS.
    let css = if accent.len() == 7 && accent[1..].chars().all(|c| c.is_ascii_hexdigit()) {
        format!(":root {{ --accent: {accent}; }}\n")
    } else {
        String::new()
    };
    ([(header::CONTENT_TYPE, "text/css")], css).into_response()
}

/// A link's token goes into a cookie and out of the address bar at once.
fn move_token(pages: &Pages, cookie: &str, token: &str, to: &str) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    let token: String = token
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(400)
        .collect();
    if let Ok(v) = HeaderValue::from_str(&pages.cookie(cookie, &token, to, 3600)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

async fn invite_link(State(pages): State<Shared>, Path(token): Path<String>) -> Response {
    move_token(&pages, INVITE_COOKIE, &token, "/invite")
}

async fn reset_link(State(pages): State<Shared>, Path(token): Path<String>) -> Response {
    move_token(&pages, RESET_COOKIE, &token, "/reset")
}

fn password_field(pages: &Pages, existing: bool, error: String) -> Field {
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

fn email_field(pages: &Pages, email: &str) -> Field {
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
struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

fn fresh_request() -> Option<(RequestId, [u8; 32])> {
    let id = uuid::Uuid::now_v7().to_string();
    Some((RequestId::parse(&id).ok()?, crate::secrets::sha256(&id)))
}

/// The words for a refused password, or `None` if the refusal is about the link.
fn password_error(pages: &Pages, e: &AppError) -> Option<String> {
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
fn sentence(words: &str) -> String {
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

fn link_state_of(e: &AppError) -> Option<LinkState> {
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
fn failure(pages: &Pages, e: AppError) -> Response {
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
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
struct TenantQuery {
    #[serde(default)]
    tenant: String,
}

fn login_field(pages: &Pages, value: &str, error: String) -> Field {
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
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
}
