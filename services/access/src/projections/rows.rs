//! The rows of the read models and how one event changes them.

use crate::domain::contact::{Lifecycle, status_word};
use crate::domain::password_policy::PasswordPolicy;
use access_catalogue::catalogue::{
    CustomerRecord, CustomerStatus, DefaultVisibility, DocumentKind, LoginKind, SiteRule,
};
use access_catalogue::catalogue::{OidcClientKind, OidcClientSettings};
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
    /// What its contacts' sign-ins must include.
    pub second_factor: access_catalogue::catalogue::FactorRequirement,
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
    /// What its contacts' sign-ins must include (the tenant's may be more).
    pub second_factor: access_catalogue::catalogue::FactorRequirement,
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
    /// That password is a hash an import kept from another system, to be
    /// re-hashed at the first login it lets in.
    pub password_imported: bool,
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

/// What a check needs of a contact, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct ContactFacts<'a> {
    /// Invited, active or revoked.
    pub lifecycle: Lifecycle,
    /// Blocked by staff.
    pub disabled: bool,
    /// Management or staff login.
    pub kind: LoginKind,
    /// Its password is temporary and must be changed.
    pub temporary: bool,
    /// Which sites it sees.
    pub site_rule: &'a SiteRule,
}

impl ContactRow {
    /// What a check needs of it.
    pub fn facts(&self) -> ContactFacts<'_> {
        ContactFacts {
            lifecycle: self.lifecycle,
            disabled: self.disabled,
            kind: self.kind,
            temporary: self.temporary,
            site_rule: &self.site_rule,
        }
    }
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

/// An OpenID Connect client of a tenant (never its secret, only the
/// secret's hash, which the token endpoint checks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcClientRow {
    /// The client's id.
    pub client_id: String,
    /// Confidential or public.
    pub kind: OidcClientKind,
    /// What it may do.
    pub settings: OidcClientSettings,
    /// SHA-256 of its current secret (confidential clients).
    pub secret_sha256: Option<[u8; 32]>,
    /// The current secret's generation.
    pub secret_generation: u32,
}

/// A contact's sign-in to an OpenID Connect client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcGrantRow {
    /// The grant's id.
    pub grant_id: String,
    /// The client signed in to.
    pub client_id: String,
    /// The contact.
    pub contact_id: String,
    /// The provider's browser session it belongs to.
    pub session_id: String,
    /// When the contact proved the password for it, Unix milliseconds.
    pub auth_time_ms: i64,
    /// The current refresh token's generation (0 before the code is redeemed).
    pub generation: u32,
    /// When the current refresh token stops working unused.
    pub refresh_expires_at_ms: i64,
    /// Why it ended, once it has.
    pub ended: Option<access_catalogue::catalogue::GrantEnd>,
}

/// A live grant as the index by contact lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveGrant {
    /// Its index key, to page on from.
    pub key: Vec<u8>,
    /// The tenant.
    pub tenant: String,
    /// The contact.
    pub contact_id: String,
    /// The grant.
    pub grant_id: String,
}

/// A client to be told that a contact's sign-in to it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogout {
    /// The tenant.
    pub tenant: String,
    /// The grant that ended.
    pub grant_id: String,
    /// The client.
    pub client_id: String,
    /// The contact.
    pub contact_id: String,
    /// The provider session it belonged to.
    pub session_id: String,
    /// Where the logout token goes.
    pub uri: String,
}

/// A published signing key of a tenant's OpenID Connect tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyRow {
    /// Its id.
    pub key_id: String,
    /// Its JOSE algorithm.
    pub algorithm: String,
    /// Its public half.
    pub public_key: Vec<u8>,
    /// The server key its private half is derived from.
    pub server_key_id: u8,
    /// Until when a retired key stays published; `None` while it signs.
    pub retired_until_ms: Option<i64>,
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

/// [`SiteVisibility`] borrowed from the rows it is resolved from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SitesSeen<'a> {
    /// Sites whose stock the contact sees.
    pub visible_sites: &'a [String],
    /// Where orders are routed.
    pub order_site: &'a str,
    /// True when the contact sees totals over all its visible sites.
    pub stock_totals: bool,
}

impl<'a> SitesSeen<'a> {
    /// Resolves a contact's rule against its tenant's current settings, so that
    /// "tenant default" follows later changes of the default.
    pub fn resolve(rule: &'a SiteRule, tenant: &'a TenantRow) -> Self {
        let site = match (rule, &tenant.default_visibility) {
            (SiteRule::TenantDefault, DefaultVisibility::OneSite(site)) => Some(site),
            (SiteRule::OneSite(site), _) => Some(site),
            (SiteRule::TenantDefault | SiteRule::AllSites, _) => None,
        };
        match site {
            Some(site) => SitesSeen {
                visible_sites: std::slice::from_ref(site),
                order_site: site,
                stock_totals: false,
            },
            None => SitesSeen {
                visible_sites: &tenant.sites,
                order_site: &tenant.default_order_site,
                stock_totals: true,
            },
        }
    }
}

impl SiteVisibility {
    /// Resolves a contact's rule against its tenant's current settings, so that
    /// "tenant default" follows later changes of the default.
    pub fn resolve(rule: &SiteRule, tenant: &TenantRow) -> Self {
        let seen = SitesSeen::resolve(rule, tenant);
        SiteVisibility {
            visible_sites: seen.visible_sites.to_vec(),
            order_site: seen.order_site.to_owned(),
            stock_totals: seen.stock_totals,
        }
    }
}
