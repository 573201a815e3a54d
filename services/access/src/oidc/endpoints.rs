//! The token (RFC 6749 §3.2), userinfo (OpenID Connect Core §5.3),
//! introspection (RFC 7662) and revocation (RFC 7009) endpoints: parse,
//! authenticate the client, call the app, answer in JSON that is never cached.

use super::{json, known_tenant};
use crate::app::{App, ClientCredentials, OauthError};
use crate::domain::values::TenantId;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::collections::HashMap;

/// An OAuth error answer: 401 for client authentication, 503 while the log
/// is unavailable, 500 for faults, 400 otherwise.
fn oauth_error(e: &OauthError, basic: bool) -> Response {
    let status = match e.error {
        "invalid_client" => StatusCode::UNAUTHORIZED,
        "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = json(
        status,
        &serde_json::json!({ "error": e.error, "error_description": e.description }),
        "no-store",
    );
    if status == StatusCode::UNAUTHORIZED && basic {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"token\""),
        );
    }
    response
}

/// A form body's parameters; none may appear twice (RFC 6749 §3.2).
fn form(headers: &HeaderMap, body: &Bytes) -> Result<HashMap<String, String>, OauthError> {
    let urlencoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !urlencoded {
        return Err(OauthError::new(
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| OauthError::new("invalid_request", "the form could not be read"))?;
    let mut params = HashMap::new();
    for (k, v) in pairs {
        if params.insert(k.clone(), v).is_some() {
            return Err(OauthError::new(
                "invalid_request",
                format!("the parameter {k} appears twice"),
            ));
        }
    }
    Ok(params)
}

/// The credentials after an authorization scheme, matched without regard
/// to case (RFC 9110 §11.1).
fn scheme_value<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (name, value) = header.split_once(' ')?;
    name.eq_ignore_ascii_case(scheme).then(|| value.trim())
}

/// Whether a request tried HTTP Basic, so a refusal names the scheme.
fn tried_basic(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| scheme_value(v, "basic").is_some())
}

/// Who the client says it is: HTTP Basic (each half form-encoded, RFC 6749
/// §2.3.1) or `client_id` and `client_secret` in the form, never both.
fn credentials(
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<(ClientCredentials, bool), OauthError> {
    let bad = || OauthError::new("invalid_client", "client authentication failed");
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| scheme_value(v, "basic"));
    let form_id = params.get("client_id").cloned().unwrap_or_default();
    let form_secret = params.get("client_secret").cloned();
    match basic {
        Some(encoded) => {
            let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
            let text = String::from_utf8(decoded).map_err(|_| bad())?;
            let (id, secret) = text.split_once(':').ok_or_else(bad)?;
            let unform = |s: &str| {
                serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
                    .ok()
                    .and_then(|mut v| v.pop())
                    .map(|(_, v)| v)
            };
            let (id, secret) = (unform(id).ok_or_else(bad)?, unform(secret).ok_or_else(bad)?);
            if form_secret.is_some() || (!form_id.is_empty() && form_id != id) {
                return Err(OauthError::new(
                    "invalid_request",
                    "use one client authentication method",
                ));
            }
            Ok((
                ClientCredentials {
                    client_id: id,
                    secret: Some(secret),
                },
                true,
            ))
        }
        None => Ok((
            ClientCredentials {
                client_id: form_id,
                secret: form_secret,
            },
            false,
        )),
    }
}

/// The tenant, the form and the authenticated client of a request.
struct ClientRequest {
    tenant: TenantId,
    params: HashMap<String, String>,
    client: crate::projections::OidcClientRow,
}

fn client_request(
    app: &App,
    tenant: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<ClientRequest, Box<Response>> {
    let tenant = known_tenant(app, tenant)?;
    let params = form(headers, body).map_err(|e| Box::new(oauth_error(&e, false)))?;
    let (creds, basic) = credentials(headers, &params)
        .map_err(|e| Box::new(oauth_error(&e, tried_basic(headers))))?;
    let client = app
        .authenticate_client(tenant.as_str(), &creds)
        .map_err(|e| Box::new(oauth_error(&e, basic)))?;
    Ok(ClientRequest {
        tenant,
        params,
        client,
    })
}

impl ClientRequest {
    /// A form parameter, empty when absent.
    fn param(&self, name: &str) -> &str {
        self.params
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }
}

/// `POST /t/<tenant>/token`.
pub(super) async fn token(
    State(app): State<App>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match client_request(&app, &tenant, &headers, &body) {
        Ok(req) => req,
        Err(answer) => return *answer,
    };
    let result = match req.param("grant_type") {
        "authorization_code" => {
            let verifier = req.params.get("code_verifier").map(String::as_str);
            app.exchange_code(
                &req.tenant,
                &req.client,
                req.param("code"),
                req.param("redirect_uri"),
                verifier,
            )
            .await
        }
        "refresh_token" => {
            app.refresh_tokens(&req.tenant, &req.client, req.param("refresh_token"))
                .await
        }
        "" => Err(OauthError::new("invalid_request", "grant_type is missing")),
        _ => Err(OauthError::new(
            "unsupported_grant_type",
            "the grant types are authorization_code and refresh_token",
        )),
    };
    match result.and_then(|tokens| {
        serde_json::to_value(tokens)
            .map_err(|_| OauthError::new("server_error", "the tokens could not be written"))
    }) {
        Ok(body) => {
            let mut response = json(StatusCode::OK, &body, "no-store");
            response
                .headers_mut()
                .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(e) => oauth_error(&e, false),
    }
}

/// `GET|POST /t/<tenant>/userinfo` with a bearer access token.
pub(super) async fn userinfo(
    State(app): State<App>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let tenant = match known_tenant(&app, &tenant) {
        Ok(t) => t,
        Err(answer) => return *answer,
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| scheme_value(v, "bearer"))
        .unwrap_or_default();
    match app.userinfo(tenant.as_str(), token) {
        Ok(Some(claims)) => json(
            StatusCode::OK,
            &serde_json::Value::Object(claims),
            "no-store",
        ),
        Ok(None) => {
            let mut response = StatusCode::UNAUTHORIZED.into_response();
            // No token: the scheme only (RFC 6750 §3.1); else why not.
            let challenge = if token.is_empty() {
                "Bearer"
            } else {
                "Bearer error=\"invalid_token\", error_description=\"the access token is not active\""
            };
            let h = response.headers_mut();
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => oauth_error(&e.into(), false),
    }
}

/// `POST /t/<tenant>/introspect` by a confidential client.
pub(super) async fn introspect(
    State(app): State<App>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match client_request(&app, &tenant, &headers, &body) {
        Ok(req) => req,
        Err(answer) => return *answer,
    };
    let token = req.param("token");
    match app.introspect(req.tenant.as_str(), &req.client, token) {
        Ok(answer) => json(StatusCode::OK, &answer, "no-store"),
        Err(e) => oauth_error(&e, false),
    }
}

/// `POST /t/<tenant>/revoke`: 200 whatever the token (RFC 7009 §2.2).
pub(super) async fn revoke(
    State(app): State<App>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match client_request(&app, &tenant, &headers, &body) {
        Ok(req) => req,
        Err(answer) => return *answer,
    };
    let token = req.param("token");
    match app.revoke_token(&req.tenant, &req.client, token).await {
        Ok(()) => json(StatusCode::OK, &serde_json::json!({}), "no-store"),
        Err(e) => oauth_error(&e, false),
    }
}
