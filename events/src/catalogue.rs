//! The event catalogue: every fact the service records, one enum per aggregate.
//!
//! Events are named in the past tense. Variants and fields are never reordered or
//! removed; a changed layout becomes a new schema version with the old type kept
//! in [`legacy`] and upcast on read.

use crate::codec::{CodecError, Payload, payload_enum};
use crate::envelope::{Aggregate, Envelope};
use crate::personal::Personal;
use serde::{Deserialize, Serialize};

/// How a contact sees stock and where its orders go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SiteRule {
    /// Follow the tenant's catalogue default, including later changes of it.
    TenantDefault,
    /// Stock totals over all sites; orders routed to the tenant's default order site.
    AllSites,
    /// One chosen site only; orders routed there.
    OneSite(String),
}

/// Whether a customer account may order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CustomerStatus {
    /// Trading normally.
    Active,
    /// Dormant: contacts may look but not order.
    Inactive,
    /// Blocked from new orders.
    Blacklisted,
}

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

/// Contact details of a customer company.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactDetails {
    /// General email (the accounting address, often).
    pub email: String,
    /// Telephone.
    pub phone: String,
    /// Postal address, free text.
    pub address: String,
}

/// Billing details of a customer company.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingDetails {
    /// Where invoices go.
    pub email: String,
    /// Billing address, free text.
    pub address: String,
    /// VAT or tax number.
    pub tax_id: String,
}

/// Everything the tenant records about a customer company except its status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRecord {
    /// The customer's id in the tenant's ERP (unique per tenant).
    pub customer_id: String,
    /// The customer's name.
    pub name: String,
    /// Short name.
    pub short_name: String,
    /// Default department.
    pub default_department: String,
    /// Contact details.
    pub contact: ContactDetails,
    /// Billing details.
    pub billing: BillingDetails,
    /// Customer type (a tenant's own classification).
    pub customer_type: String,
    /// Price list.
    pub price_list: String,
    /// The assigned sales rep, if any.
    pub sales_rep: Option<String>,
}

/// A customer account was created (current layout).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerCreated {
    /// The record.
    pub record: CustomerRecord,
    /// Whether the customer may order.
    pub status: CustomerStatus,
}

/// A customer's record was replaced (status unchanged).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerUpdated {
    /// The new record.
    pub record: CustomerRecord,
}

/// A customer's status changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerStatusChanged {
    /// The new status.
    pub status: CustomerStatus,
    /// Why, as given by staff.
    pub reason: String,
}

/// Document kinds a customer's contacts may view (never payments or reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DocumentKind {
    /// Sales quotes.
    SalesQuote,
    /// Sales orders.
    SalesOrder,
    /// Sales invoices.
    SalesInvoice,
    /// Credit notes.
    CreditNote,
    /// Delivery notes.
    DeliveryNote,
}

impl DocumentKind {
    /// Every viewable kind.
    pub const ALL: [DocumentKind; 5] = [
        DocumentKind::SalesQuote,
        DocumentKind::SalesOrder,
        DocumentKind::SalesInvoice,
        DocumentKind::CreditNote,
        DocumentKind::DeliveryNote,
    ];
}

/// Which document kinds a customer's contacts may view, replaced as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentVisibilitySet {
    /// The kinds.
    pub kinds: Vec<DocumentKind>,
}

/// A contact was invited: the login exists from now on, waiting for acceptance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactInvited {
    /// The new contact's id.
    pub contact_id: String,
    /// The customer the contact belongs to.
    pub customer_id: String,
    /// The contact's email, normalised.
    pub email: Personal,
    /// The global identity of that email.
    pub identity_id: String,
    /// What the contact sees and where orders go.
    pub site_rule: SiteRule,
    /// The invitation that carries the link.
    pub invitation_id: String,
}

/// The contact accepted the invitation and may log in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactActivated {
    /// The invitation that was accepted.
    pub invitation_id: String,
}

/// Which of a customer's two portal logins a login is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginKind {
    /// The management login: sees everything the customer may see.
    Management,
    /// The staff login (username + `S`): no costs, balances or other sensitive figures.
    Staff,
}

/// Staff created a login directly (not by invitation), with a username.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginCreated {
    /// The new contact's id.
    pub contact_id: String,
    /// The customer it belongs to.
    pub customer_id: String,
    /// The username, unique per tenant.
    pub username: String,
    /// The contact's email, if any (normalised).
    pub email: Option<Personal>,
    /// The global identity of that email, if any.
    pub identity_id: Option<String>,
    /// Visibility and routing.
    pub site_rule: SiteRule,
    /// Management or staff login.
    pub kind: LoginKind,
}

/// A password for this login only (argon2id PHC), set by staff or changed by
/// the contact; `temporary` ones must be changed at the next login.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalPasswordSet {
    /// argon2id PHC string; redacted in audit output.
    pub password_hash: String,
    /// True when set by staff: the contact must change it before anything else.
    pub temporary: bool,
    /// Where a generated temporary password was derived from (not secret:
    /// deriving it needs the server key); `None` when typed or chosen.
    pub generated: Option<GeneratedPassword>,
}

/// The inputs a generated temporary password is derived from with the server
/// key (see `links::temporary_password`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedPassword {
    /// The request that set it (as the caller sent it).
    pub request_id: String,
    /// Which of the request's passwords (`temporary`, `management`, `staff`).
    pub label: String,
}

/// A password-reset link was sent; older reset links died.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordResetRequested {
    /// The link generation; only its token works.
    pub generation: u32,
    /// When the link dies, Unix milliseconds.
    pub expires_at_ms: i64,
    /// True when staff sent it, false for "forgot password".
    pub by_staff: bool,
    /// True when the contact never logged in: the email welcomes rather than resets.
    pub first_time: bool,
}

/// A reset link was used; it works no more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordResetCompleted {
    /// The generation of the link that was used.
    pub generation: u32,
}

/// This login's own password was dropped: it uses its identity's password again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalPasswordCleared {}

/// Staff changed a contact's email or username (the values after the change).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactDetailsChanged {
    /// The email, if any (normalised).
    pub email: Option<Personal>,
    /// The identity of that email.
    pub identity_id: Option<String>,
    /// The username, if any.
    pub username: Option<String>,
}

/// What became of an email the service sent about a contact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailDelivery {
    /// The event that called for the email (also the mail's id).
    pub source_event_id: String,
    /// Which email: `invitation`, `password_reset`, `welcome`, `approval_request`, `approved`.
    pub kind: String,
    /// Why it failed (empty when sent).
    pub reason: String,
}

/// The contact logged in for the first time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstLogin {}

/// A login with this contact's name was refused for a wrong password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginFailed {
    /// When, Unix milliseconds (the lockout window counts from these).
    pub at_ms: i64,
    /// The end user's network address as the calling service passed it (may be empty).
    pub client_address: Personal,
}

/// Too many failed logins: the login is refused until `until_ms`, whatever
/// password is offered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginLocked {
    /// When the lock ends by itself, Unix milliseconds.
    pub until_ms: i64,
    /// The failures inside the window that caused it.
    pub failures: u32,
}

/// The failures counted against a login were forgotten: a login succeeded,
/// or staff lifted a lock (the envelope's actor says which).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginFailuresCleared {
    /// Why, as given by staff (empty after a successful login).
    pub reason: String,
}

/// A one-time login code handed to the portal after a password was set was
/// exchanged for a session; recorded once, so a code works once everywhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginCodeExchanged {
    /// The code's nonce (not a secret once used).
    pub nonce: String,
}

/// Staff blocked or unblocked a contact, or ended their membership.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessChanged {
    /// Why, as given by staff (may be empty).
    pub reason: String,
}

/// An invitation was issued with its first link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationIssued {
    /// The invitation's id.
    pub invitation_id: String,
    /// The contact it invites.
    pub contact_id: String,
    /// The contact's customer.
    pub customer_id: String,
    /// Where the link is sent.
    pub email: Personal,
    /// The personal message written by staff.
    pub message: Personal,
    /// The link generation; a link is valid only for the current one.
    pub generation: u32,
    /// When the link dies, Unix milliseconds.
    pub expires_at_ms: i64,
}

/// A new link was sent; every older link of the invitation died.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationResent {
    /// The new link generation.
    pub generation: u32,
    /// When the new link dies, Unix milliseconds.
    pub expires_at_ms: i64,
}

/// The invitation's link was used; it works no more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationAccepted {
    /// The generation of the link that was used.
    pub generation: u32,
    /// The identity that now holds the login.
    pub identity_id: String,
}

/// The invitation was withdrawn (access revoked); its link works no more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationCancelled {
    /// Why.
    pub reason: String,
}

/// A global identity (an email) got its first login anywhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityRegistered {
    /// The email, normalised.
    pub email: Personal,
}

/// The identity's password was set; only the argon2id PHC string is recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordSet {
    /// argon2id PHC string (salted hash); redacted in audit output.
    pub password_hash: String,
}

/// The person of an identity was forgotten: their key is destroyed, so every
/// personal value sealed under it reads as erased from now on. Who did it
/// stays in the envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityForgotten {
    /// Why (a request under the right to erasure, say), as given.
    pub reason: String,
    /// The contacts (tenant, contact id) whose access ended with it.
    pub contacts: Vec<(String, String)>,
}

/// A capability link was created; only the SHA-256 of its token is recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalLinkCreated {
    /// The link's id.
    pub link_id: String,
    /// The customer whose documents it shows.
    pub customer_id: String,
    /// The document kinds it shows (view only).
    pub kinds: Vec<DocumentKind>,
    /// When it stops working, Unix milliseconds, if ever.
    pub expires_at_ms: Option<i64>,
    /// SHA-256 of the token.
    pub token_sha256: [u8; 32],
}

/// A capability link was deleted: it stops working at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalLinkDeleted {
    /// Why.
    pub reason: String,
}

/// An email (or username) was reserved for a contact of the tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailReserved {
    /// The contact holding the email.
    pub contact_id: String,
}

/// An email (or username) was freed, so it can be used again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailReleased {
    /// The contact that held it.
    pub contact_id: String,
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
    }
    legacy {
        ApiKeyIssued v 1 => legacy::ApiKeyIssuedV1,
        NotificationPolicySet v 1 => legacy::NotificationPolicySetV1,
    }
}

payload_enum! {
    /// Events of a customer stream.
    pub enum CustomerEvent {
        /// See [`CustomerCreated`].
        CustomerCreated(CustomerCreated) = 3,
        /// See [`CustomerUpdated`].
        CustomerUpdated(CustomerUpdated) = 1,
        /// See [`CustomerStatusChanged`].
        CustomerStatusChanged(CustomerStatusChanged) = 1,
        /// See [`DocumentVisibilitySet`].
        DocumentVisibilitySet(DocumentVisibilitySet) = 1,
    }
    legacy {
        CustomerCreated v 1 => legacy::CustomerCreatedV1,
        CustomerCreated v 2 => legacy::CustomerCreatedV2,
    }
}

payload_enum! {
    /// Events of a contact stream.
    pub enum ContactEvent {
        /// See [`ContactInvited`].
        ContactInvited(ContactInvited) = 1,
        /// See [`ContactActivated`].
        ContactActivated(ContactActivated) = 1,
        /// Logins and orders blocked; every datum kept.
        AccessDisabled(AccessChanged) = 1,
        /// A block lifted.
        AccessRestored(AccessChanged) = 1,
        /// Membership ended; the email may be invited again.
        AccessRevoked(AccessChanged) = 1,
        /// See [`LoginCreated`].
        LoginCreated(LoginCreated) = 1,
        /// See [`LocalPasswordSet`].
        LocalPasswordSet(LocalPasswordSet) = 2,
        /// See [`FirstLogin`].
        FirstLogin(FirstLogin) = 1,
        /// See [`PasswordResetRequested`].
        PasswordResetRequested(PasswordResetRequested) = 1,
        /// See [`PasswordResetCompleted`].
        PasswordResetCompleted(PasswordResetCompleted) = 1,
        /// See [`LocalPasswordCleared`].
        LocalPasswordCleared(LocalPasswordCleared) = 1,
        /// See [`ContactDetailsChanged`].
        ContactDetailsChanged(ContactDetailsChanged) = 1,
        /// The mail server accepted an email about the contact.
        EmailSent(EmailDelivery) = 1,
        /// An email about the contact could not be delivered (given up).
        EmailDeliveryFailed(EmailDelivery) = 1,
        /// The contact completed registration and waits for approval.
        ContactAwaitingApproval(AccessChanged) = 1,
        /// A username administrator approved the contact: it may log in.
        ContactApproved(AccessChanged) = 1,
        /// A username administrator rejected the contact: the pending login is deleted.
        ContactRejected(AccessChanged) = 1,
        /// See [`LoginFailed`].
        LoginFailed(LoginFailed) = 1,
        /// See [`LoginLocked`].
        LoginLocked(LoginLocked) = 1,
        /// See [`LoginFailuresCleared`]; also lifts a lock.
        LoginFailuresCleared(LoginFailuresCleared) = 1,
        /// See [`LoginCodeExchanged`].
        LoginCodeExchanged(LoginCodeExchanged) = 1,
    }
    legacy { LocalPasswordSet v 1 => legacy::LocalPasswordSetV1 }
}

payload_enum! {
    /// Events of an invitation stream.
    pub enum InvitationEvent {
        /// See [`InvitationIssued`].
        InvitationIssued(InvitationIssued) = 1,
        /// See [`InvitationResent`].
        InvitationResent(InvitationResent) = 1,
        /// See [`InvitationAccepted`].
        InvitationAccepted(InvitationAccepted) = 1,
        /// See [`InvitationCancelled`].
        InvitationCancelled(InvitationCancelled) = 1,
    }
    legacy {}
}

payload_enum! {
    /// Events of a global identity stream.
    pub enum IdentityEvent {
        /// See [`IdentityRegistered`].
        IdentityRegistered(IdentityRegistered) = 1,
        /// See [`PasswordSet`].
        PasswordSet(PasswordSet) = 1,
        /// See [`IdentityForgotten`].
        IdentityForgotten(IdentityForgotten) = 1,
    }
    legacy {}
}

payload_enum! {
    /// Events of a portal link stream.
    pub enum PortalLinkEvent {
        /// See [`PortalLinkCreated`].
        PortalLinkCreated(PortalLinkCreated) = 1,
        /// See [`PortalLinkDeleted`].
        PortalLinkDeleted(PortalLinkDeleted) = 1,
    }
    legacy {}
}

/// An operator repaired damaged history: how, what was lost, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRepaired {
    /// `quarantine` (the damaged part cut off and kept aside) or `archive`
    /// (the damaged events taken back from a backup).
    pub method: String,
    /// The first position no longer in the log; 0 when nothing was lost.
    pub first_lost_position: u64,
    /// Events taken back from the archive.
    pub restored_events: u64,
    /// Where the damaged bytes were kept, beside the log.
    pub kept_aside: String,
    /// The archive restored from, with its SHA-256; empty for a quarantine.
    pub archive: String,
    /// The damage that called for it, as the check named it.
    pub damage: String,
    /// The operator's reason.
    pub reason: String,
}

payload_enum! {
    /// Events of the log's own stream: what operators did to the log.
    pub enum SystemEvent {
        /// See [`LogRepaired`].
        LogRepaired(LogRepaired) = 1,
    }
    legacy {}
}

payload_enum! {
    /// Events of a username reservation stream.
    pub enum UsernameSlotEvent {
        /// A username was reserved for a contact.
        UsernameReserved(EmailReserved) = 1,
        /// A username was freed.
        UsernameReleased(EmailReleased) = 1,
    }
    legacy {}
}

payload_enum! {
    /// Events of an email reservation stream.
    pub enum EmailSlotEvent {
        /// See [`EmailReserved`].
        EmailReserved(EmailReserved) = 1,
        /// See [`EmailReleased`].
        EmailReleased(EmailReleased) = 1,
    }
    legacy {}
}

/// Layouts that were once written and are only read now, with their upcasts.
pub mod legacy {
    use super::{
        ApiKeyIssued, ContactEvent, CustomerCreated, CustomerEvent, CustomerRecord, CustomerStatus,
        LocalPasswordSet, NotificationPolicySet, TenantEvent,
    };
    use serde::{Deserialize, Serialize};

    /// `CustomerCreated` v1: the first customer record, before it had a status.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct CustomerCreatedV1 {
        /// The customer's id in the tenant's ERP.
        pub customer_id: String,
        /// The customer's name.
        pub name: String,
    }

    /// `CustomerCreated` v2: id, name and status, before the full record.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct CustomerCreatedV2 {
        /// The customer's id in the tenant's ERP.
        pub customer_id: String,
        /// The customer's name.
        pub name: String,
        /// Whether the customer may order.
        pub status: CustomerStatus,
    }

    impl From<CustomerCreatedV1> for CustomerEvent {
        fn from(v1: CustomerCreatedV1) -> Self {
            // A customer recorded before statuses existed was trading normally.
            CustomerCreatedV2 {
                customer_id: v1.customer_id,
                name: v1.name,
                status: CustomerStatus::Active,
            }
            .into()
        }
    }

    impl From<CustomerCreatedV2> for CustomerEvent {
        fn from(v2: CustomerCreatedV2) -> Self {
            CustomerEvent::CustomerCreated(CustomerCreated {
                record: CustomerRecord {
                    customer_id: v2.customer_id,
                    name: v2.name,
                    ..CustomerRecord::default()
                },
                status: v2.status,
            })
        }
    }

    /// `NotificationPolicySet` v1: before a tenant could choose to mail
    /// generated temporary passwords.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct NotificationPolicySetV1 {
        /// Tell a contact when their access is disabled.
        pub access_disabled: bool,
    }

    impl From<NotificationPolicySetV1> for TenantEvent {
        fn from(v1: NotificationPolicySetV1) -> Self {
            TenantEvent::NotificationPolicySet(NotificationPolicySet {
                access_disabled: v1.access_disabled,
                email_temporary_password: false,
            })
        }
    }

    /// `LocalPasswordSet` v1: before generated passwords said where from.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct LocalPasswordSetV1 {
        /// argon2id PHC string.
        pub password_hash: String,
        /// Set by staff.
        pub temporary: bool,
    }

    impl From<LocalPasswordSetV1> for ContactEvent {
        fn from(v1: LocalPasswordSetV1) -> Self {
            ContactEvent::LocalPasswordSet(LocalPasswordSet {
                password_hash: v1.password_hash,
                temporary: v1.temporary,
                generated: None,
            })
        }
    }

    /// `ApiKeyIssued` v1: before keys had a holder's name and a rep.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ApiKeyIssuedV1 {
        /// Public id of the key.
        pub key_id: String,
        /// Its role.
        pub role: String,
        /// SHA-256 of the key text.
        pub key_sha256: [u8; 32],
    }

    impl From<ApiKeyIssuedV1> for TenantEvent {
        fn from(v1: ApiKeyIssuedV1) -> Self {
            TenantEvent::ApiKeyIssued(ApiKeyIssued {
                name: format!("{} key", v1.role),
                key_id: v1.key_id,
                role: v1.role,
                key_sha256: v1.key_sha256,
                rep_id: None,
            })
        }
    }
}

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
    /// From the log's own stream.
    System(SystemEvent),
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
            Aggregate::System => Event::System(SystemEvent::decode(t, v, b)?),
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
            Event::System(_) => Aggregate::System,
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
            Event::System(e) => parts(e),
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
            Event::Invitation(InvitationEvent::InvitationIssued(e)) => {
                let key = identity_of(e.email.text());
                vec![(&mut e.email, key.clone()), (&mut e.message, key)]
            }
            Event::Identity(IdentityEvent::IdentityRegistered(e)) => vec![(&mut e.email, id)],
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `CustomerCreated` v1 bytes as an early build wrote them: customer "C1", name "Acme".
    const CUSTOMER_CREATED_V1_FIXTURE: &[u8] = &[2, b'C', b'1', 4, b'A', b'c', b'm', b'e'];

    #[test]
    fn a_stored_v1_customer_is_read_as_the_current_type() {
        let event =
            CustomerEvent::decode("CustomerCreated", 1, CUSTOMER_CREATED_V1_FIXTURE).unwrap();
        let expected = CustomerEvent::CustomerCreated(CustomerCreated {
            record: CustomerRecord {
                customer_id: "C1".into(),
                name: "Acme".into(),
                ..Default::default()
            },
            status: CustomerStatus::Active,
        });
        assert_eq!(event, expected);
        let v2 = postcard::to_stdvec(&legacy::CustomerCreatedV2 {
            customer_id: "C1".into(),
            name: "Acme".into(),
            status: CustomerStatus::Active,
        })
        .unwrap();
        assert_eq!(
            CustomerEvent::decode("CustomerCreated", 2, &v2).unwrap(),
            expected
        );
    }

    #[test]
    fn current_events_round_trip_and_unknown_versions_are_refused() {
        let event = CustomerEvent::CustomerCreated(CustomerCreated {
            record: CustomerRecord {
                customer_id: "C1".into(),
                name: "Acme".into(),
                sales_rep: Some("anna".into()),
                ..Default::default()
            },
            status: CustomerStatus::Blacklisted,
        });
        let bytes = event.encode();
        assert_eq!(event.schema_version(), 3);
        assert_eq!(
            CustomerEvent::decode("CustomerCreated", 3, &bytes).unwrap(),
            event
        );
        assert!(matches!(
            CustomerEvent::decode("CustomerCreated", 9, &bytes),
            Err(CodecError::UnknownEvent { .. })
        ));
        assert!(matches!(
            CustomerEvent::decode("CustomerCreated", 2, &[0xff]),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn version_one_password_and_notification_events_read_as_today_s_with_defaults() {
        let v1 = postcard::to_stdvec(&legacy::LocalPasswordSetV1 {
            password_hash: "$argon2id$x".into(),
            temporary: true,
        })
        .unwrap();
        assert_eq!(
            ContactEvent::decode("LocalPasswordSet", 1, &v1).unwrap(),
            ContactEvent::LocalPasswordSet(LocalPasswordSet {
                password_hash: "$argon2id$x".into(),
                temporary: true,
                generated: None,
            })
        );
        let v1 = postcard::to_stdvec(&legacy::NotificationPolicySetV1 {
            access_disabled: true,
        })
        .unwrap();
        assert_eq!(
            TenantEvent::decode("NotificationPolicySet", 1, &v1).unwrap(),
            TenantEvent::NotificationPolicySet(NotificationPolicySet {
                access_disabled: true,
                email_temporary_password: false,
            })
        );
    }
}
