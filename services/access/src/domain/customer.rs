//! A customer account of a tenant: its record, status and document visibility.

use super::policy::Staff;
use super::values::{CustomerId, TenantId};
use super::{Aggregate, Change, DomainError, streams};
use crate::domain::Reason;
use access_catalogue::catalogue::{
    CustomerCreated, CustomerEvent, CustomerRecord, CustomerStatus, CustomerStatusChanged,
    CustomerUpdated, DocumentKind, DocumentVisibilitySet, Event, FactorRequirement,
    SecondFactorPolicySet,
};

/// What the log says about one customer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomerState {
    /// False until `CustomerCreated`.
    pub exists: bool,
    /// The record.
    pub record: CustomerRecord,
    /// Whether it may order.
    pub status: Option<CustomerStatus>,
    /// Document kinds its contacts may view; `None` until set, meaning all.
    pub documents: Option<Vec<DocumentKind>>,
    /// What its contacts' sign-ins must include.
    pub second_factor: FactorRequirement,
}

impl Aggregate for CustomerState {
    fn evolve(mut self, event: &Event) -> Self {
        let Event::Customer(event) = event else {
            return self;
        };
        match event {
            CustomerEvent::CustomerCreated(e) => {
                self.exists = true;
                self.record = e.record.clone();
                self.status = Some(e.status);
            }
            CustomerEvent::CustomerUpdated(e) => self.record = e.record.clone(),
            CustomerEvent::CustomerStatusChanged(e) => self.status = Some(e.status),
            CustomerEvent::DocumentVisibilitySet(e) => self.documents = Some(e.kinds.clone()),
            CustomerEvent::SecondFactorPolicySet(e) => self.second_factor = e.require,
        }
        self
    }
}

impl CustomerState {
    /// The sales rep assigned to the customer.
    pub fn sales_rep(&self) -> Option<&str> {
        self.record.sales_rep.as_deref()
    }
}

/// Create or replace a customer record.
#[derive(Clone, Debug)]
pub struct WriteCustomer {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The ERP id (the same as `record.customer_id`).
    pub customer_id: CustomerId,
    /// The record, its fields already checked.
    pub record: CustomerRecord,
}

/// Decides `CreateCustomer`: a new, active customer.
pub fn create(state: &CustomerState, cmd: WriteCustomer) -> Result<Vec<Change>, DomainError> {
    cmd.by.may_manage_customers()?;
    if state.exists {
        return Err(DomainError::AlreadyExists(format!(
            "customer {} already exists",
            cmd.customer_id
        )));
    }
    Ok(vec![Change::new(
        streams::customer(&cmd.tenant, &cmd.customer_id),
        Event::Customer(CustomerEvent::CustomerCreated(CustomerCreated {
            record: cmd.record,
            status: CustomerStatus::Active,
        })),
    )])
}

/// Decides `UpdateCustomer`: the record is replaced, the status kept.
pub fn update(state: &CustomerState, cmd: WriteCustomer) -> Result<Vec<Change>, DomainError> {
    cmd.by.may_manage_customers()?;
    if !state.exists {
        return Err(DomainError::NotFound("customer"));
    }
    if state.record == cmd.record {
        return Err(DomainError::precondition(
            Reason::Unchanged,
            "the record is already so",
        ));
    }
    Ok(vec![Change::new(
        streams::customer(&cmd.tenant, &cmd.customer_id),
        Event::Customer(CustomerEvent::CustomerUpdated(CustomerUpdated {
            record: cmd.record,
        })),
    )])
}

/// Set a customer's status.
#[derive(Clone, Debug)]
pub struct SetStatus {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The customer.
    pub customer_id: CustomerId,
    /// The new status.
    pub status: CustomerStatus,
    /// Why.
    pub reason: String,
}

/// Decides `SetCustomerStatus`.
pub fn set_status(state: &CustomerState, cmd: SetStatus) -> Result<Vec<Change>, DomainError> {
    cmd.by.may_manage_customers()?;
    if !state.exists {
        return Err(DomainError::NotFound("customer"));
    }
    if state.status == Some(cmd.status) {
        return Err(DomainError::precondition(
            Reason::Unchanged,
            "the customer already has that status",
        ));
    }
    Ok(vec![Change::new(
        streams::customer(&cmd.tenant, &cmd.customer_id),
        Event::Customer(CustomerEvent::CustomerStatusChanged(
            CustomerStatusChanged {
                status: cmd.status,
                reason: cmd.reason,
            },
        )),
    )])
}

/// Choose the document kinds a customer's contacts may view.
#[derive(Clone, Debug)]
pub struct SetDocuments {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The customer.
    pub customer_id: CustomerId,
    /// The kinds (payments and reports are not kinds: never viewable).
    pub kinds: Vec<DocumentKind>,
}

/// Decides `SetDocumentVisibility`.
pub fn set_documents(
    state: &CustomerState,
    mut cmd: SetDocuments,
) -> Result<Vec<Change>, DomainError> {
    cmd.by.may_manage_logins_of(state.sales_rep())?;
    if !state.exists {
        return Err(DomainError::NotFound("customer"));
    }
    cmd.kinds.sort_unstable();
    cmd.kinds.dedup();
    Ok(vec![Change::new(
        streams::customer(&cmd.tenant, &cmd.customer_id),
        Event::Customer(CustomerEvent::DocumentVisibilitySet(
            DocumentVisibilitySet { kinds: cmd.kinds },
        )),
    )])
}

/// Decides `SetSecondFactorPolicy` for one customer: who manages its
/// logins.
pub fn set_second_factor_policy(
    state: &CustomerState,
    (tenant, customer_id): (&TenantId, &CustomerId),
    by: &Staff,
    require: FactorRequirement,
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_logins_of(state.sales_rep())?;
    if !state.exists {
        return Err(DomainError::NotFound("customer"));
    }
    Ok(vec![Change::new(
        streams::customer(tenant, customer_id),
        Event::Customer(CustomerEvent::SecondFactorPolicySet(
            SecondFactorPolicySet { require },
        )),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::Role;
    use crate::domain::test_support::*;

    fn cmd(by: Staff) -> WriteCustomer {
        WriteCustomer {
            tenant: TenantId::parse("acme").unwrap(),
            by,
            customer_id: CustomerId::parse("C001").unwrap(),
            record: CustomerRecord {
                customer_id: "C001".into(),
                name: "Bob's Hardware".into(),
                sales_rep: Some("anna".into()),
                ..Default::default()
            },
        }
    }

    fn created() -> CustomerState {
        given(&events(
            &create(&given(&[]), cmd(Staff::new(Role::InHouse))).unwrap(),
        ))
    }

    #[test]
    fn given_nothing_when_created_then_active_customer() {
        let changes = create(&given(&[]), cmd(Staff::new(Role::Admin))).unwrap();
        let state: CustomerState = given(&events(&changes));
        assert!(state.exists);
        assert_eq!(state.status, Some(CustomerStatus::Active));
        assert_eq!(state.sales_rep(), Some("anna"));
        assert_eq!(changes[0].stream.as_str(), "customer.acme.C001");
    }

    #[test]
    fn given_a_customer_when_created_again_then_already_exists() {
        assert!(matches!(
            create(&created(), cmd(Staff::new(Role::Admin))),
            Err(DomainError::AlreadyExists(_))
        ));
    }

    #[test]
    fn reps_and_auditors_do_not_write_customer_records() {
        for by in [Staff::rep("anna"), Staff::new(Role::Auditor)] {
            assert!(matches!(
                create(&given(&[]), cmd(by)),
                Err(DomainError::PermissionDenied {
                    reason: Reason::Role,
                    ..
                })
            ));
        }
    }

    #[test]
    fn a_record_is_replaced_and_the_status_kept() {
        let mut update_cmd = cmd(Staff::new(Role::InHouse));
        update_cmd.record.sales_rep = Some("bert".into());
        update_cmd.record.price_list = "trade".into();
        let mut state = created();
        state = {
            let changes = set_status(&state, status(CustomerStatus::Blacklisted)).unwrap();
            then(state, &changes)
        };
        let state = {
            let changes = update(&state, update_cmd.clone()).unwrap();
            then(state, &changes)
        };
        assert_eq!(state.sales_rep(), Some("bert"));
        assert_eq!(state.status, Some(CustomerStatus::Blacklisted));
        assert!(matches!(
            update(&state, update_cmd),
            Err(DomainError::FailedPrecondition {
                reason: Reason::Unchanged,
                ..
            })
        ));
        assert!(matches!(
            update(&given(&[]), cmd(Staff::new(Role::Admin))),
            Err(DomainError::NotFound("customer"))
        ));
    }

    fn status(s: CustomerStatus) -> SetStatus {
        SetStatus {
            tenant: TenantId::parse("acme").unwrap(),
            by: Staff::new(Role::Admin),
            customer_id: CustomerId::parse("C001").unwrap(),
            status: s,
            reason: "unpaid invoices".into(),
        }
    }

    #[test]
    fn status_changes_are_recorded_and_a_no_op_is_refused() {
        let state = created();
        let state = {
            let changes = set_status(&state, status(CustomerStatus::Inactive)).unwrap();
            then(state, &changes)
        };
        assert_eq!(state.status, Some(CustomerStatus::Inactive));
        assert!(set_status(&state, status(CustomerStatus::Inactive)).is_err());
    }

    #[test]
    fn document_kinds_are_chosen_by_those_who_manage_the_customers_logins() {
        let state = created();
        assert_eq!(state.documents, None);
        let docs = |by: Staff| SetDocuments {
            tenant: TenantId::parse("acme").unwrap(),
            by,
            customer_id: CustomerId::parse("C001").unwrap(),
            kinds: vec![
                DocumentKind::SalesInvoice,
                DocumentKind::SalesQuote,
                DocumentKind::SalesInvoice,
            ],
        };
        let changes = set_documents(&state, docs(Staff::rep("anna"))).unwrap();
        let state = then(state, &changes);
        assert_eq!(
            state.documents,
            Some(vec![DocumentKind::SalesQuote, DocumentKind::SalesInvoice])
        );
        assert!(matches!(
            set_documents(&state, docs(Staff::rep("bert"))),
            Err(DomainError::PermissionDenied {
                reason: Reason::NotAssignedRep,
                ..
            })
        ));
    }
}
