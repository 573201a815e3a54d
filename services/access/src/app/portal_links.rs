//! Capability links into a tenant's portal: created with a token derived
//! from their id (so a retry gets the same link), resolved by the token's
//! hash, deleted at once.

use super::{App, AppError, Command, CommandContext, Outcome, Unit};
use crate::domain::customer::CustomerState;
use crate::domain::policy::Staff;
use crate::domain::portal_links::{self, PortalLinkState};
use crate::domain::values::{CustomerId, GeneratedId, TenantId};
use crate::domain::{Change, DomainError, Reason, streams};
use crate::projections::PortalLinkRow;

/// A portal link as created.
#[derive(Clone)]
pub struct CreatedPortalLink {
    /// Its id.
    pub link_id: String,
    /// Its token (only the token's hash is stored).
    pub token: String,
    /// `<public base URL>/p/<token>`.
    pub url: String,
}

impl std::fmt::Debug for CreatedPortalLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CreatedPortalLink({}, <redacted>)", self.link_id)
    }
}

impl App {
    /// Creates a portal link; a retry gets the first link back, its token
    /// derived again from its id.
    pub async fn create_portal_link(
        &self,
        ctx: &CommandContext,
        mut cmd: CreatePortalLinkCommand,
    ) -> Result<Outcome<CreatedPortalLink>, AppError> {
        let tenant = cmd.link.tenant.clone();
        let token = self
            .keyring
            .portal_link_token(tenant.as_str(), cmd.link.link_id.as_str());
        cmd.link.token_sha256 = crate::secrets::sha256(&token);
        let outcome = self.execute(ctx, &cmd).await?;
        let token = self
            .keyring
            .portal_link_token(tenant.as_str(), &outcome.reply);
        let url = format!(
            "{}/p/{token}",
            self.settings.public_base_url.trim_end_matches('/')
        );
        Ok(Outcome {
            reply: CreatedPortalLink {
                link_id: outcome.reply,
                token,
                url,
            },
            position: outcome.position,
            duplicate: outcome.duplicate,
        })
    }

    /// The live link of `tenant` with this token and how often it has been
    /// resolved, this time included.
    pub async fn resolve_portal_link(
        &self,
        tenant: &TenantId,
        token: &str,
    ) -> Result<(PortalLinkRow, u64), AppError> {
        let unknown = || AppError::from(DomainError::NotFound("portal link"));
        if !token.starts_with("pl_") || token.len() > 100 {
            return Err(unknown());
        }
        let hash = crate::secrets::sha256(token);
        let lookup = || -> Result<Option<PortalLinkRow>, AppError> {
            Ok(self
                .models
                .portal_link(&hash)
                .map_err(AppError::Internal)?
                .filter(|row| row.tenant == tenant.as_str()))
        };
        let mut row = lookup()?;
        if row.is_none() {
            // A link created a moment ago may not be projected yet.
            let head = self.head();
            if self.models.checkpoint() < head {
                self.wait_for(head).await?;
                row = lookup()?;
            }
        }
        let row = row.ok_or_else(unknown)?;
        if row.deleted {
            return Err(
                DomainError::precondition(Reason::LinkDeleted, "this link was deleted").into(),
            );
        }
        if row.expires_at_ms.is_some_and(|t| t <= self.now_ms()) {
            return Err(
                DomainError::precondition(Reason::LinkExpired, "this link has expired").into(),
            );
        }
        let count = self
            .models
            .count_resolve(&row.link_id)
            .map_err(AppError::Internal)?;
        Ok((row, count))
    }

    /// Deletes a portal link; answers once it no longer resolves.
    pub async fn delete_portal_link(
        &self,
        ctx: &CommandContext,
        cmd: &DeletePortalLinkCommand,
    ) -> Result<Outcome<()>, AppError> {
        let outcome = self.execute(ctx, cmd).await?;
        self.wait_for(outcome.position).await?;
        Ok(outcome)
    }
}

/// `CreatePortalLink` as received (the token's hash is filled in from its id).
#[derive(Clone, Debug)]
pub struct CreatePortalLinkCommand {
    /// The customer.
    pub customer_id: CustomerId,
    /// The link.
    pub link: portal_links::CreatePortalLink,
}

impl Command for CreatePortalLinkCommand {
    type Reply = String;

    async fn decide(
        &self,
        app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, String), AppError> {
        let tenant = &self.link.tenant;
        let customer: CustomerState = unit
            .load(&streams::customer(tenant, &self.customer_id))
            .await?;
        let link: PortalLinkState = unit
            .load(&streams::portal_link(tenant, &self.link.link_id))
            .await?;
        let mut cmd = self.link.clone();
        cmd.now_ms = app.now_ms();
        Ok((
            portal_links::create(&customer, &link, cmd)?,
            self.link.link_id.to_string(),
        ))
    }
}

/// `DeletePortalLink` as received.
#[derive(Clone, Debug)]
pub struct DeletePortalLinkCommand {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The link.
    pub link_id: GeneratedId,
}

impl Command for DeletePortalLinkCommand {
    type Reply = ();

    async fn decide(&self, _app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        let link: PortalLinkState = unit
            .load(&streams::portal_link(&self.tenant, &self.link_id))
            .await?;
        let customer = match CustomerId::parse(&link.customer_id) {
            Ok(id) if link.exists => unit.load(&streams::customer(&self.tenant, &id)).await?,
            _ => CustomerState::default(),
        };
        let changes =
            portal_links::delete(&link, &customer, &self.tenant, &self.link_id, &self.by)?;
        Ok((changes, ()))
    }
}
