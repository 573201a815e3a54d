//! A global identity: an email with one password across every tenant.

use super::Aggregate;
use access_catalogue::catalogue::{Event, IdentityEvent};

/// What the log says about one identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentityState {
    /// False until `IdentityRegistered`.
    pub registered: bool,
    /// The argon2id PHC string of the current password, if one was set.
    pub password_hash: Option<String>,
}

impl Aggregate for IdentityState {
    fn evolve(mut self, event: &Event) -> Self {
        match event {
            Event::Identity(IdentityEvent::IdentityRegistered(_)) => self.registered = true,
            Event::Identity(IdentityEvent::PasswordSet(p)) => {
                self.password_hash = Some(p.password_hash.clone());
            }
            // A forgotten person starts over: no password survives them.
            Event::Identity(IdentityEvent::IdentityForgotten(_)) => self = Self::default(),
            _ => {}
        }
        self
    }
}
