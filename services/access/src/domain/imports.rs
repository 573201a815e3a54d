//! Moving in from the system a supplier leaves: one customer or one login
//! as it stood there, created, or brought up to date exactly as the
//! commands would (same events, same uniqueness rules), or left alone when
//! it is already so. A file imported twice changes nothing the second time.

use super::contact::{self, ChangeAccess, ContactState, Lifecycle};
use super::customer::CustomerState;
use super::details::{self, ChangeDetails, ChangeDetailsState};
use super::email_slot::EmailSlotState;
use super::invitation::InvitationState;
use super::policy::Staff;
use super::values::{CustomerId, Email, GeneratedId, TenantId, Username};
use super::{Aggregate, Change, DomainError, Reason, streams};
use access_catalogue::catalogue::{
    ContactEvent, ContactImported, CustomerCreated, CustomerEvent, CustomerRecord, CustomerStatus,
    CustomerStatusChanged, CustomerUpdated, DocumentKind, DocumentVisibilitySet, EmailReserved,
    EmailSlotEvent, Event, LoginKind, PasswordImported, PasswordResetRequested, SiteRule,
    UsernameSlotEvent,
};
use access_catalogue::personal::Personal;

/// What an import row did to its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOutcome {
    /// The record is new.
    Created,
    /// The record was brought up to date.
    Updated,
    /// The record was already so: nothing recorded.
    Unchanged,
}

/// A customer as the old system had it.
#[derive(Clone, Debug)]
pub struct ImportCustomer {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who imports.
    pub by: Staff,
    /// The customer's id (the same as `record.customer_id`).
    pub customer_id: CustomerId,
    /// The record, its fields already checked.
    pub record: CustomerRecord,
    /// Its status.
    pub status: CustomerStatus,
    /// The document kinds its contacts may view (`None`: left as they are).
    pub documents: Option<Vec<DocumentKind>>,
    /// The import, named in what is recorded.
    pub import_id: String,
}

/// Decides one customer row.
pub fn import_customer(
    state: &CustomerState,
    row: ImportCustomer,
) -> Result<(Vec<Change>, RowOutcome), DomainError> {
    row.by.may_manage_customers()?;
    let stream = streams::customer(&row.tenant, &row.customer_id);
    let mut events = Vec::new();
    let outcome = if state.exists {
        if state.record != row.record {
            events.push(CustomerEvent::CustomerUpdated(CustomerUpdated {
                record: row.record,
            }));
        }
        if state.status != Some(row.status) {
            events.push(CustomerEvent::CustomerStatusChanged(
                CustomerStatusChanged {
                    status: row.status,
                    reason: format!("import {}", row.import_id),
                },
            ));
        }
        if events.is_empty() {
            RowOutcome::Unchanged
        } else {
            RowOutcome::Updated
        }
    } else {
        events.push(CustomerEvent::CustomerCreated(CustomerCreated {
            record: row.record,
            status: row.status,
        }));
        RowOutcome::Created
    };
    if let Some(kinds) = row.documents {
        let mut sorted = kinds;
        sorted.sort();
        sorted.dedup();
        let mut now = state.documents.clone();
        if let Some(now) = &mut now {
            now.sort();
        }
        if now.as_ref() != Some(&sorted) {
            events.push(CustomerEvent::DocumentVisibilitySet(
                DocumentVisibilitySet { kinds: sorted },
            ));
        }
    }
    let outcome = match outcome {
        RowOutcome::Unchanged if !events.is_empty() => RowOutcome::Updated,
        o => o,
    };
    let changes = events
        .into_iter()
        .map(|e| Change::new(stream.clone(), Event::Customer(e)))
        .collect();
    Ok((changes, outcome))
}

/// A login as the old system had it.
#[derive(Clone, Debug)]
pub struct ImportContact {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who imports.
    pub by: Staff,
    /// The contact: the one the email or username already names, or a
    /// fresh id for a new one.
    pub contact_id: GeneratedId,
    /// Its customer.
    pub customer_id: CustomerId,
    /// Its email, if any.
    pub email: Option<Email>,
    /// Its username, if any.
    pub username: Option<Username>,
    /// Visibility and routing.
    pub site_rule: SiteRule,
    /// Management or staff login.
    pub kind: LoginKind,
    /// Blocked in the old system.
    pub disabled: bool,
    /// Had logged in there.
    pub logged_in: bool,
    /// The old system's password hash, and its scheme (already read).
    pub password: Option<(String, &'static str)>,
    /// Send a new login without a password a link to set one.
    pub invite: bool,
    /// Now, Unix milliseconds.
    pub now_ms: i64,
    /// How long links live, milliseconds.
    pub link_ttl_ms: i64,
    /// The import, named in what is recorded.
    pub import_id: String,
}

/// The state a login row is decided on.
#[derive(Clone, Copy, Debug)]
pub struct ImportContactState<'a> {
    /// The tenant's sites (a one-site rule must name one of them).
    pub sites: &'a [String],
    /// The customer.
    pub customer: &'a CustomerState,
    /// The contact (empty for a new one).
    pub contact: &'a ContactState,
    /// Its invitation, if it has one.
    pub invitation: &'a InvitationState,
    /// The reservation of the row's email (default when there is none).
    pub email_slot: &'a EmailSlotState,
    /// The reservation of the row's username (default when there is none).
    pub username_slot: &'a EmailSlotState,
}

/// Whether a row also sent a link to set a password.
pub type Invited = bool;

/// Decides one login row.
pub fn import_contact(
    state: ImportContactState<'_>,
    row: ImportContact,
) -> Result<(Vec<Change>, RowOutcome, Invited), DomainError> {
    if let SiteRule::OneSite(site) = &row.site_rule
        && !state.sites.iter().any(|s| s == site)
    {
        return Err(DomainError::invalid(
            "site_rule",
            format!("{site:?} is not one of the tenant's sites"),
        ));
    }
    if !state.customer.exists {
        return Err(DomainError::NotFound("customer"));
    }
    row.by.may_manage_logins_of(state.customer.sales_rep())?;
    if row.email.is_none() && row.username.is_none() {
        return Err(DomainError::invalid(
            "email",
            "a login needs an email or a username",
        ));
    }
    if state.contact.lifecycle.is_none() {
        return create_contact(state, row);
    }
    update_contact(state, row)
}

fn taken(slot: &EmailSlotState, contact_id: &GeneratedId) -> bool {
    slot.holder
        .as_deref()
        .is_some_and(|h| h != contact_id.as_str())
}

fn create_contact(
    state: ImportContactState<'_>,
    row: ImportContact,
) -> Result<(Vec<Change>, RowOutcome, Invited), DomainError> {
    if row.email.is_some() && taken(state.email_slot, &row.contact_id) {
        return Err(DomainError::AlreadyExists(
            "this email already has a login with this supplier".into(),
        ));
    }
    if row.username.is_some() && taken(state.username_slot, &row.contact_id) {
        return Err(DomainError::AlreadyExists(
            "this username is taken in this tenant".into(),
        ));
    }
    let held = || EmailReserved {
        contact_id: row.contact_id.to_string(),
    };
    let mut changes = Vec::new();
    if let Some(email) = &row.email {
        changes.push(Change::new(
            streams::email_slot(&row.tenant, &email.identity_id()),
            Event::EmailSlot(EmailSlotEvent::EmailReserved(held())),
        ));
    }
    if let Some(username) = &row.username {
        changes.push(Change::new(
            streams::username_slot(&row.tenant, &username.slot_id()),
            Event::UsernameSlot(UsernameSlotEvent::UsernameReserved(held())),
        ));
    }
    let stream = streams::contact(&row.tenant, &row.contact_id);
    let contact = |event| Change::new(stream.clone(), Event::Contact(event));
    changes.push(contact(ContactEvent::ContactImported(ContactImported {
        contact_id: row.contact_id.to_string(),
        customer_id: row.customer_id.to_string(),
        email: row.email.as_ref().map(|e| Personal::clear(e.to_string())),
        identity_id: row.email.as_ref().map(|e| e.identity_id().to_string()),
        username: row.username.as_ref().map(ToString::to_string),
        site_rule: row.site_rule.clone(),
        kind: row.kind,
        disabled: row.disabled,
        logged_in: row.logged_in,
        import_id: row.import_id.clone(),
    })));
    let invite = row.invite && row.password.is_none() && row.email.is_some() && !row.disabled;
    if let Some((hash, scheme)) = row.password {
        changes.push(contact(ContactEvent::PasswordImported(PasswordImported {
            password_hash: Personal::clear(hash),
            scheme: scheme.to_owned(),
            import_id: row.import_id.clone(),
        })));
    } else if invite {
        changes.push(contact(ContactEvent::PasswordResetRequested(
            PasswordResetRequested {
                generation: 1,
                expires_at_ms: row.now_ms.saturating_add(row.link_ttl_ms),
                by_staff: true,
                first_time: !row.logged_in,
            },
        )));
    }
    Ok((changes, RowOutcome::Created, invite))
}

fn update_contact(
    state: ImportContactState<'_>,
    row: ImportContact,
) -> Result<(Vec<Change>, RowOutcome, Invited), DomainError> {
    let mut contact = state.contact.clone();
    if contact.lifecycle == Some(Lifecycle::Revoked) {
        return Err(DomainError::precondition(
            Reason::Revoked,
            "this login's access was revoked here; invite the email again instead",
        ));
    }
    if contact.customer_id != row.customer_id.as_str() {
        return Err(DomainError::precondition(
            Reason::Unchanged,
            format!(
                "this login belongs to customer {}: an import does not move logins",
                contact.customer_id
            ),
        ));
    }
    if contact.site_rule.as_ref() != Some(&row.site_rule) || contact.kind != Some(row.kind) {
        return Err(DomainError::precondition(
            Reason::Unchanged,
            "this login's site rule or kind differs; no command changes those of a login, so neither does an import",
        ));
    }
    let access = |reason: String| ChangeAccess {
        tenant: row.tenant.clone(),
        by: row.by.clone(),
        contact_id: row.contact_id.clone(),
        reason,
    };
    let because = format!("import {}", row.import_id);
    let mut changes = Vec::new();
    let mut invited = false;
    let mut apply = |contact: &mut ContactState, more: Vec<Change>| {
        for change in &more {
            *contact = std::mem::take(contact).evolve(&change.event);
        }
        changes.extend(more);
    };
    // Restored before the details change (a blocked login's details are
    // not changed), blocked after it.
    if contact.disabled && !row.disabled {
        let more = contact::restore(&contact, state.customer, access(because.clone()))?;
        apply(&mut contact, more);
    }
    let email_changed = !contact
        .email
        .eq_ignore_ascii_case(row.email.as_ref().map_or("", |e| e.as_str()));
    let username_changed =
        contact.username.as_deref() != row.username.as_ref().map(Username::as_str);
    if email_changed || username_changed {
        let details_state = ChangeDetailsState {
            contact: &contact,
            customer: state.customer,
            invitation: state.invitation,
            email_slot: state.email_slot,
            username_slot: state.username_slot,
        };
        let (_, more) = details::change_details(
            details_state,
            ChangeDetails {
                tenant: row.tenant.clone(),
                by: row.by.clone(),
                contact_id: row.contact_id.clone(),
                email: row.email.clone(),
                username: row.username.clone(),
                send_access_email: false,
                now_ms: row.now_ms,
                link_ttl_ms: row.link_ttl_ms,
            },
        )?;
        // The command mails the new address a link; an import mails
        // nobody unless asked.
        let (mail, more): (Vec<Change>, Vec<Change>) = more.into_iter().partition(|c| {
            matches!(
                c.event,
                Event::Contact(ContactEvent::PasswordResetRequested(_))
            )
        });
        invited = row.invite && !mail.is_empty();
        apply(&mut contact, more);
        if invited {
            apply(&mut contact, mail);
        }
    }
    if !contact.disabled && row.disabled {
        let more = contact::disable(&contact, state.customer, access(because))?;
        apply(&mut contact, more);
    }
    if let Some((hash, scheme)) = row.password
        && contact.imported_hash.as_deref() != Some(hash.as_str())
    {
        changes.push(Change::new(
            streams::contact(&row.tenant, &row.contact_id),
            Event::Contact(ContactEvent::PasswordImported(PasswordImported {
                password_hash: Personal::clear(hash),
                scheme: scheme.to_owned(),
                import_id: row.import_id.clone(),
            })),
        ));
    }
    let outcome = if changes.is_empty() {
        RowOutcome::Unchanged
    } else {
        RowOutcome::Updated
    };
    Ok((changes, outcome, invited))
}

#[cfg(test)]
#[path = "imports_tests.rs"]
mod tests;
