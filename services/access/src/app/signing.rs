//! The keys a tenant's OpenID Connect tokens are signed with: made from the
//! server key (only the public half enters the log), rotated by an admin,
//! and published while any token they signed may still be presented.

use super::jwt::SigningSecret;
use super::{App, AppError, Command, CommandContext, Outcome, Unit};
use crate::domain::oidc_clients::SIGNING_ALGS;
use crate::domain::policy::Staff;
use crate::domain::tenant::{self, NewSigningKey, TenantState};
use crate::domain::values::{GeneratedId, TenantId};
use crate::domain::{Change, streams};
use crate::projections::SigningKeyRow;

/// `RotateSigningKey` as received, with the new key made.
#[derive(Clone, Debug)]
pub struct RotateSigningKeyCommand {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The keys that sign from now on, one of each algorithm.
    pub keys: Vec<NewSigningKey>,
}

impl Command for RotateSigningKeyCommand {
    /// The new keys' ids, comma-separated (a layout older replies share).
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
            self.keys.clone(),
            app.now_ms(),
        )?;
        let ids: Vec<String> = self.keys.iter().map(|k| k.key_id.to_string()).collect();
        Ok((changes, ids.join(",")))
    }
}

impl App {
    /// Fresh signing keys for `tenant`, one of each algorithm: their
    /// private halves derived from the current server key, their public
    /// halves to be recorded.
    pub fn new_signing_keys(&self, tenant: &TenantId) -> Result<Vec<NewSigningKey>, AppError> {
        SIGNING_ALGS
            .iter()
            .map(|alg| self.new_signing_key(tenant, alg))
            .collect()
    }

    fn new_signing_key(
        &self,
        tenant: &TenantId,
        algorithm: &str,
    ) -> Result<NewSigningKey, AppError> {
        let server_key_id = self.keyring.current().id();
        // A P-256 seed outside the curve's order (about one in 2^32) is
        // skipped for another key id.
        for _ in 0..8 {
            let key_id = GeneratedId::generate();
            let seed = self
                .keyring
                .oidc_signing_seed(server_key_id, tenant.as_str(), key_id.as_str())
                .ok_or_else(|| {
                    AppError::Internal(anyhow::anyhow!("the current server key is missing"))
                })?;
            if let Some(key) = SigningSecret::from_seed(algorithm, &seed) {
                return Ok(NewSigningKey {
                    key_id,
                    algorithm: algorithm.to_owned(),
                    public_key: key.public_key(),
                    server_key_id,
                });
            }
        }
        Err(AppError::Internal(anyhow::anyhow!(
            "no {algorithm} key could be made from the server key"
        )))
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
            keys: self.new_signing_keys(tenant)?,
        };
        let outcome = self.execute(ctx, &cmd).await?;
        self.wait_for(outcome.position).await?;
        Ok(outcome)
    }

    /// A published key of `tenant` by its id: the one that signs, or a
    /// retired one until its tokens have expired.
    pub fn published_signing_key(&self, tenant: &str, key_id: &str) -> Option<SigningKeyRow> {
        let now = self.now_ms();
        self.models
            .signing_key(tenant, key_id)
            .ok()
            .flatten()
            .filter(|k| k.retired_until_ms.is_none_or(|until| until > now))
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
