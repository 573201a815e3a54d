//! The keys a tenant's OpenID Connect tokens are signed with: made from the
//! server key (only the public half enters the log), rotated by an admin,
//! and published while any token they signed may still be presented.

use super::{App, AppError, Command, CommandContext, Outcome, Unit};
use crate::domain::policy::Staff;
use crate::domain::tenant::{self, NewSigningKey, TenantState};
use crate::domain::values::{GeneratedId, TenantId};
use crate::domain::{Change, streams};
use crate::projections::SigningKeyRow;

/// The algorithm every signing key uses for now.
const ALGORITHM: &str = "EdDSA";

/// `RotateSigningKey` as received, with the new key made.
#[derive(Clone, Debug)]
pub struct RotateSigningKeyCommand {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The key that signs from now on.
    pub key: NewSigningKey,
}

impl Command for RotateSigningKeyCommand {
    type Reply = String;

    async fn decide(
        &self,
        app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, String), AppError> {
        let state: TenantState = unit.load(&streams::tenant(&self.tenant)).await?;
        let changes = tenant::rotate_signing_key(
            &state,
            &self.tenant,
            &self.by,
            self.key.clone(),
            app.now_ms(),
        )?;
        Ok((changes, self.key.key_id.to_string()))
    }
}

impl App {
    /// A fresh signing key for `tenant`: its private half derived from the
    /// current server key, its public half to be recorded.
    pub fn new_signing_key(&self, tenant: &TenantId) -> Result<NewSigningKey, AppError> {
        let key_id = GeneratedId::generate();
        let server_key_id = self.keyring.current().id();
        let seed = self
            .keyring
            .oidc_signing_seed(server_key_id, tenant.as_str(), key_id.as_str())
            .ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!("the current server key is missing"))
            })?;
        let public_key = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes()
            .to_vec();
        Ok(NewSigningKey {
            key_id,
            algorithm: ALGORITHM.to_owned(),
            public_key,
            server_key_id,
        })
    }

    /// Rotates the tenant's signing key; answers once the new key is
    /// published.
    pub async fn rotate_signing_key(
        &self,
        ctx: &CommandContext,
        tenant: &TenantId,
        by: Staff,
    ) -> Result<Outcome<String>, AppError> {
        let cmd = RotateSigningKeyCommand {
            tenant: tenant.clone(),
            by,
            key: self.new_signing_key(tenant)?,
        };
        let outcome = self.execute(ctx, &cmd).await?;
        self.wait_for(outcome.position).await?;
        Ok(outcome)
    }

    /// The tenant's keys a token may still be checked with: the one that
    /// signs, and retired ones until their tokens have expired.
    pub fn published_signing_keys(&self, tenant: &str) -> Result<Vec<SigningKeyRow>, AppError> {
        let now = self.now_ms();
        let keys = self
            .models
            .signing_keys_of(tenant)
            .map_err(AppError::Internal)?;
        Ok(keys
            .into_iter()
            .filter(|k| k.retired_until_ms.is_none_or(|until| until > now))
            .collect())
    }
}
