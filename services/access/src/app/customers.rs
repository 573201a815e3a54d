//! Commands on customer records and portal links.

use super::{App, AppError, Command, Unit, now_ms};
use crate::domain::customer::{self, CustomerState, SetDocuments, SetStatus, WriteCustomer};
use crate::domain::policy::Staff;
use crate::domain::portal_links::{self, PortalLinkState};
use crate::domain::values::{CustomerId, GeneratedId, TenantId};
use crate::domain::{Change, streams};

/// `CreateCustomer` as received.
#[derive(Clone, Debug)]
pub struct CreateCustomerCommand(pub WriteCustomer);

impl Command for CreateCustomerCommand {
    type Reply = String;

    async fn decide(
        &self,
        _app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, String), AppError> {
        let cmd = &self.0;
        let state: CustomerState = unit
            .load(&streams::customer(&cmd.tenant, &cmd.customer_id))
            .await?;
        Ok((
            customer::create(&state, cmd.clone())?,
            cmd.customer_id.to_string(),
        ))
    }
}

/// `UpdateCustomer` as received.
#[derive(Clone, Debug)]
pub struct UpdateCustomerCommand(pub WriteCustomer);

impl Command for UpdateCustomerCommand {
    type Reply = String;

    async fn decide(
        &self,
        _app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, String), AppError> {
        let cmd = &self.0;
        let state: CustomerState = unit
            .load(&streams::customer(&cmd.tenant, &cmd.customer_id))
            .await?;
        Ok((
            customer::update(&state, cmd.clone())?,
            cmd.customer_id.to_string(),
        ))
    }
}

impl Command for SetStatus {
    type Reply = String;

    async fn decide(
        &self,
        _app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, String), AppError> {
        let state: CustomerState = unit
            .load(&streams::customer(&self.tenant, &self.customer_id))
            .await?;
        Ok((
            customer::set_status(&state, self.clone())?,
            self.customer_id.to_string(),
        ))
    }
}

impl Command for SetDocuments {
    type Reply = String;

    async fn decide(
        &self,
        _app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, String), AppError> {
        let state: CustomerState = unit
            .load(&streams::customer(&self.tenant, &self.customer_id))
            .await?;
        Ok((
            customer::set_documents(&state, self.clone())?,
            self.customer_id.to_string(),
        ))
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
        _app: &App,
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
        cmd.now_ms = now_ms();
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
