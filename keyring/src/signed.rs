//! Signed claims: session tokens (`ses_<claims>.<mac>`) and one-time login
//! codes (`lgc_<claims>.<mac>`). The claims are not secret; the MAC makes
//! them unforgeable, and a token made with an older key still verifies.

use crate::Keyring;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The longest token either kind can be; longer input is refused unread.
const MAX_TOKEN_BYTES: usize = 512;

/// What a session token carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The tenant.
    pub tenant: String,
    /// The contact.
    pub contact_id: String,
    /// The contact's identity.
    pub identity_id: String,
    /// When it stops working, Unix milliseconds.
    pub expires_at_ms: i64,
    /// The login has a temporary password: only changing it is allowed.
    pub must_change_password: bool,
    /// How the contact authenticated (RFC 8176 values: `pwd`, and `otp`
    /// and `mfa` after a second factor).
    pub amr: Vec<String>,
}

/// A session token's claims as made before they said how the contact
/// authenticated: read as a password alone.
#[derive(Deserialize)]
struct SessionClaimsV1 {
    tenant: String,
    contact_id: String,
    identity_id: String,
    expires_at_ms: i64,
    must_change_password: bool,
}

/// What a one-time login code carries: who, until when, and a nonce that
/// the log records when the code is used, so it works once on any replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginCodeClaims {
    /// The tenant.
    pub tenant: String,
    /// The contact it logs in.
    pub contact_id: String,
    /// When it stops working, Unix milliseconds.
    pub expires_at_ms: i64,
    /// 128 random bits, hex.
    pub nonce: String,
}

/// How long a login code lives: the browser's redirect and the portal's call.
pub const LOGIN_CODE_TTL_MS: i64 = 120_000;

impl Keyring {
    /// A session token for `claims`.
    pub fn session_token(&self, claims: &SessionClaims) -> String {
        self.sign("ses_", "session", claims)
    }

    /// The claims of a genuine, unexpired session token.
    pub fn verify_session(&self, token: &str, now_ms: i64) -> Option<SessionClaims> {
        let claims: SessionClaims = self.open("ses_", "session", token).or_else(|| {
            let v1: SessionClaimsV1 = self.open("ses_", "session", token)?;
            Some(SessionClaims {
                tenant: v1.tenant,
                contact_id: v1.contact_id,
                identity_id: v1.identity_id,
                expires_at_ms: v1.expires_at_ms,
                must_change_password: v1.must_change_password,
                amr: vec!["pwd".into()],
            })
        })?;
        (claims.expires_at_ms > now_ms).then_some(claims)
    }

    /// A fresh one-time login code for a contact, living
    /// [`LOGIN_CODE_TTL_MS`] from `now_ms`.
    pub fn login_code(&self, tenant: &str, contact_id: &str, now_ms: i64) -> String {
        let claims = LoginCodeClaims {
            tenant: tenant.to_owned(),
            contact_id: contact_id.to_owned(),
            expires_at_ms: now_ms + LOGIN_CODE_TTL_MS,
            nonce: hex::encode(rand::random::<[u8; 16]>()),
        };
        self.sign("lgc_", "login-code", &claims)
    }

    /// The claims of a genuine, unexpired login code (used or not: the log
    /// says).
    pub fn verify_login_code(&self, code: &str, now_ms: i64) -> Option<LoginCodeClaims> {
        let claims: LoginCodeClaims = self.open("lgc_", "login-code", code)?;
        (claims.expires_at_ms > now_ms).then_some(claims)
    }

    pub(crate) fn sign(&self, prefix: &str, purpose: &str, claims: &impl Serialize) -> String {
        // Claims are plain strings and numbers, which postcard always encodes.
        let body = postcard::to_stdvec(claims).unwrap_or_default();
        let mac = self.current.mac(purpose, &[&body]);
        format!(
            "{prefix}{}.{}",
            URL_SAFE_NO_PAD.encode(&body),
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    pub(crate) fn open<T: DeserializeOwned>(
        &self,
        prefix: &str,
        purpose: &str,
        token: &str,
    ) -> Option<T> {
        self.open_within(prefix, purpose, token, MAX_TOKEN_BYTES)
    }

    /// [`Keyring::open`] for tokens that may be up to `max_bytes` long.
    pub(crate) fn open_within<T: DeserializeOwned>(
        &self,
        prefix: &str,
        purpose: &str,
        token: &str,
        max_bytes: usize,
    ) -> Option<T> {
        if token.len() > max_bytes {
            return None;
        }
        let (body, mac) = token.strip_prefix(prefix)?.split_once('.')?;
        let body = URL_SAFE_NO_PAD.decode(body).ok()?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        if !self.any_made(purpose, &[&body], &mac) {
            return None;
        }
        postcard::from_bytes(&body).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerKey;

    fn claims(expires_at_ms: i64) -> SessionClaims {
        SessionClaims {
            tenant: "acme".into(),
            contact_id: "c".into(),
            identity_id: "i".into(),
            expires_at_ms,
            must_change_password: false,
            amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
        }
    }

    #[test]
    fn a_session_made_before_it_said_how_reads_as_a_password_alone() {
        #[derive(Serialize)]
        struct Old {
            tenant: String,
            contact_id: String,
            identity_id: String,
            expires_at_ms: i64,
            must_change_password: bool,
        }
        let ring = Keyring::new(ServerKey::generate(1), Vec::new());
        let old = Old {
            tenant: "acme".into(),
            contact_id: "c".into(),
            identity_id: "i".into(),
            expires_at_ms: 2_000,
            must_change_password: false,
        };
        let token = ring.sign("ses_", "session", &old);
        let claims = ring.verify_session(&token, 1_000).expect("still good");
        assert_eq!(claims.amr, ["pwd"]);
        assert_eq!(claims.contact_id, "c");
    }

    #[test]
    fn sessions_verify_until_they_expire_and_resist_forgery() {
        let ring = Keyring::new(ServerKey::generate(1), Vec::new());
        let token = ring.session_token(&claims(2_000));
        assert_eq!(ring.verify_session(&token, 1_000), Some(claims(2_000)));
        assert_eq!(ring.verify_session(&token, 2_000), None);
        let forged = Keyring::new(ServerKey::generate(1), Vec::new()).session_token(&claims(9_000));
        assert_eq!(ring.verify_session(&forged, 1_000), None);
    }

    #[test]
    fn a_login_code_is_not_a_session_and_survives_a_rotation() {
        let old = ServerKey::generate(1);
        let before = Keyring::new(old.clone(), Vec::new());
        let code = before.login_code("acme", "c", 0);
        let after = Keyring::new(ServerKey::generate(2), vec![old]);
        let claims = after
            .verify_login_code(&code, 1)
            .expect("an older key still verifies");
        assert_eq!(
            (claims.tenant.as_str(), claims.contact_id.as_str()),
            ("acme", "c")
        );
        assert_eq!(after.verify_login_code(&code, LOGIN_CODE_TTL_MS), None);
        let as_session = code.replacen("lgc_", "ses_", 1);
        assert_eq!(after.verify_session(&as_session, 1), None);
    }
}
