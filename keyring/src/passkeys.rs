//! Tokens of a passkey ceremony (WebAuthn): a registration (`pkr_…`) and a
//! sign-in (`pkl_…`), each good for five minutes. The token carries the
//! ceremony's state (its challenge, what it allows) as the WebAuthn library
//! serialised it; the MAC keeps the browser from changing it, so any
//! replica can finish what another began and nothing is stored between.

use crate::Keyring;
use serde::{Deserialize, Serialize};

/// How long a ceremony may take, from the options sent to the answer.
pub const CEREMONY_TTL_MS: i64 = 5 * 60_000;
/// The longest ceremony token opened (a registration's state lists the
/// contact's passkeys, so that none is registered twice).
pub const MAX_CEREMONY_TOKEN_BYTES: usize = 8192;

/// What a ceremony token carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CeremonyClaims {
    /// The tenant.
    pub tenant: String,
    /// The contact registering, or signing in after a password; empty for
    /// a sign-in any of the tenant's passkeys may answer.
    pub contact_id: String,
    /// When it was made, Unix milliseconds: a passkey answers no challenge
    /// made before the last one it answered.
    pub made_at_ms: i64,
    /// The contact's password was right just before (a second step).
    pub after_password: bool,
    /// That password was temporary: the session will only allow changing it.
    pub must_change_password: bool,
    /// The ceremony's state, serialised by the WebAuthn library.
    pub state: String,
}

impl Keyring {
    /// A registration's token.
    pub fn passkey_registration(&self, claims: &CeremonyClaims) -> String {
        self.sign("pkr_", "passkey-registration", claims)
    }

    /// The claims of a genuine registration token made less than five
    /// minutes before `now_ms`.
    pub fn open_passkey_registration(&self, token: &str, now_ms: i64) -> Option<CeremonyClaims> {
        let claims: CeremonyClaims = self.open_within(
            "pkr_",
            "passkey-registration",
            token,
            MAX_CEREMONY_TOKEN_BYTES,
        )?;
        fresh(claims, now_ms)
    }

    /// A sign-in's token.
    pub fn passkey_login(&self, claims: &CeremonyClaims) -> String {
        self.sign("pkl_", "passkey-login", claims)
    }

    /// The claims of a genuine sign-in token made less than five minutes
    /// before `now_ms`.
    pub fn open_passkey_login(&self, token: &str, now_ms: i64) -> Option<CeremonyClaims> {
        let claims: CeremonyClaims =
            self.open_within("pkl_", "passkey-login", token, MAX_CEREMONY_TOKEN_BYTES)?;
        fresh(claims, now_ms)
    }
}

fn fresh(claims: CeremonyClaims, now_ms: i64) -> Option<CeremonyClaims> {
    let age = now_ms - claims.made_at_ms;
    ((0..CEREMONY_TTL_MS).contains(&age)).then_some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerKey;

    #[test]
    fn a_ceremony_token_is_good_for_its_own_kind_for_five_minutes() {
        let ring = Keyring::new(ServerKey::generate(1), Vec::new());
        let claims = CeremonyClaims {
            tenant: "acme".into(),
            contact_id: "c1".into(),
            made_at_ms: 1_000,
            after_password: false,
            must_change_password: false,
            state: "{}".into(),
        };
        let token = ring.passkey_registration(&claims);
        assert_eq!(
            ring.open_passkey_registration(&token, 1_000),
            Some(claims.clone())
        );
        assert_eq!(
            ring.open_passkey_registration(&token, 1_000 + CEREMONY_TTL_MS),
            None
        );
        assert_eq!(
            ring.open_passkey_registration(&token, 999),
            None,
            "not from the future"
        );
        assert_eq!(
            ring.open_passkey_login(&token.replacen("pkr_", "pkl_", 1), 1_000),
            None
        );
        let login = ring.passkey_login(&claims);
        assert_eq!(ring.open_passkey_login(&login, 2_000), Some(claims));
        let stranger = Keyring::new(ServerKey::generate(1), Vec::new());
        assert_eq!(stranger.open_passkey_login(&login, 2_000), None);
    }
}
