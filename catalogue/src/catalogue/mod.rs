//! The event catalogue: every fact the service records, one enum per aggregate.
//!
//! Events are named in the past tense. Variants and fields are never reordered or
//! removed; a changed layout becomes a new schema version with the old type kept
//! in [`legacy`] and upcast on read.

use crate::codec::{CodecError, Payload};
use crate::envelope::{Aggregate, Envelope};
use crate::personal::Personal;

mod contact;
mod customer;
mod identity;
mod invitation;
/// Layouts that were once written and are only read now, with their upcasts.
pub mod legacy;
mod oidc_client;
mod oidc_grant;
mod portal_link;
mod reservation;
mod system;
mod tenant;
#[cfg(test)]
mod tests;
mod webhook;

pub use contact::*;
pub use customer::*;
pub use identity::*;
pub use invitation::*;
pub use oidc_client::*;
pub use oidc_grant::*;
pub use portal_link::*;
pub use reservation::*;
pub use system::*;
pub use tenant::*;
pub use webhook::*;

/// Any event of the catalogue, as decoded from an envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// From a tenant stream.
    Tenant(TenantEvent),
    /// From a customer stream.
    Customer(CustomerEvent),
    /// From a contact stream.
    Contact(ContactEvent),
    /// From an invitation stream.
    Invitation(InvitationEvent),
    /// From an identity stream.
    Identity(IdentityEvent),
    /// From an email reservation stream.
    EmailSlot(EmailSlotEvent),
    /// From a username reservation stream.
    UsernameSlot(UsernameSlotEvent),
    /// From a portal link stream.
    PortalLink(PortalLinkEvent),
    /// From an OpenID Connect client stream.
    OidcClient(OidcClientEvent),
    /// From an OpenID Connect grant stream.
    OidcGrant(OidcGrantEvent),
    /// From the log's own stream.
    System(SystemEvent),
    /// From a webhook stream.
    Webhook(WebhookEvent),
}

impl Event {
    /// Decodes an envelope's payload by its stream's aggregate, type and version.
    pub fn decode(envelope: &Envelope) -> Result<Self, CodecError> {
        let (t, v, b) = (
            envelope.event_type.as_str(),
            envelope.schema_version,
            envelope.payload.as_slice(),
        );
        Ok(match envelope.stream.aggregate() {
            Aggregate::Tenant => Event::Tenant(TenantEvent::decode(t, v, b)?),
            Aggregate::Customer => Event::Customer(CustomerEvent::decode(t, v, b)?),
            Aggregate::Contact => Event::Contact(ContactEvent::decode(t, v, b)?),
            Aggregate::Invitation => Event::Invitation(InvitationEvent::decode(t, v, b)?),
            Aggregate::Identity => Event::Identity(IdentityEvent::decode(t, v, b)?),
            Aggregate::EmailSlot => Event::EmailSlot(EmailSlotEvent::decode(t, v, b)?),
            Aggregate::UsernameSlot => Event::UsernameSlot(UsernameSlotEvent::decode(t, v, b)?),
            Aggregate::PortalLink => Event::PortalLink(PortalLinkEvent::decode(t, v, b)?),
            Aggregate::OidcClient => Event::OidcClient(OidcClientEvent::decode(t, v, b)?),
            Aggregate::OidcGrant => Event::OidcGrant(OidcGrantEvent::decode(t, v, b)?),
            Aggregate::System => Event::System(SystemEvent::decode(t, v, b)?),
            Aggregate::Webhook => Event::Webhook(WebhookEvent::decode(t, v, b)?),
        })
    }

    /// The aggregate whose streams carry this event.
    pub fn aggregate(&self) -> Aggregate {
        match self {
            Event::Tenant(_) => Aggregate::Tenant,
            Event::Customer(_) => Aggregate::Customer,
            Event::Contact(_) => Aggregate::Contact,
            Event::Invitation(_) => Aggregate::Invitation,
            Event::Identity(_) => Aggregate::Identity,
            Event::EmailSlot(_) => Aggregate::EmailSlot,
            Event::UsernameSlot(_) => Aggregate::UsernameSlot,
            Event::PortalLink(_) => Aggregate::PortalLink,
            Event::OidcClient(_) => Aggregate::OidcClient,
            Event::OidcGrant(_) => Aggregate::OidcGrant,
            Event::System(_) => Aggregate::System,
            Event::Webhook(_) => Aggregate::Webhook,
        }
    }

    /// `(event_type, schema_version, payload bytes)` for appending.
    pub fn encode(&self) -> (&'static str, u16, Vec<u8>) {
        fn parts<P: Payload>(p: &P) -> (&'static str, u16, Vec<u8>) {
            (p.event_type(), p.schema_version(), p.encode())
        }
        match self {
            Event::Tenant(e) => parts(e),
            Event::Customer(e) => parts(e),
            Event::Contact(e) => parts(e),
            Event::Invitation(e) => parts(e),
            Event::Identity(e) => parts(e),
            Event::EmailSlot(e) => parts(e),
            Event::UsernameSlot(e) => parts(e),
            Event::PortalLink(e) => parts(e),
            Event::OidcClient(e) => parts(e),
            Event::OidcGrant(e) => parts(e),
            Event::System(e) => parts(e),
            Event::Webhook(e) => parts(e),
        }
    }

    /// The personal values of the event, each with the key ref it is sealed
    /// under: the identity of the email it belongs to, or, for a login
    /// without one, its contact. `stream` is the event's stream.
    pub fn personal_mut(&mut self, stream: &str) -> Vec<(&mut Personal, String)> {
        use crate::personal::{contact_ref, identity_of};
        let id = stream.splitn(3, '.').nth(2).unwrap_or_default().to_owned();
        let of = |identity: Option<&String>, email: &Personal| match identity {
            Some(i) if !i.is_empty() => i.clone(),
            _ => identity_of(email.text()),
        };
        match self {
            Event::Contact(ContactEvent::ContactInvited(e)) => {
                let key = of(Some(&e.identity_id), &e.email);
                vec![(&mut e.email, key)]
            }
            Event::Contact(ContactEvent::LoginCreated(e)) => match &mut e.email {
                Some(email) => {
                    let key = of(e.identity_id.as_ref(), email);
                    vec![(email, key)]
                }
                None => Vec::new(),
            },
            Event::Contact(ContactEvent::ContactImported(e)) => match &mut e.email {
                Some(email) => {
                    let key = of(e.identity_id.as_ref(), email);
                    vec![(email, key)]
                }
                None => Vec::new(),
            },
            Event::Contact(ContactEvent::PasswordImported(e)) => {
                vec![(&mut e.password_hash, contact_ref(&id))]
            }
            Event::Contact(ContactEvent::ContactDetailsChanged(e)) => match &mut e.email {
                Some(email) => {
                    let key = of(e.identity_id.as_ref(), email);
                    vec![(email, key)]
                }
                None => Vec::new(),
            },
            Event::Contact(ContactEvent::LoginFailed(e)) => {
                vec![(&mut e.client_address, contact_ref(&id))]
            }
            // Under the login's own key: it stays with the contact when its
            // email (and so its identity) changes, and an erasure destroys
            // it with the person's other keys.
            Event::Contact(ContactEvent::TotpAdded(e)) => vec![(&mut e.secret, contact_ref(&id))],
            Event::Contact(ContactEvent::PasskeyAdded(e)) => {
                vec![(&mut e.credential, contact_ref(&id))]
            }
            Event::Contact(ContactEvent::PasskeyUsed(e)) => match &mut e.credential {
                Some(credential) => vec![(credential, contact_ref(&id))],
                None => Vec::new(),
            },
            Event::Invitation(InvitationEvent::InvitationIssued(e)) => {
                let key = identity_of(e.email.text());
                vec![(&mut e.email, key.clone()), (&mut e.message, key)]
            }
            Event::Identity(IdentityEvent::IdentityRegistered(e)) => vec![(&mut e.email, id)],
            Event::OidcGrant(OidcGrantEvent::AuthorizationCodeIssued(e)) => {
                vec![(&mut e.client_address, contact_ref(&e.contact_id))]
            }
            _ => Vec::new(),
        }
    }

    /// Whether every personal value may be stored (sealed or empty).
    pub fn storable(&mut self) -> bool {
        self.personal_mut("").iter().all(|(p, _)| p.storable())
    }

    /// The key refs of the sealed values, to fetch before [`Event::open`].
    pub fn sealed_refs(&mut self) -> Vec<String> {
        self.personal_mut("")
            .iter()
            .filter_map(|(p, _)| p.key_ref().map(str::to_owned))
            .collect()
    }

    /// Opens every sealed value with the keys found (a missing key: erased).
    pub fn open(&mut self, keys: &std::collections::HashMap<String, crate::personal::Key>) {
        for (p, _) in self.personal_mut("") {
            let key = p.key_ref().and_then(|r| keys.get(r));
            p.open(key);
        }
    }
}
