//! The HTTP side: liveness, and the pages a customer contact sees.

use crate::app::App;
use axum::Router;
use axum::routing::get;

/// The HTTP routes: `/healthz` and the contact-facing pages.
pub fn router(
    app: App,
    secure: bool,
    trusted_proxies: crate::proxies::TrustedProxies,
) -> anyhow::Result<Router> {
    Ok(crate::pages::router(app, secure, trusted_proxies)?
        .route("/healthz", get(|| async { "ok\n" })))
}
