//! Commands on contacts and invitations: invite, resend, access changes, accept, details.

use super::{App, AppError, Command, Unit};
use crate::domain::contact::{self, ChangeAccess, ContactState, RevokeState};
use crate::domain::customer::CustomerState;
use crate::domain::details::{self, ChangeDetails, ChangeDetailsState};
use crate::domain::email_slot::EmailSlotState;
use crate::domain::factors;
use crate::domain::invitation::{
    self, InvitationState, InviteState, ResendInvitation, ResendState,
};
use crate::domain::lockout;
use crate::domain::policy::Staff;
use crate::domain::resets::AccessEmail;
use crate::domain::tenant::TenantState;
use crate::domain::values::{CustomerId, Email, GeneratedId, Message, TenantId, Username};
use crate::domain::{Change, streams};
use access_catalogue::catalogue::SiteRule;
use serde::{Deserialize, Serialize};

/// `InviteCustomer` as received; ids and time are fixed when it is decided.
#[derive(Clone, Debug)]
pub struct Invite {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The customer.
    pub customer_id: CustomerId,
    /// Where the link goes.
    pub email: Email,
    /// The personal message.
    pub message: Message,
    /// Visibility and routing.
    pub site_rule: SiteRule,
}

/// The answer to `InviteCustomer`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InvitedReply {
    /// The new contact.
    pub contact_id: String,
    /// Its invitation.
    pub invitation_id: String,
    /// When the link dies, Unix milliseconds.
    pub expires_at_ms: i64,
}

impl Command for Invite {
    type Reply = InvitedReply;

    async fn decide(
        &self,
        app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, InvitedReply), AppError> {
        let tenant: TenantState = unit.load(&streams::tenant(&self.tenant)).await?;
        let customer: CustomerState = unit
            .load(&streams::customer(&self.tenant, &self.customer_id))
            .await?;
        let slot: EmailSlotState = unit
            .load(&streams::email_slot(
                &self.tenant,
                &self.email.identity_id(),
            ))
            .await?;
        let cmd = invitation::InviteCustomer {
            tenant: self.tenant.clone(),
            by: self.by.clone(),
            customer_id: self.customer_id.clone(),
            email: self.email.clone(),
            message: self.message.clone(),
            site_rule: self.site_rule.clone(),
            contact_id: GeneratedId::generate(),
            invitation_id: GeneratedId::generate(),
            now_ms: app.now_ms(),
            link_ttl_ms: app.settings.link_ttl.as_millis() as i64,
        };
        let reply = InvitedReply {
            contact_id: cmd.contact_id.to_string(),
            invitation_id: cmd.invitation_id.to_string(),
            expires_at_ms: cmd.now_ms + cmd.link_ttl_ms,
        };
        let changes = invitation::invite(
            InviteState {
                tenant: &tenant,
                customer: &customer,
                slot: &slot,
            },
            cmd,
        )?;
        Ok((changes, reply))
    }
}

/// `ResendInvitation` as received.
#[derive(Clone, Debug)]
pub struct Resend {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The contact.
    pub contact_id: GeneratedId,
}

impl Command for Resend {
    type Reply = InvitedReply;

    async fn decide(
        &self,
        app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, InvitedReply), AppError> {
        let contact: ContactState = unit
            .load(&streams::contact(&self.tenant, &self.contact_id))
            .await?;
        let invitation_id = GeneratedId::trusted(&contact.invitation_id);
        let invitation: InvitationState = if contact.lifecycle.is_some() {
            unit.load(&streams::invitation(&self.tenant, &invitation_id))
                .await?
        } else {
            InvitationState::default()
        };
        let customer = load_customer_of(unit, &self.tenant, &contact).await?;
        let cmd = ResendInvitation {
            tenant: self.tenant.clone(),
            by: self.by.clone(),
            now_ms: app.now_ms(),
            link_ttl_ms: app.settings.link_ttl.as_millis() as i64,
        };
        let reply = InvitedReply {
            contact_id: self.contact_id.to_string(),
            invitation_id: invitation_id.to_string(),
            expires_at_ms: cmd.now_ms + cmd.link_ttl_ms,
        };
        let changes = invitation::resend(
            ResendState {
                contact: &contact,
                invitation: &invitation,
                customer: &customer,
            },
            cmd,
        )?;
        Ok((changes, reply))
    }
}

/// Which staff decision on a contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessAction {
    /// `DisableAccess`.
    Disable,
    /// `RestoreAccess`.
    Restore,
    /// `RevokeAccess`.
    Revoke,
    /// `ApproveUser`.
    Approve,
    /// `RejectUser`.
    Reject,
    /// `UnlockLogin`.
    Unlock,
    /// `ResetSecondFactors`.
    ResetSecondFactors,
    /// `RemoveSecondFactor` (the factor is [`AccessCommand::factor_id`]).
    RemoveSecondFactor,
}

/// `DisableAccess`, `RestoreAccess` or `RevokeAccess` as received.
#[derive(Clone, Debug)]
pub struct AccessCommand {
    /// Which.
    pub action: AccessAction,
    /// On whom, and why.
    pub change: ChangeAccess,
    /// The factor, for `RemoveSecondFactor`.
    pub factor_id: Option<GeneratedId>,
}

impl Command for AccessCommand {
    type Reply = String;

    async fn decide(
        &self,
        app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, String), AppError> {
        let c = &self.change;
        let contact: ContactState = unit
            .load(&streams::contact(&c.tenant, &c.contact_id))
            .await?;
        let customer = load_customer_of(unit, &c.tenant, &contact).await?;
        let changes = match self.action {
            AccessAction::Disable => contact::disable(&contact, &customer, c.clone())?,
            AccessAction::Restore => contact::restore(&contact, &customer, c.clone())?,
            AccessAction::Approve => contact::approve(&contact, &customer, c.clone())?,
            AccessAction::Unlock => lockout::unlock(
                &contact,
                customer.sales_rep(),
                &c.by,
                &c.tenant,
                &c.contact_id,
                app.now_ms(),
                &c.reason,
            )?,
            AccessAction::ResetSecondFactors => factors::reset(
                &contact,
                factors::Of {
                    tenant: &c.tenant,
                    contact_id: &c.contact_id,
                },
                (&c.by, customer.sales_rep()),
                &c.reason,
            )?,
            AccessAction::RemoveSecondFactor => factors::remove_one(
                &contact,
                factors::Of {
                    tenant: &c.tenant,
                    contact_id: &c.contact_id,
                },
                (&c.by, customer.sales_rep()),
                self.factor_id
                    .as_ref()
                    .map(GeneratedId::as_str)
                    .unwrap_or_default(),
                &c.reason,
            )?,
            AccessAction::Reject => {
                load_slots(unit, &c.tenant, &contact).await?;
                contact::reject(&contact, &customer, c.clone())?
            }
            AccessAction::Revoke => {
                let invitation: InvitationState =
                    if contact.lifecycle.is_some() && !contact.invitation_id.is_empty() {
                        let id = GeneratedId::trusted(&contact.invitation_id);
                        unit.load(&streams::invitation(&c.tenant, &id)).await?
                    } else {
                        InvitationState::default()
                    };
                load_slots(unit, &c.tenant, &contact).await?;
                contact::revoke(
                    RevokeState {
                        contact: &contact,
                        invitation: &invitation,
                        customer: &customer,
                    },
                    c.clone(),
                )?
            }
        };
        Ok((changes, c.contact_id.to_string()))
    }
}

/// Loads the contact's email and username reservations, so that freeing them
/// is checked against concurrent changes.
async fn load_slots(
    unit: &mut Unit<'_>,
    tenant: &TenantId,
    contact: &ContactState,
) -> Result<(), AppError> {
    if contact.lifecycle.is_none() {
        return Ok(());
    }
    if !contact.identity_id.is_empty() {
        let identity = GeneratedId::trusted(&contact.identity_id);
        let _: EmailSlotState = unit.load(&streams::email_slot(tenant, &identity)).await?;
    }
    if let Some(username) = contact
        .username
        .as_deref()
        .and_then(|u| Username::parse(u).ok())
    {
        let _: EmailSlotState = unit
            .load(&streams::username_slot(tenant, &username.slot_id()))
            .await?;
    }
    Ok(())
}

/// The customer of a contact (empty when the contact does not exist).
pub(crate) async fn load_customer_of(
    unit: &mut Unit<'_>,
    tenant: &TenantId,
    contact: &ContactState,
) -> Result<CustomerState, AppError> {
    match CustomerId::parse(&contact.customer_id) {
        Ok(id) if contact.lifecycle.is_some() => unit.load(&streams::customer(tenant, &id)).await,
        _ => Ok(CustomerState::default()),
    }
}

/// `UpdateContact` as received.
#[derive(Clone, Debug)]
pub struct UpdateContactCommand {
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
    /// Also send the email that fits.
    pub send_access_email: bool,
}

/// The answer to `UpdateContact`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContactUpdated {
    /// The contact.
    pub contact_id: String,
    /// Which email went out, if one did.
    pub sent: Option<AccessEmail>,
}

impl Command for UpdateContactCommand {
    type Reply = ContactUpdated;

    async fn decide(
        &self,
        app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, ContactUpdated), AppError> {
        let contact: ContactState = unit
            .load(&streams::contact(&self.tenant, &self.contact_id))
            .await?;
        let customer = load_customer_of(unit, &self.tenant, &contact).await?;
        let invitation: InvitationState = if contact.invitation_id.is_empty() {
            InvitationState::default()
        } else {
            let id = GeneratedId::trusted(&contact.invitation_id);
            unit.load(&streams::invitation(&self.tenant, &id)).await?
        };
        load_slots(unit, &self.tenant, &contact).await?;
        let email_slot: EmailSlotState = match &self.email {
            Some(email) => {
                unit.load(&streams::email_slot(&self.tenant, &email.identity_id()))
                    .await?
            }
            None => EmailSlotState::default(),
        };
        let username_slot: EmailSlotState = match &self.username {
            Some(username) => {
                unit.load(&streams::username_slot(&self.tenant, &username.slot_id()))
                    .await?
            }
            None => EmailSlotState::default(),
        };
        let (sent, changes) = details::change_details(
            ChangeDetailsState {
                contact: &contact,
                customer: &customer,
                invitation: &invitation,
                email_slot: &email_slot,
                username_slot: &username_slot,
            },
            ChangeDetails {
                tenant: self.tenant.clone(),
                by: self.by.clone(),
                contact_id: self.contact_id.clone(),
                email: self.email.clone(),
                username: self.username.clone(),
                send_access_email: self.send_access_email,
                now_ms: app.now_ms(),
                link_ttl_ms: app.settings.link_ttl.as_millis() as i64,
            },
        )?;
        Ok((
            changes,
            ContactUpdated {
                contact_id: self.contact_id.to_string(),
                sent,
            },
        ))
    }
}
