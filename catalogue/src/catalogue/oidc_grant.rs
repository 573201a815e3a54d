//! OpenID Connect grants: one contact signed in to one client, from the
//! authorization code to the last refresh token. Codes and refresh tokens
//! are derived from the server key recorded here, the grant and a
//! generation; the log holds no token.

use super::legacy;
use crate::codec::payload_enum;
use crate::personal::Personal;
use serde::{Deserialize, Serialize};

/// A contact signed in to a client through the authorization endpoint and
/// an authorization code was issued for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationCodeIssued {
    /// The client signed in to.
    pub client_id: String,
    /// The contact who signed in.
    pub contact_id: String,
    /// Where the code was sent; the token request must name it again.
    pub redirect_uri: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// The PKCE S256 challenge, when the client sent one.
    pub code_challenge: Option<String>,
    /// The client's nonce, echoed in the ID token.
    pub nonce: Option<String>,
    /// When the contact proved the password, Unix milliseconds.
    pub auth_time_ms: i64,
    /// When the code stops working, Unix milliseconds.
    pub expires_at_ms: i64,
    /// The provider's browser session the sign-in belongs to.
    pub session_id: String,
    /// The server key the code and refresh tokens are derived from.
    pub server_key_id: u8,
    /// The browser's network address.
    pub client_address: Personal,
    /// How the contact authenticated (RFC 8176: `pwd`, and `otp` and `mfa`
    /// after a second factor), for the tokens' `amr` and `acr`.
    pub amr: Vec<String>,
}

/// The client exchanged the code for tokens; refresh token generation 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationCodeRedeemed {
    /// When the first refresh token stops working unused, Unix milliseconds.
    pub refresh_expires_at_ms: i64,
}

/// The client exchanged its refresh token for a new one, which replaced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshTokenRotated {
    /// The new refresh token's generation.
    pub generation: u32,
    /// When it stops working unused, Unix milliseconds.
    pub refresh_expires_at_ms: i64,
}

/// Why a grant ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantEnd {
    /// Its authorization code was presented a second time (RFC 6749 §4.1.2).
    CodeReplayed,
    /// A refresh token it had replaced was presented again: it leaked.
    RefreshReused,
    /// The client revoked a token of it (RFC 7009).
    RevokedByClient,
    /// The contact signed out of the provider.
    LoggedOut,
    /// The contact may no longer sign in (disabled, revoked, forgotten, or
    /// the customer's status).
    AccessLost,
    /// The contact's password was changed or reset after the sign-in.
    PasswordChanged,
    /// A second factor of the contact was removed after the sign-in (the
    /// sign-in may have been made with it).
    FactorRemoved,
}

/// The grant ended: its refresh tokens and access tokens stop working.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRevoked {
    /// Why.
    pub reason: GrantEnd,
}

/// The client was told by a logout token that the grant ended (OpenID
/// Connect Back-Channel Logout): it answered 2xx.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackchannelLogoutDelivered {}

/// Telling the client that the grant ended was given up: it refused the
/// logout token, or could not be reached for a day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackchannelLogoutAbandoned {
    /// Why, in words.
    pub reason: String,
}

payload_enum! {
    /// Events of an OpenID Connect grant stream.
    // A grant's first event is its largest; events are decoded one at a
    // time, so boxing it would buy nothing.
    #[allow(clippy::large_enum_variant)]
    pub enum OidcGrantEvent {
        /// See [`AuthorizationCodeIssued`].
        AuthorizationCodeIssued(AuthorizationCodeIssued) = 2,
        /// See [`AuthorizationCodeRedeemed`].
        AuthorizationCodeRedeemed(AuthorizationCodeRedeemed) = 1,
        /// See [`RefreshTokenRotated`].
        RefreshTokenRotated(RefreshTokenRotated) = 1,
        /// See [`GrantRevoked`].
        GrantRevoked(GrantRevoked) = 1,
        /// See [`BackchannelLogoutDelivered`].
        BackchannelLogoutDelivered(BackchannelLogoutDelivered) = 1,
        /// See [`BackchannelLogoutAbandoned`].
        BackchannelLogoutAbandoned(BackchannelLogoutAbandoned) = 1,
    }
    legacy {
        AuthorizationCodeIssued v 1 => legacy::AuthorizationCodeIssuedV1,
    }
}
