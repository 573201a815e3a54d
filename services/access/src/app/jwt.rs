//! Compact JWS with the tenant's Ed25519 keys (RFC 7515, RFC 8037): ten
//! lines each way, so no JOSE library. Only `EdDSA` is made or accepted,
//! and a token names its key by `kid`, which must be published.

use super::{App, AppError};
use crate::projections::SigningKeyRow;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde_json::{Map, Value};

/// The longest token looked at.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The key a tenant's tokens are signed with now.
pub struct TokenSigner {
    key_id: String,
    key: SigningKey,
}

impl TokenSigner {
    /// A compact JWS of `claims` with header type `typ`.
    pub fn sign(&self, typ: &str, claims: &Value) -> String {
        let header = serde_json::json!({ "alg": "EdDSA", "typ": typ, "kid": self.key_id });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

/// The claims of a token signed by one of `keys` with header type `typ`;
/// `None` for anything else. Expiry and issuer are the caller's to check.
pub fn verify(token: &str, typ: &str, keys: &[SigningKeyRow]) -> Option<Map<String, Value>> {
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
    if header.get("alg")?.as_str()? != "EdDSA" || header.get("typ")?.as_str()? != typ {
        return None;
    }
    let kid = header.get("kid")?.as_str()?;
    let row = keys
        .iter()
        .find(|k| k.key_id == kid && k.algorithm == "EdDSA")?;
    let key = VerifyingKey::from_bytes(&row.public_key.as_slice().try_into().ok()?).ok()?;
    let signature: [u8; 64] = URL_SAFE_NO_PAD.decode(signature).ok()?.try_into().ok()?;
    let signed = &token[..token.rfind('.')?];
    key.verify_strict(
        signed.as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&signature),
    )
    .ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

impl App {
    /// The key `tenant`'s tokens are signed with now: its private half
    /// derived again from the server key the log names, and refused when
    /// that no longer gives the public half the log recorded (the server
    /// key left the ring: the tenant must rotate its signing key).
    pub fn token_signer(&self, tenant: &str) -> Result<TokenSigner, AppError> {
        let current = self
            .published_signing_keys(tenant)?
            .into_iter()
            .find(|k| k.retired_until_ms.is_none() && k.algorithm == "EdDSA")
            .ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!("tenant {tenant} has no signing key"))
            })?;
        let key = self
            .keyring
            .oidc_signing_seed(current.server_key_id, tenant, &current.key_id)
            .map(|seed| SigningKey::from_bytes(&seed))
            .filter(|key| key.verifying_key().to_bytes().as_slice() == current.public_key)
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

    fn key(seed: u8) -> (TokenSigner, SigningKeyRow) {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let row = SigningKeyRow {
            key_id: format!("k{seed}"),
            algorithm: "EdDSA".into(),
            public_key: key.verifying_key().to_bytes().to_vec(),
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
        let claims = verify(&token, "at+jwt", std::slice::from_ref(&row)).expect("genuine");
        assert_eq!(claims.get("sub"), Some(&Value::from("c1")));
        assert!(verify(&token, "JWT", std::slice::from_ref(&row)).is_none());
        assert!(verify(&token, "at+jwt", &[other]).is_none());
        assert!(verify(&token, "at+jwt", &[]).is_none());
    }

    #[test]
    fn a_changed_byte_or_a_foreign_algorithm_is_refused() {
        let (signer, row) = key(1);
        let token = signer.sign("JWT", &serde_json::json!({ "sub": "c1" }));
        let mut bytes = token.clone().into_bytes();
        let middle = token.find('.').expect("dot") + 3;
        bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("ascii");
        assert!(verify(&tampered, "JWT", std::slice::from_ref(&row)).is_none());
        let none_alg = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"c1"}"#)
        );
        assert!(verify(&none_alg, "JWT", std::slice::from_ref(&row)).is_none());
        assert!(verify(&format!("{token}.x"), "JWT", &[row]).is_none());
    }
}
