//! A tenant's history in words: which events belong to a customer, a contact
//! or a staff key, a one-line summary of each, and its payload as JSON with
//! credential material redacted.

use access_catalogue::catalogue::{
    ContactEvent, CustomerEvent, CustomerStatus, DefaultVisibility, DocumentKind, EmailSlotEvent,
    Event, IdentityEvent, InvitationEvent, LoginKind, PortalLinkEvent, SiteRule, SystemEvent,
    TenantEvent, UsernameSlotEvent,
};
use access_catalogue::{Actor, Envelope};
use std::collections::HashMap;

/// Fields whose values are credential material, never shown.
const REDACTED_SUFFIXES: [&str; 2] = ["_hash", "_sha256"];

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
            _ => {}
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

    fn what(&self, envelope: &Envelope, event: &Event) -> String {
        let id = envelope.stream.id();
        let contact = || self.contact(&self.contact_of(envelope, event).unwrap_or_default());
        let because = |reason: &str| {
            if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            }
        };
        match event {
            Event::Tenant(e) => match e {
                TenantEvent::TenantCreated(t) => format!(
                    "created tenant '{}' with sites {}; orders go to {} by default",
                    t.name,
                    t.sites.join(", "),
                    t.default_order_site
                ),
                TenantEvent::ApiKeyIssued(k) => format!(
                    "issued {} key '{}' ({}){}",
                    k.role,
                    k.name,
                    k.key_id,
                    k.rep_id
                        .as_deref()
                        .map(|r| format!(" for sales rep {r}"))
                        .unwrap_or_default()
                ),
                TenantEvent::ApiKeyRevoked(k) => format!("revoked key {}", self.key(&k.key_id)),
                TenantEvent::TenantSettingsChanged(s) => format!(
                    "changed the settings: sites {}; orders to {}; catalogue default {}; contacts of inactive customers {} log in",
                    s.sites.join(", "),
                    s.default_order_site,
                    match &s.default_visibility {
                        DefaultVisibility::AllSites => "all sites".to_owned(),
                        DefaultVisibility::OneSite(site) => format!("site {site}"),
                    },
                    if s.inactive_customers_may_log_in {
                        "may"
                    } else {
                        "may not"
                    }
                ),
                TenantEvent::ApprovalPolicySet(p) => {
                    if p.approval_required {
                        "made registrations wait for approval".into()
                    } else {
                        "let registrations in without approval".into()
                    }
                }
                TenantEvent::BrandingSet(b) => format!(
                    "set the pages' look and hand-off: logo {}, accent {}, portal {}",
                    if b.logo_url.is_empty() {
                        "none"
                    } else {
                        &b.logo_url
                    },
                    if b.accent_colour.is_empty() {
                        "default"
                    } else {
                        &b.accent_colour
                    },
                    if b.portal_url.is_empty() {
                        "none"
                    } else {
                        &b.portal_url
                    }
                ),
                TenantEvent::PasswordPolicySet(p) => format!(
                    "set the password rules: at least {} characters{}{}",
                    p.min_length,
                    if p.require_mixed_case {
                        ", mixed case"
                    } else {
                        ""
                    },
                    if p.require_symbol { ", a symbol" } else { "" }
                ),
                TenantEvent::UsernameAdministratorsSet(a) => {
                    format!("set the username administrators: {}", a.emails.join(", "))
                }
                TenantEvent::EmailTemplateSet(t) => format!("set the {} email template", t.kind),
                TenantEvent::EmailTemplateReset(t) => {
                    format!("went back to the built-in {} email template", t.kind)
                }
                TenantEvent::NotificationPolicySet(p) => format!(
                    "set notifications: tell contacts their access was disabled: {}; mail generated temporary passwords: {}",
                    yes(p.access_disabled),
                    yes(p.email_temporary_password)
                ),
            },
            Event::Customer(e) => match e {
                CustomerEvent::CustomerCreated(c) => format!(
                    "created customer {} ({}), {}{}",
                    c.record.name,
                    c.record.customer_id,
                    status(c.status),
                    c.record
                        .sales_rep
                        .as_deref()
                        .map(|r| format!(", sales rep {r}"))
                        .unwrap_or_default()
                ),
                CustomerEvent::CustomerUpdated(c) => format!(
                    "updated the record of customer {} ({})",
                    c.record.name, c.record.customer_id
                ),
                CustomerEvent::CustomerStatusChanged(s) => format!(
                    "set customer {} {}{}",
                    self.customer(id),
                    status(s.status),
                    because(&s.reason)
                ),
                CustomerEvent::DocumentVisibilitySet(d) => format!(
                    "let the contacts of {} view {}",
                    self.customer(id),
                    kinds(&d.kinds)
                ),
            },
            Event::Contact(e) => match e {
                ContactEvent::ContactInvited(c) => format!(
                    "invited {} to {}, {}",
                    c.email,
                    self.customer(&c.customer_id),
                    sites(&c.site_rule)
                ),
                ContactEvent::ContactActivated(_) => {
                    format!("activated {} (invitation accepted)", contact())
                }
                ContactEvent::AccessDisabled(c) => {
                    format!("disabled the access of {}{}", contact(), because(&c.reason))
                }
                ContactEvent::AccessRestored(c) => {
                    format!("restored the access of {}{}", contact(), because(&c.reason))
                }
                ContactEvent::AccessRevoked(c) => {
                    format!("revoked the access of {}{}", contact(), because(&c.reason))
                }
                ContactEvent::LoginCreated(l) => format!(
                    "created the {} login {} for {}{}, {}",
                    match l.kind {
                        LoginKind::Management => "management",
                        LoginKind::Staff => "staff",
                    },
                    l.username,
                    self.customer(&l.customer_id),
                    l.email
                        .as_ref()
                        .map(|e| format!(" with email {e}"))
                        .unwrap_or_default(),
                    sites(&l.site_rule)
                ),
                ContactEvent::LocalPasswordSet(p) if p.temporary => format!(
                    "set a {} temporary password for {}",
                    if p.generated.is_some() {
                        "generated"
                    } else {
                        "typed"
                    },
                    contact()
                ),
                ContactEvent::LocalPasswordSet(_) => {
                    format!("changed the password of the login {}", contact())
                }
                ContactEvent::FirstLogin(_) => {
                    format!("{} logged in for the first time", contact())
                }
                ContactEvent::PasswordResetRequested(r) => format!(
                    "sent {} a {} link, valid until {}{}",
                    contact(),
                    if r.first_time {
                        "welcome"
                    } else {
                        "password reset"
                    },
                    minute(r.expires_at_ms),
                    if r.by_staff { "" } else { " (forgot password)" }
                ),
                ContactEvent::PasswordResetCompleted(_) => {
                    format!("{} set a new password with a reset link", contact())
                }
                ContactEvent::LocalPasswordCleared(_) => format!(
                    "dropped the login-only password of {}: it uses its email's password again",
                    contact()
                ),
                ContactEvent::ContactDetailsChanged(d) => format!(
                    "changed the email of {} to {} and the username to {}",
                    contact(),
                    d.email.as_ref().map_or("none", |e| e.text()),
                    d.username.as_deref().unwrap_or("none")
                ),
                ContactEvent::EmailSent(m) => {
                    format!(
                        "recorded that the {} email to {} was accepted by the mail server",
                        m.kind,
                        contact()
                    )
                }
                ContactEvent::EmailDeliveryFailed(m) => format!(
                    "recorded that the {} email to {} could not be delivered: {}",
                    m.kind,
                    contact(),
                    m.reason
                ),
                ContactEvent::ContactAwaitingApproval(_) => {
                    format!("registered {}, who waits for approval", contact())
                }
                ContactEvent::ContactApproved(c) => {
                    format!("approved {}{}", contact(), because(&c.reason))
                }
                ContactEvent::ContactRejected(c) => {
                    format!("rejected {}{}", contact(), because(&c.reason))
                }
                ContactEvent::LoginFailed(f) => format!(
                    "recorded a failed login as {} (wrong password){}",
                    contact(),
                    if f.client_address.is_empty() {
                        String::new()
                    } else {
                        format!(" from {}", f.client_address)
                    }
                ),
                ContactEvent::LoginLocked(l) => format!(
                    "locked the login of {} until {} after {} failed logins",
                    contact(),
                    minute(l.until_ms),
                    l.failures
                ),
                ContactEvent::LoginCodeExchanged(_) => {
                    format!(
                        "let {} into the portal with a one-time login code",
                        contact()
                    )
                }
                ContactEvent::LoginFailuresCleared(c) => match envelope.actor {
                    Actor::Contact { .. } => {
                        format!(
                            "logged in as {}; earlier failed logins forgotten",
                            contact()
                        )
                    }
                    _ => format!("unlocked the login of {}{}", contact(), because(&c.reason)),
                },
            },
            Event::Invitation(e) => match e {
                InvitationEvent::InvitationIssued(i) => format!(
                    "issued an invitation link to {}, valid until {}",
                    i.email,
                    minute(i.expires_at_ms)
                ),
                InvitationEvent::InvitationResent(i) => format!(
                    "sent {} a fresh invitation link, valid until {} (older links dead)",
                    contact(),
                    minute(i.expires_at_ms)
                ),
                InvitationEvent::InvitationAccepted(_) => {
                    format!("used the invitation link of {}", contact())
                }
                InvitationEvent::InvitationCancelled(c) => {
                    format!(
                        "cancelled the invitation of {}{}",
                        contact(),
                        because(&c.reason)
                    )
                }
            },
            Event::Identity(e) => match e {
                IdentityEvent::IdentityRegistered(i) => {
                    format!("registered the identity {}", i.email)
                }
                IdentityEvent::PasswordSet(_) => {
                    format!("set the password of {} (for every supplier)", contact())
                }
                IdentityEvent::IdentityForgotten(f) => format!(
                    "forgot the person of identity {id}: their personal data is erased and the access of {} contact(s) ended{}",
                    f.contacts.len(),
                    because(&f.reason)
                ),
            },
            Event::PortalLink(e) => match e {
                PortalLinkEvent::PortalLinkCreated(l) => format!(
                    "created a portal link for {} to view {}{}",
                    self.customer(&l.customer_id),
                    kinds(&l.kinds),
                    l.expires_at_ms
                        .map(|t| format!(", until {}", minute(t)))
                        .unwrap_or_default()
                ),
                PortalLinkEvent::PortalLinkDeleted(d) => format!(
                    "deleted a portal link of {}{}",
                    self.customer(self.portal_links.get(id).map_or("", String::as_str)),
                    because(&d.reason)
                ),
            },
            Event::System(SystemEvent::LogRepaired(r)) if r.first_lost_position > 0 => format!(
                "quarantined damaged history from position {} on (kept in {}): {}{}",
                r.first_lost_position,
                r.kept_aside,
                r.damage,
                because(&r.reason)
            ),
            Event::System(SystemEvent::LogRepaired(r)) => format!(
                "repaired damaged history with {} events from {}, losing nothing (the damaged file kept in {}): {}{}",
                r.restored_events,
                r.archive,
                r.kept_aside,
                r.damage,
                because(&r.reason)
            ),
            Event::EmailSlot(EmailSlotEvent::EmailReserved(_)) => {
                format!("reserved the email for {}", contact())
            }
            Event::EmailSlot(EmailSlotEvent::EmailReleased(_)) => {
                format!("freed the email of {}", contact())
            }
            Event::UsernameSlot(UsernameSlotEvent::UsernameReserved(_)) => {
                format!("reserved the username for {}", contact())
            }
            Event::UsernameSlot(UsernameSlotEvent::UsernameReleased(_)) => {
                format!("freed the username of {}", contact())
            }
        }
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn status(s: CustomerStatus) -> &'static str {
    match s {
        CustomerStatus::Active => "active",
        CustomerStatus::Inactive => "inactive",
        CustomerStatus::Blacklisted => "blacklisted",
    }
}

fn sites(rule: &SiteRule) -> String {
    match rule {
        SiteRule::TenantDefault => "sites: the tenant's default".into(),
        SiteRule::AllSites => "sites: all".into(),
        SiteRule::OneSite(site) => format!("site {site}"),
    }
}

fn kinds(kinds: &[DocumentKind]) -> String {
    if kinds.is_empty() {
        return "no documents".into();
    }
    kinds
        .iter()
        .map(|k| match k {
            DocumentKind::SalesQuote => "sales quotes",
            DocumentKind::SalesOrder => "sales orders",
            DocumentKind::SalesInvoice => "sales invoices",
            DocumentKind::CreditNote => "credit notes",
            DocumentKind::DeliveryNote => "delivery notes",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `YYYY-MM-DD HH:MM` in UTC.
fn minute(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// The payload as JSON, with every credential field replaced by "[redacted]".
pub fn redacted_json(event: &Event) -> String {
    let value = match event {
        Event::Tenant(e) => serde_json::to_value(e),
        Event::Customer(e) => serde_json::to_value(e),
        Event::Contact(e) => serde_json::to_value(e),
        Event::Invitation(e) => serde_json::to_value(e),
        Event::Identity(e) => serde_json::to_value(e),
        Event::EmailSlot(e) => serde_json::to_value(e),
        Event::UsernameSlot(e) => serde_json::to_value(e),
        Event::PortalLink(e) => serde_json::to_value(e),
        Event::System(e) => serde_json::to_value(e),
    };
    let mut value = match value {
        // Externally tagged: {"Variant": {...}}; the type is said elsewhere.
        Ok(serde_json::Value::Object(mut outer)) if outer.len() == 1 => outer
            .values_mut()
            .next()
            .map(std::mem::take)
            .unwrap_or_default(),
        Ok(other) => other,
        Err(_) => serde_json::Value::Null,
    };
    redact(&mut value);
    value.to_string()
}

fn redact(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if REDACTED_SUFFIXES.iter().any(|s| k.ends_with(s)) {
                    *v = serde_json::Value::String("[redacted]".into());
                } else {
                    redact(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use access_catalogue::catalogue::{ApiKeyIssued, ContactInvited, LocalPasswordSet};

    #[test]
    fn credential_fields_are_redacted_at_any_depth() {
        let e = Event::Contact(ContactEvent::LocalPasswordSet(LocalPasswordSet {
            password_hash: "$argon2id$v=19$secret".into(),
            temporary: true,
            generated: None,
        }));
        let json = redacted_json(&e);
        assert!(!json.contains("argon2"), "{json}");
        assert!(json.contains(r#""password_hash":"[redacted]""#), "{json}");
        let k = Event::Tenant(TenantEvent::ApiKeyIssued(ApiKeyIssued {
            key_id: "k1".into(),
            role: "rep".into(),
            key_sha256: [7; 32],
            name: "anna".into(),
            rep_id: Some("R1".into()),
        }));
        let json = redacted_json(&k);
        assert!(json.contains(r#""key_sha256":"[redacted]""#), "{json}");
        assert!(json.contains(r#""name":"anna""#), "{json}");
    }

    #[test]
    fn an_invitation_reads_as_a_sentence_with_names() {
        let mut names = Names::default();
        names
            .keys
            .insert("k_anna".into(), ("rep".into(), "anna".into()));
        names.customers.insert("C001".into(), "Acme Ltd".into());
        let event = Event::Contact(ContactEvent::ContactInvited(ContactInvited {
            contact_id: "c1".into(),
            customer_id: "C001".into(),
            email: "bob@acme.example".into(),
            identity_id: "i1".into(),
            site_rule: SiteRule::OneSite("Leeds".into()),
            invitation_id: "inv1".into(),
        }));
        let envelope = test_envelope(
            "contact.t.c1",
            Actor::ApiKey {
                key_id: "k_anna".into(),
                role: "rep".into(),
            },
        );
        assert_eq!(
            names.summary(&envelope, &event),
            "2026-03-02 14:10 rep key 'anna' (k_anna) invited bob@acme.example to Acme Ltd (C001), site Leeds"
        );
        names.learn(&envelope, &event);
        assert!(names.concerns(&Subject::Customer("C001".into()), &envelope, &event));
        assert!(names.concerns(&Subject::Contact("c1".into()), &envelope, &event));
        assert!(names.concerns(&Subject::Key("k_anna".into()), &envelope, &event));
        assert!(!names.concerns(&Subject::Customer("C002".into()), &envelope, &event));
    }

    fn test_envelope(stream: &str, actor: Actor) -> Envelope {
        Envelope {
            envelope_version: 1,
            position: 1,
            stream: access_catalogue::StreamId::parse(stream).expect("stream"),
            stream_version: 1,
            event_id: uuid::Uuid::nil(),
            event_type: String::new(),
            schema_version: 1,
            // 2026-03-02 14:10:00 UTC
            occurred_at_ms: 1_772_460_600_000,
            tenant: Some("t".into()),
            actor,
            correlation_id: uuid::Uuid::nil(),
            causation_id: None,
            request_id: String::new(),
            prev_hash: [0; 32],
            payload: Vec::new(),
            hash: [0; 32],
        }
    }
}
