//! Password resets, by staff or by the contact ("forgot password"), and the
//! invite-or-reset choice: a contact who never accepted an invitation gets it
//! again; one who never logged in gets a welcome; anyone else a reset link.
//!
//! A reset link proves control of the email, so using it sets the password of
//! the email's identity (for every supplier) and drops any password local to
//! this login.

use super::contact::{ContactState, Lifecycle};
use super::customer::CustomerState;
use super::identity::IdentityState;
use super::invitation::{InvitationState, InvitationStatus};
use super::policy::Staff;
use super::values::{GeneratedId, TenantId};
use super::{Change, DomainError, streams};
use crate::domain::Reason;
use access_catalogue::catalogue::{
    ContactEvent, Event, IdentityEvent, IdentityRegistered, InvitationEvent, InvitationResent,
    LocalPasswordCleared, PasswordResetCompleted, PasswordResetRequested, PasswordSet,
};
use access_catalogue::personal::Personal;

/// Which email a reset request sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AccessEmail {
    /// The invitation again, with a new link (never accepted): the
    /// `invitation_resent` template.
    InvitationResent,
    /// A welcome with a set-password link (never logged in).
    Welcome,
    /// A password-reset link.
    PasswordReset,
}

impl AccessEmail {
    /// The template's name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessEmail::InvitationResent => "invitation_resent",
            AccessEmail::Welcome => "welcome",
            AccessEmail::PasswordReset => "password_reset",
        }
    }
}

/// Ask for a reset link (or the invitation again).
#[derive(Clone, Debug)]
pub struct RequestReset {
    /// The contact's tenant.
    pub tenant: TenantId,
    /// The contact.
    pub contact_id: GeneratedId,
    /// Staff who ask, or `None` for the contact's own "forgot password".
    pub by: Option<Staff>,
    /// Now, Unix milliseconds.
    pub now_ms: i64,
    /// How long links live, milliseconds.
    pub link_ttl_ms: i64,
}

/// Decides a reset request: which email, and the events that send it.
pub fn request_reset(
    contact: &ContactState,
    customer: &CustomerState,
    invitation: &InvitationState,
    cmd: RequestReset,
) -> Result<(AccessEmail, Vec<Change>), DomainError> {
    let lifecycle = match contact.lifecycle {
        None => return Err(DomainError::NotFound("contact")),
        Some(Lifecycle::Revoked) => {
            return Err(DomainError::precondition(
                Reason::Revoked,
                "this contact's access was revoked",
            ));
        }
        Some(l) => l,
    };
    if let Some(by) = &cmd.by {
        by.may_manage_logins_of(customer.sales_rep())?;
    }
    if contact.disabled {
        return Err(DomainError::PermissionDenied {
            reason: Reason::Disabled,
            message: "access for this contact is disabled".into(),
        });
    }
    if contact.identity_id.is_empty() {
        return Err(DomainError::precondition(
            Reason::NoEmail,
            "this login has no email to send a link to; give it a temporary password instead",
        ));
    }
    let expires_at_ms = cmd.now_ms.saturating_add(cmd.link_ttl_ms);
    if lifecycle == Lifecycle::Invited {
        if invitation.status != Some(InvitationStatus::Pending) {
            return Err(DomainError::precondition(
                Reason::NoInvitation,
                "the invitation is no longer pending",
            ));
        }
        let change = Change::new(
            streams::invitation(&cmd.tenant, &GeneratedId::trusted(&contact.invitation_id)),
            Event::Invitation(InvitationEvent::InvitationResent(InvitationResent {
                generation: invitation.generation + 1,
                expires_at_ms,
            })),
        );
        return Ok((AccessEmail::InvitationResent, vec![change]));
    }
    let email = if contact.logged_in {
        AccessEmail::PasswordReset
    } else {
        AccessEmail::Welcome
    };
    let change = Change::new(
        streams::contact(&cmd.tenant, &cmd.contact_id),
        Event::Contact(ContactEvent::PasswordResetRequested(
            PasswordResetRequested {
                generation: contact.reset_generation + 1,
                expires_at_ms,
                by_staff: cmd.by.is_some(),
                first_time: !contact.logged_in,
            },
        )),
    );
    Ok((email, vec![change]))
}

/// Use a reset link with a new password.
#[derive(Clone, Debug)]
pub struct ResetPassword {
    /// The tenant the link names.
    pub tenant: TenantId,
    /// The contact the link names.
    pub contact_id: GeneratedId,
    /// The link generation the token was made for.
    pub generation: u32,
    /// The new password's hash (it met the rules).
    pub new_hash: String,
    /// Now, Unix milliseconds.
    pub now_ms: i64,
}

/// Decides `ResetPassword`: the link works once, until it expires or a newer one is sent.
pub fn reset_password(
    contact: &ContactState,
    identity: &IdentityState,
    cmd: ResetPassword,
) -> Result<Vec<Change>, DomainError> {
    match contact.lifecycle {
        None => return Err(DomainError::NotFound("contact")),
        Some(Lifecycle::Revoked) => {
            return Err(DomainError::precondition(
                Reason::LinkRevoked,
                "access for this contact was revoked",
            ));
        }
        Some(_) => {}
    }
    if cmd.generation != contact.reset_generation {
        return Err(DomainError::precondition(
            Reason::LinkSuperseded,
            "a newer link was sent; use the latest email",
        ));
    }
    if !contact.reset_pending {
        return Err(DomainError::precondition(
            Reason::LinkUsed,
            "this link was used already; ask for a new one with \"forgot password\"",
        ));
    }
    if cmd.now_ms >= contact.reset_expires_at_ms {
        return Err(DomainError::precondition(
            Reason::LinkExpired,
            "this link has expired; ask for a new one with \"forgot password\"",
        ));
    }
    if contact.disabled {
        return Err(DomainError::PermissionDenied {
            reason: Reason::Disabled,
            message: "access for this contact is disabled".into(),
        });
    }
    let identity_stream = streams::identity(&GeneratedId::trusted(&contact.identity_id));
    let contact_stream = streams::contact(&cmd.tenant, &cmd.contact_id);
    let mut changes = Vec::new();
    if !identity.registered {
        changes.push(Change::new(
            identity_stream.clone(),
            Event::Identity(IdentityEvent::IdentityRegistered(IdentityRegistered {
                email: Personal::clear(contact.email.clone()),
            })),
        ));
    }
    changes.push(Change::new(
        identity_stream,
        Event::Identity(IdentityEvent::PasswordSet(PasswordSet {
            password_hash: cmd.new_hash,
        })),
    ));
    changes.push(Change::new(
        contact_stream.clone(),
        Event::Contact(ContactEvent::PasswordResetCompleted(
            PasswordResetCompleted {
                generation: cmd.generation,
            },
        )),
    ));
    if contact.local_password.is_some() {
        changes.push(Change::new(
            contact_stream,
            Event::Contact(ContactEvent::LocalPasswordCleared(LocalPasswordCleared {})),
        ));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Aggregate;
    use crate::domain::invitation::tests::{accepted_contact, customer, invited_contact};
    use crate::domain::policy::Role;
    use crate::domain::test_support::*;
    use access_catalogue::catalogue::{ContactEvent, FirstLogin};

    const NOW: i64 = 1_800_000_000_000;
    const DAY: i64 = 86_400_000;

    fn request(by: Option<Staff>) -> RequestReset {
        RequestReset {
            tenant: TenantId::parse("acme").unwrap(),
            contact_id: GeneratedId::generate(),
            by,
            now_ms: NOW,
            link_ttl_ms: DAY,
        }
    }

    fn logged_in() -> (ContactState, InvitationState) {
        let (c, i) = accepted_contact();
        (
            c.evolve(&Event::Contact(ContactEvent::FirstLogin(FirstLogin {}))),
            i,
        )
    }

    fn reset(generation: u32, now_ms: i64) -> ResetPassword {
        ResetPassword {
            tenant: TenantId::parse("acme").unwrap(),
            contact_id: GeneratedId::generate(),
            generation,
            new_hash: "$argon2id$new".into(),
            now_ms,
        }
    }

    #[test]
    fn the_email_depends_on_whether_the_contact_ever_accepted_or_logged_in() {
        let (c, i) = invited_contact();
        assert_eq!(
            request_reset(&c, &customer(), &i, request(None)).unwrap().0,
            AccessEmail::InvitationResent
        );
        let (c, i) = accepted_contact();
        assert_eq!(
            request_reset(&c, &customer(), &i, request(None)).unwrap().0,
            AccessEmail::Welcome
        );
        let (c, i) = logged_in();
        let (email, changes) = request_reset(
            &c,
            &customer(),
            &i,
            request(Some(Staff::new(Role::InHouse))),
        )
        .unwrap();
        assert_eq!(email, AccessEmail::PasswordReset);
        assert_eq!(then(c, &changes).reset_generation, 1);
    }

    #[test]
    fn a_reset_link_works_once_before_it_expires_and_only_the_newest_one() {
        let (c, i) = logged_in();
        let c = then(
            c.clone(),
            &request_reset(&c, &customer(), &i, request(None)).unwrap().1,
        );
        let c = then(
            c.clone(),
            &request_reset(&c, &customer(), &i, request(None)).unwrap().1,
        );
        let identity = IdentityState {
            registered: true,
            password_hash: Some("$old".into()),
        };
        let superseded = reset_password(&c, &identity, reset(1, NOW + 1));
        assert!(matches!(
            superseded,
            Err(DomainError::FailedPrecondition {
                reason: Reason::LinkSuperseded,
                ..
            })
        ));
        let expired = reset_password(&c, &identity, reset(2, NOW + DAY));
        assert!(matches!(
            expired,
            Err(DomainError::FailedPrecondition {
                reason: Reason::LinkExpired,
                ..
            })
        ));
        let changes = reset_password(&c, &identity, reset(2, NOW + 1)).unwrap();
        let kinds: Vec<_> = changes.iter().map(|c| c.event.encode().0).collect();
        assert_eq!(kinds, vec!["PasswordSet", "PasswordResetCompleted"]);
        let c = then(c, &changes);
        let used = reset_password(&c, &identity, reset(2, NOW + 2));
        assert!(matches!(
            used,
            Err(DomainError::FailedPrecondition {
                reason: Reason::LinkUsed,
                ..
            })
        ));
    }

    #[test]
    fn a_reset_drops_the_logins_own_password() {
        let (mut c, i) = logged_in();
        c.local_password = Some("$temp".into());
        c.temporary = true;
        let c = then(
            c.clone(),
            &request_reset(&c, &customer(), &i, request(None)).unwrap().1,
        );
        let changes = reset_password(&c, &IdentityState::default(), reset(1, NOW + 1)).unwrap();
        let kinds: Vec<_> = changes.iter().map(|c| c.event.encode().0).collect();
        assert_eq!(
            kinds,
            vec![
                "IdentityRegistered",
                "PasswordSet",
                "PasswordResetCompleted",
                "LocalPasswordCleared"
            ]
        );
        let c = then(c, &changes);
        assert_eq!((c.local_password, c.temporary), (None, false));
    }

    #[test]
    fn no_link_for_revoked_disabled_or_email_less_logins_nor_for_another_reps_customer() {
        let (mut c, i) = logged_in();
        assert!(matches!(
            request_reset(&c, &customer(), &i, request(Some(Staff::rep("bert")))),
            Err(DomainError::PermissionDenied {
                reason: Reason::NotAssignedRep,
                ..
            })
        ));
        c.disabled = true;
        assert!(request_reset(&c, &customer(), &i, request(None)).is_err());
        c.disabled = false;
        c.identity_id.clear();
        assert!(matches!(
            request_reset(&c, &customer(), &i, request(None)),
            Err(DomainError::FailedPrecondition {
                reason: Reason::NoEmail,
                ..
            })
        ));
        c.lifecycle = Some(Lifecycle::Revoked);
        assert!(request_reset(&c, &customer(), &i, request(None)).is_err());
    }
}
