//! The keys a tenant's OpenID Connect tokens are signed with. One key signs
//! at a time; a rotation retires it, and a retired key stays published until
//! every token it signed has expired. The private halves are derived from
//! the server key, never recorded.

use super::TenantState;
use crate::domain::policy::Staff;
use crate::domain::values::{GeneratedId, TenantId};
use crate::domain::{Change, DomainError, streams};
use access_catalogue::catalogue::{Event, SigningKeyAdded, SigningKeyRetired, TenantEvent};

/// How long a retired key stays published: the longest token lifetime a
/// client may have, and five minutes for clocks that disagree.
pub const PUBLISHED_AFTER_RETIREMENT_MS: i64 =
    (crate::domain::oidc_clients::ACCESS_TOKEN_TTL_S.1 as i64 + 300) * 1000;

/// What the log says about one signing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKeyState {
    /// Its id.
    pub key_id: String,
    /// Its JOSE algorithm.
    pub algorithm: String,
    /// Its public half.
    pub public_key: Vec<u8>,
    /// The server key its private half is derived from.
    pub server_key_id: u8,
    /// Until when a retired key stays published; `None` while it signs.
    pub retired_until_ms: Option<i64>,
}

/// A key about to be added.
#[derive(Clone, Debug)]
pub struct NewSigningKey {
    /// Its id.
    pub key_id: GeneratedId,
    /// Its JOSE algorithm.
    pub algorithm: String,
    /// Its public half.
    pub public_key: Vec<u8>,
    /// The server key its private half is derived from.
    pub server_key_id: u8,
}

impl TenantState {
    /// The key tokens are signed with now, if there is one.
    pub fn signing_key(&self) -> Option<&SigningKeyState> {
        self.signing_keys
            .iter()
            .rev()
            .find(|k| k.retired_until_ms.is_none())
    }

    pub(super) fn evolve_signing(&mut self, event: &TenantEvent) {
        match event {
            TenantEvent::SigningKeyAdded(k) => self.signing_keys.push(SigningKeyState {
                key_id: k.key_id.clone(),
                algorithm: k.algorithm.clone(),
                public_key: k.public_key.clone(),
                server_key_id: k.server_key_id,
                retired_until_ms: None,
            }),
            TenantEvent::SigningKeyRetired(r) => {
                if let Some(k) = self.signing_keys.iter_mut().find(|k| k.key_id == r.key_id) {
                    k.retired_until_ms = Some(r.published_until_ms);
                }
            }
            _ => {}
        }
    }
}

fn added(tenant: &TenantId, key: NewSigningKey) -> Change {
    Change::new(
        streams::tenant(tenant),
        Event::Tenant(TenantEvent::SigningKeyAdded(SigningKeyAdded {
            key_id: key.key_id.to_string(),
            algorithm: key.algorithm,
            public_key: key.public_key,
            server_key_id: key.server_key_id,
        })),
    )
}

/// Decides `RotateSigningKey` (admins): the new key signs from now on; the
/// one it replaces stays published for [`PUBLISHED_AFTER_RETIREMENT_MS`].
pub fn rotate_signing_key(
    state: &TenantState,
    tenant: &TenantId,
    by: &Staff,
    key: NewSigningKey,
    now_ms: i64,
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_tenant()?;
    if !state.exists {
        return Err(DomainError::NotFound("tenant"));
    }
    let mut changes: Vec<Change> = state
        .signing_keys
        .iter()
        .filter(|k| k.retired_until_ms.is_none())
        .map(|k| {
            Change::new(
                streams::tenant(tenant),
                Event::Tenant(TenantEvent::SigningKeyRetired(SigningKeyRetired {
                    key_id: k.key_id.clone(),
                    published_until_ms: now_ms.saturating_add(PUBLISHED_AFTER_RETIREMENT_MS),
                })),
            )
        })
        .collect();
    changes.push(added(tenant, key));
    Ok(changes)
}

/// The tenant's first signing key, when it has none that signs (as the
/// first client is registered); nothing otherwise.
pub fn first_signing_key(
    state: &TenantState,
    tenant: &TenantId,
    key: NewSigningKey,
) -> Vec<Change> {
    if state.signing_key().is_some() {
        Vec::new()
    } else {
        vec![added(tenant, key)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Aggregate;
    use crate::domain::policy::Role;

    fn admin() -> Staff {
        Staff {
            role: Role::Admin,
            rep_id: None,
        }
    }

    fn key(id: &str) -> NewSigningKey {
        NewSigningKey {
            key_id: GeneratedId::trusted(id),
            algorithm: "EdDSA".into(),
            public_key: vec![1; 32],
            server_key_id: 1,
        }
    }

    fn tenant() -> TenantState {
        TenantState {
            exists: true,
            ..TenantState::default()
        }
    }

    fn after(state: TenantState, changes: &[Change]) -> TenantState {
        changes.iter().fold(state, |s, c| s.evolve(&c.event))
    }

    #[test]
    fn a_rotation_retires_the_signing_key_and_keeps_it_published_for_a_while() {
        let t = TenantId::trusted("acme");
        let first = first_signing_key(&tenant(), &t, key("k1"));
        let state = after(tenant(), &first);
        assert_eq!(state.signing_key().map(|k| k.key_id.as_str()), Some("k1"));
        assert!(first_signing_key(&state, &t, key("k9")).is_empty());
        let rotated = rotate_signing_key(&state, &t, &admin(), key("k2"), 1_000).expect("rotated");
        let state = after(state, &rotated);
        assert_eq!(state.signing_key().map(|k| k.key_id.as_str()), Some("k2"));
        assert_eq!(
            state.signing_keys[0].retired_until_ms,
            Some(1_000 + PUBLISHED_AFTER_RETIREMENT_MS)
        );
    }

    #[test]
    fn only_an_admin_rotates_and_only_an_existing_tenant() {
        let t = TenantId::trusted("acme");
        let rep = Staff {
            role: Role::Rep,
            rep_id: Some("r".into()),
        };
        assert!(matches!(
            rotate_signing_key(&tenant(), &t, &rep, key("k1"), 0),
            Err(DomainError::PermissionDenied { .. })
        ));
        assert!(matches!(
            rotate_signing_key(&TenantState::default(), &t, &admin(), key("k1"), 0),
            Err(DomainError::NotFound(_))
        ));
    }
}
