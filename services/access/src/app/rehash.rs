//! An imported password re-hashed with our argon2id at the first login it
//! lets in: from then on the old system's weaker hash is never checked
//! again (and, sealed under the person's key, goes with the person).

use super::{App, AppError, Command, Unit};
use crate::domain::contact::ContactState;
use crate::domain::values::{GeneratedId, TenantId};
use crate::domain::{Change, DomainError, Reason, streams};
use access_catalogue::Actor;
use access_catalogue::catalogue::{ContactEvent, Event, PasswordRehashed};

/// Replaces a contact's imported hash with one of ours of the same password.
#[derive(Clone, Debug)]
pub struct RehashPassword {
    /// The tenant.
    pub tenant: TenantId,
    /// The contact.
    pub contact_id: GeneratedId,
    /// The imported hash the password matched: a hash imported since, or a
    /// password changed since, is left alone.
    pub matched: String,
    /// Our hash of the same password.
    pub password_hash: String,
}

impl Command for RehashPassword {
    type Reply = ();

    async fn decide(&self, _app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        let stream = streams::contact(&self.tenant, &self.contact_id);
        let contact: ContactState = unit.load(&stream).await?;
        if !contact.password_imported || contact.local_password.as_deref() != Some(&self.matched) {
            return Err(DomainError::precondition(
                Reason::Unchanged,
                "the imported password was re-hashed or replaced already",
            )
            .into());
        }
        let rehashed = Event::Contact(ContactEvent::PasswordRehashed(PasswordRehashed {
            password_hash: self.password_hash.clone(),
        }));
        Ok((vec![Change::new(stream, rehashed)], ()))
    }
}

impl App {
    /// Re-hashes an imported password that just let `contact_id` in, in the
    /// background: the login does not wait for it, and a login that finds
    /// it not done yet re-hashes again (recorded once: the stream decides).
    pub(super) fn rehash_imported(
        &self,
        tenant: &str,
        contact_id: &str,
        matched: String,
        password: String,
    ) {
        let (Ok(tenant), Ok(contact_id)) =
            (TenantId::parse(tenant), GeneratedId::parse(contact_id))
        else {
            return;
        };
        let app = self.clone();
        let busy = self.background.enter();
        tokio::spawn(async move {
            let _busy = busy;
            let password_hash = match app.passwords.hash(password).await {
                Ok(hash) => hash,
                Err(e) => {
                    tracing::warn!(error = %e, "could not re-hash an imported password; the next login tries again");
                    return;
                }
            };
            let request_id = format!("rehash:{}", uuid::Uuid::now_v7());
            let actor = Actor::System {
                component: "login".into(),
            };
            let cmd = RehashPassword {
                tenant: tenant.clone(),
                contact_id,
                matched,
                password_hash,
            };
            match app.execute_derived(&request_id, &tenant, actor, &cmd).await {
                Ok(_) | Err(AppError::Domain(DomainError::FailedPrecondition { .. })) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not record a re-hashed password; the next login tries again");
                }
            }
        });
    }
}
