//! The OpenID Connect provider's HTTP side, one issuer per tenant at
//! `<public base URL>/t/<tenant>`. It serves the tenant's JWKS: the keys its
//! tokens are signed with, and retired keys until their tokens expire.

use crate::app::App;
use crate::domain::values::TenantId;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The provider's routes.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/t/{tenant}/jwks.json", get(jwks))
        .with_state(app)
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    (status, body).into_response()
}

/// `GET /t/<tenant>/jwks.json`: the published keys as RFC 7517 JWKs.
async fn jwks(State(app): State<App>, Path(tenant): Path<String>) -> Response {
    let not_found = || plain(StatusCode::NOT_FOUND, "no such tenant\n");
    let Ok(tenant) = TenantId::parse(&tenant) else {
        return not_found();
    };
    let keys = match app.tenant_row(tenant.as_str()) {
        Ok(Some(_)) => app.published_signing_keys(tenant.as_str()),
        Ok(None) => return not_found(),
        Err(e) => Err(e),
    };
    let keys = match keys {
        Ok(keys) => keys,
        Err(e) => {
            tracing::error!(error = %e, "reading signing keys");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n");
        }
    };
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .filter(|k| k.algorithm == "EdDSA")
        .map(|k| {
            serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": k.key_id,
                "x": URL_SAFE_NO_PAD.encode(&k.public_key),
            })
        })
        .collect();
    let mut response = (
        StatusCode::OK,
        serde_json::json!({ "keys": keys }).to_string(),
    )
        .into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    // Clients cache it a while; a rotation publishes the new key at once,
    // and the old one stays published far longer than this.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    // Public keys, for clients in the browser too.
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}
