//! Second factors of a contact: an authenticator app (TOTP) confirmed by a
//! first code, its single-use recovery codes, and their use at sign-in. A
//! code or recovery code lets a contact in once: its use is an event on the
//! contact's stream, decided with the stream's version, so two replicas
//! cannot both take it.

use super::contact::ContactState;
use super::totp;
use super::values::{GeneratedId, TenantId};
use super::{Change, DomainError, Reason, streams};
use access_catalogue::catalogue::{
    ContactEvent, Event, SecondFactorRemoved, SecondFactorUsed, TotpAdded,
};
use access_catalogue::personal::Personal;
use sha2::{Digest, Sha256};

/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;

/// A contact's authenticator app, as its stream says.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Totp {
    /// The factor's id.
    pub factor_id: String,
    /// The shared secret, base32 (empty once erased).
    pub secret: String,
    /// The last step a code was taken for.
    pub last_step: u64,
    /// SHA-256 of each recovery code; `None` once spent.
    pub recovery: Vec<Option<[u8; 32]>>,
}

impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Totp({}, step {}, <secret redacted>)",
            self.factor_id, self.last_step
        )
    }
}

impl Totp {
    /// Applies one of the factor events of a contact stream.
    pub fn evolve(totp: &mut Option<Totp>, event: &ContactEvent) {
        match event {
            ContactEvent::TotpAdded(e) => {
                *totp = Some(Totp {
                    factor_id: e.factor_id.clone(),
                    secret: e.secret.text().to_owned(),
                    last_step: e.confirmed_step,
                    recovery: e.recovery_codes_sha256.iter().copied().map(Some).collect(),
                });
            }
            ContactEvent::SecondFactorUsed(e) => {
                if let Some(t) = totp.as_mut().filter(|t| t.factor_id == e.factor_id) {
                    if let Some(step) = e.step {
                        t.last_step = t.last_step.max(step);
                    }
                    if let Some(slot) = e.recovery_code.and_then(|i| t.recovery.get_mut(i as usize))
                    {
                        *slot = None;
                    }
                }
            }
            ContactEvent::SecondFactorRemoved(e)
                if totp.as_ref().is_some_and(|t| t.factor_id == e.factor_id) =>
            {
                *totp = None;
            }
            _ => {}
        }
    }
}

/// The SHA-256 of a recovery code as typed: case, spaces and dashes aside.
pub fn recovery_digest(code: &str) -> [u8; 32] {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    Sha256::digest(normal.as_bytes()).into()
}

/// One contact of a tenant: the stream its decisions write to.
#[derive(Clone, Copy, Debug)]
pub struct Of<'a> {
    /// The tenant.
    pub tenant: &'a TenantId,
    /// The contact.
    pub contact_id: &'a GeneratedId,
}

impl Of<'_> {
    pub(super) fn change(&self, event: ContactEvent) -> Vec<Change> {
        vec![Change::new(
            streams::contact(self.tenant, self.contact_id),
            Event::Contact(event),
        )]
    }
}

/// An enrolment confirmed: the secret shown, the step of the first code
/// typed, and the recovery codes' digests.
#[derive(Clone)]
pub struct Enrolment {
    /// The new factor's id.
    pub factor_id: GeneratedId,
    /// The shared secret, base32.
    pub secret: String,
    /// The first code, as typed.
    pub code: String,
    /// When it was typed, Unix milliseconds.
    pub now_ms: i64,
    /// SHA-256 of each recovery code.
    pub recovery_codes_sha256: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Enrolment({}, <secret and code redacted>)",
            self.factor_id
        )
    }
}

/// Decides an authenticator app's enrolment: a contact that exists and has
/// none yet, confirmed by a code of the secret.
pub fn add_totp(
    state: &ContactState,
    of: Of<'_>,
    enrolment: Enrolment,
) -> Result<Vec<Change>, DomainError> {
    if state.lifecycle.is_none() {
        return Err(DomainError::NotFound("contact"));
    }
    if state.totp.is_some() {
        return Err(DomainError::AlreadyExists(
            "an authenticator app is enrolled already; remove it first".into(),
        ));
    }
    let secret = decode_secret(&enrolment.secret)?;
    let step = totp::matching_step(&secret, &enrolment.code, enrolment.now_ms, None)
        .ok_or_else(|| DomainError::invalid("code", "not the app's current code; try the next"))?;
    Ok(of.change(ContactEvent::TotpAdded(TotpAdded {
        factor_id: enrolment.factor_id.to_string(),
        secret: Personal::clear(&enrolment.secret),
        identity_id: state.identity_id.clone(),
        confirmed_step: step,
        recovery_codes_sha256: enrolment.recovery_codes_sha256,
    })))
}

fn decode_secret(secret: &str) -> Result<Vec<u8>, DomainError> {
    data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .map_err(|_| DomainError::invalid("secret", "not a base32 secret"))
}

fn wrong_code() -> DomainError {
    DomainError::Unauthenticated {
        reason: Reason::BadCredentials,
        message: "the code is wrong or was used already".into(),
    }
}

/// Decides a sign-in's second step: a current code of the contact's app
/// not used before, or one of its unspent recovery codes.
pub fn use_second_factor(
    state: &ContactState,
    of: Of<'_>,
    code: &str,
    now_ms: i64,
) -> Result<Vec<Change>, DomainError> {
    let Some(t) = &state.totp else {
        return Err(DomainError::precondition(
            Reason::NotFound,
            "the contact has no second factor",
        ));
    };
    let secret = decode_secret(&t.secret).map_err(|_| wrong_code())?;
    let used = if let Some(step) = totp::matching_step(&secret, code, now_ms, Some(t.last_step)) {
        SecondFactorUsed {
            factor_id: t.factor_id.clone(),
            step: Some(step),
            recovery_code: None,
        }
    } else {
        let digest = recovery_digest(code);
        let index = t
            .recovery
            .iter()
            .position(|slot| slot.is_some_and(|d| d == digest))
            .ok_or_else(wrong_code)?;
        SecondFactorUsed {
            factor_id: t.factor_id.clone(),
            step: None,
            recovery_code: Some(index as u32),
        }
    };
    Ok(of.change(ContactEvent::SecondFactorUsed(used)))
}

/// The kind of a contact's factor by id: `totp` or `passkey`.
pub fn kind_of(state: &ContactState, factor_id: &str) -> Option<&'static str> {
    if state
        .totp
        .as_ref()
        .is_some_and(|t| t.factor_id == factor_id)
    {
        Some("totp")
    } else if state.passkeys.iter().any(|p| p.factor_id == factor_id) {
        Some("passkey")
    } else {
        None
    }
}

/// Every factor of a contact, as (id, kind).
pub fn all_of(state: &ContactState) -> Vec<(String, &'static str)> {
    state
        .totp
        .iter()
        .map(|t| (t.factor_id.clone(), "totp"))
        .chain(
            state
                .passkeys
                .iter()
                .map(|p| (p.factor_id.clone(), "passkey")),
        )
        .collect()
}

fn removed(of: Of<'_>, (factor_id, kind): (String, &str), reason: &str) -> Vec<Change> {
    of.change(ContactEvent::SecondFactorRemoved(SecondFactorRemoved {
        factor_id,
        reason: reason.to_owned(),
        kind: kind.to_owned(),
    }))
}

/// Checks that staff may change the factors of a contact: who manages the
/// customer's logins, after an identity check the reason must describe.
fn staff_may_change(
    state: &ContactState,
    (by, customer_rep): (&super::policy::Staff, Option<&str>),
    reason: &str,
) -> Result<(), DomainError> {
    if state.lifecycle.is_none() {
        return Err(DomainError::NotFound("contact"));
    }
    by.may_manage_logins_of(customer_rep)?;
    if reason.trim().is_empty() {
        return Err(DomainError::invalid(
            "reason",
            "say how you checked who asks (a call back, a ticket)",
        ));
    }
    Ok(())
}

/// Decides staff removing one factor of a contact (a lost phone among
/// several passkeys), for `reason`.
pub fn remove_one(
    state: &ContactState,
    of: Of<'_>,
    staff: (&super::policy::Staff, Option<&str>),
    factor_id: &str,
    reason: &str,
) -> Result<Vec<Change>, DomainError> {
    staff_may_change(state, staff, reason)?;
    let kind = kind_of(state, factor_id).ok_or(DomainError::NotFound("second factor"))?;
    Ok(removed(of, (factor_id.to_owned(), kind), reason))
}

/// Decides staff removing every second factor of a contact who lost
/// theirs.
pub fn reset(
    state: &ContactState,
    of: Of<'_>,
    staff: (&super::policy::Staff, Option<&str>),
    reason: &str,
) -> Result<Vec<Change>, DomainError> {
    staff_may_change(state, staff, reason)?;
    let all = all_of(state);
    if all.is_empty() {
        return Err(DomainError::precondition(
            Reason::Unchanged,
            "the contact has no second factor",
        ));
    }
    Ok(all
        .into_iter()
        .flat_map(|factor| removed(of, factor, reason))
        .collect())
}

#[cfg(test)]
#[path = "factors_tests.rs"]
mod tests;
