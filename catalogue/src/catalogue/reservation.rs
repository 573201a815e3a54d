//! Reservations that keep an email or a username unique within a tenant.

use crate::codec::payload_enum;
use serde::{Deserialize, Serialize};

/// An email (or username) was reserved for a contact of the tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailReserved {
    /// The contact holding the email.
    pub contact_id: String,
}

/// An email (or username) was freed, so it can be used again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailReleased {
    /// The contact that held it.
    pub contact_id: String,
}

payload_enum! {
    /// Events of a username reservation stream.
    pub enum UsernameSlotEvent {
        /// A username was reserved for a contact.
        UsernameReserved(EmailReserved) = 1,
        /// A username was freed.
        UsernameReleased(EmailReleased) = 1,
    }
    legacy {}
}

payload_enum! {
    /// Events of an email reservation stream.
    pub enum EmailSlotEvent {
        /// See [`EmailReserved`].
        EmailReserved(EmailReserved) = 1,
        /// See [`EmailReleased`].
        EmailReleased(EmailReleased) = 1,
    }
    legacy {}
}
