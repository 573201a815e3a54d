//! `ForgetIdentity`: the command that forgets a person, and then the
//! destruction of their keys, which makes every value sealed under them
//! unreadable.

use super::{App, AppError, Command, CommandContext, Outcome, Unit};
use crate::domain::Change;
use crate::domain::contact::ContactState;
use crate::domain::email_slot::EmailSlotState;
use crate::domain::erasure::{self, PersonContact};
use crate::domain::identity::IdentityState;
use crate::domain::streams;
use crate::domain::values::{GeneratedId, TenantId};
use serde::{Deserialize, Serialize};

/// `ForgetIdentity` as received (operator only).
#[derive(Clone, Debug)]
pub struct ForgetIdentity {
    /// The person's identity.
    pub identity_id: GeneratedId,
    /// Why, for the record.
    pub reason: String,
}

/// What forgetting touched.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Forgotten {
    /// The contacts (tenant, contact id) whose access ended.
    pub contacts: Vec<(String, String)>,
}

impl Command for ForgetIdentity {
    type Reply = Forgotten;

    async fn decide(
        &self,
        app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, Forgotten), AppError> {
        let identity: IdentityState = unit.load(&streams::identity(&self.identity_id)).await?;
        let found = app
            .models
            .contacts_with_identity(self.identity_id.as_str())
            .map_err(AppError::Internal)?;
        let mut loaded = Vec::with_capacity(found.len());
        for (tenant, contact) in found {
            let (Ok(tenant), Ok(contact)) =
                (TenantId::parse(&tenant), GeneratedId::parse(&contact))
            else {
                continue;
            };
            let state: ContactState = unit.load(&streams::contact(&tenant, &contact)).await?;
            let slot: EmailSlotState = unit
                .load(&streams::email_slot(&tenant, &self.identity_id))
                .await?;
            loaded.push((tenant, contact, state, slot));
        }
        let contacts: Vec<PersonContact<'_>> = loaded
            .iter()
            .map(|(tenant, contact_id, state, slot)| PersonContact {
                tenant: tenant.clone(),
                contact_id: contact_id.clone(),
                state,
                slot,
            })
            .collect();
        let changes = erasure::forget(&identity, &self.identity_id, &contacts, &self.reason)?;
        let reply = Forgotten {
            contacts: loaded
                .iter()
                .filter(|(_, _, state, _)| state.lifecycle.is_some())
                .map(|(t, c, _, _)| (t.to_string(), c.to_string()))
                .collect(),
        };
        Ok((changes, reply))
    }
}

impl App {
    /// Records that a person is forgotten, then destroys their keys. If a
    /// destruction fails the caller gets `UNAVAILABLE` and retries with the
    /// same request id: the retry is answered from the record and destroys
    /// the keys again.
    pub async fn forget_identity(
        &self,
        ctx: &CommandContext,
        cmd: &ForgetIdentity,
    ) -> Result<Outcome<Forgotten>, AppError> {
        // The person's contacts are found in the read models: they must
        // hold every login written before the request, or one would be
        // missed (an import's, answered a moment ago).
        self.wait_for(self.head()).await?;
        let outcome = self.execute(ctx, cmd).await?;
        let unavailable = |e: access_log::vault::VaultError| AppError::Unavailable(e.to_string());
        self.vault
            .destroy(cmd.identity_id.as_str())
            .await
            .map_err(unavailable)?;
        for (_, contact_id) in &outcome.reply.contacts {
            self.vault
                .destroy(&access_catalogue::personal::contact_ref(contact_id))
                .await
                .map_err(unavailable)?;
        }
        self.wait_for(outcome.position).await?;
        Ok(outcome)
    }

    /// Every person's key, for a backup of the vault.
    pub async fn person_keys(
        &self,
    ) -> Result<Vec<(String, access_catalogue::personal::Key)>, AppError> {
        self.vault
            .all()
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))
    }
}
