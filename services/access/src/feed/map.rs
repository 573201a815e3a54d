//! Stored events to public events: the one place the log's catalogue meets
//! the public schema, so the catalogue can change without breaking a
//! subscriber. Each public type is named once, in [`kind`].

use access_catalogue::Envelope;
use access_catalogue::catalogue::{
    ContactEvent, CustomerEvent, CustomerRecord, CustomerStatus, DefaultVisibility, DocumentKind,
    Event, IdentityEvent, InvitationEvent, LoginKind, OidcGrantEvent, PortalLinkEvent, SiteRule,
    TenantEvent,
};

use access_catalogue::envelope::{Actor, GLOBAL_TENANT};
use access_catalogue::personal::Personal;
use access_proto::v1::events as pe;
use pe::event::Change;

/// What a stored event does not say but its public form needs: facts that
/// never change once recorded (whose a contact, a link or an invitation is).
pub trait Facts {
    /// The customer a contact belongs to.
    fn customer_of_contact(&self, tenant: &str, contact_id: &str) -> Option<String>;
    /// The customer a portal link shows.
    fn customer_of_link(&self, tenant: &str, link_id: &str) -> Option<String>;
    /// The contact an invitation invites.
    fn contact_of_invitation(&self, tenant: &str, invitation_id: &str) -> Option<String>;
}

/// What a subscriber may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disclosure {
    /// Personal data: email addresses and client network addresses.
    pub personal: bool,
}

/// The layout version of every public type here.
const VERSION: u32 = 1;

/// The public type's name of a change: stable for ever.
pub fn kind(change: &Change) -> &'static str {
    match change {
        Change::TenantCreated(_) => "tenant.created",
        Change::TenantSettingsChanged(_) => "tenant.settings_changed",
        Change::TenantPolicyChanged(_) => "tenant.policy_changed",
        Change::ApiKeyIssued(_) => "api_key.issued",
        Change::ApiKeyRevoked(_) => "api_key.revoked",
        Change::CustomerCreated(_) => "customer.created",
        Change::CustomerUpdated(_) => "customer.updated",
        Change::CustomerStatusChanged(_) => "customer.status_changed",
        Change::CustomerDocumentsChanged(_) => "customer.documents_changed",
        Change::ContactInvited(_) => "contact.invited",
        Change::ContactLoginCreated(_) => "contact.login_created",
        Change::ContactImported(_) => "contact.imported",
        Change::ContactRegistered(_) => "contact.registered",
        Change::ContactAwaitingApproval(_) => "contact.awaiting_approval",
        Change::ContactApproved(_) => "contact.approved",
        Change::ContactRejected(_) => "contact.rejected",
        Change::ContactActivated(_) => "contact.activated",
        Change::ContactDisabled(_) => "contact.disabled",
        Change::ContactRestored(_) => "contact.restored",
        Change::ContactRevoked(_) => "contact.revoked",
        Change::ContactForgotten(_) => "contact.forgotten",
        Change::ContactDetailsChanged(_) => "contact.details_changed",
        Change::LoginSucceeded(_) => "login.succeeded",
        Change::LoginFailed(_) => "login.failed",
        Change::LoginLocked(_) => "login.locked",
        Change::LoginUnlocked(_) => "login.unlocked",
        Change::SecondFactorAdded(_) => "second_factor.added",
        Change::SecondFactorRemoved(_) => "second_factor.removed",
        Change::PasswordChanged(_) => "password.changed",
        Change::PasswordResetRequested(_) => "password.reset_requested",
        Change::PasswordReset(_) => "password.reset",
        Change::InvitationResent(_) => "invitation.resent",
        Change::InvitationCancelled(_) => "invitation.cancelled",
        Change::PortalLinkCreated(_) => "portal_link.created",
        Change::PortalLinkDeleted(_) => "portal_link.deleted",
        Change::MailDelivered(_) => "mail.delivered",
        Change::MailFailed(_) => "mail.failed",
    }
}

/// The customer and the contact a change concerns, where it names them.
pub fn subjects(change: &Change) -> (Option<&str>, Option<&str>) {
    fn some(s: &str) -> Option<&str> {
        (!s.is_empty()).then_some(s)
    }
    let (customer, contact) = match change {
        Change::TenantCreated(_)
        | Change::TenantSettingsChanged(_)
        | Change::TenantPolicyChanged(_)
        | Change::ApiKeyIssued(_)
        | Change::ApiKeyRevoked(_) => return (None, None),
        Change::CustomerCreated(c) | Change::CustomerUpdated(c) => (c.customer_id.as_str(), ""),
        Change::CustomerStatusChanged(c) => (c.customer_id.as_str(), ""),
        Change::CustomerDocumentsChanged(c) => (c.customer_id.as_str(), ""),
        Change::ContactInvited(c) => (c.customer_id.as_str(), c.contact_id.as_str()),
        Change::ContactLoginCreated(c) => (c.customer_id.as_str(), c.contact_id.as_str()),
        Change::ContactImported(c) => (c.customer_id.as_str(), c.contact_id.as_str()),
        Change::ContactRegistered(c)
        | Change::ContactAwaitingApproval(c)
        | Change::ContactApproved(c)
        | Change::ContactRejected(c)
        | Change::ContactActivated(c)
        | Change::ContactDisabled(c)
        | Change::ContactRestored(c)
        | Change::ContactRevoked(c)
        | Change::ContactForgotten(c)
        | Change::LoginUnlocked(c)
        | Change::PasswordReset(c) => (c.customer_id.as_str(), c.contact_id.as_str()),
        Change::ContactDetailsChanged(c) => (c.customer_id.as_str(), c.contact_id.as_str()),
        Change::LoginSucceeded(c) => (c.customer_id.as_str(), c.contact_id.as_str()),
        Change::SecondFactorAdded(c) | Change::SecondFactorRemoved(c) => {
            (c.customer_id.as_str(), c.contact_id.as_str())
        }
        Change::LoginFailed(c) => (c.customer_id.as_str(), c.contact_id.as_str()),
        Change::LoginLocked(c) => (c.customer_id.as_str(), c.contact_id.as_str()),
        Change::PasswordChanged(c) => (c.customer_id.as_str(), c.contact_id.as_str()),
        Change::PasswordResetRequested(c) => (c.customer_id.as_str(), c.contact_id.as_str()),
        Change::InvitationResent(c) | Change::InvitationCancelled(c) => {
            (c.customer_id.as_str(), c.contact_id.as_str())
        }
        Change::PortalLinkCreated(c) => (c.customer_id.as_str(), ""),
        Change::PortalLinkDeleted(c) => (c.customer_id.as_str(), ""),
        Change::MailDelivered(c) | Change::MailFailed(c) => {
            (c.customer_id.as_str(), c.contact_id.as_str())
        }
    };
    (some(customer), some(contact))
}

/// Whether `name` is a public type's name.
pub fn is_type(name: &str) -> bool {
    TYPES.contains(&name)
}

/// Every public type's name.
pub const TYPES: &[&str] = &[
    "tenant.created",
    "tenant.settings_changed",
    "tenant.policy_changed",
    "api_key.issued",
    "api_key.revoked",
    "customer.created",
    "customer.updated",
    "customer.status_changed",
    "customer.documents_changed",
    "contact.invited",
    "contact.login_created",
    "contact.imported",
    "contact.registered",
    "contact.awaiting_approval",
    "contact.approved",
    "contact.rejected",
    "contact.activated",
    "contact.disabled",
    "contact.restored",
    "contact.revoked",
    "contact.forgotten",
    "contact.details_changed",
    "login.succeeded",
    "login.failed",
    "login.locked",
    "login.unlocked",
    "second_factor.added",
    "second_factor.removed",
    "password.changed",
    "password.reset_requested",
    "password.reset",
    "invitation.resent",
    "invitation.cancelled",
    "portal_link.created",
    "portal_link.deleted",
    "mail.delivered",
    "mail.failed",
];

/// The public events `event` (stored in `envelope`, its personal values
/// opened where the vault still has their keys) stands for: none for the
/// service's own bookkeeping, one per login (as the event recorded them)
/// for a person forgotten.
pub fn public_events(
    envelope: &Envelope,
    event: &Event,
    facts: &dyn Facts,
    disclosure: Disclosure,
) -> Vec<pe::Event> {
    let tenant = envelope.stream.tenant();
    let id = envelope.stream.id();
    let mut withheld = false;
    let mut personal = |p: &Personal| {
        let (value, erased) = if p.is_erased() {
            (String::new(), true)
        } else if !disclosure.personal || p.key_ref().is_some() {
            // Withheld for this role, or never opened (no key to open it).
            withheld |= !p.is_empty();
            (String::new(), false)
        } else {
            (p.text().to_owned(), false)
        };
        Some(pe::Personal { value, erased })
    };
    let customer = |contact: &str| {
        facts
            .customer_of_contact(tenant, contact)
            .unwrap_or_default()
    };
    let contact_changed = |reason: &str| pe::ContactChanged {
        contact_id: id.to_owned(),
        customer_id: customer(id),
        reason: reason.to_owned(),
    };
    let changes: Vec<(String, Change)> = match event {
        Event::Tenant(e) => tenant_change(e)
            .into_iter()
            .map(|c| (tenant.to_owned(), c))
            .collect(),
        Event::Customer(e) => vec![(tenant.to_owned(), customer_change(id, e))],
        Event::Contact(e) => {
            let change = match e {
                ContactEvent::ContactInvited(c) => Change::ContactInvited(pe::ContactInvited {
                    contact_id: c.contact_id.clone(),
                    customer_id: c.customer_id.clone(),
                    email: personal(&c.email),
                    invitation_id: c.invitation_id.clone(),
                    site_rule: Some(site_rule(&c.site_rule)),
                }),
                ContactEvent::LoginCreated(c) => {
                    Change::ContactLoginCreated(pe::ContactLoginCreated {
                        contact_id: c.contact_id.clone(),
                        customer_id: c.customer_id.clone(),
                        username: c.username.clone(),
                        email: c.email.as_ref().and_then(&mut personal),
                        kind: match c.kind {
                            LoginKind::Management => "management",
                            LoginKind::Staff => "staff",
                        }
                        .into(),
                        site_rule: Some(site_rule(&c.site_rule)),
                    })
                }
                ContactEvent::ContactImported(c) => Change::ContactImported(pe::ContactImported {
                    contact_id: c.contact_id.clone(),
                    customer_id: c.customer_id.clone(),
                    username: c.username.clone().unwrap_or_default(),
                    email: c.email.as_ref().and_then(&mut personal),
                    kind: match c.kind {
                        LoginKind::Management => "management",
                        LoginKind::Staff => "staff",
                    }
                    .into(),
                    site_rule: Some(site_rule(&c.site_rule)),
                    disabled: c.disabled,
                    logged_in: c.logged_in,
                    import_id: c.import_id.clone(),
                }),
                // A password of its own, as any set by staff (the hash itself
                // is never published).
                ContactEvent::PasswordImported(_) => Change::PasswordChanged(pe::PasswordChanged {
                    contact_id: id.to_owned(),
                    customer_id: customer(id),
                    temporary: false,
                }),
                ContactEvent::ContactActivated(_) => Change::ContactRegistered(contact_changed("")),
                ContactEvent::ContactAwaitingApproval(c) => {
                    Change::ContactAwaitingApproval(contact_changed(&c.reason))
                }
                ContactEvent::ContactApproved(c) => {
                    Change::ContactApproved(contact_changed(&c.reason))
                }
                ContactEvent::ContactRejected(c) => {
                    Change::ContactRejected(contact_changed(&c.reason))
                }
                ContactEvent::FirstLogin(_) => Change::ContactActivated(contact_changed("")),
                ContactEvent::AccessDisabled(c) => {
                    Change::ContactDisabled(contact_changed(&c.reason))
                }
                ContactEvent::AccessRestored(c) => {
                    Change::ContactRestored(contact_changed(&c.reason))
                }
                ContactEvent::AccessRevoked(c) => {
                    Change::ContactRevoked(contact_changed(&c.reason))
                }
                ContactEvent::ContactDetailsChanged(c) => {
                    Change::ContactDetailsChanged(pe::ContactDetailsChanged {
                        contact_id: id.to_owned(),
                        customer_id: customer(id),
                        email: c.email.as_ref().and_then(&mut personal),
                        username: c.username.clone().unwrap_or_default(),
                    })
                }
                ContactEvent::TotpAdded(e) => Change::SecondFactorAdded(pe::SecondFactorChanged {
                    contact_id: id.to_owned(),
                    customer_id: customer(id),
                    factor_id: e.factor_id.clone(),
                    kind: "totp".into(),
                    reason: String::new(),
                }),
                ContactEvent::PasskeyAdded(e) => {
                    Change::SecondFactorAdded(pe::SecondFactorChanged {
                        contact_id: id.to_owned(),
                        customer_id: customer(id),
                        factor_id: e.factor_id.clone(),
                        kind: "passkey".into(),
                        reason: String::new(),
                    })
                }
                ContactEvent::SecondFactorRemoved(e) => {
                    Change::SecondFactorRemoved(pe::SecondFactorChanged {
                        contact_id: id.to_owned(),
                        customer_id: customer(id),
                        factor_id: e.factor_id.clone(),
                        kind: e.kind.clone(),
                        reason: e.reason.clone(),
                    })
                }
                ContactEvent::PasskeyUsed(_) => Change::LoginSucceeded(pe::LoginSucceeded {
                    contact_id: id.to_owned(),
                    customer_id: customer(id),
                    method: "passkey".into(),
                    ..Default::default()
                }),
                ContactEvent::SecondFactorUsed(e) => Change::LoginSucceeded(pe::LoginSucceeded {
                    contact_id: id.to_owned(),
                    customer_id: customer(id),
                    method: if e.step.is_some() {
                        "totp"
                    } else {
                        "recovery_code"
                    }
                    .into(),
                    ..Default::default()
                }),
                ContactEvent::LoginCodeExchanged(_) => Change::LoginSucceeded(pe::LoginSucceeded {
                    contact_id: id.to_owned(),
                    customer_id: customer(id),
                    method: "login_code".into(),
                    ..Default::default()
                }),
                ContactEvent::LoginFailed(c) => Change::LoginFailed(pe::LoginFailed {
                    contact_id: id.to_owned(),
                    customer_id: customer(id),
                    client_address: personal(&c.client_address),
                }),
                ContactEvent::LoginLocked(c) => Change::LoginLocked(pe::LoginLocked {
                    contact_id: id.to_owned(),
                    customer_id: customer(id),
                    until_ms: c.until_ms,
                    failures: c.failures,
                }),
                // A cleared count after a successful sign-in is no news; a
                // lock lifted by staff is.
                ContactEvent::LoginFailuresCleared(c)
                    if !matches!(envelope.actor, Actor::Contact { .. }) =>
                {
                    Change::LoginUnlocked(contact_changed(&c.reason))
                }
                ContactEvent::LocalPasswordSet(c) => Change::PasswordChanged(pe::PasswordChanged {
                    contact_id: id.to_owned(),
                    customer_id: customer(id),
                    temporary: c.temporary,
                }),
                ContactEvent::PasswordResetRequested(c) => {
                    Change::PasswordResetRequested(pe::PasswordResetRequested {
                        contact_id: id.to_owned(),
                        customer_id: customer(id),
                        by_staff: c.by_staff,
                        expires_at_ms: c.expires_at_ms,
                    })
                }
                ContactEvent::PasswordResetCompleted(_) => {
                    Change::PasswordReset(contact_changed(""))
                }
                ContactEvent::EmailSent(c) | ContactEvent::EmailDeliveryFailed(c) => {
                    let outcome = pe::MailOutcome {
                        contact_id: id.to_owned(),
                        customer_id: customer(id),
                        kind: c.kind.clone(),
                        source_event_id: c.source_event_id.clone(),
                        reason: c.reason.clone(),
                    };
                    if matches!(e, ContactEvent::EmailSent(_)) {
                        Change::MailDelivered(outcome)
                    } else {
                        Change::MailFailed(outcome)
                    }
                }
                // Bookkeeping: the login falls back to its identity's password.
                // Bookkeeping too: the same password, hashed anew.
                ContactEvent::LocalPasswordCleared(_)
                | ContactEvent::LoginFailuresCleared(_)
                | ContactEvent::PasswordRehashed(_) => {
                    return Vec::new();
                }
            };
            vec![(tenant.to_owned(), change)]
        }
        Event::Invitation(e) => {
            let contact = facts.contact_of_invitation(tenant, id).unwrap_or_default();
            let changed = |expires_at_ms: i64, reason: &str| pe::InvitationChanged {
                invitation_id: id.to_owned(),
                customer_id: customer(&contact),
                contact_id: contact.clone(),
                expires_at_ms,
                reason: reason.to_owned(),
            };
            match e {
                InvitationEvent::InvitationResent(c) => {
                    vec![(
                        tenant.to_owned(),
                        Change::InvitationResent(changed(c.expires_at_ms, "")),
                    )]
                }
                InvitationEvent::InvitationCancelled(c) => {
                    vec![(
                        tenant.to_owned(),
                        Change::InvitationCancelled(changed(0, &c.reason)),
                    )]
                }
                // The contact's own events say the same (invited, registered).
                InvitationEvent::InvitationIssued(_) | InvitationEvent::InvitationAccepted(_) => {
                    Vec::new()
                }
            }
        }
        Event::PortalLink(e) => {
            let change = match e {
                PortalLinkEvent::PortalLinkCreated(c) => {
                    Change::PortalLinkCreated(pe::PortalLinkCreated {
                        link_id: c.link_id.clone(),
                        customer_id: c.customer_id.clone(),
                        kinds: c.kinds.iter().map(|k| document_kind(*k).into()).collect(),
                        expires_at_ms: c.expires_at_ms.unwrap_or(0),
                    })
                }
                PortalLinkEvent::PortalLinkDeleted(c) => {
                    Change::PortalLinkDeleted(pe::PortalLinkDeleted {
                        link_id: id.to_owned(),
                        customer_id: facts.customer_of_link(tenant, id).unwrap_or_default(),
                        reason: c.reason.clone(),
                    })
                }
            };
            vec![(tenant.to_owned(), change)]
        }
        // A person forgotten: each of their logins, as the erasure recorded
        // them, hears of it in its own tenant. (An identity's password is
        // set only beside a contact's own event, which says so: a
        // registration, a reset.)
        Event::Identity(IdentityEvent::IdentityForgotten(f)) if tenant == GLOBAL_TENANT => f
            .contacts
            .iter()
            .map(|(tenant, contact)| {
                let change = Change::ContactForgotten(pe::ContactChanged {
                    customer_id: facts
                        .customer_of_contact(tenant, contact)
                        .unwrap_or_default(),
                    contact_id: contact.clone(),
                    reason: String::new(),
                });
                (tenant.clone(), change)
            })
            .collect(),
        // A sign-in to a client is a login; the rest of a grant's life
        // (tokens redeemed and refreshed, its end) is bookkeeping.
        Event::OidcGrant(OidcGrantEvent::AuthorizationCodeIssued(c)) => vec![(
            tenant.to_owned(),
            Change::LoginSucceeded(pe::LoginSucceeded {
                contact_id: c.contact_id.clone(),
                customer_id: customer(&c.contact_id),
                method: "oidc".into(),
                client_id: c.client_id.clone(),
                auth_time_ms: c.auth_time_ms,
            }),
        )],
        // Uniqueness slots, clients, repairs and webhooks are the service's
        // own bookkeeping (a delivery's record is never itself delivered).
        Event::Identity(_)
        | Event::Webhook(_)
        | Event::EmailSlot(_)
        | Event::UsernameSlot(_)
        | Event::OidcClient(_)
        | Event::OidcGrant(_)
        | Event::System(_) => Vec::new(),
    };
    // Parts are counted within each tenant: a subscriber learns nothing of
    // the person's logins elsewhere, and they are fixed by the stored event.
    let mut parts: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    changes
        .into_iter()
        .map(|(tenant, change)| {
            let part = parts.entry(tenant.clone()).or_default();
            *part += 1;
            (*part - 1, tenant, change)
        })
        .map(|(part, tenant, change)| pe::Event {
            position: envelope.position,
            id: event_id(envelope, &tenant, &change),
            r#type: kind(&change).into(),
            version: VERSION,
            tenant,
            occurred_at_ms: envelope.occurred_at_ms,
            actor: Some(actor(&envelope.actor)),
            correlation_id: envelope.correlation_id.to_string(),
            personal_withheld: withheld,
            part,
            change: Some(change),
        })
        .collect()
}

/// A public event's id: the stored event's, or, when one stored event of a
/// person stands for one public event per login, that and the login.
fn event_id(envelope: &Envelope, tenant: &str, change: &Change) -> String {
    if envelope.stream.tenant() != GLOBAL_TENANT {
        return envelope.event_id.to_string();
    }
    let contact = match change {
        Change::ContactForgotten(c) => c.contact_id.as_str(),
        _ => "",
    };
    format!("{}/{tenant}/{contact}", envelope.event_id)
}

fn tenant_change(e: &TenantEvent) -> Option<Change> {
    let policy = |name: &str| {
        Some(Change::TenantPolicyChanged(pe::TenantPolicyChanged {
            policy: name.into(),
            customer_id: String::new(),
        }))
    };
    match e {
        TenantEvent::TenantCreated(t) => Some(Change::TenantCreated(pe::TenantCreated {
            name: t.name.clone(),
            sites: t.sites.clone(),
            default_order_site: t.default_order_site.clone(),
        })),
        TenantEvent::TenantSettingsChanged(t) => {
            Some(Change::TenantSettingsChanged(pe::TenantSettingsChanged {
                sites: t.sites.clone(),
                default_order_site: t.default_order_site.clone(),
                default_visible_site: match &t.default_visibility {
                    DefaultVisibility::AllSites => String::new(),
                    DefaultVisibility::OneSite(site) => site.clone(),
                },
                inactive_customers_may_log_in: t.inactive_customers_may_log_in,
            }))
        }
        TenantEvent::ApiKeyIssued(k) => Some(Change::ApiKeyIssued(pe::ApiKeyIssued {
            key_id: k.key_id.clone(),
            role: k.role.clone(),
            name: k.name.clone(),
            rep_id: k.rep_id.clone().unwrap_or_default(),
        })),
        TenantEvent::ApiKeyRevoked(k) => Some(Change::ApiKeyRevoked(pe::ApiKeyRevoked {
            key_id: k.key_id.clone(),
        })),
        TenantEvent::ApprovalPolicySet(_) => policy("approval"),
        TenantEvent::PasswordPolicySet(_) => policy("password"),
        TenantEvent::NotificationPolicySet(_) => policy("notification"),
        TenantEvent::UsernameAdministratorsSet(_) => policy("username_administrators"),
        TenantEvent::BrandingSet(_) => policy("branding"),
        TenantEvent::EmailTemplateSet(_) | TenantEvent::EmailTemplateReset(_) => {
            policy("email_template")
        }
        TenantEvent::SigningKeyAdded(_) | TenantEvent::SigningKeyRetired(_) => {
            policy("signing_key")
        }
        TenantEvent::SecondFactorPolicySet(_) => policy("second_factor"),
    }
}

fn customer_change(customer_id: &str, e: &CustomerEvent) -> Change {
    match e {
        CustomerEvent::CustomerCreated(c) => {
            Change::CustomerCreated(customer_record(&c.record, c.status))
        }
        // The status is not in the record: the public record carries it
        // empty here, and `customer.status_changed` says when it moves.
        CustomerEvent::CustomerUpdated(c) => Change::CustomerUpdated(pe::CustomerChanged {
            status: String::new(),
            ..customer_record(&c.record, CustomerStatus::Active)
        }),
        CustomerEvent::CustomerStatusChanged(c) => {
            Change::CustomerStatusChanged(pe::CustomerStatusChanged {
                customer_id: customer_id.to_owned(),
                status: status(c.status).into(),
                reason: c.reason.clone(),
            })
        }
        CustomerEvent::DocumentVisibilitySet(c) => {
            Change::CustomerDocumentsChanged(pe::CustomerDocumentsChanged {
                customer_id: customer_id.to_owned(),
                kinds: c.kinds.iter().map(|k| document_kind(*k).into()).collect(),
            })
        }
        CustomerEvent::SecondFactorPolicySet(_) => {
            Change::TenantPolicyChanged(pe::TenantPolicyChanged {
                policy: "second_factor".into(),
                customer_id: customer_id.to_owned(),
            })
        }
    }
}

fn customer_record(r: &CustomerRecord, s: CustomerStatus) -> pe::CustomerChanged {
    pe::CustomerChanged {
        customer_id: r.customer_id.clone(),
        name: r.name.clone(),
        short_name: r.short_name.clone(),
        status: status(s).into(),
        customer_type: r.customer_type.clone(),
        price_list: r.price_list.clone(),
        sales_rep: r.sales_rep.clone().unwrap_or_default(),
    }
}

fn status(s: CustomerStatus) -> &'static str {
    match s {
        CustomerStatus::Active => "active",
        CustomerStatus::Inactive => "inactive",
        CustomerStatus::Blacklisted => "blacklisted",
    }
}

fn document_kind(k: DocumentKind) -> &'static str {
    match k {
        DocumentKind::SalesQuote => "sales_quote",
        DocumentKind::SalesOrder => "sales_order",
        DocumentKind::SalesInvoice => "sales_invoice",
        DocumentKind::CreditNote => "credit_note",
        DocumentKind::DeliveryNote => "delivery_note",
    }
}

fn site_rule(r: &SiteRule) -> pe::SiteRule {
    let (kind, site) = match r {
        SiteRule::TenantDefault => ("tenant_default", ""),
        SiteRule::AllSites => ("all_sites", ""),
        SiteRule::OneSite(site) => ("one_site", site.as_str()),
    };
    pe::SiteRule {
        kind: kind.into(),
        site: site.into(),
    }
}

fn actor(a: &Actor) -> pe::Actor {
    let (kind, id, role) = match a {
        Actor::Operator => ("operator", "", ""),
        Actor::ApiKey { key_id, role } => ("api_key", key_id.as_str(), role.as_str()),
        Actor::Contact { contact_id } => ("contact", contact_id.as_str(), ""),
        Actor::System { component } => ("system", component.as_str(), ""),
    };
    pe::Actor {
        kind: kind.into(),
        id: id.into(),
        role: role.into(),
    }
}

#[cfg(test)]
#[path = "map_tests.rs"]
mod tests;
