//! What happens to a contact: invitation, logins, passwords, access and mail.

use super::SiteRule;
use super::legacy;
use crate::codec::payload_enum;
use crate::personal::Personal;
use serde::{Deserialize, Serialize};

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
/// key (see `access_keyring::Keyring::temporary_password`).
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

/// A contact enrolled an authenticator app (TOTP, RFC 6238) as a second
/// factor, confirmed with a first code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpAdded {
    /// The factor's id.
    pub factor_id: String,
    /// The shared secret (base32), sealed under the login's own key
    /// (`c-<contact>`): an erasure takes it with everything else of theirs.
    pub secret: Personal,
    /// The contact's identity when it enrolled, for the record.
    pub identity_id: String,
    /// The step of the code that confirmed it, which cannot be used again.
    pub confirmed_step: u64,
    /// SHA-256 of each single-use recovery code, in the order shown.
    pub recovery_codes_sha256: Vec<[u8; 32]>,
}

/// A second factor let the contact in: the TOTP step taken (no code of it
/// or before works again), or the recovery code spent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFactorUsed {
    /// The factor.
    pub factor_id: String,
    /// The TOTP step, for a code.
    pub step: Option<u64>,
    /// The recovery code's place in the list, for a recovery code.
    pub recovery_code: Option<u32>,
}

/// A second factor was removed (by the contact, or by staff after checking
/// who asks: the envelope's actor says which).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFactorRemoved {
    /// The factor.
    pub factor_id: String,
    /// Why, for the record.
    pub reason: String,
    /// What it was: `totp` or `passkey`.
    pub kind: String,
}

/// A contact registered a passkey (WebAuthn, user verification required):
/// a sign-in of its own, and a second factor after a password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyAdded {
    /// The factor's id.
    pub factor_id: String,
    /// The name the contact gave it ("work laptop"), for lists.
    pub name: String,
    /// The credential (its id, public key and counter, as the WebAuthn
    /// library serialises it), sealed under the login's own key: it names
    /// a device of the person and goes with an erasure.
    pub credential: Personal,
    /// The contact's identity when it registered, for the record.
    pub identity_id: String,
}

/// A passkey let the contact in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyUsed {
    /// The factor.
    pub factor_id: String,
    /// When the challenge it answered was made, Unix milliseconds: no
    /// challenge made before it works again.
    pub challenge_at_ms: i64,
    /// The credential as it stands after the sign-in, when its counter or
    /// backup state moved (sealed like [`PasskeyAdded::credential`]).
    pub credential: Option<Personal>,
}

/// A login moved in from the system a supplier left, as it stood there
/// (not invited: it may log in at once if `disabled` is false).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactImported {
    /// The new contact's id.
    pub contact_id: String,
    /// The customer it belongs to.
    pub customer_id: String,
    /// The contact's email, if any (normalised).
    pub email: Option<Personal>,
    /// The global identity of that email, if any.
    pub identity_id: Option<String>,
    /// The username, if any (unique per tenant).
    pub username: Option<String>,
    /// Visibility and routing.
    pub site_rule: SiteRule,
    /// Management or staff login.
    pub kind: LoginKind,
    /// Blocked in the old system: kept blocked.
    pub disabled: bool,
    /// Had logged in to the old system (mails welcome no more).
    pub logged_in: bool,
    /// The import that brought it.
    pub import_id: String,
}

/// A password hash kept from the system a supplier left, in that system's
/// format: this login's own password until its first successful login
/// re-hashes it ([`PasswordRehashed`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordImported {
    /// The hash as the old system stored it, sealed under the login's key:
    /// a weaker hash than ours must not outlive the person in the log.
    pub password_hash: Personal,
    /// Its family (`bcrypt`, `pbkdf2-sha256`, `scrypt`, ...).
    pub scheme: String,
    /// The import that brought it.
    pub import_id: String,
}

/// The imported password was re-hashed with our argon2id at the contact's
/// first successful login with it; the password did not change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordRehashed {
    /// argon2id PHC string; redacted in audit output.
    pub password_hash: String,
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
        /// See [`TotpAdded`].
        TotpAdded(TotpAdded) = 1,
        /// See [`SecondFactorUsed`].
        SecondFactorUsed(SecondFactorUsed) = 1,
        /// See [`SecondFactorRemoved`].
        SecondFactorRemoved(SecondFactorRemoved) = 2,
        /// See [`PasskeyAdded`].
        PasskeyAdded(PasskeyAdded) = 1,
        /// See [`PasskeyUsed`].
        PasskeyUsed(PasskeyUsed) = 1,
        /// See [`ContactImported`].
        ContactImported(ContactImported) = 1,
        /// See [`PasswordImported`].
        PasswordImported(PasswordImported) = 1,
        /// See [`PasswordRehashed`].
        PasswordRehashed(PasswordRehashed) = 1,
    }
    legacy {
        LocalPasswordSet v 1 => legacy::LocalPasswordSetV1,
        SecondFactorRemoved v 1 => legacy::SecondFactorRemovedV1,
    }
}
