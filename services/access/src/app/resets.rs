//! Commands for password resets: asking for a link (staff or "forgot
//! password") and using one.

use super::SessionSubject;
use super::commands::load_customer_of;
use super::{App, AppError, Command, Unit};
use crate::domain::contact::{ContactState, Lifecycle};
use crate::domain::identity::IdentityState;
use crate::domain::invitation::InvitationState;
use crate::domain::policy::Staff;
use crate::domain::resets::{self, AccessEmail, RequestReset, ResetPassword};
use crate::domain::values::{GeneratedId, Password, TenantId};
use crate::domain::{Change, DomainError, streams};
use access_keyring::LinkClaims;
use tokio::sync::OnceCell;

/// A request for a reset link (or the invitation again).
#[derive(Clone, Debug)]
pub struct RequestResetCommand {
    /// The contact's tenant.
    pub tenant: TenantId,
    /// The contact.
    pub contact_id: GeneratedId,
    /// Staff who ask, or `None` for "forgot password".
    pub by: Option<Staff>,
}

impl Command for RequestResetCommand {
    type Reply = AccessEmail;

    async fn decide(
        &self,
        app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, AccessEmail), AppError> {
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
        let (email, changes) = resets::request_reset(
            &contact,
            &customer,
            &invitation,
            RequestReset {
                tenant: self.tenant.clone(),
                contact_id: self.contact_id.clone(),
                by: self.by.clone(),
                now_ms: app.now_ms(),
                link_ttl_ms: app.settings.link_ttl.as_millis() as i64,
            },
        )?;
        Ok((changes, email))
    }
}

/// A reset link used with a new password.
pub struct ResetPasswordCommand {
    /// What the verified token points at (the subject is the contact).
    pub claims: LinkClaims,
    /// The new password (it met the rules).
    pub new: Password,
    /// Its hash, computed once across conflict retries.
    pub hash: OnceCell<String>,
}

impl std::fmt::Debug for ResetPasswordCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetPasswordCommand")
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

impl ResetPasswordCommand {
    fn ids(&self) -> Result<(TenantId, GeneratedId), AppError> {
        let not_found = || AppError::Domain(DomainError::NotFound("contact"));
        Ok((
            TenantId::parse(&self.claims.tenant).map_err(|_| not_found())?,
            GeneratedId::parse(&self.claims.subject_id).map_err(|_| not_found())?,
        ))
    }
}

impl Command for ResetPasswordCommand {
    type Reply = SessionSubject;

    async fn decide(
        &self,
        app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, SessionSubject), AppError> {
        let (tenant, contact_id) = self.ids()?;
        let contact: ContactState = unit.load(&streams::contact(&tenant, &contact_id)).await?;
        if contact.identity_id.is_empty() {
            return Err(DomainError::NotFound("contact").into());
        }
        let identity_id = GeneratedId::trusted(&contact.identity_id);
        let identity: IdentityState = unit.load(&streams::identity(&identity_id)).await?;
        app.check_new_password(&tenant, &self.new, &contact, "new_password")?;
        let hash = self
            .hash
            .get_or_try_init(|| app.passwords.hash(self.new.expose().to_owned()))
            .await
            .map_err(AppError::Internal)?
            .clone();
        let pending_approval = contact.lifecycle == Some(Lifecycle::PendingApproval);
        let changes = resets::reset_password(
            &contact,
            &identity,
            ResetPassword {
                tenant: tenant.clone(),
                contact_id: contact_id.clone(),
                generation: self.claims.generation,
                new_hash: hash,
                now_ms: app.now_ms(),
            },
        )?;
        Ok((
            changes,
            SessionSubject {
                tenant: tenant.to_string(),
                contact_id: contact_id.to_string(),
                customer_id: contact.customer_id,
                email: String::new(),
                identity_id: identity_id.to_string(),
                pending_approval,
            },
        ))
    }

    /// A retried reset opens a session only for whoever knows the new password.
    async fn check_replay(&self, app: &App, reply: &SessionSubject) -> Result<(), AppError> {
        let mut unit = Unit::new(app);
        let identity: IdentityState = unit
            .load(&streams::identity(&GeneratedId::trusted(
                &reply.identity_id,
            )))
            .await?;
        if app
            .passwords
            .verify(identity.password_hash, self.new.expose().to_owned())
            .await
        {
            Ok(())
        } else {
            Err(DomainError::bad_credentials().into())
        }
    }
}
