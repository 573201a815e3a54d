//! An invitation's life: issued, resent, accepted or cancelled.

use crate::codec::payload_enum;
use crate::personal::Personal;
use serde::{Deserialize, Serialize};

/// An invitation was issued with its first link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationIssued {
    /// The invitation's id.
    pub invitation_id: String,
    /// The contact it invites.
    pub contact_id: String,
    /// The contact's customer.
    pub customer_id: String,
    /// Where the link is sent.
    pub email: Personal,
    /// The personal message written by staff.
    pub message: Personal,
    /// The link generation; a link is valid only for the current one.
    pub generation: u32,
    /// When the link dies, Unix milliseconds.
    pub expires_at_ms: i64,
}

/// A new link was sent; every older link of the invitation died.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationResent {
    /// The new link generation.
    pub generation: u32,
    /// When the new link dies, Unix milliseconds.
    pub expires_at_ms: i64,
}

/// The invitation's link was used; it works no more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationAccepted {
    /// The generation of the link that was used.
    pub generation: u32,
    /// The identity that now holds the login.
    pub identity_id: String,
}

/// The invitation was withdrawn (access revoked); its link works no more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationCancelled {
    /// Why.
    pub reason: String,
}

payload_enum! {
    /// Events of an invitation stream.
    pub enum InvitationEvent {
        /// See [`InvitationIssued`].
        InvitationIssued(InvitationIssued) = 1,
        /// See [`InvitationResent`].
        InvitationResent(InvitationResent) = 1,
        /// See [`InvitationAccepted`].
        InvitationAccepted(InvitationAccepted) = 1,
        /// See [`InvitationCancelled`].
        InvitationCancelled(InvitationCancelled) = 1,
    }
    legacy {}
}
