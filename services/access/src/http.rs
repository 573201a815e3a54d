//! The HTTP side: liveness, and the pages a customer contact sees.

use crate::app::App;
use access_events::links::ServerKey;
use axum::Router;
use axum::routing::get;

/// The HTTP routes: `/healthz` and the contact-facing pages.
pub fn router(app: App, key: ServerKey, secure: bool) -> anyhow::Result<Router> {
    Ok(crate::pages::router(app, key, secure)?.route("/healthz", get(|| async { "ok\n" })))
}
