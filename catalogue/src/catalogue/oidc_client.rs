//! OpenID Connect clients: the portals a tenant lets sign its contacts in.

use super::legacy;
use crate::codec::payload_enum;
use serde::{Deserialize, Serialize};

/// Whether a client can keep a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OidcClientKind {
    /// A server-side portal: it authenticates with its secret.
    Confidential,
    /// A portal running in the browser or on a device: no secret, and PKCE
    /// with S256 on every authorization.
    Public,
}

/// What a tenant configures about a client, replaced as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcClientSettings {
    /// Shown to the contact on the pages.
    pub name: String,
    /// Where authorization answers may go, matched exactly.
    pub redirect_uris: Vec<String>,
    /// Scopes the client may ask for (`openid` always among them).
    pub scopes: Vec<String>,
    /// How long its access tokens live, in seconds.
    pub access_token_ttl_s: u32,
    /// How long its refresh tokens live unused, in seconds.
    pub refresh_token_ttl_s: u32,
    /// Where logout tokens are posted when a contact's sign-in to it ends
    /// (OpenID Connect Back-Channel Logout); `None`: not told.
    pub backchannel_logout_uri: Option<String>,
    /// Where the browser may be sent after signing out, matched exactly.
    pub post_logout_redirect_uris: Vec<String>,
    /// The JOSE algorithm its tokens are signed with: `EdDSA` or `ES256`.
    pub token_signing_alg: String,
    /// Where a sign-in the provider starts goes (OpenID Connect Core §4):
    /// after a contact sets a password from an invitation or a reset link,
    /// the browser goes here with `iss`, and the client asks for a code.
    pub initiate_login_uri: Option<String>,
}

/// A tenant registered a client. A confidential client's secret is derived
/// from the server key `server_key_id`, the client and the secret's
/// generation; only its SHA-256 is recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcClientRegistered {
    /// The client's id.
    pub client_id: String,
    /// Confidential or public.
    pub kind: OidcClientKind,
    /// What it may do.
    pub settings: OidcClientSettings,
    /// SHA-256 of its secret; `None` for a public client.
    pub secret_sha256: Option<[u8; 32]>,
    /// The server key the secret is derived from.
    pub server_key_id: u8,
}

/// A client's settings were replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcClientUpdated {
    /// The new settings.
    pub settings: OidcClientSettings,
}

/// A confidential client got a new secret; the old one stopped working.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcClientSecretRotated {
    /// The secret's generation (the first is 1).
    pub generation: u32,
    /// SHA-256 of the new secret.
    pub secret_sha256: [u8; 32],
    /// The server key it is derived from.
    pub server_key_id: u8,
}

/// A client was removed: it can sign nobody in from now on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcClientRemoved {
    /// Why, for the record.
    pub reason: String,
}

payload_enum! {
    /// Events of an OpenID Connect client stream.
    pub enum OidcClientEvent {
        /// See [`OidcClientRegistered`].
        OidcClientRegistered(OidcClientRegistered) = 2,
        /// See [`OidcClientUpdated`].
        OidcClientUpdated(OidcClientUpdated) = 2,
        /// See [`OidcClientSecretRotated`].
        OidcClientSecretRotated(OidcClientSecretRotated) = 1,
        /// See [`OidcClientRemoved`].
        OidcClientRemoved(OidcClientRemoved) = 1,
    }
    legacy {
        OidcClientRegistered v 1 => legacy::OidcClientRegisteredV1,
        OidcClientUpdated v 1 => legacy::OidcClientUpdatedV1,
    }
}
