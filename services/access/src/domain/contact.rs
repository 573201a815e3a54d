//! A contact's login in one tenant, and the staff decisions on it: disable,
//! restore, revoke.

use super::customer::CustomerState;
use super::invitation::{InvitationState, InvitationStatus};
use super::policy::Staff;
use super::values::Username;
use super::values::{GeneratedId, TenantId};
use super::{Aggregate, Change, DomainError, streams};
use crate::domain::Reason;
use access_catalogue::catalogue::{
    AccessChanged, ContactEvent, EmailDelivery, EmailReleased, EmailSlotEvent, Event,
    InvitationCancelled, InvitationEvent, LoginKind, SiteRule, UsernameSlotEvent,
};

/// Where a contact is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Lifecycle {
    /// Invited, link not used yet.
    Invited,
    /// Accepted: may log in unless disabled.
    Active,
    /// Membership ended; the email is free again.
    Revoked,
    /// Registered (password set), waiting for a username administrator.
    PendingApproval,
}

/// What the log says about one contact.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactState {
    /// None until `ContactInvited`.
    pub lifecycle: Option<Lifecycle>,
    /// Blocked by staff; independent of the lifecycle, so restore loses nothing.
    pub disabled: bool,
    /// The customer.
    pub customer_id: String,
    /// The email.
    pub email: String,
    /// The global identity.
    pub identity_id: String,
    /// Visibility and routing.
    pub site_rule: Option<SiteRule>,
    /// The invitation of this contact (empty for logins created by staff).
    pub invitation_id: String,
    /// The username, for logins that have one.
    pub username: Option<String>,
    /// Management or staff login.
    pub kind: Option<LoginKind>,
    /// A password for this login only (set by staff, or changed after one).
    pub local_password: Option<String>,
    /// The local password was set by staff and must be changed.
    pub temporary: bool,
    /// The contact has logged in at least once.
    pub logged_in: bool,
    /// The current reset link's generation (0: none was ever sent).
    pub reset_generation: u32,
    /// When the current reset link dies, Unix milliseconds.
    pub reset_expires_at_ms: i64,
    /// A reset link was sent and not used yet.
    pub reset_pending: bool,
    /// When recent logins failed for a wrong password, oldest first (at most
    /// [`KEPT_FAILURES`](super::lockout::KEPT_FAILURES)).
    pub failed_logins: Vec<i64>,
    /// Locked against logins until then, Unix milliseconds (0: never locked).
    pub locked_until_ms: i64,
    /// The authenticator app enrolled as a second factor.
    pub totp: Option<super::factors::Totp>,
    /// The passkeys registered, oldest first.
    pub passkeys: Vec<super::passkeys::Passkey>,
    /// The last password hash an import kept, as the old system stored it
    /// (a file imported again with the same hash changes nothing).
    pub imported_hash: Option<String>,
    /// The local password is that imported hash, not yet re-hashed.
    pub password_imported: bool,
}

impl Aggregate for ContactState {
    fn evolve(mut self, event: &Event) -> Self {
        let Event::Contact(event) = event else {
            return self;
        };
        match event {
            ContactEvent::ContactInvited(e) => {
                self.lifecycle = Some(Lifecycle::Invited);
                self.customer_id = e.customer_id.clone();
                self.email = e.email.text().to_owned();
                self.identity_id = e.identity_id.clone();
                self.site_rule = Some(e.site_rule.clone());
                self.invitation_id = e.invitation_id.clone();
            }
            ContactEvent::ContactActivated(_) => self.lifecycle = Some(Lifecycle::Active),
            ContactEvent::AccessDisabled(_) => self.disabled = true,
            ContactEvent::AccessRestored(_) => self.disabled = false,
            ContactEvent::AccessRevoked(_) => self.lifecycle = Some(Lifecycle::Revoked),
            ContactEvent::LoginCreated(e) => {
                self.lifecycle = Some(Lifecycle::Active);
                self.customer_id = e.customer_id.clone();
                self.email = e
                    .email
                    .as_ref()
                    .map(|e| e.text().to_owned())
                    .unwrap_or_default();
                self.identity_id = e.identity_id.clone().unwrap_or_default();
                self.site_rule = Some(e.site_rule.clone());
                self.username = Some(e.username.clone());
                self.kind = Some(e.kind);
            }
            ContactEvent::ContactImported(e) => {
                self.lifecycle = Some(Lifecycle::Active);
                self.customer_id = e.customer_id.clone();
                self.email = e
                    .email
                    .as_ref()
                    .map(|e| e.text().to_owned())
                    .unwrap_or_default();
                self.identity_id = e.identity_id.clone().unwrap_or_default();
                self.site_rule = Some(e.site_rule.clone());
                self.username = e.username.clone();
                self.kind = Some(e.kind);
                self.disabled = e.disabled;
                self.logged_in = e.logged_in;
            }
            ContactEvent::LocalPasswordSet(e) => {
                self.local_password = Some(e.password_hash.clone());
                self.temporary = e.temporary;
                self.password_imported = false;
            }
            ContactEvent::PasswordImported(e) => {
                self.local_password = Some(e.password_hash.text().to_owned());
                self.imported_hash = Some(e.password_hash.text().to_owned());
                self.temporary = false;
                self.password_imported = true;
            }
            ContactEvent::PasswordRehashed(e) => {
                self.local_password = Some(e.password_hash.clone());
                self.password_imported = false;
            }
            ContactEvent::FirstLogin(_) => self.logged_in = true,
            ContactEvent::EmailSent(_) | ContactEvent::EmailDeliveryFailed(_) => {}
            ContactEvent::ContactDetailsChanged(e) => {
                self.email = e
                    .email
                    .as_ref()
                    .map(|e| e.text().to_owned())
                    .unwrap_or_default();
                self.identity_id = e.identity_id.clone().unwrap_or_default();
                self.username = e.username.clone();
            }
            ContactEvent::ContactAwaitingApproval(_) => {
                self.lifecycle = Some(Lifecycle::PendingApproval)
            }
            ContactEvent::ContactApproved(_) => self.lifecycle = Some(Lifecycle::Active),
            ContactEvent::ContactRejected(_) => self.lifecycle = Some(Lifecycle::Revoked),
            ContactEvent::PasswordResetRequested(e) => {
                self.reset_generation = e.generation;
                self.reset_expires_at_ms = e.expires_at_ms;
                self.reset_pending = true;
            }
            ContactEvent::PasswordResetCompleted(_) => self.reset_pending = false,
            ContactEvent::LocalPasswordCleared(_) => {
                self.local_password = None;
                self.temporary = false;
                self.password_imported = false;
            }
            ContactEvent::LoginFailed(e) => {
                super::lockout::remember_failure(&mut self.failed_logins, e.at_ms)
            }
            ContactEvent::LoginLocked(e) => self.locked_until_ms = e.until_ms,
            ContactEvent::LoginFailuresCleared(_) => {
                self.failed_logins.clear();
                self.locked_until_ms = 0;
            }
            ContactEvent::LoginCodeExchanged(_) => self.logged_in = true,
            ContactEvent::TotpAdded(_)
            | ContactEvent::SecondFactorUsed(_)
            | ContactEvent::SecondFactorRemoved(_)
            | ContactEvent::PasskeyAdded(_)
            | ContactEvent::PasskeyUsed(_) => {
                super::factors::Totp::evolve(&mut self.totp, event);
                super::passkeys::Passkey::evolve(&mut self.passkeys, event);
            }
        }
        self
    }
}

impl ContactState {
    /// The status word shown to staff: `invited`, `active`, `disabled` or `revoked`.
    pub fn status(&self) -> &'static str {
        status_word(self.lifecycle, self.disabled)
    }
}

/// The status word for a lifecycle and block flag.
pub fn status_word(lifecycle: Option<Lifecycle>, disabled: bool) -> &'static str {
    match (lifecycle, disabled) {
        (Some(Lifecycle::Revoked), _) => "revoked",
        (Some(Lifecycle::PendingApproval), _) => "pending_approval",
        (_, true) => "disabled",
        (Some(Lifecycle::Active), false) => "active",
        _ => "invited",
    }
}

/// A staff decision on one contact.
#[derive(Clone, Debug)]
pub struct ChangeAccess {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The contact.
    pub contact_id: GeneratedId,
    /// Why, for the audit trail.
    pub reason: String,
}

/// The contact must exist, not be revoked, and belong to a customer the
/// caller may manage.
fn manageable(
    contact: &ContactState,
    customer: &CustomerState,
    by: &Staff,
) -> Result<Lifecycle, DomainError> {
    let lifecycle = existing(contact)?;
    by.may_manage_logins_of(customer.sales_rep())?;
    Ok(lifecycle)
}

fn existing(contact: &ContactState) -> Result<Lifecycle, DomainError> {
    match contact.lifecycle {
        None => Err(DomainError::NotFound("contact")),
        Some(Lifecycle::Revoked) => Err(DomainError::precondition(
            Reason::Revoked,
            "this contact's access was revoked; invite the email again instead",
        )),
        Some(l) => Ok(l),
    }
}

/// Decides `DisableAccess`: blocks logins and orders, keeps everything.
pub fn disable(
    contact: &ContactState,
    customer: &CustomerState,
    cmd: ChangeAccess,
) -> Result<Vec<Change>, DomainError> {
    manageable(contact, customer, &cmd.by)?;
    if contact.disabled {
        return Err(DomainError::precondition(
            Reason::AlreadyDisabled,
            "access is already disabled",
        ));
    }
    Ok(vec![Change::new(
        streams::contact(&cmd.tenant, &cmd.contact_id),
        Event::Contact(ContactEvent::AccessDisabled(AccessChanged {
            reason: cmd.reason,
        })),
    )])
}

/// Decides `RestoreAccess`: lifts the block; the contact is as before.
pub fn restore(
    contact: &ContactState,
    customer: &CustomerState,
    cmd: ChangeAccess,
) -> Result<Vec<Change>, DomainError> {
    manageable(contact, customer, &cmd.by)?;
    if !contact.disabled {
        return Err(DomainError::precondition(
            Reason::NotDisabled,
            "access is not disabled",
        ));
    }
    Ok(vec![Change::new(
        streams::contact(&cmd.tenant, &cmd.contact_id),
        Event::Contact(ContactEvent::AccessRestored(AccessChanged {
            reason: cmd.reason,
        })),
    )])
}

/// Frees the contact's email and username for new logins.
fn release_slots(contact: &ContactState, cmd: &ChangeAccess) -> Vec<Change> {
    let released = || EmailReleased {
        contact_id: cmd.contact_id.to_string(),
    };
    let mut changes = Vec::new();
    if !contact.identity_id.is_empty() {
        let identity = GeneratedId::trusted(&contact.identity_id);
        changes.push(Change::new(
            streams::email_slot(&cmd.tenant, &identity),
            Event::EmailSlot(EmailSlotEvent::EmailReleased(released())),
        ));
    }
    if let Some(username) = contact
        .username
        .as_deref()
        .and_then(|u| Username::parse(u).ok())
    {
        changes.push(Change::new(
            streams::username_slot(&cmd.tenant, &username.slot_id()),
            Event::UsernameSlot(UsernameSlotEvent::UsernameReleased(released())),
        ));
    }
    changes
}

fn pending_approval(
    contact: &ContactState,
    customer: &CustomerState,
    by: &Staff,
) -> Result<(), DomainError> {
    if manageable(contact, customer, by)? != Lifecycle::PendingApproval {
        return Err(DomainError::precondition(
            Reason::NotPendingApproval,
            "this contact is not waiting for approval",
        ));
    }
    Ok(())
}

/// Decides `ApproveUser`: the registered contact may log in.
pub fn approve(
    contact: &ContactState,
    customer: &CustomerState,
    cmd: ChangeAccess,
) -> Result<Vec<Change>, DomainError> {
    pending_approval(contact, customer, &cmd.by)?;
    Ok(vec![Change::new(
        streams::contact(&cmd.tenant, &cmd.contact_id),
        Event::Contact(ContactEvent::ContactApproved(AccessChanged {
            reason: cmd.reason,
        })),
    )])
}

/// Decides `RejectUser`: the pending login is deleted; its email and username are free.
pub fn reject(
    contact: &ContactState,
    customer: &CustomerState,
    cmd: ChangeAccess,
) -> Result<Vec<Change>, DomainError> {
    pending_approval(contact, customer, &cmd.by)?;
    let mut changes = vec![Change::new(
        streams::contact(&cmd.tenant, &cmd.contact_id),
        Event::Contact(ContactEvent::ContactRejected(AccessChanged {
            reason: cmd.reason.clone(),
        })),
    )];
    changes.extend(release_slots(contact, &cmd));
    Ok(changes)
}

/// Decides `RecordDelivery`: what became of an email about the contact.
pub fn record_delivery(
    contact: &ContactState,
    tenant: &TenantId,
    contact_id: &GeneratedId,
    delivery: EmailDelivery,
    sent: bool,
) -> Result<Vec<Change>, DomainError> {
    if contact.lifecycle.is_none() {
        return Err(DomainError::NotFound("contact"));
    }
    let event = if sent {
        ContactEvent::EmailSent(delivery)
    } else {
        ContactEvent::EmailDeliveryFailed(delivery)
    };
    Ok(vec![Change::new(
        streams::contact(tenant, contact_id),
        Event::Contact(event),
    )])
}

/// The state `RevokeAccess` is decided on.
#[derive(Clone, Debug)]
pub struct RevokeState<'a> {
    /// The contact.
    pub contact: &'a ContactState,
    /// Its invitation.
    pub invitation: &'a InvitationState,
    /// Its customer.
    pub customer: &'a CustomerState,
}

/// Decides `RevokeAccess`: ends the membership, kills a pending link and frees
/// the email for a new invitation.
pub fn revoke(state: RevokeState<'_>, cmd: ChangeAccess) -> Result<Vec<Change>, DomainError> {
    manageable(state.contact, state.customer, &cmd.by)?;
    let mut changes = vec![Change::new(
        streams::contact(&cmd.tenant, &cmd.contact_id),
        Event::Contact(ContactEvent::AccessRevoked(AccessChanged {
            reason: cmd.reason.clone(),
        })),
    )];
    changes.extend(release_slots(state.contact, &cmd));
    if state.invitation.status == Some(InvitationStatus::Pending) {
        changes.push(Change::new(
            streams::invitation(
                &cmd.tenant,
                &GeneratedId::trusted(&state.contact.invitation_id),
            ),
            Event::Invitation(InvitationEvent::InvitationCancelled(InvitationCancelled {
                reason: "access revoked".into(),
            })),
        ));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::invitation::tests::{accepted_contact, customer, invited_contact};
    use crate::domain::policy::Role;
    use crate::domain::test_support::*;

    fn cmd() -> ChangeAccess {
        by(Staff::new(Role::InHouse))
    }

    fn by(by: Staff) -> ChangeAccess {
        ChangeAccess {
            tenant: TenantId::parse("acme").unwrap(),
            by,
            contact_id: GeneratedId::generate(),
            reason: "left the company".into(),
        }
    }

    #[test]
    fn given_an_active_contact_when_disabled_and_restored_then_nothing_is_lost() {
        let (contact, _) = accepted_contact();
        assert_eq!(given::<ContactState>(&[]).status(), "invited");
        let after_disable = events(&disable(&contact, &customer(), cmd()).unwrap())
            .iter()
            .fold(contact.clone(), |s, e| s.evolve(e));
        assert_eq!(after_disable.status(), "disabled");
        let after_restore = events(&restore(&after_disable, &customer(), cmd()).unwrap())
            .iter()
            .fold(after_disable.clone(), |s, e| s.evolve(e));
        assert_eq!(
            after_restore, contact,
            "restore brings the same contact back"
        );
        assert_eq!(after_restore.status(), "active");
    }

    #[test]
    fn disabling_twice_or_restoring_an_unblocked_contact_is_refused() {
        let (contact, _) = accepted_contact();
        assert!(matches!(
            restore(&contact, &customer(), cmd()),
            Err(DomainError::FailedPrecondition {
                reason: Reason::NotDisabled,
                ..
            })
        ));
        let disabled = contact
            .evolve(&events(&disable(&accepted_contact().0, &customer(), cmd()).unwrap())[0]);
        assert!(matches!(
            disable(&disabled, &customer(), cmd()),
            Err(DomainError::FailedPrecondition {
                reason: Reason::AlreadyDisabled,
                ..
            })
        ));
        assert!(matches!(
            disable(&given(&[]), &customer(), cmd()),
            Err(DomainError::NotFound("contact"))
        ));
    }

    #[test]
    fn given_an_invited_contact_when_revoked_then_link_dies_and_email_is_freed() {
        let (contact, invitation) = invited_contact();
        let changes = revoke(
            RevokeState {
                contact: &contact,
                invitation: &invitation,
                customer: &customer(),
            },
            cmd(),
        )
        .unwrap();
        let kinds: Vec<_> = changes
            .iter()
            .map(|c| c.stream.aggregate().as_str())
            .collect();
        assert_eq!(kinds, vec!["contact", "emailslot", "invitation"]);
        let revoked = changes.iter().fold(contact, |s, c| s.evolve(&c.event));
        assert_eq!(revoked.status(), "revoked");
        assert!(matches!(
            revoke(
                RevokeState {
                    contact: &revoked,
                    invitation: &invitation,
                    customer: &customer(),
                },
                cmd()
            ),
            Err(DomainError::FailedPrecondition {
                reason: Reason::Revoked,
                ..
            })
        ));
        assert!(matches!(
            disable(&revoked, &customer(), cmd()),
            Err(DomainError::FailedPrecondition {
                reason: Reason::Revoked,
                ..
            })
        ));
    }

    #[test]
    fn given_an_accepted_contact_when_revoked_then_no_invitation_is_cancelled() {
        let (contact, invitation) = accepted_contact();
        let changes = revoke(
            RevokeState {
                contact: &contact,
                invitation: &invitation,
                customer: &customer(),
            },
            cmd(),
        )
        .unwrap();
        assert_eq!(changes.len(), 2);
    }

    #[test]
    fn a_rep_manages_only_the_contacts_of_their_own_customers() {
        let (contact, _) = accepted_contact();
        assert!(disable(&contact, &customer(), by(Staff::rep("anna"))).is_ok());
        assert!(matches!(
            disable(&contact, &customer(), by(Staff::rep("bert"))),
            Err(DomainError::PermissionDenied {
                reason: Reason::NotAssignedRep,
                ..
            })
        ));
        assert!(matches!(
            restore(&contact, &customer(), by(Staff::new(Role::Auditor))),
            Err(DomainError::PermissionDenied {
                reason: Reason::Role,
                ..
            })
        ));
    }

    #[test]
    fn a_pending_registration_is_approved_or_rejected_and_nothing_else() {
        let (contact, _) = accepted_contact();
        assert!(matches!(
            approve(&contact, &customer(), cmd()),
            Err(DomainError::FailedPrecondition {
                reason: Reason::NotPendingApproval,
                ..
            })
        ));
        let pending = contact.evolve(&Event::Contact(ContactEvent::ContactAwaitingApproval(
            AccessChanged {
                reason: String::new(),
            },
        )));
        assert_eq!(pending.status(), "pending_approval");
        let approved = then(
            pending.clone(),
            &approve(&pending, &customer(), cmd()).unwrap(),
        );
        assert_eq!(approved.status(), "active");
        let changes = reject(&pending, &customer(), cmd()).unwrap();
        assert_eq!(changes.len(), 2, "rejected, and the email freed");
        assert_eq!(then(pending.clone(), &changes).status(), "revoked");
        assert!(matches!(
            approve(&pending, &customer(), by(Staff::rep("bert"))),
            Err(DomainError::PermissionDenied { .. })
        ));
    }
}
