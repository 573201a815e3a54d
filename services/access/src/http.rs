//! The HTTP side: liveness, the pages a customer contact sees, and the
//! OpenID Connect provider's endpoints.

use crate::app::App;
use axum::Router;
use axum::routing::get;

/// The HTTP routes: `/healthz`, the contact-facing pages and the provider.
pub fn router(
    app: App,
    secure: bool,
    trusted_proxies: crate::proxies::TrustedProxies,
) -> anyhow::Result<Router> {
    Ok(crate::pages::router(app.clone(), secure, trusted_proxies)?
        .merge(crate::oidc::router(app))
        .route("/healthz", get(|| async { "ok\n" })))
}
