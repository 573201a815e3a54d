//! The token endpoint's work: authenticate the client, redeem a code or
//! rotate a refresh token through the grant's stream (so each works once,
//! whichever replica is asked), and sign the tokens.

use super::{App, AppError, Command, Unit};
use crate::domain::oidc_grants::{self, GrantRefusal, GrantState, GrantStream};
use crate::domain::values::{GeneratedId, TenantId};
use crate::domain::{Change, DomainError, Reason, streams};
use crate::projections::OidcClientRow;
use access_catalogue::Actor;
use access_catalogue::catalogue::{GrantEnd, OidcClientKind};
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;

/// An OAuth error answer (RFC 6749 §5.2): its code and words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OauthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, …
    pub error: &'static str,
    /// For the client's developers.
    pub description: String,
}

impl OauthError {
    /// An error with its words.
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        OauthError {
            error,
            description: description.into(),
        }
    }
}

impl From<AppError> for OauthError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Domain(DomainError::Unauthenticated { message, .. }) => {
                OauthError::new("invalid_grant", message)
            }
            AppError::Unavailable(m) | AppError::Busy(m) => {
                OauthError::new("temporarily_unavailable", m)
            }
            AppError::Behind(b) => OauthError::new("temporarily_unavailable", b.to_string()),
            AppError::Conflict(_) => {
                OauthError::new("temporarily_unavailable", "the sign-in is busy; retry")
            }
            other => {
                tracing::error!(error = %other, "token endpoint");
                OauthError::new("server_error", "the token could not be issued")
            }
        }
    }
}

/// How a client said who it is.
#[derive(Clone, Debug, Default)]
pub struct ClientCredentials {
    /// The client id, from HTTP Basic or the form.
    pub client_id: String,
    /// The secret, if one was sent.
    pub secret: Option<String>,
}

/// Tokens for a client (RFC 6749 §5.1 with the OpenID Connect ID token).
#[derive(Clone, Debug, Serialize)]
pub struct TokenResponse {
    /// The access token, a JWT (RFC 9068).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// The access token's life, in seconds.
    pub expires_in: u32,
    /// The refresh token; replaced by each refresh.
    pub refresh_token: String,
    /// The ID token.
    pub id_token: String,
    /// The scopes granted.
    pub scope: String,
}

/// What a grant's stream gives the tokens.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Granted {
    contact_id: String,
    scopes: Vec<String>,
    nonce: Option<String>,
    auth_time_ms: i64,
    session_id: String,
    generation: u32,
    amr: Vec<String>,
}

/// What a token request does to a grant.
#[derive(Clone, Debug)]
enum GrantAction {
    Redeem {
        redirect_uri: String,
        verifier: Option<String>,
    },
    Refresh {
        generation: u32,
    },
    Revoke(GrantEnd),
}

/// One decision on a grant's stream.
#[derive(Clone, Debug)]
struct GrantCommand {
    tenant: TenantId,
    grant_id: GeneratedId,
    client_id: String,
    /// The server key the presented code or refresh token was made with
    /// (`None` when a signed access token named the grant).
    server_key_id: Option<u8>,
    refresh_ttl_ms: i64,
    action: GrantAction,
}

fn refused(refusal: GrantRefusal) -> AppError {
    DomainError::Unauthenticated {
        reason: Reason::BadLoginCode,
        message: refusal.describe().into(),
    }
    .into()
}

impl Command for GrantCommand {
    /// The grant, or the words of a refusal that ended it.
    type Reply = Result<Granted, String>;

    async fn decide(
        &self,
        app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, Self::Reply), AppError> {
        let state: GrantState = unit
            .load(&streams::oidc_grant(&self.tenant, &self.grant_id))
            .await?;
        let stream = GrantStream {
            tenant: &self.tenant,
            grant_id: &self.grant_id,
        };
        let Some(issued) = state.issued.as_ref().filter(|i| {
            i.client_id == self.client_id && self.server_key_id.is_none_or(|k| k == i.server_key_id)
        }) else {
            return Err(refused(GrantRefusal::Unknown));
        };
        let granted = Granted {
            contact_id: issued.contact_id.clone(),
            scopes: issued.scopes.clone(),
            nonce: issued.nonce.clone(),
            auth_time_ms: issued.auth_time_ms,
            session_id: issued.session_id.clone(),
            generation: state.generation + 1,
            amr: issued.amr.clone(),
        };
        let now_ms = app.now_ms();
        let decision = match &self.action {
            GrantAction::Revoke(reason) => {
                return Ok((oidc_grants::revoke(&stream, &state, *reason), Ok(granted)));
            }
            _ if state.ended.is_some() => return Err(refused(GrantRefusal::Ended)),
            GrantAction::Redeem {
                redirect_uri,
                verifier,
            } => oidc_grants::redeem(
                &stream,
                &state,
                &oidc_grants::Redeem {
                    client_id: &self.client_id,
                    redirect_uri,
                    verifier: verifier.as_deref(),
                    now_ms,
                    refresh_ttl_ms: self.refresh_ttl_ms,
                },
            ),
            GrantAction::Refresh { generation } => oidc_grants::refresh(
                &stream,
                &state,
                &oidc_grants::Refresh {
                    client_id: &self.client_id,
                    generation: *generation,
                    now_ms,
                    refresh_ttl_ms: self.refresh_ttl_ms,
                },
            ),
        };
        // Tokens only for a contact who may still sign in; one who may not
        // ends the grant, so every replica refuses it from now on.
        if decision.outcome.is_ok()
            && let Err(why) = app.may_sign_in(self.tenant.as_str(), &issued.contact_id)?
        {
            let changes = oidc_grants::revoke(&stream, &state, GrantEnd::AccessLost);
            return Ok((changes, Err(format!("{why}; sign in again"))));
        }
        match decision.outcome {
            Ok(()) => Ok((decision.changes, Ok(granted))),
            // A refusal that ends the grant is recorded; others write nothing.
            Err(r) if !decision.changes.is_empty() => {
                Ok((decision.changes, Err(r.describe().to_owned())))
            }
            Err(r) => Err(refused(r)),
        }
    }
}

impl App {
    /// The client a request comes from, authenticated: a confidential client
    /// by its current secret, a public one by its id alone.
    pub fn authenticate_client(
        &self,
        tenant: &str,
        credentials: &ClientCredentials,
    ) -> Result<OidcClientRow, OauthError> {
        let unknown = || OauthError::new("invalid_client", "client authentication failed");
        if credentials.client_id.is_empty() || credentials.client_id.len() > 64 {
            return Err(unknown());
        }
        let client = self
            .models
            .oidc_client(tenant, &credentials.client_id)
            .map_err(|e| OauthError::from(AppError::Internal(e)))?
            .ok_or_else(unknown)?;
        let proved = match (client.kind, &client.secret_sha256, &credentials.secret) {
            (OidcClientKind::Public, _, None) => true,
            (OidcClientKind::Confidential, Some(hash), Some(secret)) => {
                bool::from(crate::secrets::sha256(secret).ct_eq(hash))
            }
            _ => false,
        };
        if proved { Ok(client) } else { Err(unknown()) }
    }

    /// Redeems an authorization code for tokens.
    pub async fn exchange_code(
        &self,
        tenant: &TenantId,
        client: &OidcClientRow,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) -> Result<TokenResponse, OauthError> {
        let token = self
            .keyring
            .verify_oidc_code(tenant.as_str(), code)
            .ok_or_else(|| OauthError::new("invalid_grant", GrantRefusal::Unknown.describe()))?;
        if client.kind == OidcClientKind::Public && verifier.is_none() {
            return Err(OauthError::new(
                "invalid_grant",
                GrantRefusal::VerifierMismatch.describe(),
            ));
        }
        let action = GrantAction::Redeem {
            redirect_uri: redirect_uri.to_owned(),
            verifier: verifier.map(str::to_owned),
        };
        self.run_grant(tenant, client, &token, action).await
    }

    /// Rotates a refresh token; a replaced one ends the grant.
    pub async fn refresh_tokens(
        &self,
        tenant: &TenantId,
        client: &OidcClientRow,
        refresh_token: &str,
    ) -> Result<TokenResponse, OauthError> {
        let token = self
            .keyring
            .verify_oidc_refresh(tenant.as_str(), refresh_token)
            .ok_or_else(|| OauthError::new("invalid_grant", GrantRefusal::Unknown.describe()))?;
        let action = GrantAction::Refresh {
            generation: token.generation,
        };
        self.run_grant(tenant, client, &token, action).await
    }

    /// Ends a grant of `client` named by a genuine token.
    pub(super) async fn revoke_grant(
        &self,
        tenant: &TenantId,
        client: &OidcClientRow,
        grant_id: &str,
        server_key_id: Option<u8>,
    ) -> Result<(), OauthError> {
        let action = GrantAction::Revoke(GrantEnd::RevokedByClient);
        match self
            .grant_command(tenant, client, grant_id, server_key_id, action)
            .await
        {
            Ok(_) | Err(AppError::Domain(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn grant_command(
        &self,
        tenant: &TenantId,
        client: &OidcClientRow,
        grant_id: &str,
        server_key_id: Option<u8>,
        action: GrantAction,
    ) -> Result<Result<Granted, String>, AppError> {
        let grant_id = GeneratedId::parse(grant_id).map_err(|_| refused(GrantRefusal::Unknown))?;
        let cmd = GrantCommand {
            tenant: tenant.clone(),
            grant_id,
            client_id: client.client_id.clone(),
            server_key_id,
            refresh_ttl_ms: i64::from(client.settings.refresh_token_ttl_s) * 1000,
            action,
        };
        // Every token request is its own: a replayed code must meet the
        // grant's state, never a stored answer.
        let request_id = format!("oidc-token:{}", uuid::Uuid::new_v4());
        let actor = Actor::System {
            component: format!("oidc-client:{}", client.client_id),
        };
        let outcome = self
            .execute_derived(&request_id, tenant, actor, &cmd)
            .await?;
        // Userinfo and introspection read the grant's row: let them see it.
        // The tokens are the client's either way: what is written is done.
        if let Err(e) = self.wait_for(outcome.position).await {
            tracing::warn!(error = %e, "a grant's change is not yet readable");
        }
        Ok(outcome.reply)
    }

    async fn run_grant(
        &self,
        tenant: &TenantId,
        client: &OidcClientRow,
        token: &access_keyring::GrantToken,
        action: GrantAction,
    ) -> Result<TokenResponse, OauthError> {
        // What can fail for want of a key fails before the code or refresh
        // token is used up, so the client's retry can still succeed.
        let signer = self.token_signer(tenant.as_str(), &client.settings.token_signing_alg)?;
        let granted = self
            .grant_command(
                tenant,
                client,
                &token.grant,
                Some(token.server_key_id),
                action,
            )
            .await?
            .map_err(|why| OauthError::new("invalid_grant", why))?;
        self.mint(
            tenant,
            client,
            &signer,
            &token.grant,
            token.server_key_id,
            &granted,
        )
    }

    fn mint(
        &self,
        tenant: &TenantId,
        client: &OidcClientRow,
        signer: &super::TokenSigner,
        grant_id: &str,
        server_key_id: u8,
        granted: &Granted,
    ) -> Result<TokenResponse, OauthError> {
        let signed = self
            .sign_in_claims(tenant.as_str(), &granted.contact_id, &granted.scopes)?
            .map_err(|why| OauthError::new("invalid_grant", why))?;
        let now_s = self.now_ms() / 1000;
        let ttl = client.settings.access_token_ttl_s;
        let issuer = self.issuer(tenant.as_str());
        let scope = granted.scopes.join(" ");
        let access = json!({
            "iss": issuer,
            "sub": granted.contact_id,
            "aud": client.client_id,
            "client_id": client.client_id,
            "exp": now_s + i64::from(ttl),
            "iat": now_s,
            "jti": format!("{grant_id}.{}", granted.generation),
            "scope": scope,
            "grant": grant_id,
            "tenant": tenant.as_str(),
        });
        let mut id = signed.claims;
        for (k, v) in [
            ("iss", json!(issuer)),
            ("sub", json!(granted.contact_id)),
            ("aud", json!(client.client_id)),
            ("azp", json!(client.client_id)),
            ("exp", json!(now_s + i64::from(ttl))),
            ("iat", json!(now_s)),
            ("auth_time", json!(granted.auth_time_ms / 1000)),
            ("sid", json!(granted.session_id)),
            ("amr", json!(granted.amr)),
            ("acr", json!(super::acr_of(&granted.amr))),
        ] {
            id.insert(k.into(), v);
        }
        // The nonce binds the first ID token to the browser's request; a
        // refreshed one carries none (OpenID Connect Core §12.2).
        if let (1, Some(nonce)) = (granted.generation, &granted.nonce) {
            id.insert("nonce".into(), json!(nonce));
        }
        let refresh_token = self
            .keyring
            .oidc_refresh_token(server_key_id, tenant.as_str(), grant_id, granted.generation)
            .ok_or_else(|| {
                OauthError::new("invalid_grant", "the sign-in's key is gone; sign in again")
            })?;
        Ok(TokenResponse {
            access_token: signer.sign("at+jwt", &access),
            token_type: "Bearer",
            expires_in: ttl,
            refresh_token,
            id_token: signer.sign("JWT", &serde_json::Value::Object(id)),
            scope,
        })
    }
}
