//! What a contact does with a link, shared by the gRPC API and the pages:
//! look at an invitation, accept it, use a reset link, renew an old link.

use super::{
    Accept, App, AppError, CommandContext, Outcome, RequestResetCommand, Resend,
    ResetPasswordCommand, SessionSubject, Unit,
};
use crate::domain::DomainError;
use crate::domain::contact::ContactState;
use crate::domain::identity::IdentityState;
use crate::domain::invitation::{InvitationState, InvitationStatus};
use crate::domain::policy::{Role, Staff};
use crate::domain::streams;
use crate::domain::values::{GeneratedId, Password, RequestId, TenantId};
use crate::projections::TenantRow;
use access_catalogue::Actor;
use access_keyring::LinkClaims;
use uuid::Uuid;

/// Whether a link can still be used, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// It works.
    Usable,
    /// Its time ran out.
    Expired,
    /// It was used already.
    Used,
    /// A newer link replaced it.
    Superseded,
    /// Withdrawn, or the contact's access ended.
    Withdrawn,
}

/// What the invitation page shows.
#[derive(Clone, Debug)]
pub struct InvitationView {
    /// The tenant and its look.
    pub tenant: TenantRow,
    /// The tenant's id.
    pub tenant_id: String,
    /// The invited address.
    pub email: String,
    /// The email has a password already (from another supplier, or an
    /// earlier access at this one): the page
    /// asks for it instead of a new one.
    pub has_password: bool,
    /// Whether the link works.
    pub state: LinkState,
}

fn no_invitation() -> AppError {
    AppError::Domain(DomainError::NotFound("invitation"))
}

impl App {
    /// The invitation a link names, as its page shows it.
    pub async fn invitation_view(&self, claims: &LinkClaims) -> Result<InvitationView, AppError> {
        let tenant = TenantId::parse(&claims.tenant).map_err(|_| no_invitation())?;
        let id = GeneratedId::parse(&claims.subject_id).map_err(|_| no_invitation())?;
        let mut unit = Unit::new(self);
        let invitation: InvitationState = unit.load(&streams::invitation(&tenant, &id)).await?;
        let Some(status) = invitation.status else {
            return Err(no_invitation());
        };
        let contact_id = GeneratedId::trusted(&invitation.contact_id);
        let contact: ContactState = unit.load(&streams::contact(&tenant, &contact_id)).await?;
        let identity: IdentityState = if contact.identity_id.is_empty() {
            IdentityState::default()
        } else {
            unit.load(&streams::identity(&GeneratedId::trusted(
                &contact.identity_id,
            )))
            .await?
        };
        let state = match status {
            InvitationStatus::Accepted => LinkState::Used,
            InvitationStatus::Cancelled => LinkState::Withdrawn,
            InvitationStatus::Pending if claims.generation != invitation.generation => {
                LinkState::Superseded
            }
            InvitationStatus::Pending if invitation.expires_at_ms <= self.now_ms() => {
                LinkState::Expired
            }
            InvitationStatus::Pending => LinkState::Usable,
        };
        let row = self
            .models
            .tenant(tenant.as_str())
            .map_err(AppError::Internal)?
            .ok_or_else(no_invitation)?;
        Ok(InvitationView {
            tenant: row,
            tenant_id: tenant.to_string(),
            email: contact.email,
            has_password: identity.password_hash.is_some(),
            state,
        })
    }

    /// Accepts an invitation with the password typed (a new one, or the
    /// email's existing one); the contact the link names is the actor.
    ///
    /// An email's existing password typed here is a password try like a
    /// login: it passes the same gate (per invitation and per client
    /// address), so a link cannot be used to guess it without limit.
    pub async fn accept_invitation(
        &self,
        claims: LinkClaims,
        password: String,
        request_id: RequestId,
        fingerprint: [u8; 32],
        correlation_id: Uuid,
        client_address: &str,
    ) -> Result<Outcome<SessionSubject>, AppError> {
        let tenant = TenantId::parse(&claims.tenant).map_err(|_| no_invitation())?;
        let invitation_id = GeneratedId::parse(&claims.subject_id).map_err(|_| no_invitation())?;
        let gate_name = format!("invitation\n{invitation_id}");
        let ticket = self
            .throttle
            .admit(
                super::throttle::Account::Unknown {
                    tenant: tenant.as_str(),
                    name: &gate_name,
                },
                client_address,
                self.now_ms(),
            )
            .map_err(DomainError::from)?;
        let invitation: InvitationState = Unit::new(self)
            .load(&streams::invitation(&tenant, &invitation_id))
            .await?;
        if invitation.status.is_none() {
            return Err(no_invitation());
        }
        let ctx = CommandContext {
            request_id,
            fingerprint,
            tenant: Some(tenant),
            actor: Actor::Contact {
                contact_id: invitation.contact_id,
            },
            correlation_id,
        };
        let cmd = Accept {
            claims,
            password,
            hashed: Default::default(),
        };
        let outcome = self.execute(&ctx, &cmd).await;
        if matches!(
            outcome,
            Err(AppError::Domain(DomainError::Unauthenticated { .. }))
        ) {
            ticket.failed(self.now_ms());
        }
        outcome
    }

    /// Sets a new password with a reset link; the contact is the actor.
    pub async fn reset_with_link(
        &self,
        claims: LinkClaims,
        new: Password,
        request_id: RequestId,
        fingerprint: [u8; 32],
        correlation_id: Uuid,
    ) -> Result<Outcome<SessionSubject>, AppError> {
        let tenant = TenantId::parse(&claims.tenant)
            .map_err(|_| AppError::Domain(DomainError::NotFound("contact")))?;
        let ctx = CommandContext {
            request_id,
            fingerprint,
            tenant: Some(tenant),
            actor: Actor::Contact {
                contact_id: claims.subject_id.clone(),
            },
            correlation_id,
        };
        let cmd = ResetPasswordCommand {
            claims,
            new,
            hash: Default::default(),
        };
        self.execute(&ctx, &cmd).await
    }

    /// "Forgot password": a reset link goes to the login's email, at most
    /// once a minute. The request only joins a queue, the same for every
    /// login, so the answer (always the same) takes the same time whether or
    /// not the login exists; one task works the queue off, so a flood costs a
    /// bounded queue, and is dropped past it.
    pub fn forgot_password(
        &self,
        tenant: TenantId,
        login: String,
        request_id: RequestId,
        correlation_id: Uuid,
    ) {
        let queue = self.forgot.get_or_init(|| {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Forgot>(FORGOT_QUEUE);
            let app = self.clone();
            tokio::spawn(async move {
                while let Some(f) = rx.recv().await {
                    app.send_reset(f.tenant, f.login, f.request_id, f.correlation_id)
                        .await;
                }
            });
            tx
        });
        let request = Forgot {
            _busy: self.background.enter(),
            tenant,
            login,
            request_id,
            correlation_id,
        };
        if queue.try_send(request).is_err() {
            tracing::warn!("too many password-reset requests queued; one dropped");
        }
    }

    async fn send_reset(
        &self,
        tenant: TenantId,
        login: String,
        request_id: RequestId,
        correlation_id: Uuid,
    ) {
        let contact = match self.find_contact(tenant.as_str(), &login) {
            Ok(Some(contact)) => contact,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "looking up a login for a reset");
                return;
            }
        };
        let Ok(contact_id) = GeneratedId::parse(&contact.contact_id) else {
            return;
        };
        if !self.may_send_reset(tenant.as_str(), contact_id.as_str()) {
            tracing::info!("a reset link went to this login less than a minute ago; none sent");
            return;
        }
        let fp = crate::secrets::sha256(&format!("RequestPasswordReset\0{}", contact.contact_id));
        let ctx = CommandContext {
            request_id,
            fingerprint: fp,
            tenant: Some(tenant.clone()),
            actor: Actor::Contact {
                contact_id: contact.contact_id.clone(),
            },
            correlation_id,
        };
        let cmd = RequestResetCommand {
            tenant,
            contact_id,
            by: None,
        };
        match self.execute(&ctx, &cmd).await {
            Ok(_) => {}
            // Nothing to send (revoked, disabled, no email): the same answer was given.
            Err(AppError::Domain(e)) => tracing::info!(reason = %e, "no reset link sent"),
            Err(e) => tracing::warn!(error = %e, "a reset link could not be sent"),
        }
    }

    /// A contact asks for a fresh invitation link (theirs expired or was
    /// replaced): sent to the invited address, at most once a minute, and
    /// nothing is said about whether it was.
    pub async fn renew_invitation(&self, claims: &LinkClaims) {
        let (Ok(tenant), Ok(id)) = (
            TenantId::parse(&claims.tenant),
            GeneratedId::parse(&claims.subject_id),
        ) else {
            return;
        };
        let invitation: Result<InvitationState, _> = Unit::new(self)
            .load(&streams::invitation(&tenant, &id))
            .await;
        let Ok(invitation) = invitation else { return };
        if invitation.status != Some(InvitationStatus::Pending)
            || !self.may_send_reset(tenant.as_str(), &format!("renew:{}", invitation.contact_id))
        {
            return;
        }
        let request_id = format!("renew:{}", Uuid::now_v7());
        let Ok(request) = RequestId::parse(&request_id) else {
            return;
        };
        let ctx = CommandContext {
            fingerprint: crate::secrets::sha256(&request_id),
            request_id: request,
            tenant: Some(tenant.clone()),
            actor: Actor::Contact {
                contact_id: invitation.contact_id.clone(),
            },
            correlation_id: Uuid::new_v4(),
        };
        let cmd = Resend {
            tenant,
            // The contact asks; the pages act with a service's rights.
            by: Staff::new(Role::Service),
            contact_id: GeneratedId::trusted(&invitation.contact_id),
        };
        if let Err(e) = self.execute(&ctx, &cmd).await {
            tracing::info!(error = %e, "an invitation was not renewed");
        }
    }
}

/// "Forgot password" requests waiting; past this many, more are dropped.
const FORGOT_QUEUE: usize = 1024;

/// One "forgot password" request, waiting its turn.
#[derive(Debug)]
pub struct Forgot {
    /// Counted as background work until it has been handled.
    _busy: super::Busy,
    tenant: TenantId,
    login: String,
    request_id: RequestId,
    correlation_id: Uuid,
}
