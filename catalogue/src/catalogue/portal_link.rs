//! Capability links into a tenant's portal.

use super::DocumentKind;
use crate::codec::payload_enum;
use serde::{Deserialize, Serialize};

/// A capability link was created; only the SHA-256 of its token is recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalLinkCreated {
    /// The link's id.
    pub link_id: String,
    /// The customer whose documents it shows.
    pub customer_id: String,
    /// The document kinds it shows (view only).
    pub kinds: Vec<DocumentKind>,
    /// When it stops working, Unix milliseconds, if ever.
    pub expires_at_ms: Option<i64>,
    /// SHA-256 of the token.
    pub token_sha256: [u8; 32],
}

/// A capability link was deleted: it stops working at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalLinkDeleted {
    /// Why.
    pub reason: String,
}

payload_enum! {
    /// Events of a portal link stream.
    pub enum PortalLinkEvent {
        /// See [`PortalLinkCreated`].
        PortalLinkCreated(PortalLinkCreated) = 1,
        /// See [`PortalLinkDeleted`].
        PortalLinkDeleted(PortalLinkDeleted) = 1,
    }
    legacy {}
}
