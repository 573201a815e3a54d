//! Tokens of a sign-in's second step: the challenge a correct password
//! earns (`sfc_…`, five minutes, good only with a second factor's code),
//! and an authenticator app's enrolment (`tot_…`, ten minutes), whose
//! secret is derived from the server key and the token's nonce, so nothing
//! is stored until a first code confirms it.

use crate::Keyring;
use serde::{Deserialize, Serialize};

/// How long a second-factor challenge lives.
pub const CHALLENGE_TTL_MS: i64 = 5 * 60_000;
/// How long an enrolment may take, from the secret shown to the first code.
pub const ENROLMENT_TTL_MS: i64 = 10 * 60_000;

/// What a challenge carries: whose password was right, and until when the
/// second step may follow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeClaims {
    /// The tenant.
    pub tenant: String,
    /// The contact.
    pub contact_id: String,
    /// The contact's identity.
    pub identity_id: String,
    /// When it stops working, Unix milliseconds.
    pub expires_at_ms: i64,
    /// The password was temporary: the session will only allow changing it.
    pub must_change_password: bool,
}

/// What an enrolment token carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentClaims {
    /// The tenant.
    pub tenant: String,
    /// The contact enrolling.
    pub contact_id: String,
    /// When it stops working, Unix milliseconds.
    pub expires_at_ms: i64,
    /// The server key the secret is derived from.
    pub server_key_id: u8,
    /// 128 random bits, hex.
    pub nonce: String,
}

impl Keyring {
    /// A challenge for the second step of a sign-in.
    pub fn second_factor_challenge(&self, claims: &ChallengeClaims) -> String {
        self.sign("sfc_", "second-factor-challenge", claims)
    }

    /// The claims of a genuine, unexpired challenge.
    pub fn verify_second_factor_challenge(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Option<ChallengeClaims> {
        let claims: ChallengeClaims = self.open("sfc_", "second-factor-challenge", token)?;
        (claims.expires_at_ms > now_ms).then_some(claims)
    }

    /// A new enrolment for a contact: its token and the secret (20 bytes).
    pub fn totp_enrolment(&self, tenant: &str, contact_id: &str, now_ms: i64) -> (String, Vec<u8>) {
        let claims = EnrolmentClaims {
            tenant: tenant.to_owned(),
            contact_id: contact_id.to_owned(),
            expires_at_ms: now_ms + ENROLMENT_TTL_MS,
            server_key_id: self.current.id(),
            nonce: hex::encode(rand::random::<[u8; 16]>()),
        };
        let secret = self.enrolment_secret(&claims).unwrap_or_default();
        (self.sign("tot_", "totp-enrolment", &claims), secret)
    }

    /// A genuine, unexpired enrolment's claims and secret.
    pub fn open_totp_enrolment(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Option<(EnrolmentClaims, Vec<u8>)> {
        let claims: EnrolmentClaims = self.open("tot_", "totp-enrolment", token)?;
        if claims.expires_at_ms <= now_ms {
            return None;
        }
        let secret = self.enrolment_secret(&claims)?;
        Some((claims, secret))
    }

    /// The enrolment's ten recovery codes (`XXXX-XXXX-XXXX-XXXX`, 80 bits
    /// each), derived like its secret so a retried confirmation shows the
    /// same ones; only their digests are stored.
    pub fn recovery_codes(&self, claims: &EnrolmentClaims) -> Vec<String> {
        let Some(key) = self.all().find(|k| k.id() == claims.server_key_id) else {
            return Vec::new();
        };
        (0u32..10)
            .map(|i| {
                let mac = key.mac(
                    "totp-recovery-code",
                    &[
                        claims.tenant.as_bytes(),
                        claims.contact_id.as_bytes(),
                        claims.nonce.as_bytes(),
                        &i.to_be_bytes(),
                    ],
                );
                let text = data_encoding::BASE32_NOPAD.encode(&mac[..10]);
                text.as_bytes()
                    .chunks(4)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
                    .join("-")
            })
            .collect()
    }

    fn enrolment_secret(&self, claims: &EnrolmentClaims) -> Option<Vec<u8>> {
        let key = self.all().find(|k| k.id() == claims.server_key_id)?;
        let mac = key.mac(
            "totp-secret",
            &[
                claims.tenant.as_bytes(),
                claims.contact_id.as_bytes(),
                claims.nonce.as_bytes(),
            ],
        );
        Some(mac[..20].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerKey;

    #[test]
    fn an_enrolment_gives_its_secret_back_until_it_expires_and_only_genuine() {
        let ring = Keyring::new(ServerKey::generate(1), Vec::new());
        let (token, secret) = ring.totp_enrolment("acme", "c1", 0);
        assert_eq!(secret.len(), 20);
        let (claims, again) = ring.open_totp_enrolment(&token, 1).expect("genuine");
        assert_eq!((claims.contact_id.as_str(), again), ("c1", secret.clone()));
        assert_eq!(ring.open_totp_enrolment(&token, ENROLMENT_TTL_MS), None);
        let (other, other_secret) = ring.totp_enrolment("acme", "c1", 0);
        assert_ne!(other, token);
        assert_ne!(other_secret, secret, "a fresh secret each time");
        let codes = ring.recovery_codes(&claims);
        assert_eq!(codes.len(), 10);
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 19 && c.matches('-').count() == 3),
            "{codes:?}"
        );
        assert_eq!(codes, ring.recovery_codes(&claims), "the same on a retry");
        let stranger = Keyring::new(ServerKey::generate(1), Vec::new());
        assert_eq!(stranger.open_totp_enrolment(&token, 1), None);
    }

    #[test]
    fn a_challenge_is_not_a_session() {
        let ring = Keyring::new(ServerKey::generate(1), Vec::new());
        let claims = ChallengeClaims {
            tenant: "acme".into(),
            contact_id: "c1".into(),
            identity_id: "i1".into(),
            expires_at_ms: 10,
            must_change_password: false,
        };
        let token = ring.second_factor_challenge(&claims);
        assert_eq!(ring.verify_second_factor_challenge(&token, 5), Some(claims));
        assert_eq!(ring.verify_second_factor_challenge(&token, 10), None);
        assert_eq!(
            ring.verify_session(&token.replacen("sfc_", "ses_", 1), 5),
            None
        );
    }
}
