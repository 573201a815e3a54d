//! Passkeys of a contact (WebAuthn with user verification): registered
//! from a session, each one a sign-in of its own. The WebAuthn ceremony is
//! checked by the app; what is decided here is what the stream must agree
//! to: how many a contact may hold, their names, and that no challenge
//! answers twice (each use records when its challenge was made, and no
//! challenge made before that is taken again).

use super::contact::ContactState;
use super::factors::Of;
use super::{Change, DomainError, Reason};
use access_catalogue::catalogue::{ContactEvent, PasskeyAdded, PasskeyUsed};
use access_catalogue::personal::Personal;

/// Passkeys one contact may hold (a phone, a laptop, a key or two, spares).
pub const MAX_PASSKEYS: usize = 10;
/// Characters of a passkey's name.
pub const MAX_NAME_CHARS: usize = 64;

/// A contact's passkey, as its stream says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Passkey {
    /// The factor's id.
    pub factor_id: String,
    /// What the contact called it.
    pub name: String,
    /// The credential as the WebAuthn library serialised it (empty once
    /// erased).
    pub credential: String,
    /// When the last challenge it answered was made, Unix milliseconds.
    pub last_challenge_ms: i64,
}

impl Passkey {
    /// Applies one of the passkey events of a contact stream.
    pub fn evolve(passkeys: &mut Vec<Passkey>, event: &ContactEvent) {
        match event {
            ContactEvent::PasskeyAdded(e) => passkeys.push(Passkey {
                factor_id: e.factor_id.clone(),
                name: e.name.clone(),
                credential: e.credential.text().to_owned(),
                last_challenge_ms: 0,
            }),
            ContactEvent::PasskeyUsed(e) => {
                if let Some(p) = passkeys.iter_mut().find(|p| p.factor_id == e.factor_id) {
                    p.last_challenge_ms = p.last_challenge_ms.max(e.challenge_at_ms);
                    if let Some(credential) = &e.credential {
                        p.credential = credential.text().to_owned();
                    }
                }
            }
            ContactEvent::SecondFactorRemoved(e) => passkeys.retain(|p| p.factor_id != e.factor_id),
            _ => {}
        }
    }
}

/// A passkey the WebAuthn ceremony accepted, to be recorded.
#[derive(Clone, Debug)]
pub struct Registration {
    /// The new factor's id.
    pub factor_id: String,
    /// What the contact calls it.
    pub name: String,
    /// The credential, serialised.
    pub credential: String,
}

/// Decides registering a passkey: a contact that exists, below the limit,
/// with a name a list can show.
pub fn add(
    state: &ContactState,
    of: Of<'_>,
    registration: Registration,
) -> Result<Vec<Change>, DomainError> {
    if state.lifecycle.is_none() {
        return Err(DomainError::NotFound("contact"));
    }
    let name = registration.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(DomainError::invalid(
            "name",
            format!("name the passkey in 1 to {MAX_NAME_CHARS} characters (\"work laptop\")"),
        ));
    }
    if state.passkeys.len() >= MAX_PASSKEYS {
        return Err(DomainError::precondition(
            Reason::LimitReached,
            format!("a contact holds at most {MAX_PASSKEYS} passkeys; remove one first"),
        ));
    }
    if state
        .passkeys
        .iter()
        .any(|p| p.factor_id == registration.factor_id)
    {
        return Err(DomainError::AlreadyExists(
            "the passkey is registered".into(),
        ));
    }
    Ok(of.change(ContactEvent::PasskeyAdded(PasskeyAdded {
        factor_id: registration.factor_id,
        name: name.to_owned(),
        credential: Personal::clear(&registration.credential),
        identity_id: state.identity_id.clone(),
    })))
}

/// Decides a sign-in with a passkey whose assertion the app verified: the
/// passkey is still the contact's and its challenge is newer than any it
/// answered before.
pub fn used(
    state: &ContactState,
    of: Of<'_>,
    factor_id: &str,
    challenge_at_ms: i64,
    updated: Option<String>,
) -> Result<Vec<Change>, DomainError> {
    let refused = || DomainError::Unauthenticated {
        reason: Reason::BadCredentials,
        message: "the passkey is not this login's, or its challenge was answered already".into(),
    };
    let passkey = state
        .passkeys
        .iter()
        .find(|p| p.factor_id == factor_id)
        .ok_or_else(refused)?;
    if challenge_at_ms <= passkey.last_challenge_ms {
        return Err(refused());
    }
    Ok(of.change(ContactEvent::PasskeyUsed(PasskeyUsed {
        factor_id: factor_id.to_owned(),
        challenge_at_ms,
        credential: updated.as_deref().map(Personal::clear),
    })))
}
