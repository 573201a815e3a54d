//! The keys a tenant's OpenID Connect tokens are signed with. One key of
//! each algorithm signs at a time; a rotation retires them, and a retired key
//! stays published until every token it signed has expired. The private
//! halves are derived from the server key, never recorded.

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
    /// The key tokens of `algorithm` are signed with now, if there is one.
    pub fn signing_key(&self, algorithm: &str) -> Option<&SigningKeyState> {
        self.signing_keys
            .iter()
            .rev()
            .find(|k| k.retired_until_ms.is_none() && k.algorithm == algorithm)
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

/// Decides `RotateSigningKey` (admins): the new keys sign from now on; the
/// ones they replace stay published for [`PUBLISHED_AFTER_RETIREMENT_MS`].
pub fn rotate_signing_key(
    state: &TenantState,
    tenant: &TenantId,
    by: &Staff,
    keys: Vec<NewSigningKey>,
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
    changes.extend(keys.into_iter().map(|key| added(tenant, key)));
    Ok(changes)
}

/// A first signing key of each algorithm the tenant has none of that signs
/// (as a client is registered or changed); nothing otherwise.
pub fn first_signing_keys(
    state: &TenantState,
    tenant: &TenantId,
    keys: Vec<NewSigningKey>,
) -> Vec<Change> {
    keys.into_iter()
        .filter(|key| state.signing_key(&key.algorithm).is_none())
        .map(|key| added(tenant, key))
        .collect()
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

    fn key_of(id: &str, algorithm: &str) -> NewSigningKey {
        NewSigningKey {
            key_id: GeneratedId::trusted(id),
            algorithm: algorithm.into(),
            public_key: vec![1; 32],
            server_key_id: 1,
        }
    }

    fn key(id: &str) -> Vec<NewSigningKey> {
        vec![key_of(id, "EdDSA")]
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
        let first = first_signing_keys(&tenant(), &t, key("k1"));
        let state = after(tenant(), &first);
        let signing = |s: &TenantState| s.signing_key("EdDSA").map(|k| k.key_id.clone());
        assert_eq!(signing(&state).as_deref(), Some("k1"));
        assert!(first_signing_keys(&state, &t, key("k9")).is_empty());
        let rotated = rotate_signing_key(&state, &t, &admin(), key("k2"), 1_000).expect("rotated");
        let state = after(state, &rotated);
        assert_eq!(signing(&state).as_deref(), Some("k2"));
        assert_eq!(
            state.signing_keys[0].retired_until_ms,
            Some(1_000 + PUBLISHED_AFTER_RETIREMENT_MS)
        );
    }

    #[test]
    fn each_algorithm_has_its_own_signing_key_and_a_rotation_replaces_all() {
        let t = TenantId::trusted("acme");
        // A tenant from before ES256 gets its first ES256 key, and only that.
        let state = after(tenant(), &first_signing_keys(&tenant(), &t, key("e1")));
        let both = vec![key_of("e9", "EdDSA"), key_of("p1", "ES256")];
        let added = first_signing_keys(&state, &t, both);
        assert_eq!(added.len(), 1);
        let state = after(state, &added);
        assert_eq!(
            state.signing_key("ES256").map(|k| k.key_id.as_str()),
            Some("p1")
        );
        assert_eq!(
            state.signing_key("EdDSA").map(|k| k.key_id.as_str()),
            Some("e1")
        );
        let next = vec![key_of("e2", "EdDSA"), key_of("p2", "ES256")];
        let state = after(
            state.clone(),
            &rotate_signing_key(&state, &t, &admin(), next, 5).expect("rotated"),
        );
        assert_eq!(
            state.signing_key("ES256").map(|k| k.key_id.as_str()),
            Some("p2")
        );
        assert_eq!(
            state.signing_key("EdDSA").map(|k| k.key_id.as_str()),
            Some("e2")
        );
        assert_eq!(
            state
                .signing_keys
                .iter()
                .filter(|k| k.retired_until_ms.is_some())
                .count(),
            2
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
