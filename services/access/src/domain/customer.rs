//! A customer account of a tenant.

use super::values::{CustomerId, Name, TenantId};
use super::{Aggregate, Change, DomainError, streams};
use access_events::catalogue::{CustomerCreated, CustomerEvent, CustomerStatus, Event};

/// What the log says about one customer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomerState {
    /// False until `CustomerCreated`.
    pub exists: bool,
    /// The customer's name.
    pub name: String,
    /// Whether it may order.
    pub status: Option<CustomerStatus>,
}

impl Aggregate for CustomerState {
    fn evolve(mut self, event: &Event) -> Self {
        if let Event::Customer(CustomerEvent::CustomerCreated(e)) = event {
            self.exists = true;
            self.name = e.name.clone();
            self.status = Some(e.status);
        }
        self
    }
}

/// Create a customer account.
#[derive(Clone, Debug)]
pub struct CreateCustomer {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// The ERP id.
    pub customer_id: CustomerId,
    /// The name.
    pub name: Name,
}

/// Decides `CreateCustomer`.
pub fn create(state: &CustomerState, cmd: CreateCustomer) -> Result<Vec<Change>, DomainError> {
    if state.exists {
        return Err(DomainError::AlreadyExists(format!(
            "customer {} already exists",
            cmd.customer_id
        )));
    }
    Ok(vec![Change::new(
        streams::customer(&cmd.tenant, &cmd.customer_id),
        Event::Customer(CustomerEvent::CustomerCreated(CustomerCreated {
            customer_id: cmd.customer_id.to_string(),
            name: cmd.name.to_string(),
            status: CustomerStatus::Active,
        })),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_support::*;

    fn cmd() -> CreateCustomer {
        CreateCustomer {
            tenant: TenantId::parse("acme").unwrap(),
            customer_id: CustomerId::parse("C001").unwrap(),
            name: Name::parse("Bob's Hardware").unwrap(),
        }
    }

    #[test]
    fn given_nothing_when_created_then_active_customer() {
        let changes = create(&given(&[]), cmd()).unwrap();
        let state: CustomerState = given(&events(&changes));
        assert!(state.exists);
        assert_eq!(state.status, Some(CustomerStatus::Active));
        assert_eq!(changes[0].stream.as_str(), "customer.acme.C001");
    }

    #[test]
    fn given_a_customer_when_created_again_then_already_exists() {
        let state: CustomerState = given(&events(&create(&given(&[]), cmd()).unwrap()));
        assert!(matches!(
            create(&state, cmd()),
            Err(DomainError::AlreadyExists(_))
        ));
    }
}
