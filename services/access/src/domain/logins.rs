//! Logins created by staff: the management/staff pair with usernames, and
//! passwords local to one login (temporary ones set by staff, changed ones set
//! by the contact).
//!
//! Why local: an identity's password is shared by every supplier the email
//! works with. If one supplier's staff could set it, they could log in as the
//! contact elsewhere. So a password set by staff, and the one the contact
//! chooses to replace it, belong to this login alone; only a proof of control
//! of the email (an invitation or reset link) sets the identity's password.

use super::contact::{ContactState, Lifecycle};
use super::customer::CustomerState;
use super::email_slot::EmailSlotState;
use super::policy::Staff;
use super::tenant::TenantState;
use super::values::{CustomerId, Email, GeneratedId, TenantId, Username};
use super::{Change, DomainError, streams};
use crate::domain::Reason;
use access_catalogue::catalogue::{
    ContactEvent, EmailReserved, EmailSlotEvent, Event, FirstLogin, GeneratedPassword,
    LocalPasswordSet, LoginCreated, LoginKind, SiteRule, UsernameSlotEvent,
};
use access_catalogue::personal::Personal;

/// One login of a pair, as the caller prepared it.
#[derive(Clone, Debug)]
pub struct NewLogin {
    /// Its contact id.
    pub contact_id: GeneratedId,
    /// Its username.
    pub username: Username,
    /// The argon2id hash of its temporary password.
    pub temporary_hash: String,
    /// Where a generated temporary password came from (for the mailer).
    pub generated: Option<GeneratedPassword>,
}

/// Add portal user: a management login `NAME` and a staff login `NAME` + `S`.
#[derive(Clone, Debug)]
pub struct AddPortalUser {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The customer.
    pub customer_id: CustomerId,
    /// The management login's email, if any (the staff login has none).
    pub email: Option<Email>,
    /// Visibility and routing of both logins.
    pub site_rule: SiteRule,
    /// The management login.
    pub management: NewLogin,
    /// The staff login.
    pub staff: NewLogin,
}

/// The state `AddPortalUser` is decided on.
#[derive(Clone, Copy, Debug)]
pub struct AddPortalUserState<'a> {
    /// The tenant.
    pub tenant: &'a TenantState,
    /// The customer.
    pub customer: &'a CustomerState,
    /// Reservation of the management username.
    pub management_slot: &'a EmailSlotState,
    /// Reservation of the staff username.
    pub staff_slot: &'a EmailSlotState,
    /// Reservation of the email (default when there is none).
    pub email_slot: &'a EmailSlotState,
}

/// Decides `AddPortalUser`.
pub fn add_portal_user(
    state: AddPortalUserState<'_>,
    cmd: AddPortalUser,
) -> Result<Vec<Change>, DomainError> {
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
    for (slot, login) in [
        (state.management_slot, &cmd.management),
        (state.staff_slot, &cmd.staff),
    ] {
        if slot.holder.is_some() {
            return Err(DomainError::AlreadyExists(format!(
                "the username {} is taken in this tenant",
                login.username
            )));
        }
    }
    if cmd.email.is_some() && state.email_slot.holder.is_some() {
        return Err(DomainError::AlreadyExists(
            "this email already has a login with this supplier".into(),
        ));
    }
    let mut changes = Vec::new();
    if let Some(email) = &cmd.email {
        changes.push(Change::new(
            streams::email_slot(&cmd.tenant, &email.identity_id()),
            Event::EmailSlot(EmailSlotEvent::EmailReserved(EmailReserved {
                contact_id: cmd.management.contact_id.to_string(),
            })),
        ));
    }
    for (login, kind, email) in [
        (&cmd.management, LoginKind::Management, cmd.email.as_ref()),
        (&cmd.staff, LoginKind::Staff, None),
    ] {
        changes.push(Change::new(
            streams::username_slot(&cmd.tenant, &login.username.slot_id()),
            Event::UsernameSlot(UsernameSlotEvent::UsernameReserved(EmailReserved {
                contact_id: login.contact_id.to_string(),
            })),
        ));
        let stream = streams::contact(&cmd.tenant, &login.contact_id);
        changes.push(Change::new(
            stream.clone(),
            Event::Contact(ContactEvent::LoginCreated(LoginCreated {
                contact_id: login.contact_id.to_string(),
                customer_id: cmd.customer_id.to_string(),
                username: login.username.to_string(),
                email: email.map(|e| Personal::clear(e.to_string())),
                identity_id: email.map(|e| e.identity_id().to_string()),
                site_rule: cmd.site_rule.clone(),
                kind,
            })),
        ));
        changes.push(Change::new(
            stream,
            Event::Contact(ContactEvent::LocalPasswordSet(LocalPasswordSet {
                password_hash: login.temporary_hash.clone(),
                temporary: true,
                generated: login.generated.clone(),
            })),
        ));
    }
    Ok(changes)
}

/// Staff set a temporary password on a login.
#[derive(Clone, Debug)]
pub struct SetTemporaryPassword {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The contact.
    pub contact_id: GeneratedId,
    /// The argon2id hash of the temporary password.
    pub temporary_hash: String,
    /// Where a generated temporary password came from (for the mailer).
    pub generated: Option<GeneratedPassword>,
}

/// Decides `SetTemporaryPassword`: the next login must change it first.
pub fn set_temporary_password(
    contact: &ContactState,
    customer: &CustomerState,
    cmd: SetTemporaryPassword,
) -> Result<Vec<Change>, DomainError> {
    match contact.lifecycle {
        None => return Err(DomainError::NotFound("contact")),
        Some(Lifecycle::Revoked) => {
            return Err(DomainError::precondition(
                Reason::Revoked,
                "this contact's access was revoked",
            ));
        }
        Some(Lifecycle::PendingApproval) => {
            return Err(DomainError::precondition(
                Reason::PendingApproval,
                "the contact waits for approval by a username administrator",
            ));
        }
        Some(Lifecycle::Invited) => {
            return Err(DomainError::precondition(
                Reason::InvitationPending,
                "the invitation is not accepted yet; resend it instead",
            ));
        }
        Some(Lifecycle::Active) => {}
    }
    cmd.by.may_manage_logins_of(customer.sales_rep())?;
    Ok(vec![Change::new(
        streams::contact(&cmd.tenant, &cmd.contact_id),
        Event::Contact(ContactEvent::LocalPasswordSet(LocalPasswordSet {
            password_hash: cmd.temporary_hash,
            temporary: true,
            generated: cmd.generated,
        })),
    )])
}

/// The contact changes their password, proving the current one.
#[derive(Clone, Debug)]
pub struct ChangePassword {
    /// The contact's tenant.
    pub tenant: TenantId,
    /// The contact.
    pub contact_id: GeneratedId,
    /// Whether the current password was given correctly.
    pub current_matches: bool,
    /// The argon2id hash of the new password (which met the rules).
    pub new_hash: String,
}

/// Decides `ChangePassword`: the new password belongs to this login.
pub fn change_password(
    contact: &ContactState,
    cmd: ChangePassword,
) -> Result<Vec<Change>, DomainError> {
    match contact.lifecycle {
        Some(Lifecycle::Active) if !contact.disabled => {}
        None => return Err(DomainError::NotFound("contact")),
        _ => {
            return Err(DomainError::PermissionDenied {
                reason: Reason::Disabled,
                message: "this login may not be used".into(),
            });
        }
    }
    if !cmd.current_matches {
        return Err(DomainError::bad_credentials());
    }
    Ok(vec![Change::new(
        streams::contact(&cmd.tenant, &cmd.contact_id),
        Event::Contact(ContactEvent::LocalPasswordSet(LocalPasswordSet {
            password_hash: cmd.new_hash,
            temporary: false,
            generated: None,
        })),
    )])
}

/// Records a contact's first login (nothing if it was recorded before).
pub fn first_login(
    contact: &ContactState,
    tenant: &TenantId,
    contact_id: &GeneratedId,
) -> Vec<Change> {
    if contact.logged_in || contact.lifecycle.is_none() {
        return Vec::new();
    }
    vec![Change::new(
        streams::contact(tenant, contact_id),
        Event::Contact(ContactEvent::FirstLogin(FirstLogin {})),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::invitation::tests::customer;
    use crate::domain::policy::Role;
    use crate::domain::test_support::*;

    fn tenant() -> TenantState {
        TenantState {
            exists: true,
            sites: vec!["Leeds".into()],
            default_order_site: "Leeds".into(),
            ..TenantState::default()
        }
    }

    fn pair(by: Staff) -> AddPortalUser {
        let name = Username::parse("ACME001").unwrap();
        AddPortalUser {
            tenant: TenantId::parse("acme").unwrap(),
            by,
            customer_id: CustomerId::parse("C001").unwrap(),
            email: Some(Email::parse("boss@bob.example").unwrap()),
            site_rule: SiteRule::TenantDefault,
            staff: NewLogin {
                contact_id: GeneratedId::generate(),
                username: name.staff().unwrap(),
                temporary_hash: "$argon2id$staff".into(),
                generated: None,
            },
            management: NewLogin {
                contact_id: GeneratedId::generate(),
                username: name,
                temporary_hash: "$argon2id$mgmt".into(),
                generated: None,
            },
        }
    }

    fn free() -> EmailSlotState {
        EmailSlotState::default()
    }

    fn logins(changes: &[Change]) -> Vec<ContactState> {
        let mut ids: Vec<&str> = changes
            .iter()
            .filter(|c| c.stream.aggregate().as_str() == "contact")
            .map(|c| c.stream.id())
            .collect();
        ids.dedup();
        ids.iter()
            .map(|id| {
                let mine: Vec<Change> = changes
                    .iter()
                    .filter(|c| c.stream.id() == *id)
                    .cloned()
                    .collect();
                then(ContactState::default(), &mine)
            })
            .collect()
    }

    #[test]
    fn adding_a_portal_user_creates_a_management_and_a_staff_login_with_temporary_passwords() {
        let (t, c, s) = (tenant(), customer(), free());
        let state = AddPortalUserState {
            tenant: &t,
            customer: &c,
            management_slot: &s,
            staff_slot: &s,
            email_slot: &s,
        };
        let changes = add_portal_user(state, pair(Staff::new(Role::InHouse))).unwrap();
        let logins = logins(&changes);
        assert_eq!(logins.len(), 2);
        let (m, st) = (&logins[0], &logins[1]);
        assert_eq!(
            (m.username.as_deref(), m.kind),
            (Some("ACME001"), Some(LoginKind::Management))
        );
        assert_eq!(
            (st.username.as_deref(), st.kind),
            (Some("ACME001S"), Some(LoginKind::Staff))
        );
        assert_eq!(m.email, "boss@bob.example");
        assert_eq!(st.email, "", "the staff login has no email");
        assert!(m.temporary && st.temporary);
        assert_eq!(m.status(), "active");
        let slots = changes
            .iter()
            .filter(|c| c.stream.aggregate().as_str() == "usernameslot")
            .count();
        assert_eq!(slots, 2);
    }

    #[test]
    fn a_taken_username_or_email_and_a_rep_of_another_customer_are_refused() {
        let (t, c, s) = (tenant(), customer(), free());
        let taken = EmailSlotState {
            holder: Some("x".into()),
        };
        let state = AddPortalUserState {
            tenant: &t,
            customer: &c,
            management_slot: &s,
            staff_slot: &taken,
            email_slot: &s,
        };
        assert!(
            matches!(add_portal_user(state, pair(Staff::new(Role::Admin))), Err(DomainError::AlreadyExists(m)) if m.contains("ACME001S"))
        );
        let state = AddPortalUserState {
            tenant: &t,
            customer: &c,
            management_slot: &s,
            staff_slot: &s,
            email_slot: &taken,
        };
        assert!(matches!(
            add_portal_user(state, pair(Staff::new(Role::Admin))),
            Err(DomainError::AlreadyExists(_))
        ));
        let state = AddPortalUserState {
            tenant: &t,
            customer: &c,
            management_slot: &s,
            staff_slot: &s,
            email_slot: &s,
        };
        assert!(matches!(
            add_portal_user(state, pair(Staff::rep("bert"))),
            Err(DomainError::PermissionDenied {
                reason: Reason::NotAssignedRep,
                ..
            })
        ));
        let nobody = CustomerState::default();
        let state = AddPortalUserState {
            tenant: &t,
            customer: &nobody,
            management_slot: &s,
            staff_slot: &s,
            email_slot: &s,
        };
        assert!(matches!(
            add_portal_user(state, pair(Staff::new(Role::Admin))),
            Err(DomainError::NotFound("customer"))
        ));
    }

    fn active_login() -> ContactState {
        let (t, c, s) = (tenant(), customer(), free());
        let state = AddPortalUserState {
            tenant: &t,
            customer: &c,
            management_slot: &s,
            staff_slot: &s,
            email_slot: &s,
        };
        logins(&add_portal_user(state, pair(Staff::new(Role::Admin))).unwrap()).remove(0)
    }

    #[test]
    fn a_temporary_password_must_be_changed_and_the_change_needs_the_current_one() {
        let login = active_login();
        let change = |ok: bool| ChangePassword {
            tenant: TenantId::parse("acme").unwrap(),
            contact_id: GeneratedId::generate(),
            current_matches: ok,
            new_hash: "$argon2id$new".into(),
        };
        assert!(matches!(
            change_password(&login, change(false)),
            Err(DomainError::Unauthenticated { .. })
        ));
        let changed = then(
            login.clone(),
            &change_password(&login, change(true)).unwrap(),
        );
        assert!(!changed.temporary);
        assert_eq!(changed.local_password.as_deref(), Some("$argon2id$new"));

        let reset = SetTemporaryPassword {
            tenant: TenantId::parse("acme").unwrap(),
            by: Staff::new(Role::InHouse),
            contact_id: GeneratedId::generate(),
            temporary_hash: "$argon2id$temp2".into(),
            generated: None,
        };
        let again = then(
            changed.clone(),
            &set_temporary_password(&changed, &customer(), reset.clone()).unwrap(),
        );
        assert!(again.temporary);
        assert!(matches!(
            set_temporary_password(
                &changed,
                &customer(),
                SetTemporaryPassword {
                    by: Staff::rep("bert"),
                    ..reset
                }
            ),
            Err(DomainError::PermissionDenied { .. })
        ));
    }

    #[test]
    fn the_first_login_is_recorded_once() {
        let login = active_login();
        let tenant = TenantId::parse("acme").unwrap();
        let id = GeneratedId::generate();
        let after = then(login.clone(), &first_login(&login, &tenant, &id));
        assert!(after.logged_in);
        assert!(first_login(&after, &tenant, &id).is_empty());
    }
}
