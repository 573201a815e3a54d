//! Commands on customer records.

use super::{App, AppError, Command, Unit};
use crate::domain::customer::{self, CustomerState, SetDocuments, SetStatus, WriteCustomer};
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
