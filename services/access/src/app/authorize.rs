//! The authorization endpoint's rules: what a client may ask (RFC 6749
//! §4.1.1 with PKCE, RFC 9700's exact redirects, OpenID Connect's `nonce`,
//! `prompt` and `max_age`), and the code issued once the contact is in.

use super::{App, AppError, Command, Unit};
use crate::domain::Change;
use crate::domain::oidc_grants::{self, CODE_TTL_MS, GrantState, GrantStream};
use crate::domain::streams;
use crate::domain::values::{GeneratedId, TenantId};
use crate::projections::OidcClientRow;
use access_catalogue::Actor;
use access_catalogue::catalogue::{AuthorizationCodeIssued, OidcClientKind};

/// The longest `state` or `nonce` taken.
const MAX_STATE: usize = 1024;
const MAX_NONCE: usize = 255;

/// Whether the contact is asked for the password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prompt {
    /// Only when no provider session lets them in.
    Default,
    /// Always (`prompt=login`).
    Login,
    /// Never: an error goes back instead (`prompt=none`).
    None,
}

/// An authorization request, checked against its client.
#[derive(Clone, Debug)]
pub struct AuthorizationRequest {
    /// The tenant whose provider is asked.
    pub tenant: TenantId,
    /// The client asking.
    pub client: OidcClientRow,
    /// Where the answer goes: one of the client's redirect URIs.
    pub redirect_uri: String,
    /// Echoed to the client.
    pub state: Option<String>,
    /// The scopes asked for (all allowed to the client).
    pub scopes: Vec<String>,
    /// Echoed in the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// Whether to ask for the password.
    pub prompt: Prompt,
    /// The oldest sign-in acceptable, in seconds, if the client limits it.
    pub max_age_s: Option<i64>,
    /// A name to fill the login field with.
    pub login_hint: String,
    /// The client asked for a second factor (`acr_values` naming `mfa`): a
    /// sign-in with the password alone steps up first.
    pub wants_mfa: bool,
}

/// Why an authorization request is not served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: told to the person on a
    /// page, never redirected (RFC 6749 §4.1.2.1).
    Show(String),
    /// Sent back to the client's redirect URI as `error`.
    Redirect {
        /// The redirect URL carrying the error.
        url: String,
    },
}

/// The contact let in, for a code.
#[derive(Clone, Debug)]
pub struct SignedIn {
    /// The contact.
    pub contact_id: String,
    /// When the password was proved, Unix milliseconds.
    pub auth_time_ms: i64,
    /// The provider session.
    pub session_id: String,
    /// The browser's address.
    pub client_address: String,
    /// How the contact authenticated (RFC 8176).
    pub amr: Vec<String>,
}

/// Whether `presented` is `registered`, exactly; for a loopback redirect any
/// port, since native apps listen on whatever port is free (RFC 8252 §7.3).
pub fn redirect_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(mut r), Ok(mut p)) = (url::Url::parse(registered), url::Url::parse(presented)) else {
        return false;
    };
    let loopback = |u: &url::Url| {
        u.scheme() == "http"
            && match u.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                _ => false,
            }
    };
    if !loopback(&r) || !loopback(&p) || presented.contains('#') {
        return false;
    }
    let (_, _) = (r.set_port(None), p.set_port(None));
    r == p
}

/// `uri` with `params` added to its query.
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (k, v) in params {
                    query.append_pair(k, v);
                }
            }
            url.to_string()
        }
        Err(_) => uri.to_owned(),
    }
}

impl App {
    /// The issuer of `tenant`'s tokens.
    pub fn issuer(&self, tenant: &str) -> String {
        format!(
            "{}/t/{tenant}",
            self.settings.public_base_url.trim_end_matches('/')
        )
    }

    /// Where a contact who just set a password is sent to be signed in: the
    /// first client (by id) with an initiate-login URI, with `iss` (OpenID
    /// Connect Core §4); `None` when no client has one.
    pub fn initiate_login_url(&self, tenant: &str) -> Result<Option<String>, AppError> {
        let clients = self
            .models
            .oidc_clients_of(tenant)
            .map_err(AppError::Internal)?;
        let issuer = self.issuer(tenant);
        Ok(clients
            .iter()
            .find_map(|c| c.settings.initiate_login_uri.as_deref())
            .map(|uri| with_query(uri, &[("iss", &issuer)])))
    }

    /// Checks an authorization request's query against its client.
    pub fn authorization_request(
        &self,
        tenant: &str,
        query: &str,
    ) -> Result<AuthorizationRequest, AuthorizeError> {
        let show = |m: &str| AuthorizeError::Show(m.to_owned());
        let tenant = TenantId::parse(tenant).map_err(|_| show("no such sign-in service"))?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|_| show("the sign-in request is not readable"))?;
        let mut one = std::collections::HashMap::new();
        for (k, v) in pairs {
            // RFC 6749 §3.1: no parameter twice.
            if one.insert(k, v).is_some() {
                return Err(show("a parameter of the sign-in request appears twice"));
            }
        }
        let get = |k: &str| one.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let client = get("client_id")
            .and_then(|id| self.models.oidc_client(tenant.as_str(), id).ok().flatten())
            .ok_or_else(|| show("the application asking is not known here"))?;
        let redirect_uri = get("redirect_uri")
            .filter(|p| {
                client
                    .settings
                    .redirect_uris
                    .iter()
                    .any(|r| redirect_matches(r, p))
            })
            .ok_or_else(|| {
                show("the application asked to send the answer to an address it has not registered")
            })?
            .to_owned();
        let state = get("state").map(str::to_owned);
        let issuer = self.issuer(tenant.as_str());
        let refuse = |error: &str, description: &str| {
            let mut params = vec![("error", error), ("error_description", description)];
            if let Some(state) = &state {
                params.push(("state", state));
            }
            params.push(("iss", &issuer));
            AuthorizeError::Redirect {
                url: with_query(&redirect_uri, &params),
            }
        };
        if state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
            return Err(refuse("invalid_request", "state is too long"));
        }
        if get("request").is_some() || get("request_uri").is_some() {
            return Err(refuse(
                "request_not_supported",
                "request objects are not supported",
            ));
        }
        if get("response_type") != Some("code") {
            return Err(refuse(
                "unsupported_response_type",
                "only the authorization code flow (response_type=code) is offered",
            ));
        }
        if get("response_mode").is_some_and(|m| m != "query") {
            return Err(refuse(
                "invalid_request",
                "only response_mode=query is offered",
            ));
        }
        let scopes: Vec<String> = get("scope")
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(refuse("invalid_scope", "the openid scope is required"));
        }
        if let Some(s) = scopes.iter().find(|s| !client.settings.scopes.contains(s)) {
            return Err(refuse(
                "invalid_scope",
                &format!("the scope {s} is not allowed to this application"),
            ));
        }
        let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
            (Some(c), Some("S256")) if (43..=128).contains(&c.len()) => Some(c.to_owned()),
            (Some(_), Some("S256")) => {
                return Err(refuse(
                    "invalid_request",
                    "code_challenge has 43 to 128 characters",
                ));
            }
            (Some(_), _) => {
                return Err(refuse(
                    "invalid_request",
                    "code_challenge_method must be S256",
                ));
            }
            (None, _) if client.kind == OidcClientKind::Public => {
                return Err(refuse(
                    "invalid_request",
                    "a public client must send a PKCE code_challenge (S256)",
                ));
            }
            (None, _) => None,
        };
        let nonce = get("nonce").map(str::to_owned);
        if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE) {
            return Err(refuse("invalid_request", "nonce is too long"));
        }
        let prompts: Vec<&str> = get("prompt")
            .unwrap_or_default()
            .split(' ')
            .filter(|p| !p.is_empty())
            .collect();
        if prompts.contains(&"none") && prompts.len() > 1 {
            return Err(refuse("invalid_request", "prompt=none goes alone"));
        }
        if let Some(p) = prompts
            .iter()
            .find(|p| !["none", "login", "consent", "select_account"].contains(p))
        {
            return Err(refuse(
                "invalid_request",
                &format!("prompt={p} is not known"),
            ));
        }
        let prompt = if prompts.contains(&"none") {
            Prompt::None
        } else if prompts.contains(&"login") {
            Prompt::Login
        } else {
            Prompt::Default
        };
        let max_age_s = match get("max_age").map(str::parse::<i64>) {
            None => None,
            Some(Ok(s)) if s >= 0 => Some(s),
            Some(_) => return Err(refuse("invalid_request", "max_age is a number of seconds")),
        };
        let login_hint = get("login_hint")
            .unwrap_or_default()
            .chars()
            .take(254)
            .collect();
        let wants_mfa = get("acr_values")
            .unwrap_or_default()
            .split(' ')
            .any(|v| v == "mfa");
        Ok(AuthorizationRequest {
            tenant,
            client,
            redirect_uri,
            state,
            scopes,
            nonce,
            code_challenge,
            prompt,
            max_age_s,
            login_hint,
            wants_mfa,
        })
    }

    /// The redirect URL that tells the client `error`.
    pub fn authorization_error(
        &self,
        req: &AuthorizationRequest,
        error: &str,
        description: &str,
    ) -> String {
        let issuer = self.issuer(req.tenant.as_str());
        let mut params = vec![("error", error), ("error_description", description)];
        if let Some(state) = &req.state {
            params.push(("state", state));
        }
        params.push(("iss", &issuer));
        with_query(&req.redirect_uri, &params)
    }

    /// Records a new grant for the contact signed in and returns the redirect
    /// URL with its code, `state` and `iss` (RFC 9207).
    pub async fn issue_code(
        &self,
        req: &AuthorizationRequest,
        who: &SignedIn,
    ) -> Result<String, AppError> {
        let grant_id = GeneratedId::generate();
        let server_key_id = self.keyring.current().id();
        let code = self
            .keyring
            .oidc_code(server_key_id, req.tenant.as_str(), grant_id.as_str())
            .ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!("the current server key is missing"))
            })?;
        let cmd = IssueCode {
            tenant: req.tenant.clone(),
            grant_id: grant_id.clone(),
            issued: AuthorizationCodeIssued {
                client_id: req.client.client_id.clone(),
                contact_id: who.contact_id.clone(),
                redirect_uri: req.redirect_uri.clone(),
                scopes: req.scopes.clone(),
                code_challenge: req.code_challenge.clone(),
                nonce: req.nonce.clone(),
                auth_time_ms: who.auth_time_ms,
                expires_at_ms: self.now_ms() + CODE_TTL_MS,
                session_id: who.session_id.clone(),
                server_key_id,
                client_address: who.client_address.as_str().into(),
                amr: who.amr.clone(),
            },
        };
        let actor = Actor::Contact {
            contact_id: who.contact_id.clone(),
        };
        self.execute_derived(&format!("authorize:{grant_id}"), &req.tenant, actor, &cmd)
            .await?;
        let issuer = self.issuer(req.tenant.as_str());
        let mut params = vec![("code", code.as_str())];
        if let Some(state) = &req.state {
            params.push(("state", state));
        }
        params.push(("iss", &issuer));
        Ok(with_query(&req.redirect_uri, &params))
    }
}

/// Records a grant and its code.
#[derive(Debug)]
struct IssueCode {
    tenant: TenantId,
    grant_id: GeneratedId,
    issued: AuthorizationCodeIssued,
}

impl Command for IssueCode {
    type Reply = ();

    async fn decide(&self, _app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        let state: GrantState = unit
            .load(&streams::oidc_grant(&self.tenant, &self.grant_id))
            .await?;
        let stream = GrantStream {
            tenant: &self.tenant,
            grant_id: &self.grant_id,
        };
        Ok((
            oidc_grants::issue_code(&stream, &state, self.issued.clone()),
            (),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_match_exactly_except_a_loopback_port() {
        let cases = [
            ("https://shop.example/cb", "https://shop.example/cb", true),
            ("https://shop.example/cb", "https://shop.example/cb/", false),
            ("https://shop.example/cb", "https://shop.example/CB", false),
            (
                "https://shop.example/cb",
                "https://shop.example:444/cb",
                false,
            ),
            (
                "https://shop.example/cb",
                "https://shop.example/cb?x=1",
                false,
            ),
            ("http://127.0.0.1/cb", "http://127.0.0.1:53122/cb", true),
            (
                "http://127.0.0.1:8000/cb",
                "http://127.0.0.1:53122/cb",
                true,
            ),
            ("http://[::1]/cb", "http://[::1]:4000/cb", true),
            ("http://127.0.0.1/cb", "http://127.0.0.1:53122/cb#x", false),
            ("http://127.0.0.1/cb", "http://127.0.0.1:53122/other", false),
            ("http://127.0.0.1/cb", "http://127.0.0.2:53122/cb", false),
            ("http://localhost/cb", "http://localhost:8000/cb", false),
        ];
        for (registered, presented, expected) in cases {
            assert_eq!(
                redirect_matches(registered, presented),
                expected,
                "{registered} vs {presented}"
            );
        }
    }
}
