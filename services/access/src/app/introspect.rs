//! What a resource server or a portal asks of a token after it was issued:
//! introspection (RFC 7662), userinfo, revocation (RFC 7009). A token is
//! active only while its grant is live and its contact may still sign in,
//! so a disabled contact's tokens stop working at once, everywhere.

use super::jwt;
use super::{App, AppError, OauthError};
use crate::domain::values::TenantId;
use crate::projections::{OidcClientRow, OidcGrantRow};
use access_catalogue::catalogue::OidcClientKind;
use serde_json::{Map, Value, json};

/// A live access token: its claims and its grant.
pub struct ActiveToken {
    /// The token's claims.
    pub claims: Map<String, Value>,
    /// Its grant's row.
    pub grant: OidcGrantRow,
}

impl App {
    /// A tenant's OpenID Connect client as it is now, if registered and
    /// not removed.
    pub fn oidc_client_now(
        &self,
        tenant: &str,
        client_id: &str,
    ) -> Result<Option<OidcClientRow>, AppError> {
        self.models
            .oidc_client(tenant, client_id)
            .map_err(AppError::Internal)
    }

    /// The grant row, if the grant has not ended.
    fn live_grant(&self, tenant: &str, grant_id: &str) -> Result<Option<OidcGrantRow>, AppError> {
        Ok(self
            .models
            .oidc_grant(tenant, grant_id)
            .map_err(AppError::Internal)?
            .filter(|g| g.ended.is_none()))
    }

    /// A genuine, unexpired access token of `tenant` whose grant is live and
    /// whose contact may still sign in.
    pub fn active_access_token(
        &self,
        tenant: &str,
        token: &str,
    ) -> Result<Option<ActiveToken>, AppError> {
        let key = |kid: &str| self.published_signing_key(tenant, kid);
        let Some(claims) = jwt::verify(token, "at+jwt", key) else {
            return Ok(None);
        };
        let now_s = self.now_ms() / 1000;
        let fresh = claims.get("iss").and_then(Value::as_str) == Some(self.issuer(tenant).as_str())
            && claims
                .get("exp")
                .and_then(Value::as_i64)
                .is_some_and(|exp| exp > now_s);
        let grant_id = claims
            .get("grant")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !fresh {
            return Ok(None);
        }
        let Some(grant) = self.live_grant(tenant, grant_id)? else {
            return Ok(None);
        };
        // A removed client's tokens die with it.
        if self.oidc_client_now(tenant, &grant.client_id)?.is_none()
            || self.may_sign_in(tenant, &grant.contact_id)?.is_err()
        {
            return Ok(None);
        }
        Ok(Some(ActiveToken { claims, grant }))
    }

    /// The userinfo answer for a bearer access token: the claims its scopes
    /// allow, as they are now.
    pub fn userinfo(
        &self,
        tenant: &str,
        token: &str,
    ) -> Result<Option<Map<String, Value>>, AppError> {
        let Some(active) = self.active_access_token(tenant, token)? else {
            return Ok(None);
        };
        let scopes: Vec<String> = active
            .claims
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .split(' ')
            .map(str::to_owned)
            .collect();
        let Ok(mut claims) = self
            .sign_in_claims(tenant, &active.grant.contact_id, &scopes)?
            .map(|c| c.claims)
        else {
            return Ok(None);
        };
        claims.insert("sub".into(), json!(active.grant.contact_id));
        Ok(Some(claims))
    }

    /// The RFC 7662 answer about `token` to an authenticated confidential
    /// client: access tokens of the tenant, and the client's own refresh tokens.
    pub fn introspect(
        &self,
        tenant: &str,
        client: &OidcClientRow,
        token: &str,
    ) -> Result<Value, OauthError> {
        if client.kind != OidcClientKind::Confidential {
            return Err(OauthError::new(
                "invalid_client",
                "introspection is for confidential clients",
            ));
        }
        let inactive = json!({ "active": false });
        if let Some(active) = self.active_access_token(tenant, token)? {
            let mut answer = active.claims;
            answer.insert("active".into(), json!(true));
            answer.insert("token_type".into(), json!("Bearer"));
            return Ok(Value::Object(answer));
        }
        let Some(refresh) = self.keyring.verify_oidc_refresh(tenant, token) else {
            return Ok(inactive);
        };
        let Some(grant) = self.live_grant(tenant, &refresh.grant)? else {
            return Ok(inactive);
        };
        let current = grant.client_id == client.client_id
            && grant.generation == refresh.generation
            && grant.refresh_expires_at_ms > self.now_ms()
            && self.may_sign_in(tenant, &grant.contact_id)?.is_ok();
        if !current {
            return Ok(inactive);
        }
        Ok(json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": grant.client_id,
            "sub": grant.contact_id,
            "exp": grant.refresh_expires_at_ms / 1000,
            "iss": self.issuer(tenant),
        }))
    }

    /// Revokes the grant behind a refresh or access token of `client`
    /// (RFC 7009: whatever the token, the answer is the same).
    pub async fn revoke_token(
        &self,
        tenant: &TenantId,
        client: &OidcClientRow,
        token: &str,
    ) -> Result<(), OauthError> {
        if let Some(refresh) = self.keyring.verify_oidc_refresh(tenant.as_str(), token) {
            return self
                .revoke_grant(tenant, client, &refresh.grant, Some(refresh.server_key_id))
                .await;
        }
        let key = |kid: &str| self.published_signing_key(tenant.as_str(), kid);
        let Some(claims) = jwt::verify(token, "at+jwt", key) else {
            return Ok(());
        };
        if claims.get("client_id").and_then(Value::as_str) != Some(client.client_id.as_str()) {
            return Ok(());
        }
        let grant_id = claims
            .get("grant")
            .and_then(Value::as_str)
            .unwrap_or_default();
        // Signed by the tenant's key, the token names its grant truly.
        self.revoke_grant(tenant, client, grant_id, None).await
    }
}
