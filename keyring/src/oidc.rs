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
            &[tenant.as_bytes(), grant.as_bytes(), &generation.to_be_bytes()],
        );
        Some(format!(
            "ort_{grant}_{generation}_{}",
            URL_SAFE_NO_PAD.encode(mac)
        ))
    }
}

/// The grant an authorization code names, if the text has a code's shape.
pub fn code_grant(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("occ_").filter(|_| text.len() <= MAX_TEXT)?;
    let (grant, _mac) = rest.split_once('_')?;
    Some(grant)
}

/// The grant and generation a refresh token names, if the text has a
/// refresh token's shape.
pub fn refresh_grant(text: &str) -> Option<(&str, u32)> {
    let rest = text.strip_prefix("ort_").filter(|_| text.len() <= MAX_TEXT)?;
    let mut parts = rest.splitn(3, '_');
    let grant = parts.next()?;
    let generation = parts.next()?.parse().ok()?;
    parts.next()?;
    Some((grant, generation))
}

/// Whether a presented text is the one derived, in constant time.
pub fn same_token(presented: &str, derived: &str) -> bool {
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
        assert_eq!(code_grant(&code), Some("g1"));
        assert!(same_token(&code, &ring.oidc_code(1, "acme", "g1").unwrap_or_default()));
        assert!(!same_token(&code, &ring.oidc_code(1, "other", "g1").unwrap_or_default()));
        let another = new_ring().oidc_code(1, "acme", "g1").unwrap_or_default();
        assert!(!same_token(&code, &another));
        assert_eq!(ring.oidc_code(2, "acme", "g1"), None);
    }

    #[test]
    fn refresh_tokens_differ_by_generation() {
        let ring = new_ring();
        let first = ring.oidc_refresh_token(1, "acme", "g1", 1).expect("key");
        let second = ring.oidc_refresh_token(1, "acme", "g1", 2).expect("key");
        assert_ne!(first, second);
        assert_eq!(refresh_grant(&first), Some(("g1", 1)));
        assert_eq!(refresh_grant(&second), Some(("g1", 2)));
    }

    #[test]
    fn other_shapes_name_nothing() {
        for text in ["", "occ_", "ort_g1", "ort_g1_x_mac", "occ_g1", "pl_abc", &"occ_a_".repeat(50)] {
            assert_eq!(code_grant(text), None, "{text}");
            assert_eq!(refresh_grant(text), None, "{text}");
        }
    }
}
