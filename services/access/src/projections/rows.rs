//! The rows of the read models and how one event changes them.

use crate::domain::contact::{Lifecycle, status_word};
use crate::domain::lockout::remember_failure;
use crate::domain::password_policy::PasswordPolicy;
use access_catalogue::Envelope;
use access_catalogue::catalogue::{
    ContactEvent, CustomerEvent, CustomerRecord, CustomerStatus, DefaultVisibility, DocumentKind,
    Event, IdentityEvent, InvitationEvent, LoginKind, PortalLinkEvent, SiteRule, TenantEvent,
};
use serde::{Deserialize, Serialize};

/// A tenant, for authentication and site rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRow {
    /// Display name.
    pub name: String,
    /// Stock sites.
    pub sites: Vec<String>,
    /// Default order site.
    pub default_order_site: String,
    /// What "tenant default" contacts see.
    pub default_visibility: DefaultVisibility,
    /// Whether contacts of inactive or blacklisted customers may log in and look.
    pub inactive_customers_may_log_in: bool,
    /// Registrations wait for approval.
    pub approval_required: bool,
    /// Who approves registrations.
    pub username_administrators: Vec<String>,
    /// Rules for new passwords.
    pub password_policy: PasswordPolicy,
    /// How its pages look and where they hand contacts over.
    pub branding: Branding,
}

/// A tenant's page settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branding {
    /// An https URL of the logo (empty: none).
    pub logo_url: String,
    /// `#rrggbb` (empty: the default).
    pub accent_colour: String,
    /// The portal the pages hand contacts over to (empty: none).
    pub portal_url: String,
}

/// An API key, by key id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRow {
    /// The key's tenant.
    pub tenant: String,
    /// The key's role.
    pub role: String,
    /// SHA-256 of the key text.
    pub key_sha256: [u8; 32],
    /// Who holds it.
    pub name: String,
    /// For rep keys: the sales rep.
    pub rep_id: Option<String>,
    /// Revoked keys fail at once.
    pub revoked: bool,
}

/// A customer account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRow {
    /// The record.
    pub record: CustomerRecord,
    /// Whether it may order.
    pub status: CustomerStatus,
    /// Document kinds its contacts may view (`None`: all).
    pub documents: Option<Vec<DocumentKind>>,
}

/// A contact's login.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRow {
    /// The contact's id.
    pub contact_id: String,
    /// The customer.
    pub customer_id: String,
    /// The email.
    pub email: String,
    /// The global identity.
    pub identity_id: String,
    /// Visibility and routing.
    pub site_rule: SiteRule,
    /// Invited, active or revoked.
    pub lifecycle: Lifecycle,
    /// Blocked by staff.
    pub disabled: bool,
    /// The contact's invitation (empty for logins created by staff).
    pub invitation_id: String,
    /// The username, if the login has one.
    pub username: Option<String>,
    /// Management or staff login.
    pub kind: LoginKind,
    /// A password for this login only, if set.
    pub local_password_hash: Option<String>,
    /// The local password is temporary and must be changed.
    pub temporary: bool,
    /// Logged in at least once.
    pub logged_in: bool,
    /// When the current invitation link dies (0: no pending invitation).
    pub invitation_expires_at_ms: i64,
    /// The last email about the contact: which, whether it was accepted, why not.
    pub last_email: Option<LastEmail>,
    /// When recent logins failed for a wrong password, oldest first.
    pub failed_logins: Vec<i64>,
    /// Locked against logins until then, Unix milliseconds (0: not locked).
    pub locked_until_ms: i64,
}

/// What became of the last email the service sent about a contact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastEmail {
    /// `invitation`, `password_reset`, `welcome`, `approval_request`, `approved`.
    pub kind: String,
    /// Accepted by the mail server.
    pub sent: bool,
    /// Why not, when not.
    pub reason: String,
}

impl ContactRow {
    /// `invited`, `active`, `disabled`, `revoked` or `pending_approval`.
    pub fn status(&self) -> &'static str {
        status_word(Some(self.lifecycle), self.disabled)
    }

    /// `management` or `staff`.
    pub fn kind_word(&self) -> &'static str {
        match self.kind {
            LoginKind::Management => "management",
            LoginKind::Staff => "staff",
        }
    }

    /// The last email about the contact: its kind, `sent` or `failed`, and
    /// why it failed (all empty when none went out yet).
    pub fn last_email_words(&self) -> (String, &'static str, String) {
        match &self.last_email {
            Some(l) => (
                l.kind.clone(),
                if l.sent { "sent" } else { "failed" },
                l.reason.clone(),
            ),
            None => (String::new(), "", String::new()),
        }
    }

    /// The status as of `now_ms`, telling an invitation whose link has
    /// expired (`invitation_expired`) from one still pending (`invited`).
    pub fn status_at(&self, now_ms: i64) -> &'static str {
        match self.status() {
            "invited"
                if self.invitation_expires_at_ms > 0 && self.invitation_expires_at_ms <= now_ms =>
            {
                "invitation_expired"
            }
            status => status,
        }
    }
}

/// A capability link, by the SHA-256 of its token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalLinkRow {
    /// The tenant.
    pub tenant: String,
    /// The link's id.
    pub link_id: String,
    /// The customer it shows.
    pub customer_id: String,
    /// The document kinds it shows.
    pub kinds: Vec<DocumentKind>,
    /// When it stops working, if ever.
    pub expires_at_ms: Option<i64>,
    /// Deleted links never work again.
    pub deleted: bool,
}

/// A global identity's login data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityRow {
    /// The email.
    pub email: String,
    /// The argon2id PHC string, once a password was set.
    pub password_hash: Option<String>,
}

/// Which sites a contact sees and where its orders go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SiteVisibility {
    /// Sites whose stock the contact sees.
    pub visible_sites: Vec<String>,
    /// Where orders are routed.
    pub order_site: String,
    /// True when the contact sees totals over all its visible sites.
    pub stock_totals: bool,
}

impl SiteVisibility {
    /// Resolves a contact's rule against its tenant's current settings, so that
    /// "tenant default" follows later changes of the default.
    pub fn resolve(rule: &SiteRule, tenant: &TenantRow) -> Self {
        let rule = match (rule, &tenant.default_visibility) {
            (SiteRule::TenantDefault, DefaultVisibility::OneSite(site)) => {
                &SiteRule::OneSite(site.clone())
            }
            (rule, _) => rule,
        };
        match rule {
            SiteRule::TenantDefault | SiteRule::AllSites => SiteVisibility {
                visible_sites: tenant.sites.clone(),
                order_site: tenant.default_order_site.clone(),
                stock_totals: true,
            },
            SiteRule::OneSite(site) => SiteVisibility {
                visible_sites: vec![site.clone()],
                order_site: site.clone(),
                stock_totals: false,
            },
        }
    }
}

/// Row keys. `\0` separates parts; no id may contain it.
pub(super) mod keys {
    pub fn tenant(t: &str) -> Vec<u8> {
        [b"t\0", t.as_bytes()].concat()
    }
    pub fn key(id: &str) -> Vec<u8> {
        [b"k\0", id.as_bytes()].concat()
    }
    pub fn customer(t: &str, c: &str) -> Vec<u8> {
        [b"c\0", t.as_bytes(), b"\0", c.as_bytes()].concat()
    }
    pub fn contact(t: &str, c: &str) -> Vec<u8> {
        [b"n\0", t.as_bytes(), b"\0", c.as_bytes()].concat()
    }
    pub fn username(t: &str, username: &str) -> Vec<u8> {
        [
            b"u\0",
            t.as_bytes(),
            b"\0",
            username.to_lowercase().as_bytes(),
        ]
        .concat()
    }
    pub fn customer_prefix(t: &str) -> Vec<u8> {
        [b"c\0", t.as_bytes(), b"\0"].concat()
    }
    pub fn customer_contact(t: &str, customer: &str, contact: &str) -> Vec<u8> {
        [
            b"x\0",
            t.as_bytes(),
            b"\0",
            customer.as_bytes(),
            b"\0",
            contact.as_bytes(),
        ]
        .concat()
    }
    pub fn customer_contacts_prefix(t: &str, customer: &str) -> Vec<u8> {
        [b"x\0", t.as_bytes(), b"\0", customer.as_bytes(), b"\0"].concat()
    }
    pub fn membership(t: &str, identity: &str) -> Vec<u8> {
        [b"m\0", t.as_bytes(), b"\0", identity.as_bytes()].concat()
    }
    pub fn portal_link(token_sha256: &[u8; 32]) -> Vec<u8> {
        [b"p\0".as_slice(), token_sha256].concat()
    }
    pub fn portal_link_id(t: &str, link_id: &str) -> Vec<u8> {
        [b"l\0", t.as_bytes(), b"\0", link_id.as_bytes()].concat()
    }
    pub fn invitation(t: &str, invitation: &str) -> Vec<u8> {
        [b"v\0", t.as_bytes(), b"\0", invitation.as_bytes()].concat()
    }
    pub fn identity(i: &str) -> Vec<u8> {
        [b"i\0", i.as_bytes()].concat()
    }
    pub const CHECKPOINT: &[u8] = b"_checkpoint";
    /// The hash of the event at the checkpoint.
    pub const CHECKPOINT_HASH: &[u8] = b"_checkpoint_hash";
    pub const SCHEMA: &[u8] = b"_schema";
}

/// Reads and writes rows during one batch.
pub(super) trait Rows {
    fn get<T: for<'a> Deserialize<'a>>(&mut self, key: &[u8]) -> anyhow::Result<Option<T>>;
    fn put<T: Serialize>(&mut self, key: Vec<u8>, row: &T);
    fn del(&mut self, key: Vec<u8>);
}

fn set_invitation_expiry(
    rows: &mut impl Rows,
    tenant: &str,
    contact_id: &str,
    expires_at_ms: i64,
) -> anyhow::Result<()> {
    let key = keys::contact(tenant, contact_id);
    if let Some(mut row) = rows.get::<ContactRow>(&key)? {
        row.invitation_expires_at_ms = expires_at_ms;
        rows.put(key, &row);
    }
    Ok(())
}

/// Applies one event to the rows.
pub(super) fn apply(rows: &mut impl Rows, envelope: &Envelope, event: Event) -> anyhow::Result<()> {
    let tenant = envelope.stream.tenant();
    let id = envelope.stream.id();
    match event {
        Event::Tenant(TenantEvent::TenantCreated(e)) => rows.put(
            keys::tenant(tenant),
            &TenantRow {
                name: e.name,
                sites: e.sites,
                default_order_site: e.default_order_site,
                default_visibility: DefaultVisibility::AllSites,
                inactive_customers_may_log_in: true,
                approval_required: false,
                username_administrators: Vec::new(),
                password_policy: PasswordPolicy::default(),
                branding: Branding::default(),
            },
        ),
        Event::Tenant(TenantEvent::BrandingSet(e)) => {
            let key = keys::tenant(tenant);
            if let Some(mut row) = rows.get::<TenantRow>(&key)? {
                row.branding = Branding {
                    logo_url: e.logo_url,
                    accent_colour: e.accent_colour,
                    portal_url: e.portal_url,
                };
                rows.put(key, &row);
            }
        }
        Event::Tenant(TenantEvent::PasswordPolicySet(e)) => {
            let key = keys::tenant(tenant);
            if let Some(mut row) = rows.get::<TenantRow>(&key)? {
                row.password_policy = PasswordPolicy {
                    min_length: e.min_length,
                    require_mixed_case: e.require_mixed_case,
                    require_symbol: e.require_symbol,
                };
                rows.put(key, &row);
            }
        }
        Event::Tenant(TenantEvent::ApprovalPolicySet(e)) => {
            let key = keys::tenant(tenant);
            if let Some(mut row) = rows.get::<TenantRow>(&key)? {
                row.approval_required = e.approval_required;
                rows.put(key, &row);
            }
        }
        Event::Tenant(TenantEvent::UsernameAdministratorsSet(e)) => {
            let key = keys::tenant(tenant);
            if let Some(mut row) = rows.get::<TenantRow>(&key)? {
                row.username_administrators = e.emails;
                rows.put(key, &row);
            }
        }
        Event::Tenant(TenantEvent::TenantSettingsChanged(e)) => {
            let key = keys::tenant(tenant);
            if let Some(mut row) = rows.get::<TenantRow>(&key)? {
                row.sites = e.sites;
                row.default_order_site = e.default_order_site;
                row.default_visibility = e.default_visibility;
                row.inactive_customers_may_log_in = e.inactive_customers_may_log_in;
                rows.put(key, &row);
            }
        }
        Event::Tenant(TenantEvent::ApiKeyIssued(e)) => rows.put(
            keys::key(&e.key_id),
            &KeyRow {
                tenant: tenant.to_owned(),
                role: e.role,
                key_sha256: e.key_sha256,
                name: e.name,
                rep_id: e.rep_id,
                revoked: false,
            },
        ),
        Event::Tenant(TenantEvent::ApiKeyRevoked(e)) => {
            let key = keys::key(&e.key_id);
            if let Some(mut row) = rows.get::<KeyRow>(&key)? {
                row.revoked = true;
                rows.put(key, &row);
            }
        }
        Event::Customer(CustomerEvent::CustomerCreated(e)) => rows.put(
            keys::customer(tenant, &e.record.customer_id),
            &CustomerRow {
                record: e.record,
                status: e.status,
                documents: None,
            },
        ),
        Event::Customer(change) => {
            let key = keys::customer(tenant, id);
            if let Some(mut row) = rows.get::<CustomerRow>(&key)? {
                match change {
                    CustomerEvent::CustomerUpdated(e) => row.record = e.record,
                    CustomerEvent::CustomerStatusChanged(e) => row.status = e.status,
                    CustomerEvent::DocumentVisibilitySet(e) => row.documents = Some(e.kinds),
                    CustomerEvent::CustomerCreated(_) => {}
                }
                rows.put(key, &row);
            }
        }
        Event::Contact(ContactEvent::ContactInvited(e)) => {
            rows.put(keys::membership(tenant, &e.identity_id), &e.contact_id);
            rows.put(
                keys::customer_contact(tenant, &e.customer_id, &e.contact_id),
                &(),
            );
            rows.put(
                keys::contact(tenant, &e.contact_id),
                &ContactRow {
                    contact_id: e.contact_id.clone(),
                    customer_id: e.customer_id,
                    email: e.email.text().to_owned(),
                    identity_id: e.identity_id,
                    site_rule: e.site_rule,
                    lifecycle: Lifecycle::Invited,
                    disabled: false,
                    invitation_id: e.invitation_id,
                    username: None,
                    kind: LoginKind::Management,
                    local_password_hash: None,
                    temporary: false,
                    logged_in: false,
                    invitation_expires_at_ms: 0,
                    last_email: None,
                    failed_logins: Vec::new(),
                    locked_until_ms: 0,
                },
            );
        }
        Event::Contact(ContactEvent::LoginCreated(e)) => {
            rows.put(
                keys::customer_contact(tenant, &e.customer_id, &e.contact_id),
                &(),
            );
            if let Some(identity) = &e.identity_id {
                rows.put(keys::membership(tenant, identity), &e.contact_id);
            }
            rows.put(keys::username(tenant, &e.username), &e.contact_id);
            rows.put(
                keys::contact(tenant, &e.contact_id),
                &ContactRow {
                    contact_id: e.contact_id.clone(),
                    customer_id: e.customer_id,
                    email: e.email.map(|e| e.text().to_owned()).unwrap_or_default(),
                    identity_id: e.identity_id.unwrap_or_default(),
                    site_rule: e.site_rule,
                    lifecycle: Lifecycle::Active,
                    disabled: false,
                    invitation_id: String::new(),
                    username: Some(e.username),
                    kind: e.kind,
                    local_password_hash: None,
                    temporary: false,
                    logged_in: false,
                    invitation_expires_at_ms: 0,
                    last_email: None,
                    failed_logins: Vec::new(),
                    locked_until_ms: 0,
                },
            );
        }
        Event::Contact(change) => {
            let key = keys::contact(tenant, id);
            if let Some(mut row) = rows.get::<ContactRow>(&key)? {
                match change {
                    ContactEvent::ContactActivated(_) => row.lifecycle = Lifecycle::Active,
                    ContactEvent::AccessDisabled(_) => row.disabled = true,
                    ContactEvent::AccessRestored(_) => row.disabled = false,
                    ContactEvent::AccessRevoked(_) => row.lifecycle = Lifecycle::Revoked,
                    ContactEvent::LocalPasswordSet(e) => {
                        row.local_password_hash = Some(e.password_hash);
                        row.temporary = e.temporary;
                    }
                    ContactEvent::FirstLogin(_) => row.logged_in = true,
                    ContactEvent::EmailSent(e) => {
                        row.last_email = Some(LastEmail {
                            kind: e.kind,
                            sent: true,
                            reason: String::new(),
                        });
                    }
                    ContactEvent::EmailDeliveryFailed(e) => {
                        row.last_email = Some(LastEmail {
                            kind: e.kind,
                            sent: false,
                            reason: e.reason,
                        });
                    }
                    ContactEvent::ContactDetailsChanged(e) => {
                        if !row.identity_id.is_empty() {
                            rows.del(keys::membership(tenant, &row.identity_id));
                        }
                        if let Some(old) = &row.username {
                            rows.del(keys::username(tenant, old));
                        }
                        if let Some(identity) = &e.identity_id {
                            rows.put(keys::membership(tenant, identity), &row.contact_id);
                        }
                        if let Some(username) = &e.username {
                            rows.put(keys::username(tenant, username), &row.contact_id);
                        }
                        row.email = e.email.map(|e| e.text().to_owned()).unwrap_or_default();
                        row.identity_id = e.identity_id.unwrap_or_default();
                        row.username = e.username;
                    }
                    ContactEvent::ContactAwaitingApproval(_) => {
                        row.lifecycle = Lifecycle::PendingApproval
                    }
                    ContactEvent::ContactApproved(_) => row.lifecycle = Lifecycle::Active,
                    ContactEvent::ContactRejected(_) => row.lifecycle = Lifecycle::Revoked,
                    ContactEvent::LocalPasswordCleared(_) => {
                        row.local_password_hash = None;
                        row.temporary = false;
                    }
                    ContactEvent::LoginFailed(e) => {
                        remember_failure(&mut row.failed_logins, e.at_ms)
                    }
                    ContactEvent::LoginLocked(e) => row.locked_until_ms = e.until_ms,
                    ContactEvent::LoginFailuresCleared(_) => {
                        row.failed_logins.clear();
                        row.locked_until_ms = 0;
                    }
                    ContactEvent::LoginCodeExchanged(_) => row.logged_in = true,
                    ContactEvent::PasswordResetRequested(_)
                    | ContactEvent::PasswordResetCompleted(_) => {}
                    ContactEvent::ContactInvited(_) | ContactEvent::LoginCreated(_) => {}
                }
                rows.put(key, &row);
            }
        }
        Event::Identity(IdentityEvent::IdentityRegistered(e)) => rows.put(
            keys::identity(id),
            &IdentityRow {
                email: e.email.text().to_owned(),
                password_hash: None,
            },
        ),
        Event::Identity(IdentityEvent::IdentityForgotten(f)) => {
            // What the rows hold of the person goes with the key.
            rows.del(keys::identity(id));
            for (tenant, contact_id) in &f.contacts {
                let key = keys::contact(tenant, contact_id);
                if let Some(mut row) = rows.get::<ContactRow>(&key)? {
                    row.email = access_catalogue::personal::ERASED.to_owned();
                    rows.put(key, &row);
                }
            }
        }
        Event::Identity(IdentityEvent::PasswordSet(e)) => {
            let key = keys::identity(id);
            if let Some(mut row) = rows.get::<IdentityRow>(&key)? {
                row.password_hash = Some(e.password_hash);
                rows.put(key, &row);
            }
        }
        Event::PortalLink(PortalLinkEvent::PortalLinkCreated(e)) => {
            rows.put(keys::portal_link_id(tenant, &e.link_id), &e.token_sha256);
            rows.put(
                keys::portal_link(&e.token_sha256),
                &PortalLinkRow {
                    tenant: tenant.to_owned(),
                    link_id: e.link_id,
                    customer_id: e.customer_id,
                    kinds: e.kinds,
                    expires_at_ms: e.expires_at_ms,
                    deleted: false,
                },
            );
        }
        Event::PortalLink(PortalLinkEvent::PortalLinkDeleted(_)) => {
            if let Some(hash) = rows.get::<[u8; 32]>(&keys::portal_link_id(tenant, id))? {
                let key = keys::portal_link(&hash);
                if let Some(mut row) = rows.get::<PortalLinkRow>(&key)? {
                    row.deleted = true;
                    rows.put(key, &row);
                }
            }
        }
        // The log's own record: nothing any read model answers from.
        Event::System(_) => {}
        Event::Invitation(InvitationEvent::InvitationIssued(e)) => {
            rows.put(keys::invitation(tenant, &e.invitation_id), &e.contact_id);
            set_invitation_expiry(rows, tenant, &e.contact_id, e.expires_at_ms)?;
        }
        Event::Invitation(InvitationEvent::InvitationResent(e)) => {
            if let Some(contact_id) = rows.get::<String>(&keys::invitation(tenant, id))? {
                set_invitation_expiry(rows, tenant, &contact_id, e.expires_at_ms)?;
            }
        }
        Event::Invitation(
            InvitationEvent::InvitationAccepted(_) | InvitationEvent::InvitationCancelled(_),
        ) => {
            if let Some(contact_id) = rows.get::<String>(&keys::invitation(tenant, id))? {
                set_invitation_expiry(rows, tenant, &contact_id, 0)?;
            }
        }
        Event::EmailSlot(_)
        | Event::UsernameSlot(_)
        | Event::Tenant(
            TenantEvent::EmailTemplateSet(_)
            | TenantEvent::EmailTemplateReset(_)
            | TenantEvent::NotificationPolicySet(_),
        ) => {}
    }
    Ok(())
}
