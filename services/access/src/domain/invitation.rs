//! Invitations: invite a customer contact, resend the link, accept it.

use super::contact::{ContactState, Lifecycle};
use super::customer::CustomerState;
use super::email_slot::EmailSlotState;
use super::identity::IdentityState;
use super::policy::Staff;
use super::tenant::TenantState;
use super::values::{CustomerId, Email, GeneratedId, Message, TenantId};
use super::{Aggregate, Change, DomainError, streams};
use crate::domain::Reason;
use access_catalogue::catalogue::{
    AccessChanged, ContactActivated, ContactEvent, ContactInvited, EmailReserved, EmailSlotEvent,
    Event, IdentityEvent, IdentityRegistered, InvitationAccepted, InvitationEvent,
    InvitationIssued, InvitationResent, PasswordSet, SiteRule,
};
use access_catalogue::personal::Personal;

/// Where an invitation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitationStatus {
    /// Its current link may be used.
    Pending,
    /// Used; no link works any more.
    Accepted,
    /// Withdrawn; no link works any more.
    Cancelled,
}

/// What the log says about one invitation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvitationState {
    /// None until `InvitationIssued`.
    pub status: Option<InvitationStatus>,
    /// The contact invited.
    pub contact_id: String,
    /// The current link generation; only its token works.
    pub generation: u32,
    /// When the current link dies, Unix milliseconds.
    pub expires_at_ms: i64,
}

impl Aggregate for InvitationState {
    fn evolve(mut self, event: &Event) -> Self {
        let Event::Invitation(event) = event else {
            return self;
        };
        match event {
            InvitationEvent::InvitationIssued(e) => {
                self.status = Some(InvitationStatus::Pending);
                self.contact_id = e.contact_id.clone();
                self.generation = e.generation;
                self.expires_at_ms = e.expires_at_ms;
            }
            InvitationEvent::InvitationResent(e) => {
                self.generation = e.generation;
                self.expires_at_ms = e.expires_at_ms;
            }
            InvitationEvent::InvitationAccepted(_) => {
                self.status = Some(InvitationStatus::Accepted)
            }
            InvitationEvent::InvitationCancelled(_) => {
                self.status = Some(InvitationStatus::Cancelled);
            }
        }
        self
    }
}

/// The state `InviteCustomer` is decided on.
#[derive(Clone, Copy, Debug)]
pub struct InviteState<'a> {
    /// The caller's tenant.
    pub tenant: &'a TenantState,
    /// The customer named.
    pub customer: &'a CustomerState,
    /// The tenant's reservation of the email.
    pub slot: &'a EmailSlotState,
}

/// Invite a customer contact by email.
#[derive(Clone, Debug)]
pub struct InviteCustomer {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The customer the contact belongs to.
    pub customer_id: CustomerId,
    /// Where the link goes.
    pub email: Email,
    /// The personal message.
    pub message: Message,
    /// Visibility and routing.
    pub site_rule: SiteRule,
    /// Id for the new contact.
    pub contact_id: GeneratedId,
    /// Id for the new invitation.
    pub invitation_id: GeneratedId,
    /// Now, Unix milliseconds.
    pub now_ms: i64,
    /// How long a link lives, milliseconds.
    pub link_ttl_ms: i64,
}

/// Decides `InviteCustomer`.
pub fn invite(state: InviteState<'_>, cmd: InviteCustomer) -> Result<Vec<Change>, DomainError> {
    if let SiteRule::OneSite(site) = &cmd.site_rule
        && !state.tenant.has_site(site)
    {
        return Err(DomainError::invalid(
            "site_rule.one_site.site",
            format!("{site:?} is not one of the tenant's sites"),
        ));
    }
    if !state.customer.exists {
        return Err(DomainError::NotFound("customer"));
    }
    cmd.by.may_manage_logins_of(state.customer.sales_rep())?;
    if state.slot.holder.is_some() {
        return Err(DomainError::AlreadyExists(
            "this email already has a login with this supplier; resend its invitation or restore its access"
                .into(),
        ));
    }
    let identity_id = cmd.email.identity_id();
    let expires_at_ms = cmd.now_ms.saturating_add(cmd.link_ttl_ms);
    Ok(vec![
        Change::new(
            streams::email_slot(&cmd.tenant, &identity_id),
            Event::EmailSlot(EmailSlotEvent::EmailReserved(EmailReserved {
                contact_id: cmd.contact_id.to_string(),
            })),
        ),
        Change::new(
            streams::contact(&cmd.tenant, &cmd.contact_id),
            Event::Contact(ContactEvent::ContactInvited(ContactInvited {
                contact_id: cmd.contact_id.to_string(),
                customer_id: cmd.customer_id.to_string(),
                email: Personal::clear(cmd.email.to_string()),
                identity_id: identity_id.to_string(),
                site_rule: cmd.site_rule,
                invitation_id: cmd.invitation_id.to_string(),
            })),
        ),
        Change::new(
            streams::invitation(&cmd.tenant, &cmd.invitation_id),
            Event::Invitation(InvitationEvent::InvitationIssued(InvitationIssued {
                invitation_id: cmd.invitation_id.to_string(),
                contact_id: cmd.contact_id.to_string(),
                customer_id: cmd.customer_id.to_string(),
                email: Personal::clear(cmd.email.to_string()),
                message: Personal::clear(cmd.message.to_string()),
                generation: 1,
                expires_at_ms,
            })),
        ),
    ])
}

/// The state `ResendInvitation` is decided on.
#[derive(Clone, Copy, Debug)]
pub struct ResendState<'a> {
    /// The contact.
    pub contact: &'a ContactState,
    /// Its invitation.
    pub invitation: &'a InvitationState,
    /// Its customer.
    pub customer: &'a CustomerState,
}

/// Send a new link for an unaccepted invitation.
#[derive(Clone, Debug)]
pub struct ResendInvitation {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// Now, Unix milliseconds.
    pub now_ms: i64,
    /// How long the new link lives, milliseconds.
    pub link_ttl_ms: i64,
}

/// Decides `ResendInvitation`: a new generation, so every older link dies.
pub fn resend(state: ResendState<'_>, cmd: ResendInvitation) -> Result<Vec<Change>, DomainError> {
    match state.contact.lifecycle {
        None => return Err(DomainError::NotFound("contact")),
        Some(_) if state.contact.invitation_id.is_empty() => {
            return Err(DomainError::precondition(
                Reason::NoInvitation,
                "this login was created by staff, not invited; use SendPasswordReset or a temporary password",
            ));
        }
        Some(Lifecycle::Active) => {
            return Err(DomainError::precondition(
                Reason::AlreadyAccepted,
                "the invitation was accepted already; the contact can log in",
            ));
        }
        Some(Lifecycle::Revoked) => {
            return Err(DomainError::precondition(
                Reason::Revoked,
                "this contact's access was revoked; invite the email again instead",
            ));
        }
        Some(Lifecycle::PendingApproval) => {
            return Err(DomainError::precondition(
                Reason::PendingApproval,
                "the contact waits for approval by a username administrator",
            ));
        }
        Some(Lifecycle::Invited) => {}
    }
    cmd.by.may_manage_logins_of(state.customer.sales_rep())?;
    if state.contact.disabled {
        return Err(DomainError::precondition(
            Reason::Disabled,
            "this contact's access is disabled; restore it first",
        ));
    }
    if state.invitation.status != Some(InvitationStatus::Pending) {
        return Err(DomainError::precondition(
            Reason::NoInvitation,
            "the invitation is no longer pending",
        ));
    }
    Ok(vec![Change::new(
        streams::invitation(
            &cmd.tenant,
            &GeneratedId::trusted(&state.contact.invitation_id),
        ),
        Event::Invitation(InvitationEvent::InvitationResent(InvitationResent {
            generation: state.invitation.generation + 1,
            expires_at_ms: cmd.now_ms.saturating_add(cmd.link_ttl_ms),
        })),
    )])
}

/// What the contact proved with the password they typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A new password that met the rules, already hashed (argon2id PHC).
    NewPassword {
        /// The PHC string.
        hash: String,
    },
    /// The identity has a password already; whether the one typed matches it.
    ExistingPassword {
        /// True when it matched.
        matches: bool,
    },
}

/// The state `AcceptInvitation` is decided on.
#[derive(Clone, Copy, Debug)]
pub struct AcceptState<'a> {
    /// The invitation the link names.
    pub invitation: &'a InvitationState,
    /// Its contact.
    pub contact: &'a ContactState,
    /// The contact's global identity.
    pub identity: &'a IdentityState,
    /// The tenant makes registrations wait for approval.
    pub approval_required: bool,
}

/// Accept an invitation with its link.
#[derive(Clone, Debug)]
pub struct AcceptInvitation {
    /// The tenant the link names.
    pub tenant: TenantId,
    /// The invitation the link names.
    pub invitation_id: GeneratedId,
    /// The link generation the token was made for.
    pub generation: u32,
    /// What the password proved.
    pub credential: Credential,
    /// Now, Unix milliseconds.
    pub now_ms: i64,
}

/// Decides `AcceptInvitation`. The link alone never grants a session to an
/// identity that has a password: that password must be given.
pub fn accept(state: AcceptState<'_>, cmd: AcceptInvitation) -> Result<Vec<Change>, DomainError> {
    let inv = state.invitation;
    match inv.status {
        None => return Err(DomainError::NotFound("invitation")),
        Some(InvitationStatus::Cancelled) => {
            return Err(DomainError::precondition(
                Reason::LinkRevoked,
                "this invitation was withdrawn; ask your supplier for a new one",
            ));
        }
        Some(InvitationStatus::Accepted) => {
            return Err(DomainError::precondition(
                Reason::LinkUsed,
                "this link was used already; log in, or use \"forgot password\"",
            ));
        }
        Some(InvitationStatus::Pending) => {}
    }
    if cmd.generation != inv.generation {
        return Err(DomainError::precondition(
            Reason::LinkSuperseded,
            "a newer link was sent for this invitation; use the latest email",
        ));
    }
    if cmd.now_ms >= inv.expires_at_ms {
        return Err(DomainError::precondition(
            Reason::LinkExpired,
            "this link has expired; ask your supplier to resend the invitation",
        ));
    }
    if state.contact.disabled {
        return Err(DomainError::PermissionDenied {
            reason: Reason::Disabled,
            message: "access for this contact is disabled".into(),
        });
    }
    let identity_id = GeneratedId::trusted(&state.contact.identity_id);
    let mut changes = Vec::new();
    match (&state.identity.password_hash, cmd.credential) {
        (Some(_), Credential::ExistingPassword { matches: true }) => {}
        (Some(_), Credential::ExistingPassword { matches: false }) => {
            return Err(DomainError::Unauthenticated {
                reason: Reason::ExistingPasswordRequired,
                message: "this email already has a password for this service; give that password"
                    .into(),
            });
        }
        (Some(_), Credential::NewPassword { .. }) => {
            return Err(DomainError::precondition(
                Reason::ExistingPasswordRequired,
                "this email already has a password for this service; give that password",
            ));
        }
        (None, Credential::NewPassword { hash }) => {
            let stream = streams::identity(&identity_id);
            if !state.identity.registered {
                changes.push(Change::new(
                    stream.clone(),
                    Event::Identity(IdentityEvent::IdentityRegistered(IdentityRegistered {
                        email: Personal::clear(state.contact.email.clone()),
                    })),
                ));
            }
            changes.push(Change::new(
                stream,
                Event::Identity(IdentityEvent::PasswordSet(PasswordSet {
                    password_hash: hash,
                })),
            ));
        }
        (None, Credential::ExistingPassword { .. }) => {
            return Err(DomainError::invalid(
                "password",
                "a new password is required",
            ));
        }
    }
    changes.push(Change::new(
        streams::invitation(&cmd.tenant, &cmd.invitation_id),
        Event::Invitation(InvitationEvent::InvitationAccepted(InvitationAccepted {
            generation: cmd.generation,
            identity_id: identity_id.to_string(),
        })),
    ));
    let contact_stream = streams::contact(&cmd.tenant, &GeneratedId::trusted(&inv.contact_id));
    changes.push(Change::new(
        contact_stream.clone(),
        Event::Contact(ContactEvent::ContactActivated(ContactActivated {
            invitation_id: cmd.invitation_id.to_string(),
        })),
    ));
    if state.approval_required {
        changes.push(Change::new(
            contact_stream,
            Event::Contact(ContactEvent::ContactAwaitingApproval(AccessChanged {
                reason: "registration completed".into(),
            })),
        ));
    }
    Ok(changes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::customer::{self, WriteCustomer};
    use crate::domain::policy::Role;
    use crate::domain::test_support::*;
    use access_catalogue::catalogue::CustomerRecord;

    const NOW: i64 = 1_800_000_000_000;
    const DAY: i64 = 24 * 3600 * 1000;

    fn tenant() -> TenantState {
        TenantState {
            exists: true,
            name: "Acme".into(),
            sites: vec!["Leeds".into(), "York".into()],
            default_order_site: "Leeds".into(),
            ..TenantState::default()
        }
    }

    /// Customer C001, assigned to sales rep "anna".
    pub(crate) fn customer() -> CustomerState {
        let changes = customer::create(
            &given(&[]),
            WriteCustomer {
                tenant: TenantId::parse("acme").unwrap(),
                by: Staff::new(Role::InHouse),
                customer_id: CustomerId::parse("C001").unwrap(),
                record: CustomerRecord {
                    customer_id: "C001".into(),
                    name: "Bob's Hardware".into(),
                    sales_rep: Some("anna".into()),
                    ..Default::default()
                },
            },
        )
        .unwrap();
        given(&events(&changes))
    }

    fn invite_cmd(rule: SiteRule) -> InviteCustomer {
        invite_by(Staff::new(Role::InHouse), rule)
    }

    fn invite_by(by: Staff, rule: SiteRule) -> InviteCustomer {
        InviteCustomer {
            tenant: TenantId::parse("acme").unwrap(),
            by,
            customer_id: CustomerId::parse("C001").unwrap(),
            email: Email::parse("bob@hardware.example").unwrap(),
            message: Message::parse("Welcome to our portal").unwrap(),
            site_rule: rule,
            contact_id: GeneratedId::generate(),
            invitation_id: GeneratedId::generate(),
            now_ms: NOW,
            link_ttl_ms: DAY,
        }
    }

    fn fold_all<A: Aggregate>(changes: &[Change], aggregate: &str) -> A {
        changes
            .iter()
            .filter(|c| c.stream.aggregate().as_str() == aggregate)
            .fold(A::default(), |s, c| s.evolve(&c.event))
    }

    /// A contact just invited, and its invitation.
    pub(crate) fn invited_contact() -> (ContactState, InvitationState) {
        let slot = EmailSlotState::default();
        let changes = invite(
            InviteState {
                tenant: &tenant(),
                customer: &customer(),
                slot: &slot,
            },
            invite_cmd(SiteRule::TenantDefault),
        )
        .unwrap();
        (
            fold_all(&changes, "contact"),
            fold_all(&changes, "invitation"),
        )
    }

    /// A contact who accepted with a new password, and its invitation.
    pub(crate) fn accepted_contact() -> (ContactState, InvitationState) {
        let (contact, invitation) = invited_contact();
        let changes = accept(
            AcceptState {
                invitation: &invitation,
                contact: &contact,
                identity: &IdentityState::default(),
                approval_required: false,
            },
            accept_cmd(
                1,
                Credential::NewPassword {
                    hash: "$argon2id$x".into(),
                },
                NOW,
            ),
        )
        .unwrap();
        let contact = changes
            .iter()
            .filter(|c| c.stream.aggregate().as_str() == "contact")
            .fold(contact, |s, c| s.evolve(&c.event));
        let invitation = changes
            .iter()
            .filter(|c| c.stream.aggregate().as_str() == "invitation")
            .fold(invitation, |s, c| s.evolve(&c.event));
        (contact, invitation)
    }

    fn accept_cmd(generation: u32, credential: Credential, now_ms: i64) -> AcceptInvitation {
        AcceptInvitation {
            tenant: TenantId::parse("acme").unwrap(),
            invitation_id: GeneratedId::generate(),
            generation,
            credential,
            now_ms,
        }
    }

    fn new_password() -> Credential {
        Credential::NewPassword {
            hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA".into(),
        }
    }

    #[test]
    fn given_a_customer_when_invited_then_email_reserved_contact_and_link_created() {
        let slot = EmailSlotState::default();
        let changes = invite(
            InviteState {
                tenant: &tenant(),
                customer: &customer(),
                slot: &slot,
            },
            invite_cmd(SiteRule::OneSite("York".into())),
        )
        .unwrap();
        let kinds: Vec<_> = changes
            .iter()
            .map(|c| c.stream.aggregate().as_str())
            .collect();
        assert_eq!(kinds, vec!["emailslot", "contact", "invitation"]);
        let contact: ContactState = fold_all(&changes, "contact");
        assert_eq!(contact.status(), "invited");
        assert_eq!(contact.site_rule, Some(SiteRule::OneSite("York".into())));
        let inv: InvitationState = fold_all(&changes, "invitation");
        assert_eq!((inv.generation, inv.expires_at_ms), (1, NOW + DAY));
        let slot: EmailSlotState = fold_all(&changes, "emailslot");
        assert_eq!(slot.holder.as_deref(), Some(contact_id(&changes)));
    }

    fn contact_id(changes: &[Change]) -> &str {
        changes
            .iter()
            .find(|c| c.stream.aggregate().as_str() == "contact")
            .unwrap()
            .stream
            .id()
    }

    #[test]
    fn inviting_needs_an_existing_customer_and_a_site_of_the_tenant() {
        let slot = EmailSlotState::default();
        let err = invite(
            InviteState {
                tenant: &tenant(),
                customer: &CustomerState::default(),
                slot: &slot,
            },
            invite_cmd(SiteRule::AllSites),
        )
        .unwrap_err();
        assert_eq!(err, DomainError::NotFound("customer"));
        let err = invite(
            InviteState {
                tenant: &tenant(),
                customer: &customer(),
                slot: &slot,
            },
            invite_cmd(SiteRule::OneSite("Hull".into())),
        )
        .unwrap_err();
        assert!(matches!(err, DomainError::Invalid(v) if v[0].field == "site_rule.one_site.site"));
    }

    #[test]
    fn given_an_email_with_a_login_when_invited_again_then_already_exists() {
        let slot = EmailSlotState {
            holder: Some("someone".into()),
        };
        let err = invite(
            InviteState {
                tenant: &tenant(),
                customer: &customer(),
                slot: &slot,
            },
            invite_cmd(SiteRule::AllSites),
        )
        .unwrap_err();
        assert!(matches!(err, DomainError::AlreadyExists(_)));
    }

    #[test]
    fn given_a_pending_invitation_when_accepted_with_a_new_password_then_contact_is_active() {
        let (contact, inv) = invited_contact();
        let changes = accept(
            AcceptState {
                invitation: &inv,
                contact: &contact,
                identity: &IdentityState::default(),
                approval_required: false,
            },
            accept_cmd(1, new_password(), NOW + 1000),
        )
        .unwrap();
        let kinds: Vec<_> = changes.iter().map(|c| c.event.encode().0).collect();
        assert_eq!(
            kinds,
            vec![
                "IdentityRegistered",
                "PasswordSet",
                "InvitationAccepted",
                "ContactActivated"
            ]
        );
    }

    #[test]
    fn a_link_works_once_and_not_after_it_expires() {
        let (contact, inv) = accepted_contact();
        let err = accept(
            AcceptState {
                invitation: &inv,
                contact: &contact,
                identity: &IdentityState::default(),
                approval_required: false,
            },
            accept_cmd(1, new_password(), NOW),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            DomainError::FailedPrecondition {
                reason: Reason::LinkUsed,
                ..
            }
        ));
        let (contact, inv) = invited_contact();
        let err = accept(
            AcceptState {
                invitation: &inv,
                contact: &contact,
                identity: &IdentityState::default(),
                approval_required: false,
            },
            accept_cmd(1, new_password(), NOW + DAY),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            DomainError::FailedPrecondition {
                reason: Reason::LinkExpired,
                ..
            }
        ));
    }

    #[test]
    fn given_a_resent_invitation_then_the_old_link_is_superseded_and_the_new_one_works() {
        let (contact, inv) = invited_contact();
        let changes = resend(
            ResendState {
                contact: &contact,
                invitation: &inv,
                customer: &customer(),
            },
            ResendInvitation {
                tenant: TenantId::parse("acme").unwrap(),
                by: Staff::new(Role::Service),
                now_ms: NOW + DAY * 2,
                link_ttl_ms: DAY,
            },
        )
        .unwrap();
        let inv = changes.iter().fold(inv, |s, c| s.evolve(&c.event));
        assert_eq!((inv.generation, inv.expires_at_ms), (2, NOW + DAY * 3));
        let state = AcceptState {
            invitation: &inv,
            contact: &contact,
            identity: &IdentityState::default(),
            approval_required: false,
        };
        let err = accept(state, accept_cmd(1, new_password(), NOW + DAY * 2)).unwrap_err();
        assert!(matches!(
            err,
            DomainError::FailedPrecondition {
                reason: Reason::LinkSuperseded,
                ..
            }
        ));
        assert!(accept(state, accept_cmd(2, new_password(), NOW + DAY * 2)).is_ok());
    }

    #[test]
    fn resending_an_accepted_or_revoked_invitation_is_refused() {
        let (contact, inv) = accepted_contact();
        let cmd = ResendInvitation {
            tenant: TenantId::parse("acme").unwrap(),
            by: Staff::new(Role::Admin),
            now_ms: NOW,
            link_ttl_ms: DAY,
        };
        assert!(matches!(
            resend(
                ResendState {
                    contact: &contact,
                    invitation: &inv,
                    customer: &customer(),
                },
                cmd.clone()
            ),
            Err(DomainError::FailedPrecondition {
                reason: Reason::AlreadyAccepted,
                ..
            })
        ));
        assert!(matches!(
            resend(
                ResendState {
                    contact: &ContactState::default(),
                    invitation: &inv,
                    customer: &customer(),
                },
                cmd
            ),
            Err(DomainError::NotFound("contact"))
        ));
    }

    #[test]
    fn given_an_identity_with_a_password_the_link_alone_is_not_enough() {
        let (contact, inv) = invited_contact();
        let identity = IdentityState {
            registered: true,
            password_hash: Some("$argon2id$x".into()),
        };
        let state = AcceptState {
            invitation: &inv,
            contact: &contact,
            identity: &identity,
            approval_required: false,
        };
        assert!(matches!(
            accept(state, accept_cmd(1, new_password(), NOW)),
            Err(DomainError::FailedPrecondition {
                reason: Reason::ExistingPasswordRequired,
                ..
            })
        ));
        assert!(matches!(
            accept(
                state,
                accept_cmd(1, Credential::ExistingPassword { matches: false }, NOW)
            ),
            Err(DomainError::Unauthenticated {
                reason: Reason::ExistingPasswordRequired,
                ..
            })
        ));
        let changes = accept(
            state,
            accept_cmd(1, Credential::ExistingPassword { matches: true }, NOW),
        )
        .unwrap();
        let kinds: Vec<_> = changes.iter().map(|c| c.event.encode().0).collect();
        assert_eq!(
            kinds,
            vec!["InvitationAccepted", "ContactActivated"],
            "no new password"
        );
    }

    #[test]
    fn a_disabled_contact_cannot_accept() {
        let (mut contact, inv) = invited_contact();
        contact.disabled = true;
        let err = accept(
            AcceptState {
                invitation: &inv,
                contact: &contact,
                identity: &IdentityState::default(),
                approval_required: false,
            },
            accept_cmd(1, new_password(), NOW),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            DomainError::PermissionDenied {
                reason: Reason::Disabled,
                ..
            }
        ));
    }

    #[test]
    fn a_rep_invites_only_for_their_own_customers() {
        let slot = EmailSlotState::default();
        let state = InviteState {
            tenant: &tenant(),
            customer: &customer(),
            slot: &slot,
        };
        assert!(invite(state, invite_by(Staff::rep("anna"), SiteRule::AllSites)).is_ok());
        assert!(matches!(
            invite(state, invite_by(Staff::rep("bert"), SiteRule::AllSites)),
            Err(DomainError::PermissionDenied {
                reason: Reason::NotAssignedRep,
                ..
            })
        ));
    }

    #[test]
    fn with_approval_required_a_completed_registration_waits() {
        let (contact, inv) = invited_contact();
        let changes = accept(
            AcceptState {
                invitation: &inv,
                contact: &contact,
                identity: &IdentityState::default(),
                approval_required: true,
            },
            accept_cmd(1, new_password(), NOW),
        )
        .unwrap();
        let contact = changes
            .iter()
            .filter(|c| c.stream.aggregate().as_str() == "contact")
            .fold(contact, |s, c| s.evolve(&c.event));
        assert_eq!(contact.status(), "pending_approval");
    }
}
