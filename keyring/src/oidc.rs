//! OpenID Connect authorization codes and refresh tokens: derived from the
//! server key the grant records, the grant and a generation, so the log
//! holds which code or token is current and never the token itself.
//!
//! A code is `occ_<grant>_<mac>`, a refresh token `ort_<grant>_<generation>_<mac>`:
//! the grant is found from the text, and only a text whose MAC the server
//! key makes again is ever acted on, so nobody who merely knows a grant id
//! (a resource server reading an access token) can present a token of it.

use crate::Keyring;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// The longest code or refresh token text looked at.
const MAX_TEXT: usize = 200;

impl Keyring {
    /// The authorization code of `grant`, `None` once the server key
    /// `server_key_id` has left the ring.
    pub fn oidc_code(&self, server_key_id: u8, tenant: &str, grant: &str) -> Option<String> {
        let key = self.all().find(|k| k.id() == server_key_id)?;
        let mac = key.mac("oidc-code", &[tenant.as_bytes(), grant.as_bytes()]);
        Some(format!("occ_{grant}_{}", URL_SAFE_NO_PAD.encode(mac)))
    }

    /// The refresh token of `grant`'s `generation`, `None` once the server
    /// key `server_key_id` has left the ring.
    pub fn oidc_refresh_token(
        &self,
        server_key_id: u8,
        tenant: &str,
        grant: &str,
        generation: u32,
    ) -> Option<String> {
        let key = self.all().find(|k| k.id() == server_key_id)?;
        let mac = key.mac(
            "oidc-refresh",
            &[
                tenant.as_bytes(),
                grant.as_bytes(),
                &generation.to_be_bytes(),
            ],
        );
        Some(format!(
            "ort_{grant}_{generation}_{}",
            URL_SAFE_NO_PAD.encode(mac)
        ))
    }
}

/// What a genuine code or refresh token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantToken {
    /// The grant.
    pub grant: String,
    /// The refresh token's generation (0 for a code).
    pub generation: u32,
    /// The server key that made it: the grant must record the same.
    pub server_key_id: u8,
}

impl Keyring {
    /// The grant a genuine authorization code of `tenant` names, checked
    /// against every key of the ring before anything is read.
    pub fn verify_oidc_code(&self, tenant: &str, text: &str) -> Option<GrantToken> {
        let rest = text
            .strip_prefix("occ_")
            .filter(|_| text.len() <= MAX_TEXT)?;
        let (grant, _mac) = rest.split_once('_')?;
        self.all()
            .map(|k| k.id())
            .find(|id| {
                self.oidc_code(*id, tenant, grant)
                    .is_some_and(|made| same_token(text, &made))
            })
            .map(|server_key_id| GrantToken {
                grant: grant.to_owned(),
                generation: 0,
                server_key_id,
            })
    }

    /// The grant and generation a genuine refresh token of `tenant` names.
    pub fn verify_oidc_refresh(&self, tenant: &str, text: &str) -> Option<GrantToken> {
        let rest = text
            .strip_prefix("ort_")
            .filter(|_| text.len() <= MAX_TEXT)?;
        let mut parts = rest.splitn(3, '_');
        let grant = parts.next()?;
        let generation: u32 = parts.next()?.parse().ok()?;
        parts.next()?;
        self.all()
            .map(|k| k.id())
            .find(|id| {
                self.oidc_refresh_token(*id, tenant, grant, generation)
                    .is_some_and(|made| same_token(text, &made))
            })
            .map(|server_key_id| GrantToken {
                grant: grant.to_owned(),
                generation,
                server_key_id,
            })
    }
}

/// Whether a presented text is the one derived, in constant time.
fn same_token(presented: &str, derived: &str) -> bool {
    presented.as_bytes().ct_eq(derived.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerKey;

    fn new_ring() -> Keyring {
        Keyring::new(ServerKey::generate(1), Vec::new())
    }

    #[test]
    fn a_code_names_its_grant_and_only_its_key_makes_it() {
        let ring = new_ring();
        let code = ring.oidc_code(1, "acme", "g1").expect("current key");
        let named = ring.verify_oidc_code("acme", &code).expect("genuine");
        assert_eq!((named.grant.as_str(), named.server_key_id), ("g1", 1));
        assert_eq!(ring.verify_oidc_code("other", &code), None);
        assert_eq!(new_ring().verify_oidc_code("acme", &code), None);
        assert_eq!(ring.verify_oidc_refresh("acme", &code), None);
        assert_eq!(ring.oidc_code(2, "acme", "g1"), None);
    }

    #[test]
    fn refresh_tokens_differ_by_generation() {
        let ring = new_ring();
        let first = ring.oidc_refresh_token(1, "acme", "g1", 1).expect("key");
        let second = ring.oidc_refresh_token(1, "acme", "g1", 2).expect("key");
        assert_ne!(first, second);
        assert_eq!(
            ring.verify_oidc_refresh("acme", &first)
                .map(|t| t.generation),
            Some(1)
        );
        assert_eq!(
            ring.verify_oidc_refresh("acme", &second)
                .map(|t| t.generation),
            Some(2)
        );
        // Another generation with the first one's MAC is a forgery.
        let forged = first.replacen("_1_", "_2_", 1);
        assert_eq!(ring.verify_oidc_refresh("acme", &forged), None);
    }

    #[test]
    fn other_shapes_name_nothing() {
        let ring = new_ring();
        for text in [
            "",
            "occ_",
            "ort_g1",
            "ort_g1_x_mac",
            "occ_g1",
            "pl_abc",
            &"occ_a_".repeat(50),
        ] {
            assert_eq!(ring.verify_oidc_code("acme", text), None, "{text}");
            assert_eq!(ring.verify_oidc_refresh("acme", text), None, "{text}");
        }
    }
}
