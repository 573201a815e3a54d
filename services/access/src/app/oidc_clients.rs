//! OpenID Connect clients as tenant configuration: registered, changed,
//! given new secrets and removed through the log. A confidential client's
//! secret is derived from the server key, the client and the secret's
//! generation, so a retry shows the same secret and only its SHA-256 is
//! stored.

use super::{App, AppError, Command, CommandContext, Outcome, Unit};
use crate::domain::oidc_clients::{self, OidcClientState, RegisterOidcClient};
use crate::domain::policy::Staff;
use crate::domain::tenant::{self, NewSigningKey, TenantState};
use crate::domain::values::{GeneratedId, TenantId};
use crate::domain::{Change, DomainError, streams};
use crate::projections::OidcClientRow;
use crate::secrets::sha256;
use access_catalogue::catalogue::{OidcClientKind, OidcClientSettings};

/// A client as registered: its id, and its secret when it has one (shown once).
#[derive(Clone)]
pub struct RegisteredClient {
    /// The client's id.
    pub client_id: String,
    /// The secret of a confidential client.
    pub secret: Option<String>,
}

impl std::fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegisteredClient({}, <redacted>)", self.client_id)
    }
}

/// `RegisterOidcClient` as received (the secret's hash is filled in from
/// the client's id), with the tenant's first signing key in case it has
/// none yet.
#[derive(Clone, Debug)]
pub struct RegisterOidcClientCommand(pub RegisterOidcClient, pub Vec<NewSigningKey>);

impl Command for RegisterOidcClientCommand {
    /// The client's id, and the server key its secret is derived from.
    type Reply = (String, u8);

    async fn decide(
        &self,
        _app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, (String, u8)), AppError> {
        let cmd = &self.0;
        let state: OidcClientState = unit
            .load(&streams::oidc_client(&cmd.tenant, &cmd.client_id))
            .await?;
        let tenant_state: TenantState = unit.load(&streams::tenant(&cmd.tenant)).await?;
        let mut changes = oidc_clients::register(&state, cmd.clone())?;
        changes.extend(tenant::first_signing_keys(
            &tenant_state,
            &cmd.tenant,
            self.1.clone(),
        ));
        Ok((changes, (cmd.client_id.to_string(), cmd.server_key_id)))
    }
}

/// A change to one client of the caller's tenant.
#[derive(Clone, Debug)]
pub struct OidcClientCommand {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The client.
    pub client_id: GeneratedId,
    /// What to do.
    pub change: OidcClientChange,
}

/// What can be done to a client once it is registered.
#[derive(Clone, Debug)]
pub enum OidcClientChange {
    /// Replace its settings.
    Update(OidcClientSettings),
    /// Give it a new secret.
    RotateSecret,
    /// Remove it, for this reason.
    Remove(String),
}

impl Command for OidcClientCommand {
    /// The secret generation after the change, and the server key a new
    /// secret is derived from.
    type Reply = (u32, u8);

    async fn decide(
        &self,
        app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, (u32, u8)), AppError> {
        let (tenant, id, by) = (&self.tenant, &self.client_id, &self.by);
        let server_key_id = app.keyring.current().id();
        let state: OidcClientState = unit.load(&streams::oidc_client(tenant, id)).await?;
        let mut generation = state.secret_generation;
        let changes = match &self.change {
            OidcClientChange::Update(settings) => {
                // A tenant from before a client's algorithm was offered gets
                // its first key of it.
                let tenant_state: TenantState = unit.load(&streams::tenant(tenant)).await?;
                let mut changes = oidc_clients::update(&state, tenant, by, id, settings.clone())?;
                changes.extend(tenant::first_signing_keys(
                    &tenant_state,
                    tenant,
                    app.new_signing_keys(tenant)?,
                ));
                changes
            }
            OidcClientChange::RotateSecret => {
                generation += 1;
                let secret = app.client_secret(server_key_id, tenant, id.as_str(), generation)?;
                oidc_clients::rotate_secret(
                    &state,
                    tenant,
                    by,
                    id,
                    (sha256(&secret), server_key_id),
                )?
            }
            OidcClientChange::Remove(reason) => {
                oidc_clients::remove(&state, tenant, by, id, reason)?
            }
        };
        Ok((changes, (generation, server_key_id)))
    }
}

impl App {
    /// Registers a client; a confidential client's first secret is in the
    /// reply.
    pub async fn register_oidc_client(
        &self,
        ctx: &CommandContext,
        mut cmd: RegisterOidcClient,
    ) -> Result<Outcome<RegisteredClient>, AppError> {
        let tenant = cmd.tenant.clone();
        let confidential = cmd.kind == OidcClientKind::Confidential;
        cmd.server_key_id = self.keyring.current().id();
        if confidential {
            let secret =
                self.client_secret(cmd.server_key_id, &tenant, cmd.client_id.as_str(), 1)?;
            cmd.secret_sha256 = Some(sha256(&secret));
        }
        let first_keys = self.new_signing_keys(&tenant)?;
        let outcome = self
            .execute(ctx, &RegisterOidcClientCommand(cmd, first_keys))
            .await?;
        // The first key is published by the time the client is answered.
        self.wait_for(outcome.position).await?;
        let (client_id, server_key_id) = outcome.reply.clone();
        let secret = if confidential {
            Some(self.client_secret(server_key_id, &tenant, &client_id, 1)?)
        } else {
            None
        };
        Ok(outcome.map(|_| RegisteredClient { client_id, secret }))
    }

    /// Changes a client; answers once the change can be read. A rotation's
    /// reply holds the new secret.
    pub async fn change_oidc_client(
        &self,
        ctx: &CommandContext,
        cmd: &OidcClientCommand,
    ) -> Result<Outcome<Option<String>>, AppError> {
        let outcome = self.execute(ctx, cmd).await?;
        self.wait_for(outcome.position).await?;
        let (generation, server_key_id) = outcome.reply;
        let secret = match cmd.change {
            OidcClientChange::RotateSecret => Some(self.client_secret(
                server_key_id,
                &cmd.tenant,
                cmd.client_id.as_str(),
                generation,
            )?),
            _ => None,
        };
        Ok(outcome.map(|_| secret))
    }

    /// A client's secret of one generation, derived from the server key it
    /// was recorded with; refused once that key has left the ring.
    fn client_secret(
        &self,
        server_key_id: u8,
        tenant: &TenantId,
        client_id: &str,
        generation: u32,
    ) -> Result<String, AppError> {
        self.keyring
            .oidc_client_secret(server_key_id, tenant.as_str(), client_id, generation)
            .ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!(
                    "server key {server_key_id} is no longer in the ring; rotate the client's secret"
                ))
            })
    }

    /// One client of the tenant, after `position`.
    pub async fn oidc_client(
        &self,
        tenant: &TenantId,
        client_id: &str,
        position: u64,
    ) -> Result<OidcClientRow, AppError> {
        self.wait_for(position).await?;
        self.models
            .oidc_client(tenant.as_str(), client_id)
            .map_err(AppError::Internal)?
            .ok_or_else(|| DomainError::NotFound("client").into())
    }

    /// The tenant's clients, after `position`.
    pub async fn oidc_clients(
        &self,
        tenant: &TenantId,
        position: u64,
    ) -> Result<Vec<OidcClientRow>, AppError> {
        self.wait_for(position).await?;
        self.models
            .oidc_clients_of(tenant.as_str())
            .map_err(AppError::Internal)
    }
}
