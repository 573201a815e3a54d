//! The per-tenant reservation of an email: the log's own uniqueness check.
//!
//! Inviting appends `EmailReserved` to `emailslot.<tenant>.<identity>` with the
//! version it saw, in the same atomic append as the contact; a concurrent
//! invitation of the same email, on any replica, conflicts there.

use super::Aggregate;
use access_catalogue::catalogue::{EmailSlotEvent, Event, UsernameSlotEvent};

/// Who holds an email (or a username) within a tenant; both reservation
/// streams fold into this state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmailSlotState {
    /// The contact holding it, if any.
    pub holder: Option<String>,
}

impl Aggregate for EmailSlotState {
    fn evolve(mut self, event: &Event) -> Self {
        match event {
            Event::EmailSlot(EmailSlotEvent::EmailReserved(e)) => {
                self.holder = Some(e.contact_id.clone());
            }
            Event::EmailSlot(EmailSlotEvent::EmailReleased(_))
            | Event::UsernameSlot(UsernameSlotEvent::UsernameReleased(_)) => self.holder = None,
            Event::UsernameSlot(UsernameSlotEvent::UsernameReserved(e)) => {
                self.holder = Some(e.contact_id.clone());
            }
            _ => {}
        }
        self
    }
}
