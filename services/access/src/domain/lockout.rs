//! Failed logins: the progressive delay, the temporary lock, and lifting it.
//!
//! The rules are pure: what a login name's recent failures allow now, and
//! which events a new failure or an unlock appends. The app keeps the count of
//! attempts in flight (so concurrent tries cannot race past the limit) and
//! applies the same rules to names no account has, so an attacker cannot tell
//! the two apart by how they lock.

use super::contact::ContactState;
use super::policy::Staff;
use super::values::{GeneratedId, TenantId};
use super::{Change, DomainError, streams};
use crate::domain::Reason;
use access_catalogue::catalogue::{
    ContactEvent, Event, LoginFailed, LoginFailuresCleared, LoginLocked,
};
use access_catalogue::personal::Personal;
use std::time::Duration;

/// The highest lockout limit a setting may name.
pub const MAX_ATTEMPTS: u32 = 200;

/// How many failure times a contact keeps: as many as the highest limit
/// counts, so every setting is reached.
pub const KEPT_FAILURES: usize = MAX_ATTEMPTS as usize;

/// Adds a failure time, keeping the last [`KEPT_FAILURES`].
pub fn remember_failure(failures: &mut Vec<i64>, at_ms: i64) {
    remember_failure_upto(failures, at_ms, KEPT_FAILURES);
}

/// Adds a failure time, keeping the last `keep` (at least one): a limit of
/// `keep` needs no more to be decided.
pub fn remember_failure_upto(failures: &mut Vec<i64>, at_ms: i64, keep: usize) {
    let keep = keep.max(1);
    if failures.len() >= keep {
        let extra = failures.len() + 1 - keep;
        failures.drain(..extra);
    }
    failures.push(at_ms);
}

/// The lockout rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures inside `window` that lock the login.
    pub attempts: u32,
    /// How far back failures count.
    pub window: Duration,
    /// How long a lock lasts.
    pub lock: Duration,
    /// Failures after which each further try must wait (1 s, 2 s, 4 s…).
    pub delay_after: u32,
    /// The first wait.
    pub delay_base: Duration,
}

impl Default for LockoutPolicy {
    /// Five failures in fifteen minutes lock for fifteen minutes; from the
    /// third failure on, each try waits 1 s, then 2 s, then 4 s…
    fn default() -> Self {
        LockoutPolicy {
            attempts: 5,
            window: Duration::from_secs(15 * 60),
            lock: Duration::from_secs(15 * 60),
            delay_after: 3,
            delay_base: Duration::from_secs(1),
        }
    }
}

/// A try refused before the password was looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    /// When a try may be made again, in milliseconds from now.
    pub retry_after_ms: i64,
    /// True when the login is locked (not only waiting out a delay).
    pub locked: bool,
}

impl From<Throttled> for DomainError {
    fn from(t: Throttled) -> Self {
        let seconds = (t.retry_after_ms + 999) / 1000;
        DomainError::TooManyAttempts {
            retry_after_ms: t.retry_after_ms,
            message: if t.locked {
                format!(
                    "too many failed logins: this login is locked; try again in {seconds} s or ask the supplier to unlock it"
                )
            } else {
                format!("too many failed logins; try again in {seconds} s")
            },
        }
    }
}

impl LockoutPolicy {
    /// The failures of `failures` that still count at `now_ms`.
    pub fn recent(&self, failures: &[i64], now_ms: i64) -> usize {
        let since = now_ms - self.window.as_millis() as i64;
        failures.iter().filter(|&&at| at > since).count()
    }

    /// Whether a try may start now, given the recorded failures, the lock,
    /// and the tries already in flight (each may still fail).
    pub fn admit(
        &self,
        failures: &[i64],
        locked_until_ms: i64,
        in_flight: u32,
        now_ms: i64,
    ) -> Result<(), Throttled> {
        if locked_until_ms > now_ms {
            return Err(Throttled {
                retry_after_ms: locked_until_ms - now_ms,
                locked: true,
            });
        }
        let recent = self.recent(failures, now_ms) as u32;
        if recent + in_flight >= self.attempts {
            // The tries in flight may lock it; the answer is known in a moment.
            return Err(Throttled {
                retry_after_ms: if recent >= self.attempts {
                    self.lock.as_millis() as i64
                } else {
                    1_000
                },
                locked: recent >= self.attempts,
            });
        }
        if recent >= self.delay_after {
            let last = failures.iter().copied().max().unwrap_or(now_ms);
            let steps = (recent - self.delay_after).min(16);
            let wait = self.delay_base.as_millis() as i64 * (1_i64 << steps);
            if last + wait > now_ms {
                return Err(Throttled {
                    retry_after_ms: last + wait - now_ms,
                    locked: false,
                });
            }
        }
        Ok(())
    }

    /// The events a wrong password appends to a contact: the failure, and a
    /// lock if it is the one that reaches the limit.
    pub fn failure(
        &self,
        contact: &ContactState,
        tenant: &TenantId,
        contact_id: &GeneratedId,
        now_ms: i64,
        client_address: &str,
    ) -> Vec<Change> {
        if contact.lifecycle.is_none() {
            return Vec::new();
        }
        let stream = streams::contact(tenant, contact_id);
        let mut changes = vec![Change::new(
            stream.clone(),
            Event::Contact(ContactEvent::LoginFailed(LoginFailed {
                at_ms: now_ms,
                client_address: Personal::clear(client_address),
            })),
        )];
        let recent = self.recent(&contact.failed_logins, now_ms) as u32 + 1;
        if recent >= self.attempts && contact.locked_until_ms <= now_ms {
            changes.push(Change::new(
                stream,
                Event::Contact(ContactEvent::LoginLocked(LoginLocked {
                    until_ms: now_ms + self.lock.as_millis() as i64,
                    failures: recent,
                })),
            ));
        }
        changes
    }
}

/// After a successful login: forget the failures counted so far (nothing if
/// there are none).
pub fn clear_after_login(
    contact: &ContactState,
    tenant: &TenantId,
    contact_id: &GeneratedId,
) -> Vec<Change> {
    if contact.failed_logins.is_empty() {
        return Vec::new();
    }
    vec![Change::new(
        streams::contact(tenant, contact_id),
        Event::Contact(ContactEvent::LoginFailuresCleared(LoginFailuresCleared {
            reason: String::new(),
        })),
    )]
}

/// Staff lift a lock (and forget the failures) on one of their contacts.
pub fn unlock(
    contact: &ContactState,
    customer_rep: Option<&str>,
    by: &Staff,
    tenant: &TenantId,
    contact_id: &GeneratedId,
    now_ms: i64,
    reason: &str,
) -> Result<Vec<Change>, DomainError> {
    if contact.lifecycle.is_none() {
        return Err(DomainError::NotFound("contact"));
    }
    by.may_manage_logins_of(customer_rep)?;
    if contact.locked_until_ms <= now_ms && contact.failed_logins.is_empty() {
        return Err(DomainError::precondition(
            Reason::NotLocked,
            "this login is not locked and has no failed logins counted",
        ));
    }
    Ok(vec![Change::new(
        streams::contact(tenant, contact_id),
        Event::Contact(ContactEvent::LoginFailuresCleared(LoginFailuresCleared {
            reason: reason.to_owned(),
        })),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::contact::Lifecycle;

    const MIN: i64 = 60_000;

    fn policy() -> LockoutPolicy {
        LockoutPolicy::default()
    }

    fn active() -> ContactState {
        ContactState {
            lifecycle: Some(Lifecycle::Active),
            ..ContactState::default()
        }
    }

    fn ids() -> (TenantId, GeneratedId) {
        (
            TenantId::parse("acme").expect("tenant"),
            GeneratedId::generate(),
        )
    }

    #[test]
    fn the_first_tries_go_through_at_once() {
        let p = policy();
        assert_eq!(p.admit(&[], 0, 0, 10 * MIN), Ok(()));
        assert_eq!(p.admit(&[9 * MIN, 9 * MIN + 1], 0, 0, 10 * MIN), Ok(()));
    }

    #[test]
    fn from_the_third_failure_each_try_waits_longer() {
        let p = policy();
        let now = 10 * MIN;
        let three = [now - 500, now - 400, now - 300];
        let refused = p.admit(&three, 0, 0, now).expect_err("a wait");
        assert!(!refused.locked);
        assert_eq!(refused.retry_after_ms, 700);
        assert_eq!(p.admit(&three, 0, 0, now + 700), Ok(()));
        let four = [now - 500, now - 400, now - 300, now - 200];
        assert_eq!(
            p.admit(&four, 0, 0, now).map_err(|t| t.retry_after_ms),
            Err(1_800)
        );
    }

    #[test]
    fn tries_in_flight_count_against_the_limit() {
        let p = policy();
        assert!(p.admit(&[], 0, 4, 0).is_ok());
        let refused = p.admit(&[], 0, 5, 0).expect_err("full");
        assert!(!refused.locked);
        assert!(p.admit(&[1, 2], 0, 3, 10).is_err());
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let p = policy();
        let old = [0, 1, 2, 3, 4];
        assert_eq!(p.admit(&old, 0, 0, 16 * MIN), Ok(()));
    }

    #[test]
    fn a_lock_refuses_until_it_ends() {
        let p = policy();
        let refused = p.admit(&[], 20 * MIN, 0, 10 * MIN).expect_err("locked");
        assert!(refused.locked);
        assert_eq!(refused.retry_after_ms, 10 * MIN);
        assert_eq!(p.admit(&[], 20 * MIN, 0, 20 * MIN), Ok(()));
    }

    #[test]
    fn the_fifth_failure_locks_for_fifteen_minutes() {
        let p = policy();
        let (tenant, id) = ids();
        let mut contact = active();
        contact.failed_logins = vec![MIN, 2 * MIN, 3 * MIN, 4 * MIN];
        let changes = p.failure(&contact, &tenant, &id, 5 * MIN, "203.0.113.7");
        assert_eq!(changes.len(), 2);
        assert!(matches!(
            &changes[0].event,
            Event::Contact(ContactEvent::LoginFailed(f))
                if f.at_ms == 5 * MIN && f.client_address.text() == "203.0.113.7"
        ));
        assert!(matches!(
            &changes[1].event,
            Event::Contact(ContactEvent::LoginLocked(l))
                if l.until_ms == 20 * MIN && l.failures == 5
        ));
    }

    #[test]
    fn a_failure_below_the_limit_only_counts() {
        let p = policy();
        let (tenant, id) = ids();
        let mut contact = active();
        contact.failed_logins = vec![MIN];
        assert_eq!(p.failure(&contact, &tenant, &id, 2 * MIN, "").len(), 1);
    }

    #[test]
    fn failures_are_folded_and_a_clear_forgets_them_and_the_lock() {
        use crate::domain::Aggregate;
        let mut c = active();
        for at in 1..=(KEPT_FAILURES as i64 + 8) {
            c = c.evolve(&Event::Contact(ContactEvent::LoginFailed(LoginFailed {
                at_ms: at,
                client_address: Personal::default(),
            })));
        }
        assert_eq!(c.failed_logins.len(), KEPT_FAILURES);
        assert_eq!(c.failed_logins.last(), Some(&(KEPT_FAILURES as i64 + 8)));
        c = c.evolve(&Event::Contact(ContactEvent::LoginLocked(LoginLocked {
            until_ms: 99,
            failures: 5,
        })));
        assert_eq!(c.locked_until_ms, 99);
        c = c.evolve(&Event::Contact(ContactEvent::LoginFailuresCleared(
            LoginFailuresCleared {
                reason: String::new(),
            },
        )));
        assert!(c.failed_logins.is_empty());
        assert_eq!(c.locked_until_ms, 0);
    }

    #[test]
    fn a_successful_login_clears_only_when_there_is_something_to_clear() {
        let (tenant, id) = ids();
        assert!(clear_after_login(&active(), &tenant, &id).is_empty());
        let mut c = active();
        c.failed_logins = vec![1];
        assert_eq!(clear_after_login(&c, &tenant, &id).len(), 1);
    }
}
