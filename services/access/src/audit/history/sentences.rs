//! Each event as one sentence in words, with the names the history has
//! learnt so far.

use super::Names;
use access_catalogue::catalogue::{
    ContactEvent, CustomerEvent, CustomerStatus, DefaultVisibility, DocumentKind, EmailSlotEvent,
    Event, GrantEnd, IdentityEvent, InvitationEvent, LoginKind, OidcClientEvent, OidcClientKind,
    OidcGrantEvent, PortalLinkEvent, SiteRule, SystemEvent, TenantEvent, UsernameSlotEvent,
};
use access_catalogue::{Actor, Envelope};

impl Names {
    pub(super) fn what(&self, envelope: &Envelope, event: &Event) -> String {
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
                TenantEvent::SigningKeyAdded(k) => format!(
                    "added the sign-in signing key {} ({}); tokens are signed with it from now on",
                    k.key_id, k.algorithm
                ),
                TenantEvent::SigningKeyRetired(k) => format!(
                    "retired the sign-in signing key {}; it stays published until {}",
                    k.key_id,
                    minute(k.published_until_ms)
                ),
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
                TenantEvent::SecondFactorPolicySet(p) => format!(
                    "required {} at every sign-in of the tenant's contacts",
                    requirement(p.require)
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
                CustomerEvent::SecondFactorPolicySet(p) => format!(
                    "required {} at every sign-in of the contacts of {}",
                    requirement(p.require),
                    self.customer(id)
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
                ContactEvent::ContactImported(l) => format!(
                    "imported the {}{} login {} for {}, {}{} (import {})",
                    if l.disabled { "disabled " } else { "" },
                    match l.kind {
                        LoginKind::Management => "management",
                        LoginKind::Staff => "staff",
                    },
                    match (&l.username, &l.email) {
                        (Some(u), Some(e)) => format!("{u} with email {e}"),
                        (Some(u), None) => u.clone(),
                        (None, Some(e)) => e.to_string(),
                        (None, None) => contact(),
                    },
                    self.customer(&l.customer_id),
                    sites(&l.site_rule),
                    if l.logged_in {
                        ", which had logged in before"
                    } else {
                        ""
                    },
                    l.import_id
                ),
                ContactEvent::PasswordImported(p) => format!(
                    "kept the {} password hash of {} from the system left behind (import {})",
                    p.scheme,
                    contact(),
                    p.import_id
                ),
                ContactEvent::PasswordRehashed(_) => format!(
                    "re-hashed the imported password of {} at its first login",
                    contact()
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
                ContactEvent::TotpAdded(_) => format!(
                    "enrolled an authenticator app as a second factor for {}",
                    contact()
                ),
                ContactEvent::SecondFactorUsed(u) => match u.recovery_code {
                    Some(i) => format!(
                        "let {} in with recovery code {} of the second factor",
                        contact(),
                        i + 1
                    ),
                    None => format!("let {} in with the authenticator app's code", contact()),
                },
                ContactEvent::SecondFactorRemoved(r) => format!(
                    "removed {} of {}{}",
                    if r.kind == "passkey" {
                        "a passkey"
                    } else {
                        "the authenticator app"
                    },
                    contact(),
                    because(&r.reason)
                ),
                ContactEvent::PasskeyAdded(p) => {
                    format!("registered passkey \"{}\" for {}", p.name, contact())
                }
                ContactEvent::PasskeyUsed(_) => format!("let {} in with a passkey", contact()),
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
            Event::OidcClient(e) => match e {
                OidcClientEvent::OidcClientRegistered(c) => format!(
                    "registered the {} sign-in client {} for {}",
                    match c.kind {
                        OidcClientKind::Confidential => "confidential",
                        OidcClientKind::Public => "public",
                    },
                    self.client(id),
                    c.settings.redirect_uris.join(", ")
                ),
                OidcClientEvent::OidcClientUpdated(u) => format!(
                    "changed the sign-in client {}: redirects {}, scopes {}",
                    self.client(id),
                    u.settings.redirect_uris.join(", "),
                    u.settings.scopes.join(" ")
                ),
                OidcClientEvent::OidcClientSecretRotated(r) => format!(
                    "gave the sign-in client {} a new secret (generation {})",
                    self.client(id),
                    r.generation
                ),
                OidcClientEvent::OidcClientRemoved(r) => format!(
                    "removed the sign-in client {}{}",
                    self.client(id),
                    because(&r.reason)
                ),
            },
            Event::OidcGrant(e) => self.grant_sentence(id, e),
            Event::Webhook(e) => super::webhooks::sentence(id, e),
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
pub(super) fn minute(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

impl Names {
    fn grant_sentence(&self, grant: &str, event: &OidcGrantEvent) -> String {
        let (contact, client) = self.grants.get(grant).cloned().unwrap_or_default();
        let client = self.client(&client);
        match event {
            OidcGrantEvent::AuthorizationCodeIssued(c) => {
                let from = c.client_address.text();
                format!(
                    "{} signed in to {client}{} (scopes {})",
                    self.contact(&contact),
                    if from.is_empty() {
                        String::new()
                    } else {
                        format!(" from {from}")
                    },
                    c.scopes.join(" ")
                )
            }
            OidcGrantEvent::AuthorizationCodeRedeemed(_) => {
                format!("{client} exchanged the sign-in code for tokens")
            }
            OidcGrantEvent::RefreshTokenRotated(r) => format!(
                "{client} refreshed its tokens (refresh token {})",
                r.generation
            ),
            OidcGrantEvent::GrantRevoked(r) => format!(
                "ended the sign-in to {client}: {}",
                match r.reason {
                    GrantEnd::CodeReplayed => "its code was presented again",
                    GrantEnd::RefreshReused => "a replaced refresh token was presented again",
                    GrantEnd::RevokedByClient => "the client revoked it",
                    GrantEnd::LoggedOut => "the contact signed out",
                    GrantEnd::AccessLost => "the contact may no longer sign in",
                    GrantEnd::PasswordChanged => "the contact's password changed",
                    GrantEnd::FactorRemoved => "a second factor of the contact was removed",
                }
            ),
            OidcGrantEvent::BackchannelLogoutDelivered(_) => {
                format!("told {client} that the sign-in ended")
            }
            OidcGrantEvent::BackchannelLogoutAbandoned(a) => format!(
                "gave up telling {client} that the sign-in ended: {}",
                a.reason
            ),
        }
    }
}

/// A sign-in requirement in words.
fn requirement(r: access_catalogue::catalogue::FactorRequirement) -> &'static str {
    use access_catalogue::catalogue::FactorRequirement;
    match r {
        FactorRequirement::None => "nothing beyond the password",
        FactorRequirement::AnySecondFactor => "a second factor",
        FactorRequirement::Passkey => "a passkey",
    }
}
