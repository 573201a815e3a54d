//! Compact JWS with the tenant's keys (RFC 7515): `EdDSA` with Ed25519
//! (RFC 8037) and `ES256` with P-256 (RFC 7518 §3.4, the signature as
//! r‖s): ten lines each way, so no JOSE library. A token names its key by
//! `kid`, which must be published, and its algorithm must be that key's.

use super::{App, AppError};
use crate::projections::SigningKeyRow;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use serde_json::{Map, Value};

/// The longest token looked at.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A private signing key of one of the algorithms offered.
pub enum SigningSecret {
    /// Ed25519.
    EdDsa(ed25519_dalek::SigningKey),
    /// ECDSA on P-256 with SHA-256.
    Es256(p256::ecdsa::SigningKey),
}

impl SigningSecret {
    /// The key of `algorithm` a 32-byte seed makes; `None` for an unknown
    /// algorithm or a seed that is no P-256 scalar.
    pub fn from_seed(algorithm: &str, seed: &[u8; 32]) -> Option<Self> {
        match algorithm {
            "EdDSA" => Some(Self::EdDsa(ed25519_dalek::SigningKey::from_bytes(seed))),
            "ES256" => p256::ecdsa::SigningKey::from_slice(seed)
                .ok()
                .map(Self::Es256),
            _ => None,
        }
    }

    /// The public half as recorded: 32 bytes (Ed25519), or the 65-byte
    /// uncompressed SEC1 point (P-256).
    pub fn public_key(&self) -> Vec<u8> {
        match self {
            Self::EdDsa(k) => k.verifying_key().to_bytes().to_vec(),
            Self::Es256(k) => k.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
        }
    }

    fn algorithm(&self) -> &'static str {
        match self {
            Self::EdDsa(_) => "EdDSA",
            Self::Es256(_) => "ES256",
        }
    }

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            Self::EdDsa(k) => k.sign(input).to_bytes().to_vec(),
            Self::Es256(k) => {
                let signature: p256::ecdsa::Signature = k.sign(input);
                signature.to_bytes().to_vec()
            }
        }
    }
}

/// The key a tenant's tokens of one algorithm are signed with now.
pub struct TokenSigner {
    key_id: String,
    key: SigningSecret,
}

impl TokenSigner {
    /// A compact JWS of `claims` with header type `typ`.
    pub fn sign(&self, typ: &str, claims: &Value) -> String {
        let header =
            serde_json::json!({ "alg": self.key.algorithm(), "typ": typ, "kid": self.key_id });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// Whether `signature` over `signed` is `row`'s.
fn genuine(row: &SigningKeyRow, signed: &[u8], signature: &[u8]) -> bool {
    match row.algorithm.as_str() {
        "EdDSA" => {
            let (Ok(key), Ok(signature)) = (
                <[u8; 32]>::try_from(row.public_key.as_slice()),
                <[u8; 64]>::try_from(signature),
            ) else {
                return false;
            };
            ed25519_dalek::VerifyingKey::from_bytes(&key).is_ok_and(|key| {
                key.verify_strict(signed, &ed25519_dalek::Signature::from_bytes(&signature))
                    .is_ok()
            })
        }
        "ES256" => {
            let (Ok(key), Ok(signature)) = (
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&row.public_key),
                p256::ecdsa::Signature::from_slice(signature),
            ) else {
                return false;
            };
            key.verify(signed, &signature).is_ok()
        }
        _ => false,
    }
}

/// The claims of a token with header type `typ` signed by the key `key`
/// finds by its id; `None` for anything else. Expiry and issuer are the
/// caller's to check.
pub fn verify(
    token: &str,
    typ: &str,
    key: impl Fn(&str) -> Option<SigningKeyRow>,
) -> Option<Map<String, Value>> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let mut parts = token.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Map<String, Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header.get("typ")?.as_str()? != typ {
        return None;
    }
    let (kid, alg) = (header.get("kid")?.as_str()?, header.get("alg")?.as_str()?);
    // The key decides the algorithm; a header naming another is refused.
    let row = key(kid).filter(|k| k.algorithm == alg)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let signed = &token[..token.rfind('.')?];
    if !genuine(&row, signed.as_bytes(), &signature) {
        return None;
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

impl App {
    /// The key `tenant`'s tokens of `algorithm` are signed with now: its
    /// private half derived again from the server key the log names, and
    /// refused when that no longer gives the public half the log recorded
    /// (the server key left the ring: the tenant must rotate its signing key).
    pub fn token_signer(&self, tenant: &str, algorithm: &str) -> Result<TokenSigner, AppError> {
        let current = self
            .published_signing_keys(tenant)?
            .into_iter()
            .find(|k| k.retired_until_ms.is_none() && k.algorithm == algorithm)
            .ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!(
                    "tenant {tenant} has no {algorithm} signing key; rotate the signing key"
                ))
            })?;
        let key = self
            .keyring
            .oidc_signing_seed(current.server_key_id, tenant, &current.key_id)
            .and_then(|seed| SigningSecret::from_seed(algorithm, &seed))
            .filter(|key| key.public_key() == current.public_key)
            .ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!(
                    "the server key of tenant {tenant}'s signing key {} is gone; rotate the signing key",
                    current.key_id
                ))
            })?;
        Ok(TokenSigner {
            key_id: current.key_id,
            key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lookup over `keys`, as the read models do it.
    fn by_id(keys: &[SigningKeyRow]) -> impl Fn(&str) -> Option<SigningKeyRow> + '_ {
        move |kid| keys.iter().find(|k| k.key_id == kid).cloned()
    }

    fn key(seed: u8) -> (TokenSigner, SigningKeyRow) {
        key_of("EdDSA", seed)
    }

    fn key_of(algorithm: &str, seed: u8) -> (TokenSigner, SigningKeyRow) {
        let key = SigningSecret::from_seed(algorithm, &[seed; 32]).expect("a key");
        let row = SigningKeyRow {
            key_id: format!("k{seed}"),
            algorithm: algorithm.into(),
            public_key: key.public_key(),
            server_key_id: 1,
            retired_until_ms: None,
        };
        (
            TokenSigner {
                key_id: row.key_id.clone(),
                key,
            },
            row,
        )
    }

    #[test]
    fn a_signed_token_verifies_with_its_published_key_only() {
        let (signer, row) = key(1);
        let (_, other) = key(2);
        let token = signer.sign("at+jwt", &serde_json::json!({ "sub": "c1" }));
        let claims = verify(&token, "at+jwt", by_id(std::slice::from_ref(&row))).expect("genuine");
        assert_eq!(claims.get("sub"), Some(&Value::from("c1")));
        assert!(verify(&token, "JWT", by_id(std::slice::from_ref(&row))).is_none());
        assert!(verify(&token, "at+jwt", by_id(&[other])).is_none());
        assert!(verify(&token, "at+jwt", by_id(&[])).is_none());
    }

    #[test]
    fn es256_tokens_verify_with_their_key_and_not_as_another_algorithm() {
        let (signer, row) = key_of("ES256", 3);
        let token = signer.sign("JWT", &serde_json::json!({ "sub": "c1" }));
        assert!(verify(&token, "JWT", by_id(std::slice::from_ref(&row))).is_some());
        // The same key id published as EdDSA does not take it.
        let mut as_eddsa = row.clone();
        as_eddsa.algorithm = "EdDSA".into();
        assert!(verify(&token, "JWT", by_id(&[as_eddsa])).is_none());
        let (_, other) = key_of("ES256", 4);
        let mut other = other;
        other.key_id = row.key_id.clone();
        assert!(verify(&token, "JWT", by_id(&[other])).is_none());
    }

    #[test]
    fn a_changed_byte_or_a_foreign_algorithm_is_refused() {
        let (signer, row) = key(1);
        let token = signer.sign("JWT", &serde_json::json!({ "sub": "c1" }));
        let mut bytes = token.clone().into_bytes();
        let middle = token.find('.').expect("dot") + 3;
        bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("ascii");
        assert!(verify(&tampered, "JWT", by_id(std::slice::from_ref(&row))).is_none());
        let none_alg = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"c1"}"#)
        );
        assert!(verify(&none_alg, "JWT", by_id(std::slice::from_ref(&row))).is_none());
        assert!(verify(&format!("{token}.x"), "JWT", by_id(&[row])).is_none());
    }
}
