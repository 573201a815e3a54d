//! Changing a contact's email or username, and sending the email that fits
//! afterwards (the Inzant "change access details and save" story).

use super::contact::{ContactState, Lifecycle};
use super::customer::CustomerState;
use super::email_slot::EmailSlotState;
use super::invitation::InvitationState;
use super::policy::Staff;
use super::resets::{self, AccessEmail, RequestReset};
use super::values::{Email, GeneratedId, TenantId, Username};
use super::{Aggregate, Change, DomainError, streams};
use crate::domain::Reason;
use access_catalogue::catalogue::{
    ContactDetailsChanged, ContactEvent, EmailReleased, EmailReserved, EmailSlotEvent, Event,
    UsernameSlotEvent,
};
use access_catalogue::personal::Personal;

/// New email and username of a contact (the whole pair: empty means none).
#[derive(Clone, Debug)]
pub struct ChangeDetails {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The contact.
    pub contact_id: GeneratedId,
    /// The new email, if any.
    pub email: Option<Email>,
    /// The new username, if any.
    pub username: Option<Username>,
    /// Also send the email that fits: the invitation, a welcome or a reset.
    pub send_access_email: bool,
    /// Now, Unix milliseconds.
    pub now_ms: i64,
    /// How long links live, milliseconds.
    pub link_ttl_ms: i64,
}

/// The state a change of details is decided on.
#[derive(Clone, Copy, Debug)]
pub struct ChangeDetailsState<'a> {
    /// The contact.
    pub contact: &'a ContactState,
    /// Its customer.
    pub customer: &'a CustomerState,
    /// Its invitation, if it has one.
    pub invitation: &'a InvitationState,
    /// The reservation of the new email.
    pub email_slot: &'a EmailSlotState,
    /// The reservation of the new username.
    pub username_slot: &'a EmailSlotState,
}

/// Decides `UpdateContact`. A new email is a new identity, whose password
/// the contact must set through a link; so a changed email of a contact who
/// was invited or logged in sends the fitting email even when not asked.
pub fn change_details(
    state: ChangeDetailsState<'_>,
    cmd: ChangeDetails,
) -> Result<(Option<AccessEmail>, Vec<Change>), DomainError> {
    let contact = state.contact;
    match contact.lifecycle {
        None => return Err(DomainError::NotFound("contact")),
        Some(Lifecycle::Revoked) => {
            return Err(DomainError::precondition(
                Reason::Revoked,
                "this contact's access was revoked",
            ));
        }
        _ => {}
    }
    cmd.by.may_manage_logins_of(state.customer.sales_rep())?;
    // A link sent to the old address must never set the new address's
    // password; links are renewed with the change, which a disabled contact
    // cannot be sent.
    if contact.disabled {
        return Err(DomainError::precondition(
            Reason::Disabled,
            "restore access before changing the contact's email or username",
        ));
    }
    let old_email = (!contact.email.is_empty()).then_some(contact.email.as_str());
    let new_email = cmd.email.as_ref().map(Email::as_str);
    let new_username = cmd.username.as_ref().map(Username::as_str);
    let email_changed = !old_email
        .unwrap_or_default()
        .eq_ignore_ascii_case(new_email.unwrap_or_default());
    let username_changed =
        contact.username.as_deref().unwrap_or_default() != new_username.unwrap_or_default();
    if !email_changed && !username_changed {
        return Err(DomainError::precondition(
            Reason::Unchanged,
            "the email and username are already so",
        ));
    }
    if new_email.is_none() && new_username.is_none() {
        return Err(DomainError::invalid(
            "email",
            "a login needs an email or a username",
        ));
    }
    if new_email.is_none() && contact.lifecycle == Some(Lifecycle::Invited) {
        return Err(DomainError::invalid(
            "email",
            "an invited contact needs the email its link goes to",
        ));
    }
    let mine = |slot: &EmailSlotState| {
        slot.holder
            .as_deref()
            .is_none_or(|h| h == cmd.contact_id.as_str())
    };
    if email_changed && new_email.is_some() && !mine(state.email_slot) {
        return Err(DomainError::AlreadyExists(
            "this email already has a login with this supplier".into(),
        ));
    }
    if username_changed && new_username.is_some() && !mine(state.username_slot) {
        return Err(DomainError::AlreadyExists(
            "this username is taken in this tenant".into(),
        ));
    }
    let held = || EmailReserved {
        contact_id: cmd.contact_id.to_string(),
    };
    let freed = || EmailReleased {
        contact_id: cmd.contact_id.to_string(),
    };
    let mut changes = Vec::new();
    if email_changed {
        if !contact.identity_id.is_empty() {
            changes.push(Change::new(
                streams::email_slot(&cmd.tenant, &GeneratedId::trusted(&contact.identity_id)),
                Event::EmailSlot(EmailSlotEvent::EmailReleased(freed())),
            ));
        }
        if let Some(email) = &cmd.email {
            changes.push(Change::new(
                streams::email_slot(&cmd.tenant, &email.identity_id()),
                Event::EmailSlot(EmailSlotEvent::EmailReserved(held())),
            ));
        }
    }
    if username_changed {
        if let Some(old) = contact
            .username
            .as_deref()
            .and_then(|u| Username::parse(u).ok())
        {
            changes.push(Change::new(
                streams::username_slot(&cmd.tenant, &old.slot_id()),
                Event::UsernameSlot(UsernameSlotEvent::UsernameReleased(freed())),
            ));
        }
        if let Some(username) = &cmd.username {
            changes.push(Change::new(
                streams::username_slot(&cmd.tenant, &username.slot_id()),
                Event::UsernameSlot(UsernameSlotEvent::UsernameReserved(held())),
            ));
        }
    }
    let details = Change::new(
        streams::contact(&cmd.tenant, &cmd.contact_id),
        Event::Contact(ContactEvent::ContactDetailsChanged(ContactDetailsChanged {
            email: cmd.email.as_ref().map(|e| Personal::clear(e.to_string())),
            identity_id: cmd.email.as_ref().map(|e| e.identity_id().to_string()),
            username: cmd.username.as_ref().map(ToString::to_string),
        })),
    );
    let after = contact.clone().evolve(&details.event);
    changes.push(details);
    let must_send = email_changed && cmd.email.is_some();
    let mut sent = None;
    if (cmd.send_access_email || must_send) && cmd.email.is_some() && !contact.disabled {
        let (email, more) = resets::request_reset(
            &after,
            state.customer,
            state.invitation,
            RequestReset {
                tenant: cmd.tenant.clone(),
                contact_id: cmd.contact_id.clone(),
                by: Some(cmd.by.clone()),
                now_ms: cmd.now_ms,
                link_ttl_ms: cmd.link_ttl_ms,
            },
        )?;
        changes.extend(more);
        sent = Some(email);
    }
    Ok((sent, changes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::invitation::tests::{accepted_contact, customer, invited_contact};
    use crate::domain::policy::Role;
    use crate::domain::test_support::*;

    fn cmd(email: Option<&str>, username: Option<&str>, send: bool) -> ChangeDetails {
        ChangeDetails {
            tenant: TenantId::parse("acme").unwrap(),
            by: Staff::new(Role::InHouse),
            contact_id: GeneratedId::generate(),
            email: email.map(|e| Email::parse(e).unwrap()),
            username: username.map(|u| Username::parse(u).unwrap()),
            send_access_email: send,
            now_ms: 1_000,
            link_ttl_ms: 86_400_000,
        }
    }

    fn kinds(changes: &[Change]) -> Vec<&'static str> {
        changes.iter().map(|c| c.event.encode().0).collect()
    }

    #[test]
    fn a_new_email_of_an_invited_contact_sends_the_invitation_there() {
        let (contact, invitation) = invited_contact();
        let free = EmailSlotState::default();
        let state = ChangeDetailsState {
            contact: &contact,
            customer: &customer(),
            invitation: &invitation,
            email_slot: &free,
            username_slot: &free,
        };
        let (sent, changes) =
            change_details(state, cmd(Some("new@bob.example"), None, false)).unwrap();
        assert_eq!(sent, Some(AccessEmail::InvitationResent));
        assert_eq!(
            kinds(&changes),
            vec![
                "EmailReleased",
                "EmailReserved",
                "ContactDetailsChanged",
                "InvitationResent"
            ]
        );
        assert_eq!(then(contact, &changes).email, "new@bob.example");
    }

    #[test]
    fn a_username_change_sends_nothing_unless_asked_and_then_the_fitting_email() {
        let (contact, invitation) = accepted_contact();
        let free = EmailSlotState::default();
        let state = ChangeDetailsState {
            contact: &contact,
            customer: &customer(),
            invitation: &invitation,
            email_slot: &free,
            username_slot: &free,
        };
        let email = contact.email.clone();
        let (sent, changes) =
            change_details(state, cmd(Some(&email), Some("BOB01"), false)).unwrap();
        assert_eq!(
            (sent, kinds(&changes)),
            (None, vec!["UsernameReserved", "ContactDetailsChanged"])
        );
        let (sent, _) = change_details(state, cmd(Some(&email), Some("BOB01"), true)).unwrap();
        assert_eq!(
            sent,
            Some(AccessEmail::Welcome),
            "never logged in: a welcome, not a reset"
        );
    }

    #[test]
    fn taken_names_no_change_and_no_name_at_all_are_refused() {
        let (contact, invitation) = accepted_contact();
        let free = EmailSlotState::default();
        let taken = EmailSlotState {
            holder: Some("someone-else".into()),
        };
        let email = contact.email.clone();
        let owner = customer();
        let state = |email_slot, username_slot| ChangeDetailsState {
            contact: &contact,
            customer: &owner,
            invitation: &invitation,
            email_slot,
            username_slot,
        };
        assert!(matches!(
            change_details(state(&taken, &free), cmd(Some("x@y.example"), None, false)),
            Err(DomainError::AlreadyExists(_))
        ));
        assert!(matches!(
            change_details(
                state(&free, &taken),
                cmd(Some(&email), Some("TAKEN"), false)
            ),
            Err(DomainError::AlreadyExists(_))
        ));
        assert!(matches!(
            change_details(state(&free, &free), cmd(Some(&email), None, false)),
            Err(DomainError::FailedPrecondition {
                reason: Reason::Unchanged,
                ..
            })
        ));
        assert!(matches!(
            change_details(state(&free, &free), cmd(None, None, false)),
            Err(DomainError::Invalid(_))
        ));
    }
}
