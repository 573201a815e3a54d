//! Tokens of a sign-in's second step: the challenge a correct password
//! earns (`sfc_…`, five minutes, good only with a second factor's code),
//! and an authenticator app's enrolment (`tot_…`, ten minutes). The
//! enrolment carries a random seed, enciphered with a pad derived from the
//! server key and the token's nonce; the app's secret and its recovery
//! codes come from the seed. Nothing is stored until a first code confirms
//! it, a retried confirmation shows the same codes, and once the token is
//! gone the server key alone cannot make the secret again.

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
    /// The tenant or customer requires a factor the contact has not
    /// enrolled: `any` or `passkey` (empty: none to enrol). Only then may
    /// the challenge enrol one.
    pub must_enrol: String,
    /// The contact gave a factor it has already (an app's code) and must
    /// add a passkey still: the challenge enrols that passkey only.
    pub gave_factor: bool,
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
    /// The random seed, XORed with a pad the server key derives from the
    /// rest (the token's MAC keeps it whole).
    pub sealed_seed: Vec<u8>,
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
        let mut claims = EnrolmentClaims {
            tenant: tenant.to_owned(),
            contact_id: contact_id.to_owned(),
            expires_at_ms: now_ms + ENROLMENT_TTL_MS,
            server_key_id: self.current.id(),
            nonce: hex::encode(rand::random::<[u8; 16]>()),
            sealed_seed: Vec::new(),
        };
        let seed: [u8; 32] = rand::random();
        claims.sealed_seed = self
            .seed_pad(&claims)
            .map(|pad| xor(&seed, &pad).to_vec())
            .unwrap_or_default();
        let secret = self.enrolment_secret(&claims).unwrap_or_default();
        (self.sign("tot_", "totp-enrolment", &claims), secret)
    }

    /// The pad an enrolment's seed is XORed with: unique to its nonce.
    fn seed_pad(&self, claims: &EnrolmentClaims) -> Option<[u8; 32]> {
        let key = self.all().find(|k| k.id() == claims.server_key_id)?;
        Some(key.mac(
            "totp-enrolment-seed",
            &[
                claims.tenant.as_bytes(),
                claims.contact_id.as_bytes(),
                claims.nonce.as_bytes(),
            ],
        ))
    }

    /// The enrolment's seed, if the ring can open it.
    fn seed(&self, claims: &EnrolmentClaims) -> Option<[u8; 32]> {
        if claims.sealed_seed.len() != 32 {
            return None;
        }
        Some(xor(&claims.sealed_seed, &self.seed_pad(claims)?))
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
        let Some(seed) = self.seed(claims) else {
            return Vec::new();
        };
        (0u32..10)
            .map(|i| {
                let mac = seed_mac(&seed, "recovery-code", &i.to_be_bytes());
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
        let seed = self.seed(claims)?;
        Some(seed_mac(&seed, "totp-secret", &[])[..20].to_vec())
    }
}

fn xor(a: &[u8], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = a.get(i).copied().unwrap_or(0) ^ b[i];
    }
    out
}

/// HMAC-SHA-256 of `label` and `data` under an enrolment's seed.
fn seed_mac(seed: &[u8; 32], label: &str, data: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(seed) else {
        return [0; 32];
    };
    mac.update(label.as_bytes());
    mac.update(data);
    mac.finalize().into_bytes().into()
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
        // The token alone carries the seed: without it, the ring cannot
        // make the secret again.
        let mut blank = claims.clone();
        blank.sealed_seed = vec![0; 32];
        assert_ne!(ring.enrolment_secret(&blank), Some(secret.clone()));
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
            must_enrol: String::new(),
            gave_factor: false,
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
