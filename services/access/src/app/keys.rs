//! API keys: issuing them (the text derived from the key's id, so a retry
//! hands the same key back while only its SHA-256 is recorded), revoking
//! and rotating them (answered once the old key fails), and checking a
//! presented key.

use super::{App, AppError, CommandContext, Outcome, RevokeKey, RotateKey, TenantCreatedReply};
use crate::domain::Reason;
use crate::domain::policy::Role;
use crate::domain::tenant::{CreateTenant, IssueApiKey};
use crate::domain::values::TenantId;
use crate::secrets::{digests_equal, sha256};
use std::time::Duration;

/// How long a key nobody here knows yet waits for the read models to
/// reach the log's head before it is called unknown.
const KEY_CATCH_UP: Duration = Duration::from_secs(2);

/// A key that was issued: its id and its text, shown once.
#[derive(Clone)]
pub struct IssuedKey {
    /// The key's public id.
    pub key_id: String,
    /// The whole key, `cpa_<id>_<secret>`.
    pub text: String,
}

/// A tenant key that checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyHolder {
    /// The key's tenant.
    pub tenant: TenantId,
    /// The key's public id.
    pub key_id: String,
    /// What it may do.
    pub role: Role,
    /// For rep keys: the sales rep.
    pub rep_id: Option<String>,
}

/// Why a presented key was not accepted.
#[derive(Debug)]
pub enum KeyRefused {
    /// Not a key (any more): the reason says which.
    Refused(Reason),
    /// This replica is behind the log and cannot tell yet.
    NotYetKnown,
    /// The read models could not be read.
    Fault(anyhow::Error),
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IssuedKey({}, <redacted>)", self.key_id)
    }
}

impl App {
    /// Creates a tenant with its first admin key.
    pub async fn create_tenant(
        &self,
        ctx: &CommandContext,
        mut cmd: CreateTenant,
    ) -> Result<Outcome<(TenantCreatedReply, String)>, AppError> {
        cmd.admin_key_sha256 = sha256(&self.keyring.api_key_text(cmd.admin_key_id.as_str()));
        let outcome = self.execute(ctx, &cmd).await?;
        let text = self.keyring.api_key_text(&outcome.reply.admin_key_id);
        Ok(outcome.map(|reply| (reply, text)))
    }

    /// Issues a new key of the caller's tenant.
    pub async fn create_api_key(
        &self,
        ctx: &CommandContext,
        mut cmd: IssueApiKey,
    ) -> Result<Outcome<IssuedKey>, AppError> {
        cmd.key_sha256 = sha256(&self.keyring.api_key_text(cmd.key_id.as_str()));
        let outcome = self.execute(ctx, &cmd).await?;
        Ok(outcome.map(|key_id| self.issued(key_id)))
    }

    /// Revokes a key; answers once it fails here.
    pub async fn revoke_api_key(
        &self,
        ctx: &CommandContext,
        cmd: &RevokeKey,
    ) -> Result<Outcome<String>, AppError> {
        let outcome = self.execute(ctx, cmd).await?;
        self.wait_for(outcome.position).await?;
        Ok(outcome)
    }

    /// Replaces a key with a new one; answers once the old one fails here.
    /// A retry is answered with the first new key (the stored reply's id).
    pub async fn rotate_api_key(
        &self,
        ctx: &CommandContext,
        mut cmd: RotateKey,
    ) -> Result<Outcome<IssuedKey>, AppError> {
        cmd.new_key_sha256 = sha256(&self.keyring.api_key_text(cmd.new_key_id.as_str()));
        let outcome = self.execute(ctx, &cmd).await?;
        self.wait_for(outcome.position).await?;
        Ok(outcome.map(|key_id| self.issued(key_id)))
    }

    fn issued(&self, key_id: String) -> IssuedKey {
        IssuedKey {
            text: self.keyring.api_key_text(&key_id),
            key_id,
        }
    }

    /// The holder of a presented tenant key, whose SHA-256 the caller took
    /// already (`key_sha256`).
    pub async fn api_key_holder(
        &self,
        key: &str,
        key_sha256: &[u8; 32],
    ) -> Result<KeyHolder, KeyRefused> {
        let invalid = || KeyRefused::Refused(Reason::ApiKeyInvalid);
        let key_id = access_keyring::api_key_id_of(key).ok_or_else(invalid)?;
        let read = || self.models.api_key(key_id).map_err(KeyRefused::Fault);
        let mut row = read()?;
        if row.is_none() {
            // A key issued a moment ago, maybe through another replica, may
            // not be projected here yet.
            let latest = self.log.latest().await.ok();
            let head = latest.unwrap_or_else(|| self.head());
            let caught_up = self.models.checkpoint() >= head
                || self.models.wait_for(head, KEY_CATCH_UP).await.is_ok();
            // Read again in any case: the projector may have applied it since
            // the first read, even if it has caught up by now.
            row = read()?;
            if row.is_none() && (latest.is_none() || !caught_up) {
                // Behind the log, or unable to ask it: the key may exist
                // without this replica knowing yet, so "invalid" would be a
                // guess a caller could not retry.
                return Err(KeyRefused::NotYetKnown);
            }
        }
        let row = row.ok_or_else(invalid)?;
        if !digests_equal(key_sha256, &row.key_sha256) {
            return Err(invalid());
        }
        if row.revoked {
            return Err(KeyRefused::Refused(Reason::ApiKeyRevoked));
        }
        let role = Role::parse(&row.role).map_err(|_| invalid())?;
        Ok(KeyHolder {
            tenant: TenantId::trusted(&row.tenant),
            key_id: key_id.to_owned(),
            role,
            rep_id: row.rep_id,
        })
    }
}
