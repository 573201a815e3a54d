//! # access-keyring
//!
//! Secrets derived from the server key, so that none of them is ever stored:
//! invitation and reset link tokens, session tokens, one-time login codes,
//! API key secrets, portal link tokens, generated temporary passwords and
//! the pages' CSRF tokens. One [`Keyring`] holds the current key and the
//! keys it replaced; every derivation goes through it, under a purpose of
//! its own, so one key never signs two kinds of thing.
//!
//! The service and the mailer both hold the keyring: the log records only
//! what a secret is derived from (an invitation and its generation, a
//! request id), and both derive the same secret from it. A key id travels in
//! link tokens, and older keys still verify sessions and codes, so a rotated
//! key keeps what it made alive.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod derived;
mod factors;
mod key;
mod links;
mod oidc;
mod passkeys;
mod signed;

pub use derived::api_key_id_of;
pub use factors::{CHALLENGE_TTL_MS, ChallengeClaims, ENROLMENT_TTL_MS, EnrolmentClaims};
pub use key::ServerKey;
pub use links::{BadToken, LinkClaims};
pub use oidc::GrantToken;
pub use passkeys::{CEREMONY_TTL_MS, CeremonyClaims};
pub use signed::{LOGIN_CODE_TTL_MS, LoginCodeClaims, SessionClaims};

/// The server key and the keys it replaced: what every derived secret is
/// made with (the current key) and checked against (all of them).
#[derive(Clone, Debug)]
pub struct Keyring {
    current: ServerKey,
    older: Vec<ServerKey>,
}

impl Keyring {
    /// A keyring that makes secrets with `current` and also accepts what
    /// `older` keys made.
    pub fn new(current: ServerKey, older: Vec<ServerKey>) -> Self {
        Keyring { current, older }
    }

    /// Reads a key file (see [`ServerKey::parse_ring`]).
    pub fn parse(text: &str) -> Result<Self, String> {
        ServerKey::parse_ring(text).map(|(current, older)| Keyring { current, older })
    }

    /// The key secrets are made with.
    pub fn current(&self) -> &ServerKey {
        &self.current
    }

    /// The current key, then the older ones.
    fn all(&self) -> impl Iterator<Item = &ServerKey> {
        std::iter::once(&self.current).chain(&self.older)
    }

    /// Whether any key of the ring made `mac` of `parts` for `purpose`, in
    /// constant time for each key.
    fn any_made(&self, purpose: &str, parts: &[&[u8]], mac: &[u8]) -> bool {
        self.all().any(|key| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                &key.mac(purpose, parts)[..],
                mac,
            ))
        })
    }
}
