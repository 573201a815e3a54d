//! The OpenID Connect provider's HTTP side, one issuer per tenant at
//! `<public base URL>/t/<tenant>`: discovery, the JWKS, and the token,
//! userinfo, introspection and revocation endpoints. The authorization
//! endpoint is a page (`pages/authorize.rs`).

mod endpoints;

use crate::app::App;
use crate::domain::values::TenantId;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The largest form body an endpoint reads.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The scopes and claims the discovery document lists.
const CLAIMS: [&str; 23] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "amr",
    "acr",
    "nonce",
    "sid",
    "email",
    "email_verified",
    "preferred_username",
    "tenant",
    "customer_id",
    "customer_status",
    "login_kind",
    "site_rule",
    "sites",
    "order_site",
    "stock_totals",
    "may_order",
    "document_kinds",
];

/// The provider's routes.
pub fn router(app: App) -> Router {
    Router::new()
        .route(
            "/t/{tenant}/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/t/{tenant}/jwks.json", get(jwks))
        .route("/t/{tenant}/token", post(endpoints::token))
        .route(
            "/t/{tenant}/userinfo",
            get(endpoints::userinfo).post(endpoints::userinfo),
        )
        .route("/t/{tenant}/introspect", post(endpoints::introspect))
        .route("/t/{tenant}/revoke", post(endpoints::revoke))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::from_fn(cors))
        .with_state(app)
}

/// These endpoints take no cookies, so any origin may call them: a portal
/// running in the browser redeems its code and asks userinfo itself.
async fn cors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let preflight = request.method() == Method::OPTIONS;
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if preflight {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    (status, body).into_response()
}

/// The tenant named by the path, if it exists; else the answer.
fn known_tenant(app: &App, tenant: &str) -> Result<TenantId, Box<Response>> {
    let not_found = || Box::new(plain(StatusCode::NOT_FOUND, "no such tenant\n"));
    let tenant = TenantId::parse(tenant).map_err(|_| not_found())?;
    match app.tenant_row(tenant.as_str()) {
        Ok(Some(_)) => Ok(tenant),
        Ok(None) => Err(not_found()),
        Err(e) => {
            tracing::error!(error = %e, "reading a tenant");
            Err(Box::new(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error\n",
            )))
        }
    }
}

fn json(status: StatusCode, body: &serde_json::Value, cache: &'static str) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// `GET /t/<tenant>/.well-known/openid-configuration` (OpenID Connect
/// Discovery 1.0 §4).
async fn discovery(State(app): State<App>, Path(tenant): Path<String>) -> Response {
    let tenant = match known_tenant(&app, &tenant) {
        Ok(t) => t,
        Err(answer) => return *answer,
    };
    let issuer = app.issuer(tenant.as_str());
    let client_auth = ["client_secret_basic", "client_secret_post", "none"];
    let body = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "end_session_endpoint": format!("{issuer}/logout"),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": crate::domain::oidc_clients::SIGNING_ALGS,
        "token_endpoint_auth_methods_supported": client_auth,
        "revocation_endpoint_auth_methods_supported": client_auth,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": crate::domain::oidc_clients::SCOPES,
        "claims_supported": CLAIMS,
        "acr_values_supported": ["password", "mfa"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
    });
    json(StatusCode::OK, &body, "public, max-age=300")
}

/// A published key as an RFC 7517 JWK: OKP Ed25519 (RFC 8037) or EC P-256
/// (its 65-byte uncompressed point split into `x` and `y`).
fn jwk(k: &crate::projections::SigningKeyRow) -> Option<serde_json::Value> {
    match (k.algorithm.as_str(), k.public_key.as_slice()) {
        ("EdDSA", x) if x.len() == 32 => Some(serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": k.key_id,
            "x": URL_SAFE_NO_PAD.encode(x),
        })),
        ("ES256", [4, point @ ..]) if point.len() == 64 => Some(serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "alg": "ES256",
            "use": "sig",
            "kid": k.key_id,
            "x": URL_SAFE_NO_PAD.encode(&point[..32]),
            "y": URL_SAFE_NO_PAD.encode(&point[32..]),
        })),
        _ => None,
    }
}

/// `GET /t/<tenant>/jwks.json`: the published keys as RFC 7517 JWKs.
async fn jwks(State(app): State<App>, Path(tenant): Path<String>) -> Response {
    let tenant = match known_tenant(&app, &tenant) {
        Ok(t) => t,
        Err(answer) => return *answer,
    };
    let keys = match app.published_signing_keys(tenant.as_str()) {
        Ok(keys) => keys,
        Err(e) => {
            tracing::error!(error = %e, "reading signing keys");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n");
        }
    };
    let keys: Vec<serde_json::Value> = keys.iter().filter_map(jwk).collect();
    // Clients cache it a while; a rotation publishes the new key at once,
    // and the old one stays published far longer than this.
    let mut response = json(
        StatusCode::OK,
        &serde_json::json!({ "keys": keys }),
        "public, max-age=300",
    );
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    response
}
