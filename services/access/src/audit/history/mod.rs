//! A tenant's history in words: which events belong to a customer, a contact
//! or a staff key, a one-line summary of each, and its payload as JSON with
//! credential material redacted.

use access_catalogue::catalogue::{
    ContactEvent, CustomerEvent, EmailSlotEvent, Event, InvitationEvent, OidcClientEvent,
    OidcGrantEvent, PortalLinkEvent, TenantEvent, UsernameSlotEvent,
};
use access_catalogue::{Actor, Envelope};
use std::collections::HashMap;

mod redact;
mod sentences;
#[cfg(test)]
mod tests;
mod webhooks;

pub use redact::redacted_json;
use sentences::minute;

/// Whose history is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// Everything of the tenant.
    Tenant,
    /// One customer, its contacts, their invitations and its portal links.
    Customer(String),
    /// One contact, its invitation, its reservations and its identity.
    Contact(String),
    /// What one staff key did.
    Key(String),
}

#[derive(Clone, Debug, Default)]
struct ContactName {
    customer_id: String,
    label: String,
    identity_id: String,
}

/// What the history has said so far about names: keys, customers, contacts.
/// Folded from the tenant's first event on, so later summaries can say
/// "rep key 'anna'" and "bob@acme.example" instead of ids.
#[derive(Debug, Default)]
pub struct Names {
    keys: HashMap<String, (String, String)>,
    customers: HashMap<String, String>,
    contacts: HashMap<String, ContactName>,
    invitations: HashMap<String, String>,
    portal_links: HashMap<String, String>,
    identities: HashMap<String, String>,
    clients: HashMap<String, String>,
    /// Grant → (contact, client).
    grants: HashMap<String, (String, String)>,
}

impl Names {
    /// Learns the names an event brings.
    pub fn learn(&mut self, envelope: &Envelope, event: &Event) {
        let id = envelope.stream.id();
        match event {
            Event::Tenant(TenantEvent::ApiKeyIssued(k)) => {
                self.keys
                    .insert(k.key_id.clone(), (k.role.clone(), k.name.clone()));
            }
            Event::Customer(CustomerEvent::CustomerCreated(c)) => {
                self.customers
                    .insert(c.record.customer_id.clone(), c.record.name.clone());
            }
            Event::Customer(CustomerEvent::CustomerUpdated(c)) => {
                self.customers
                    .insert(c.record.customer_id.clone(), c.record.name.clone());
            }
            Event::Contact(ContactEvent::ContactInvited(c)) => {
                self.contacts.insert(
                    c.contact_id.clone(),
                    ContactName {
                        customer_id: c.customer_id.clone(),
                        label: c.email.text().to_owned(),
                        identity_id: c.identity_id.clone(),
                    },
                );
                self.identities
                    .insert(c.identity_id.clone(), c.contact_id.clone());
            }
            Event::Contact(ContactEvent::LoginCreated(c)) => {
                self.contacts.insert(
                    c.contact_id.clone(),
                    ContactName {
                        customer_id: c.customer_id.clone(),
                        label: c.username.clone(),
                        identity_id: c.identity_id.clone().unwrap_or_default(),
                    },
                );
                if let Some(identity) = &c.identity_id {
                    self.identities
                        .insert(identity.clone(), c.contact_id.clone());
                }
            }
            Event::Contact(ContactEvent::ContactImported(c)) => {
                let label = match (&c.username, &c.email) {
                    (Some(u), _) => u.clone(),
                    (None, Some(e)) => e.text().to_owned(),
                    (None, None) => c.contact_id.clone(),
                };
                self.contacts.insert(
                    c.contact_id.clone(),
                    ContactName {
                        customer_id: c.customer_id.clone(),
                        label,
                        identity_id: c.identity_id.clone().unwrap_or_default(),
                    },
                );
                if let Some(identity) = &c.identity_id {
                    self.identities
                        .insert(identity.clone(), c.contact_id.clone());
                }
            }
            Event::Contact(ContactEvent::ContactDetailsChanged(c)) => {
                if let Some(contact) = self.contacts.get_mut(id) {
                    if let Some(label) = c
                        .username
                        .clone()
                        .or_else(|| c.email.as_ref().map(|e| e.text().to_owned()))
                    {
                        contact.label = label;
                    }
                    contact.identity_id = c.identity_id.clone().unwrap_or_default();
                }
                if let Some(identity) = &c.identity_id {
                    self.identities.insert(identity.clone(), id.to_owned());
                }
            }
            Event::Invitation(InvitationEvent::InvitationIssued(i)) => {
                self.invitations
                    .insert(i.invitation_id.clone(), i.contact_id.clone());
            }
            Event::PortalLink(PortalLinkEvent::PortalLinkCreated(l)) => {
                self.portal_links
                    .insert(l.link_id.clone(), l.customer_id.clone());
            }
            Event::OidcClient(OidcClientEvent::OidcClientRegistered(c)) => {
                self.clients
                    .insert(c.client_id.clone(), c.settings.name.clone());
            }
            Event::OidcClient(OidcClientEvent::OidcClientUpdated(u)) => {
                self.clients.insert(id.to_owned(), u.settings.name.clone());
            }
            Event::OidcGrant(OidcGrantEvent::AuthorizationCodeIssued(c)) => {
                self.grants
                    .insert(id.to_owned(), (c.contact_id.clone(), c.client_id.clone()));
            }
            _ => {}
        }
    }

    fn client(&self, id: &str) -> String {
        match self.clients.get(id) {
            Some(name) if !name.is_empty() => format!("'{name}' ({id})"),
            _ => id.to_owned(),
        }
    }

    fn customer(&self, id: &str) -> String {
        match self.customers.get(id) {
            Some(name) if !name.is_empty() => format!("{name} ({id})"),
            _ => id.to_owned(),
        }
    }

    fn contact(&self, id: &str) -> String {
        match self.contacts.get(id) {
            Some(c) if !c.label.is_empty() => c.label.clone(),
            _ => format!("contact {id}"),
        }
    }

    fn key(&self, key_id: &str) -> String {
        match self.keys.get(key_id) {
            Some((_, name)) if !name.is_empty() => format!("'{name}' ({key_id})"),
            _ => key_id.to_owned(),
        }
    }

    /// The contact an event is about, if any.
    fn contact_of(&self, envelope: &Envelope, event: &Event) -> Option<String> {
        let id = envelope.stream.id();
        match event {
            Event::Contact(_) => Some(id.to_owned()),
            Event::Invitation(_) => self.invitations.get(id).cloned(),
            Event::EmailSlot(EmailSlotEvent::EmailReserved(r))
            | Event::UsernameSlot(UsernameSlotEvent::UsernameReserved(r)) => {
                Some(r.contact_id.clone())
            }
            Event::EmailSlot(EmailSlotEvent::EmailReleased(r))
            | Event::UsernameSlot(UsernameSlotEvent::UsernameReleased(r)) => {
                Some(r.contact_id.clone())
            }
            Event::Identity(_) => self.identities.get(id).cloned(),
            Event::OidcGrant(_) => self.grants.get(id).map(|(contact, _)| contact.clone()),
            _ => None,
        }
    }

    /// Whether an event belongs to `subject`'s history.
    pub fn concerns(&self, subject: &Subject, envelope: &Envelope, event: &Event) -> bool {
        match subject {
            Subject::Tenant => true,
            Subject::Key(key_id) => {
                matches!(&envelope.actor, Actor::ApiKey { key_id: k, .. } if k == key_id)
            }
            Subject::Contact(contact) => {
                self.contact_of(envelope, event).as_deref() == Some(contact.as_str())
            }
            Subject::Customer(customer) => {
                let id = envelope.stream.id();
                match event {
                    Event::Customer(_) => id == customer,
                    Event::PortalLink(_) => {
                        self.portal_links.get(id).map(String::as_str) == Some(customer)
                    }
                    _ => self
                        .contact_of(envelope, event)
                        .and_then(|c| self.contacts.get(&c))
                        .is_some_and(|c| &c.customer_id == customer),
                }
            }
        }
    }

    /// Who acted, in words.
    pub fn actor(&self, actor: &Actor) -> String {
        match actor {
            Actor::Operator => "operator".into(),
            Actor::ApiKey { key_id, role } => format!("{role} key {}", self.key(key_id)),
            Actor::Contact { contact_id } => format!("contact {}", self.contact(contact_id)),
            Actor::System { component } => format!("system ({component})"),
        }
    }

    /// The event in one line: when, who, what.
    pub fn summary(&self, envelope: &Envelope, event: &Event) -> String {
        format!(
            "{} {} {}",
            minute(envelope.occurred_at_ms),
            self.actor(&envelope.actor),
            self.what(envelope, event)
        )
    }
}
