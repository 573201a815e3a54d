//! Accepting an invitation: the password set (or an existing one proven),
//! the login active (or waiting for approval), and the session it opens.

use super::{App, AppError, Command, Unit};
use crate::domain::contact::ContactState;
use crate::domain::identity::IdentityState;
use crate::domain::invitation::{self, AcceptInvitation, AcceptState, Credential, InvitationState};
use crate::domain::tenant::TenantState;
use crate::domain::values::{GeneratedId, Password, TenantId};
use crate::domain::{Change, DomainError, streams};
use access_keyring::LinkClaims;
use serde::{Deserialize, Serialize};

/// `AcceptInvitation` as received: a verified link and the typed password.
pub struct Accept {
    /// What the verified token points at.
    pub claims: LinkClaims,
    /// The password typed; checked against the rules only if it is a new one.
    pub password: String,
    /// The new password's hash, computed once across conflict retries.
    pub hashed: tokio::sync::OnceCell<String>,
}

impl std::fmt::Debug for Accept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accept")
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

/// Who is now logged in, after `AcceptInvitation`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionSubject {
    /// The tenant.
    pub tenant: String,
    /// The contact.
    pub contact_id: String,
    /// The contact's customer.
    pub customer_id: String,
    /// Always empty in what the log keeps (no personal data in clear there):
    /// the session reply reads the email from the read model.
    pub email: String,
    /// The global identity.
    pub identity_id: String,
    /// The contact waits for approval: no session yet.
    pub pending_approval: bool,
}

impl Accept {
    fn tenant(&self) -> Result<TenantId, AppError> {
        TenantId::parse(&self.claims.tenant)
            .map_err(|_| AppError::Domain(DomainError::NotFound("invitation")))
    }

    fn invitation_id(&self) -> Result<GeneratedId, AppError> {
        GeneratedId::parse(&self.claims.subject_id)
            .map_err(|_| AppError::Domain(DomainError::NotFound("invitation")))
    }
}

impl Command for Accept {
    type Reply = SessionSubject;

    async fn decide(
        &self,
        app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, SessionSubject), AppError> {
        let tenant = self.tenant()?;
        let invitation_id = self.invitation_id()?;
        let invitation: InvitationState = unit
            .load(&streams::invitation(&tenant, &invitation_id))
            .await?;
        if invitation.status.is_none() {
            return Err(DomainError::NotFound("invitation").into());
        }
        let contact_id = GeneratedId::trusted(&invitation.contact_id);
        let contact: ContactState = unit.load(&streams::contact(&tenant, &contact_id)).await?;
        if contact.identity_id.is_empty() {
            return Err(DomainError::NotFound("invitation").into());
        }
        let identity_id = GeneratedId::trusted(&contact.identity_id);
        let identity: IdentityState = unit.load(&streams::identity(&identity_id)).await?;
        let tenant_state: TenantState = unit.load(&streams::tenant(&tenant)).await?;
        let credential = match &identity.password_hash {
            Some(phc) => Credential::ExistingPassword {
                matches: app
                    .passwords
                    .verify(Some(phc.clone()), self.password.clone())
                    .await,
            },
            None => {
                let password = Password::parse(&self.password)
                    .map_err(|m| AppError::Domain(DomainError::invalid("password", m)))?;
                super::check_password(
                    &tenant_state.password_policy,
                    &password,
                    &contact,
                    "password",
                )?;
                let hash = self
                    .hashed
                    .get_or_try_init(|| app.passwords.hash(password.expose().to_owned()))
                    .await
                    .map_err(AppError::Internal)?;
                Credential::NewPassword { hash: hash.clone() }
            }
        };
        let changes = invitation::accept(
            AcceptState {
                invitation: &invitation,
                contact: &contact,
                identity: &identity,
                approval_required: tenant_state.approval_required,
            },
            AcceptInvitation {
                tenant: tenant.clone(),
                invitation_id,
                generation: self.claims.generation,
                credential,
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
                pending_approval: tenant_state.approval_required,
            },
        ))
    }

    /// A retried accept opens a session only for the identity's password.
    async fn check_replay(&self, app: &App, reply: &SessionSubject) -> Result<(), AppError> {
        // The password this login is checked against now: its own, if it has
        // one, else its identity's (the same rule as Login).
        let tenant = self.tenant()?;
        let mut unit = Unit::new(app);
        let contact: ContactState = unit
            .load(&streams::contact(
                &tenant,
                &GeneratedId::trusted(&reply.contact_id),
            ))
            .await?;
        let phc = match contact.local_password {
            Some(local) => Some(local),
            None => {
                let identity_id = GeneratedId::trusted(&reply.identity_id);
                let identity: IdentityState = unit.load(&streams::identity(&identity_id)).await?;
                identity.password_hash
            }
        };
        if app.passwords.verify(phc, self.password.clone()).await {
            Ok(())
        } else {
            Err(DomainError::bad_credentials().into())
        }
    }
}
