//! Forgetting a person (the right to erasure): their access ends everywhere,
//! their email is free again, and the record says who forgot them and why.
//! The personal data itself goes with their key, destroyed after the append.

use super::contact::{ContactState, Lifecycle};
use super::email_slot::EmailSlotState;
use super::identity::IdentityState;
use super::values::{GeneratedId, TenantId};
use super::{Change, DomainError, streams};
use access_catalogue::catalogue::{
    AccessChanged, ContactEvent, EmailReleased, EmailSlotEvent, Event, IdentityEvent,
    IdentityForgotten,
};

/// What `AccessRevoked` says when a person is forgotten.
pub const REASON: &str = "the person was forgotten (erasure)";

/// One contact of the person, with its email reservation.
pub struct PersonContact<'a> {
    /// Its tenant.
    pub tenant: TenantId,
    /// The contact.
    pub contact_id: GeneratedId,
    /// Its state.
    pub state: &'a ContactState,
    /// The reservation of the person's email in that tenant.
    pub slot: &'a EmailSlotState,
}

/// Decides `ForgetIdentity`.
pub fn forget(
    identity: &IdentityState,
    identity_id: &GeneratedId,
    contacts: &[PersonContact<'_>],
    reason: &str,
) -> Result<Vec<Change>, DomainError> {
    if !identity.registered && contacts.iter().all(|c| c.state.lifecycle.is_none()) {
        return Err(DomainError::NotFound("identity"));
    }
    let mut changes = Vec::new();
    let mut ended = Vec::new();
    for c in contacts {
        let Some(lifecycle) = c.state.lifecycle else {
            continue;
        };
        ended.push((c.tenant.to_string(), c.contact_id.to_string()));
        if lifecycle != Lifecycle::Revoked {
            changes.push(Change::new(
                streams::contact(&c.tenant, &c.contact_id),
                Event::Contact(ContactEvent::AccessRevoked(AccessChanged {
                    reason: REASON.into(),
                })),
            ));
        }
        if c.slot.holder.as_deref() == Some(c.contact_id.as_str()) {
            changes.push(Change::new(
                streams::email_slot(&c.tenant, identity_id),
                Event::EmailSlot(EmailSlotEvent::EmailReleased(EmailReleased {
                    contact_id: c.contact_id.to_string(),
                })),
            ));
        }
    }
    changes.push(Change::new(
        streams::identity(identity_id),
        Event::Identity(IdentityEvent::IdentityForgotten(IdentityForgotten {
            reason: reason.to_owned(),
            contacts: ended,
        })),
    ));
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contact_ends_and_its_email_is_freed_in_one_decision() {
        let identity = GeneratedId::generate();
        let tenant = TenantId::parse("acme").expect("tenant");
        let (a, b) = (GeneratedId::generate(), GeneratedId::generate());
        let active = ContactState {
            lifecycle: Some(Lifecycle::Active),
            ..ContactState::default()
        };
        let revoked = ContactState {
            lifecycle: Some(Lifecycle::Revoked),
            ..ContactState::default()
        };
        let held = EmailSlotState {
            holder: Some(a.to_string()),
        };
        let free = EmailSlotState::default();
        let changes = forget(
            &IdentityState {
                registered: true,
                password_hash: None,
            },
            &identity,
            &[
                PersonContact {
                    tenant: tenant.clone(),
                    contact_id: a.clone(),
                    state: &active,
                    slot: &held,
                },
                PersonContact {
                    tenant: tenant.clone(),
                    contact_id: b.clone(),
                    state: &revoked,
                    slot: &free,
                },
            ],
            "asked by email on 2026-11-20",
        )
        .expect("decided");
        assert_eq!(changes.len(), 3, "revoke a, free a's email, the record");
        assert!(matches!(
            &changes[2].event,
            Event::Identity(IdentityEvent::IdentityForgotten(f)) if f.contacts.len() == 2
        ));
    }

    #[test]
    fn an_unknown_person_is_not_found() {
        let err = forget(&IdentityState::default(), &GeneratedId::generate(), &[], "")
            .expect_err("nobody");
        assert_eq!(err, DomainError::NotFound("identity"));
    }
}
