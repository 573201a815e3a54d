//! What operators did to the log itself.

use crate::codec::payload_enum;
use serde::{Deserialize, Serialize};

/// An operator repaired damaged history: how, what was lost, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRepaired {
    /// `quarantine` (the damaged part cut off and kept aside) or `archive`
    /// (the damaged events taken back from a backup).
    pub method: String,
    /// The first position no longer in the log; 0 when nothing was lost.
    pub first_lost_position: u64,
    /// Events taken back from the archive.
    pub restored_events: u64,
    /// Where the damaged bytes were kept, beside the log.
    pub kept_aside: String,
    /// The archive restored from, with its SHA-256; empty for a quarantine.
    pub archive: String,
    /// The damage that called for it, as the check named it.
    pub damage: String,
    /// The operator's reason.
    pub reason: String,
}

payload_enum! {
    /// Events of the log's own stream: what operators did to the log.
    pub enum SystemEvent {
        /// See [`LogRepaired`].
        LogRepaired(LogRepaired) = 1,
    }
    legacy {}
}
