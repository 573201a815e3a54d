//! Secrets derived from the current key and the facts they belong to, so a
//! retried request gets the same secret back while only a digest (or
//! nothing) is stored: API key secrets, portal link tokens, temporary
//! passwords, and the pages' CSRF tokens.

use crate::Keyring;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl Keyring {
    /// The full text of a tenant API key, `cpa_<key id>_<secret>`; only its
    /// SHA-256 is in the log.
    pub fn api_key_text(&self, key_id: &str) -> String {
        let secret = self.current.mac("api-key", &[key_id.as_bytes()]);
        format!("cpa_{key_id}_{}", URL_SAFE_NO_PAD.encode(secret))
    }

    /// An OpenID Connect client's secret of one generation, derived from the
    /// server key `server_key_id` (recorded with the secret's hash): `ocs_`
    /// and 256 bits of the tenant, client id and generation, so a retried
    /// register or rotate shows the same secret while only its SHA-256 is
    /// stored. `None` once that server key has left the ring.
    pub fn oidc_client_secret(
        &self,
        server_key_id: u8,
        tenant: &str,
        client_id: &str,
        generation: u32,
    ) -> Option<String> {
        let key = self.all().find(|k| k.id() == server_key_id)?;
        let mac = key.mac(
            "oidc-client-secret",
            &[
                tenant.as_bytes(),
                client_id.as_bytes(),
                &generation.to_be_bytes(),
            ],
        );
        Some(format!("ocs_{}", URL_SAFE_NO_PAD.encode(mac)))
    }

    /// A webhook's signing secret of one generation, derived from the server
    /// key `server_key_id` (recorded with the webhook): 256 bits of the
    /// tenant, webhook id and generation, so a retried create or rotation
    /// shows the same secret and nothing of it is stored. `None` once that
    /// server key has left the ring.
    pub fn webhook_secret(
        &self,
        server_key_id: u8,
        tenant: &str,
        webhook_id: &str,
        generation: u32,
    ) -> Option<[u8; 32]> {
        let key = self.all().find(|k| k.id() == server_key_id)?;
        let mac = key.mac(
            "webhook-secret",
            &[
                tenant.as_bytes(),
                webhook_id.as_bytes(),
                &generation.to_be_bytes(),
            ],
        );
        Some(mac)
    }

    /// The seed of a tenant's token signing key (an Ed25519 private key),
    /// derived from the server key `server_key_id` of the ring, which the
    /// log records beside the key's public half; `None` when that server key
    /// is no longer in the ring (the tenant must rotate its signing key).
    pub fn oidc_signing_seed(
        &self,
        server_key_id: u8,
        tenant: &str,
        key_id: &str,
    ) -> Option<[u8; 32]> {
        self.all()
            .find(|k| k.id() == server_key_id)
            .map(|k| k.mac("oidc-signing-key", &[tenant.as_bytes(), key_id.as_bytes()]))
    }

    /// A portal link's token: `pl_` and 256 bits of the tenant and link id.
    pub fn portal_link_token(&self, tenant: &str, link_id: &str) -> String {
        let mac = self
            .current
            .mac("portal-link", &[tenant.as_bytes(), link_id.as_bytes()]);
        format!("pl_{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// The generated temporary password of `(tenant, request id, label)`,
    /// which the mailer can derive again for a tenant that chose to mail it:
    /// 12 characters from an alphabet without look-alikes, with at least one
    /// letter and one digit (about 66 bits).
    pub fn temporary_password(&self, tenant: &str, request_id: &str, label: &str) -> String {
        const ANY: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        const LETTERS: &[u8] = b"abcdefghjkmnpqrstuvwxyz";
        const DIGITS: &[u8] = b"23456789";
        let mac = self.current.mac(
            "temporary-password",
            &[tenant.as_bytes(), request_id.as_bytes(), label.as_bytes()],
        );
        let mut out: String = mac[..10]
            .iter()
            .map(|b| ANY[*b as usize % ANY.len()] as char)
            .collect();
        out.insert(3, LETTERS[mac[10] as usize % LETTERS.len()] as char);
        out.insert(8, DIGITS[mac[11] as usize % DIGITS.len()] as char);
        out
    }

    /// A form's CSRF token: a MAC of the browser's CSRF cookie and the
    /// form's address, so a page elsewhere cannot make a valid one.
    pub fn csrf_token(&self, cookie: &str, action: &str) -> String {
        URL_SAFE_NO_PAD.encode(
            self.current
                .mac("csrf", &[cookie.as_bytes(), action.as_bytes()]),
        )
    }

    /// Whether `given` is the CSRF token of `cookie` and `action` under any
    /// key of the ring (a form rendered before a rotation still posts).
    pub fn verify_csrf(&self, cookie: &str, action: &str, given: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(given)
            .is_ok_and(|mac| self.any_made("csrf", &[cookie.as_bytes(), action.as_bytes()], &mac))
    }
}

/// The key id of a presented API key, if it has the right shape.
pub fn api_key_id_of(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("cpa_")?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 32 && !secret.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerKey;

    #[test]
    fn api_keys_are_reproducible_from_their_id_and_shaped() {
        let ring = Keyring::new(ServerKey::generate(1), Vec::new());
        let id = "0123456789abcdef0123456789abcdef";
        let text = ring.api_key_text(id);
        assert_eq!(ring.api_key_text(id), text);
        assert_eq!(api_key_id_of(&text), Some(id));
        assert_eq!(api_key_id_of("Bearer x"), None);
        let other = Keyring::new(ServerKey::generate(1), Vec::new());
        assert_ne!(other.api_key_text(id), text);
    }

    #[test]
    fn signing_seeds_come_from_the_recorded_server_key_while_it_is_in_the_ring() {
        let old = ServerKey::generate(1);
        let before = Keyring::new(old.clone(), Vec::new());
        let seed = before
            .oidc_signing_seed(1, "acme", "k1")
            .expect("key 1 is there");
        let after = Keyring::new(ServerKey::generate(2), vec![old]);
        assert_eq!(after.oidc_signing_seed(1, "acme", "k1"), Some(seed));
        assert_ne!(after.oidc_signing_seed(2, "acme", "k1"), Some(seed));
        assert_ne!(before.oidc_signing_seed(1, "acme", "k2"), Some(seed));
        assert_eq!(after.oidc_signing_seed(7, "acme", "k1"), None);
    }

    #[test]
    fn client_secrets_differ_by_client_and_generation() {
        let old = ServerKey::generate(1);
        let ring = Keyring::new(old.clone(), Vec::new());
        let secret = |ring: &Keyring, key, tenant, client, generation| {
            ring.oidc_client_secret(key, tenant, client, generation)
        };
        let first = secret(&ring, 1, "acme", "c1", 1).expect("key 1 is there");
        assert_ne!(Some(&first), secret(&ring, 1, "acme", "c1", 2).as_ref());
        assert_ne!(Some(&first), secret(&ring, 1, "acme", "c2", 1).as_ref());
        assert_ne!(Some(&first), secret(&ring, 1, "other", "c1", 1).as_ref());
        assert!(first.starts_with("ocs_") && first.len() > 40);
        // A rotated ring still shows the same secret to a retry.
        let rotated = Keyring::new(ServerKey::generate(2), vec![old]);
        assert_eq!(secret(&rotated, 1, "acme", "c1", 1), Some(first));
        assert_eq!(secret(&rotated, 7, "acme", "c1", 1), None);
    }

    #[test]
    fn temporary_passwords_are_reproducible_per_request() {
        let ring = Keyring::new(ServerKey::generate(1), Vec::new());
        let a = ring.temporary_password("acme", "r1", "management");
        assert_eq!(a, ring.temporary_password("acme", "r1", "management"));
        assert_ne!(a, ring.temporary_password("acme", "r1", "staff"));
        assert_ne!(a, ring.temporary_password("acme", "r2", "management"));
        assert_eq!(a.chars().count(), 12);
        assert!(a.chars().any(|c| c.is_ascii_lowercase()));
        assert!(a.chars().any(|c| c.is_ascii_digit()));
    }

    #[test]
    fn a_csrf_token_is_bound_to_its_cookie_and_form() {
        let old = ServerKey::generate(1);
        let ring = Keyring::new(old.clone(), Vec::new());
        let token = ring.csrf_token("cookie", "/i/abc");
        assert!(ring.verify_csrf("cookie", "/i/abc", &token));
        assert!(!ring.verify_csrf("other", "/i/abc", &token));
        assert!(!ring.verify_csrf("cookie", "/r/abc", &token));
        assert!(!ring.verify_csrf("cookie", "/i/abc", "not base64!"));
        let rotated = Keyring::new(ServerKey::generate(2), vec![old]);
        assert!(rotated.verify_csrf("cookie", "/i/abc", &token));
    }
}
