//! What every page answer and form passes: strict headers, cookies, the
//! CSRF token bound to its cookie, the client's address and the per-address
//! limit on posts.

use super::*;

/// The security headers every answer carries.
pub(super) async fn headers(
    State(pages): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    // A form may lead to the pages and to the tenant's own portal, nowhere
    // else: an injected form cannot post a password to another site.
    let form_action = match response.extensions().get::<FormOrigin>() {
        Some(FormOrigin(origin)) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert("content-security-policy", v);
    }
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if pages.secure {
        h.insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

/// The cookies the browser sent, by name (the `cookie` crate reads them:
/// pairs that are not cookies are skipped).
pub(super) fn cookies(headers: &HeaderMap) -> HashMap<String, String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .flatten()
        .map(|c| (c.name().to_owned(), c.value().to_owned()))
        .collect()
}

/// The client's address, when the server knows it: the peer's, or the one a
/// trusted proxy forwarded.
pub(super) struct Peer(pub(super) Option<SocketAddr>);

impl FromRequestParts<Shared> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        pages: &Shared,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(
            |c| {
                let ip = crate::proxies::client_address(
                    c.0.ip(),
                    &parts.headers,
                    &pages.trusted_proxies.0,
                );
                SocketAddr::new(ip, 0)
            },
        )))
    }
}

impl Pages {
    /// A `Set-Cookie` value: only for the pages (HttpOnly, SameSite=Lax), and
    /// only over TLS when the pages are served over TLS.
    pub(super) fn cookie(&self, name: &str, value: &str, path: &str, max_age: i64) -> String {
        cookie::Cookie::build((name, value))
            .path(path)
            .max_age(time::Duration::seconds(max_age))
            .http_only(true)
            .same_site(cookie::SameSite::Lax)
            .secure(self.secure)
            .build()
            .to_string()
    }

    pub(super) fn csrf_name(&self) -> &'static str {
        if self.secure {
            CSRF_COOKIE_SECURE
        } else {
            CSRF_COOKIE
        }
    }

    /// The CSRF token of a form (see `App::csrf_token`).
    pub(super) fn csrf(&self, cookie: &str, action: &str) -> String {
        self.app.csrf_token(cookie, action)
    }

    /// The browser's CSRF cookie, and a Set-Cookie if it needs a fresh one.
    pub(super) fn csrf_cookie(&self, headers: &HeaderMap) -> (String, Option<String>) {
        match cookies(headers).remove(self.csrf_name()) {
            Some(c) if c.len() == 32 => (c, None),
            _ => {
                let fresh = hex::encode(rand::random::<[u8; 16]>());
                let set = self.cookie(self.csrf_name(), &fresh, "/", 3600 * 8);
                (fresh, Some(set))
            }
        }
    }

    pub(super) fn csrf_ok(&self, headers: &HeaderMap, action: &str, given: &str) -> bool {
        let Some(cookie) = cookies(headers).remove(self.csrf_name()) else {
            return false;
        };
        self.app.verify_csrf(&cookie, action, given)
    }

    /// The answer to a POST that may not go on: too many from this address,
    /// or a CSRF token that is not this page's.
    pub(super) fn guard(
        &self,
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
        action: &str,
        csrf: &str,
    ) -> Option<Response> {
        if !self.admit(peer) {
            return Some(self.too_many().into_response());
        }
        if !self.csrf_ok(headers, action, csrf) {
            return Some(self.form_expired().into_response());
        }
        None
    }

    /// Whether a client address may POST now: a burst of
    /// [`POSTS_PER_MINUTE`], then one more every `60 / POSTS_PER_MINUTE` s.
    pub(super) fn admit(&self, peer: Option<SocketAddr>) -> bool {
        let ip = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| {
            crate::proxies::counted(p.ip())
        });
        // A flood of fresh addresses is forgotten once they are quiet again;
        // past the bound, at most once a second, so no POST pays a full scan.
        if self.posts.len() > 100_000 {
            let mut swept = self.swept.lock().unwrap_or_else(|e| e.into_inner());
            if swept.elapsed().as_secs() >= 1 {
                *swept = Instant::now();
                self.posts.retain_recent();
            }
        }
        self.posts.check_key(&ip).is_ok()
    }
}
