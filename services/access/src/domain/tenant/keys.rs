//! A tenant's API keys: issued, revoked, rotated.

use super::TenantState;
use crate::domain::Reason;
use crate::domain::policy::{Role, Staff};
use crate::domain::values::{GeneratedId, Name, TenantId};
use crate::domain::{Change, DomainError, streams};
use access_catalogue::catalogue::{ApiKeyIssued, ApiKeyRevoked, Event, TenantEvent};

/// Issue an API key (admins).
#[derive(Clone, Debug)]
pub struct IssueApiKey {
    /// The tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The new key's public id.
    pub key_id: GeneratedId,
    /// SHA-256 of the new key's text.
    pub key_sha256: [u8; 32],
    /// Its role.
    pub role: Role,
    /// Who holds it.
    pub name: Name,
    /// For rep keys: the sales rep.
    pub rep_id: Option<String>,
}

/// Decides `CreateApiKey`: a rep key names its rep; other keys name none.
pub fn issue_key(state: &TenantState, cmd: IssueApiKey) -> Result<Vec<Change>, DomainError> {
    cmd.by.may_manage_tenant()?;
    match (&cmd.role, &cmd.rep_id) {
        (Role::Rep, None) => {
            return Err(DomainError::invalid(
                "rep_id",
                "a rep key needs the sales rep it acts for",
            ));
        }
        (Role::Rep, Some(_)) | (_, None) => {}
        (_, Some(_)) => {
            return Err(DomainError::invalid(
                "rep_id",
                "only rep keys name a sales rep",
            ));
        }
    }
    if state.keys.contains_key(cmd.key_id.as_str()) {
        return Err(DomainError::AlreadyExists("that key id exists".into()));
    }
    Ok(vec![Change::new(
        streams::tenant(&cmd.tenant),
        Event::Tenant(TenantEvent::ApiKeyIssued(ApiKeyIssued {
            key_id: cmd.key_id.to_string(),
            role: cmd.role.as_str().into(),
            key_sha256: cmd.key_sha256,
            name: cmd.name.to_string(),
            rep_id: cmd.rep_id,
        })),
    )])
}

/// Decides `RevokeApiKey`: the key stops working at once.
pub fn revoke_key(
    state: &TenantState,
    tenant: &TenantId,
    by: &Staff,
    key_id: &str,
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_tenant()?;
    match state.keys.get(key_id) {
        None => Err(DomainError::NotFound("API key")),
        Some(k) if k.revoked => Err(DomainError::precondition(
            Reason::AlreadyRevoked,
            "the key is already revoked",
        )),
        Some(_) => Ok(vec![Change::new(
            streams::tenant(tenant),
            Event::Tenant(TenantEvent::ApiKeyRevoked(ApiKeyRevoked {
                key_id: key_id.to_owned(),
            })),
        )]),
    }
}

/// Decides `RotateApiKey`: a new key with the old one's role, holder and
/// rep, and the old key revoked, in one step (no moment with neither).
pub fn rotate_key(
    state: &TenantState,
    tenant: &TenantId,
    by: &Staff,
    old_key_id: &str,
    new_key_id: &GeneratedId,
    new_key_sha256: [u8; 32],
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_tenant()?;
    let old = match state.keys.get(old_key_id) {
        None => return Err(DomainError::NotFound("API key")),
        Some(k) if k.revoked => {
            return Err(DomainError::precondition(
                Reason::AlreadyRevoked,
                "a revoked key cannot be rotated; create a new one",
            ));
        }
        Some(k) => k,
    };
    if state.keys.contains_key(new_key_id.as_str()) {
        return Err(DomainError::AlreadyExists("that key id exists".into()));
    }
    Ok(vec![
        Change::new(
            streams::tenant(tenant),
            Event::Tenant(TenantEvent::ApiKeyIssued(ApiKeyIssued {
                key_id: new_key_id.to_string(),
                role: old.role.clone(),
                key_sha256: new_key_sha256,
                name: old.name.clone(),
                rep_id: old.rep_id.clone(),
            })),
        ),
        Change::new(
            streams::tenant(tenant),
            Event::Tenant(TenantEvent::ApiKeyRevoked(ApiKeyRevoked {
                key_id: old_key_id.to_owned(),
            })),
        ),
    ])
}
