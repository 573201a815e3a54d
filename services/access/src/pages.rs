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

mod authorize;
mod change;
mod enrol;
mod fields;
mod forgot;
mod form;
mod guard;
mod invite;
mod logout;
mod passkeys;
mod render;
mod reset;
mod security;

use crate::app::{App, AppError, ChangePasswordCommand, CommandContext, LinkState};
use crate::domain::values::{GeneratedId, Password, RequestId, TenantId};
use crate::domain::{DomainError, Reason};
use crate::projections::TenantRow;
use access_catalogue::Actor;
use access_keyring::LinkClaims;
use authorize::{authorize_page, authorize_submit};
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use change::{change_page, change_submit};
use fields::*;
use forgot::{forgot_page, forgot_submit};
use form::StrictForm;
use guard::{Peer, cookies, headers};
use invite::{invite_page, invite_renew, invite_submit};
use logout::{logout_page, logout_submit};
use minijinja::{Environment, context};
use render::*;
use reset::{reset_page, reset_submit};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The POSTs one client address may send at once, and how many more a
/// minute after that (one every two seconds).
const POSTS_PER_MINUTE: std::num::NonZeroU32 = std::num::NonZeroU32::new(30).expect("not zero");

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
    secure: bool,
    posts: governor::DefaultKeyedRateLimiter<IpAddr>,
    swept: Mutex<Instant>,
    trusted_proxies: crate::proxies::TrustedProxies,
}

type Shared = Arc<Pages>;

/// The pages' routes; `secure` when served over TLS (cookies and HSTS).
pub fn router(
    app: App,
    secure: bool,
    trusted_proxies: crate::proxies::TrustedProxies,
) -> anyhow::Result<Router> {
    let mut env = Environment::new();
    env.add_template("base.html", include_str!("../pages/base.html"))?;
    env.add_template("form.html", include_str!("../pages/form.html"))?;
    env.add_template("message.html", include_str!("../pages/message.html"))?;
    env.add_template("security.html", include_str!("../pages/security.html"))?;
    env.add_template("passkey.html", include_str!("../pages/passkey.html"))?;
    let strings: HashMap<String, String> = serde_json::from_str(include_str!("../pages/en.json"))?;
    let pages = Arc::new(Pages {
        app,
        env,
        strings,
        secure,
        posts: governor::RateLimiter::keyed(governor::Quota::per_minute(POSTS_PER_MINUTE)),
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
        .route(
            "/t/{tenant}/authorize",
            get(authorize_page).post(authorize_submit),
        )
        .route("/t/{tenant}/logout", get(logout_page).post(logout_submit))
        .route(
            "/t/{tenant}/security",
            get(security::security_page).post(security::security_submit),
        )
        .route(
            "/t/{tenant}/security/passkey",
            axum::routing::post(security::passkey_submit),
        )
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
