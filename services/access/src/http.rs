//! The HTTP side: liveness for now; the contact-facing pages will live here.

use axum::Router;
use axum::routing::get;

/// The HTTP routes.
pub fn router() -> Router {
    Router::new().route("/healthz", get(|| async { "ok\n" }))
}
