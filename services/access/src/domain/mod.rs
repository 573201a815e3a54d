//! The domain: pure decisions and pure state, no I/O.
//!
//! Each command is decided by `decide(&State, Command) -> Result<Vec<Change>, DomainError>`
//! where `State` is the folded state of every stream the command touches, and
//! each aggregate's state is `evolve`d from its events. Anything impure (time,
//! fresh ids, password hashing) is done by the caller and passed in.
//!
//! ## Layout
//! - [`values`]: the newtypes every input is parsed into.
//! - [`streams`]: which stream holds which aggregate.
//! - [`tenant`], [`customer`], [`identity`], [`email_slot`]: small aggregates.
//! - [`contact`]: a contact's login and the access decisions on it.
//! - [`invitation`]: invite, resend and accept.

pub mod access;
pub mod contact;
pub mod customer;
pub mod details;
pub mod email_slot;
pub mod erasure;
pub mod factors;
pub mod identity;
pub mod imports;
pub mod invitation;
pub mod lockout;
pub mod logins;
pub mod oidc_clients;
pub mod oidc_grants;
pub mod passkeys;
pub mod password_policy;
pub mod policy;
pub mod portal_links;
pub mod reason;
pub mod resets;
pub mod streams;
pub mod tenant;
pub mod totp;
pub mod values;
pub mod webhooks;

use access_catalogue::StreamId;
use access_catalogue::catalogue::Event;
pub use reason::Reason;
use values::FieldViolation;

/// One event for one stream, as decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Where it goes.
    pub stream: StreamId,
    /// What happened.
    pub event: Event,
}

impl Change {
    /// An event for a stream.
    pub fn new(stream: StreamId, event: Event) -> Self {
        Change { stream, event }
    }
}

/// Why a command was refused. Nothing is appended in any case.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Input that can never be right; fix it and send again.
    #[error("invalid input: {}", describe(.0))]
    Invalid(Vec<FieldViolation>),
    /// Something the command names does not exist (for this caller).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// What the command would create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The state does not allow it now; `reason` is machine-readable.
    #[error("{message}")]
    FailedPrecondition {
        /// Why, e.g. [`Reason::LinkExpired`].
        reason: Reason,
        /// What happened and what to do, in words.
        message: String,
    },
    /// The caller proved who they are but may not do this; `reason` is stable.
    #[error("{message}")]
    PermissionDenied {
        /// Why, e.g. [`Reason::Disabled`].
        reason: Reason,
        /// In words.
        message: String,
    },
    /// Too many failed logins: no password is looked at until `retry_after_ms` pass.
    #[error("{message}")]
    TooManyAttempts {
        /// How long to wait, in milliseconds.
        retry_after_ms: i64,
        /// In words.
        message: String,
    },
    /// Credentials are missing or wrong; `reason` is stable.
    #[error("{message}")]
    Unauthenticated {
        /// Why, e.g. [`Reason::BadCredentials`].
        reason: Reason,
        /// In words.
        message: String,
    },
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl DomainError {
    /// A single field violation.
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        DomainError::Invalid(vec![FieldViolation::new(field, description)])
    }

    /// Wrong or unknown credentials, with the one answer that reveals nothing.
    pub fn bad_credentials() -> Self {
        DomainError::Unauthenticated {
            reason: Reason::BadCredentials,
            message: "the email or password is wrong".into(),
        }
    }

    /// A failed precondition with its stable reason.
    pub fn precondition(reason: Reason, message: impl Into<String>) -> Self {
        DomainError::FailedPrecondition {
            reason,
            message: message.into(),
        }
    }
}

/// A state folded from one stream's events.
pub trait Aggregate: Default + Clone {
    /// The next state after `event`. Events of another aggregate are ignored.
    fn evolve(self, event: &Event) -> Self;
}

/// Folds events into a state, given the events in stream order.
pub fn fold<A: Aggregate>(events: impl IntoIterator<Item = Event>) -> A {
    events.into_iter().fold(A::default(), |s, e| s.evolve(&e))
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Given/when/then helpers shared by the aggregate tests.

    use super::*;

    /// Folds the given events.
    pub fn given<A: Aggregate>(events: &[Event]) -> A {
        fold(events.iter().cloned())
    }

    /// The state after a decision's events.
    pub fn then<A: Aggregate>(state: A, changes: &[Change]) -> A {
        changes.iter().fold(state, |s, c| s.evolve(&c.event))
    }

    /// The events of a decision, without streams.
    pub fn events(changes: &[Change]) -> Vec<Event> {
        changes.iter().map(|c| c.event.clone()).collect()
    }
}
