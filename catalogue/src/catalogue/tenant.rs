//! What a tenant (a supplier) records: its keys, settings, policies and templates.

use super::legacy;
use crate::codec::payload_enum;
use serde::{Deserialize, Serialize};

/// A tenant was created by the operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantCreated {
    /// The tenant's slug.
    pub tenant_id: String,
    /// Display name, shown in emails and pages.
    pub name: String,
    /// The tenant's stock sites.
    pub sites: Vec<String>,
    /// Where orders go by default; one of `sites`.
    pub default_order_site: String,
}

/// An API key was issued; only its SHA-256 is recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyIssued {
    /// Public id of the key, the part before the secret.
    pub key_id: String,
    /// What the key may do: `admin`, `in_house`, `rep`, `service` or `auditor`.
    pub role: String,
    /// SHA-256 of the whole key text.
    pub key_sha256: [u8; 32],
    /// Who or what holds it, for people reading the audit trail.
    pub name: String,
    /// For `rep` keys: the sales rep whose customers the key may manage.
    pub rep_id: Option<String>,
}

/// An API key stopped working.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRevoked {
    /// The key's public id.
    pub key_id: String,
}

/// Which sites a tenant's contacts see when they follow the catalogue default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DefaultVisibility {
    /// Totals over all sites, orders to the default order site.
    AllSites,
    /// One site only, orders there.
    OneSite(String),
}

/// The tenant's settings, replaced as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSettingsChanged {
    /// Stock sites.
    pub sites: Vec<String>,
    /// Where orders go by default; one of `sites`.
    pub default_order_site: String,
    /// What "tenant default" contacts see.
    pub default_visibility: DefaultVisibility,
    /// Whether contacts of inactive or blacklisted customers may still log in and look.
    pub inactive_customers_may_log_in: bool,
}

/// Whether contacts who complete registration wait for approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPolicySet {
    /// True: a contact who sets a password lands in "unapproved usernames".
    pub approval_required: bool,
}

/// How the tenant's pages look, and where a contact goes once their password
/// is set (the tenant's ordering portal).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrandingSet {
    /// An https URL of the logo shown on the pages (empty: none).
    pub logo_url: String,
    /// `#rrggbb` accent colour (empty: the default).
    pub accent_colour: String,
    /// Where the browser is sent after a password is set, with a one-time
    /// login code (empty: the pages say the password is set and stop).
    pub portal_url: String,
}

/// The tenant's rules for new passwords, above the floor every password meets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordPolicySet {
    /// Shortest accepted, in characters (6 or more).
    pub min_length: u32,
    /// Needs an upper-case and a lower-case letter.
    pub require_mixed_case: bool,
    /// Needs a symbol.
    pub require_symbol: bool,
}

/// What a sign-in must include beyond the password.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FactorRequirement {
    /// Nothing: a contact with a second factor is still asked for it.
    #[default]
    None,
    /// A second factor of any kind: an authenticator app or a passkey.
    AnySecondFactor,
    /// A passkey: a password with an app's code is not enough.
    Passkey,
}

/// What sign-ins of a tenant's contacts (on a tenant stream), or of one
/// customer's contacts (on its stream), must include; the stricter of the
/// two applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFactorPolicySet {
    /// The requirement.
    pub require: FactorRequirement,
}

/// The tenant's username administrators: who is told of registrations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsernameAdministratorsSet {
    /// One to three emails.
    pub emails: Vec<String>,
}

/// Which optional emails a tenant sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationPolicySet {
    /// Tell a contact when their access is disabled.
    pub access_disabled: bool,
    /// Put a generated temporary password in the email that tells the
    /// contact one was set (off by default: the password then travels by
    /// email).
    pub email_temporary_password: bool,
}

/// A tenant's own template for one kind of email.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailTemplateSet {
    /// Which email (`invitation`, `password_reset`, …).
    pub kind: String,
    /// The subject template.
    pub subject: String,
    /// The plain-text body template.
    pub text: String,
    /// The HTML body template.
    pub html: String,
}

/// A tenant went back to the built-in template for one kind of email.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailTemplateReset {
    /// Which email.
    pub kind: String,
}

/// A signing key for the tenant's OpenID Connect tokens was added and is
/// now the one tokens are signed with. Its private half is derived from the
/// server key (`server_key_id`), the tenant and the key's id; only the
/// public half is recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyAdded {
    /// The key's id (`kid` in tokens and the JWKS).
    pub key_id: String,
    /// The JOSE algorithm: `EdDSA`.
    pub algorithm: String,
    /// The public key's bytes.
    pub public_key: Vec<u8>,
    /// The server key its private half is derived from.
    pub server_key_id: u8,
}

/// A signing key stopped signing; it stays published until the tokens it
/// signed have expired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyRetired {
    /// The key's id.
    pub key_id: String,
    /// Until when it stays in the JWKS, Unix milliseconds.
    pub published_until_ms: i64,
}

payload_enum! {
    /// Events of a tenant stream.
    pub enum TenantEvent {
        /// See [`TenantCreated`].
        TenantCreated(TenantCreated) = 1,
        /// See [`ApiKeyIssued`].
        ApiKeyIssued(ApiKeyIssued) = 2,
        /// See [`ApiKeyRevoked`].
        ApiKeyRevoked(ApiKeyRevoked) = 1,
        /// See [`TenantSettingsChanged`].
        TenantSettingsChanged(TenantSettingsChanged) = 1,
        /// See [`ApprovalPolicySet`].
        ApprovalPolicySet(ApprovalPolicySet) = 1,
        /// See [`UsernameAdministratorsSet`].
        UsernameAdministratorsSet(UsernameAdministratorsSet) = 1,
        /// See [`EmailTemplateSet`].
        EmailTemplateSet(EmailTemplateSet) = 1,
        /// See [`EmailTemplateReset`].
        EmailTemplateReset(EmailTemplateReset) = 1,
        /// See [`NotificationPolicySet`].
        NotificationPolicySet(NotificationPolicySet) = 2,
        /// See [`PasswordPolicySet`].
        PasswordPolicySet(PasswordPolicySet) = 1,
        /// See [`BrandingSet`].
        BrandingSet(BrandingSet) = 1,
        /// See [`SigningKeyAdded`].
        SigningKeyAdded(SigningKeyAdded) = 1,
        /// See [`SigningKeyRetired`].
        SigningKeyRetired(SigningKeyRetired) = 1,
        /// See [`SecondFactorPolicySet`].
        SecondFactorPolicySet(SecondFactorPolicySet) = 1,
    }
    legacy {
        ApiKeyIssued v 1 => legacy::ApiKeyIssuedV1,
        NotificationPolicySet v 1 => legacy::NotificationPolicySetV1,
    }
}
