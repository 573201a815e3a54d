//! A person across tenants: their identity, password, and being forgotten.

use crate::codec::payload_enum;
use crate::personal::Personal;
use serde::{Deserialize, Serialize};

/// A global identity (an email) got its first login anywhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityRegistered {
    /// The email, normalised.
    pub email: Personal,
}

/// The identity's password was set; only the argon2id PHC string is recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordSet {
    /// argon2id PHC string (salted hash); redacted in audit output.
    pub password_hash: String,
}

/// The person of an identity was forgotten: their key is destroyed, so every
/// personal value sealed under it reads as erased from now on. Who did it
/// stays in the envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityForgotten {
    /// Why (a request under the right to erasure, say), as given.
    pub reason: String,
    /// The contacts (tenant, contact id) whose access ended with it.
    pub contacts: Vec<(String, String)>,
}

payload_enum! {
    /// Events of a global identity stream.
    pub enum IdentityEvent {
        /// See [`IdentityRegistered`].
        IdentityRegistered(IdentityRegistered) = 1,
        /// See [`PasswordSet`].
        PasswordSet(PasswordSet) = 1,
        /// See [`IdentityForgotten`].
        IdentityForgotten(IdentityForgotten) = 1,
    }
    legacy {}
}
