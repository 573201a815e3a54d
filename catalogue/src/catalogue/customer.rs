//! What a tenant records about a customer company.

use super::legacy;
use crate::codec::payload_enum;
use serde::{Deserialize, Serialize};

/// How a contact sees stock and where its orders go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SiteRule {
    /// Follow the tenant's catalogue default, including later changes of it.
    TenantDefault,
    /// Stock totals over all sites; orders routed to the tenant's default order site.
    AllSites,
    /// One chosen site only; orders routed there.
    OneSite(String),
}

/// Whether a customer account may order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CustomerStatus {
    /// Trading normally.
    Active,
    /// Dormant: contacts may look but not order.
    Inactive,
    /// Blocked from new orders.
    Blacklisted,
}

/// Contact details of a customer company.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactDetails {
    /// General email (the accounting address, often).
    pub email: String,
    /// Telephone.
    pub phone: String,
    /// Postal address, free text.
    pub address: String,
}

/// Billing details of a customer company.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingDetails {
    /// Where invoices go.
    pub email: String,
    /// Billing address, free text.
    pub address: String,
    /// VAT or tax number.
    pub tax_id: String,
}

/// Everything the tenant records about a customer company except its status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRecord {
    /// The customer's id in the tenant's ERP (unique per tenant).
    pub customer_id: String,
    /// The customer's name.
    pub name: String,
    /// Short name.
    pub short_name: String,
    /// Default department.
    pub default_department: String,
    /// Contact details.
    pub contact: ContactDetails,
    /// Billing details.
    pub billing: BillingDetails,
    /// Customer type (a tenant's own classification).
    pub customer_type: String,
    /// Price list.
    pub price_list: String,
    /// The assigned sales rep, if any.
    pub sales_rep: Option<String>,
}

/// A customer account was created (current layout).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerCreated {
    /// The record.
    pub record: CustomerRecord,
    /// Whether the customer may order.
    pub status: CustomerStatus,
}

/// A customer's record was replaced (status unchanged).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerUpdated {
    /// The new record.
    pub record: CustomerRecord,
}

/// A customer's status changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerStatusChanged {
    /// The new status.
    pub status: CustomerStatus,
    /// Why, as given by staff.
    pub reason: String,
}

/// Document kinds a customer's contacts may view (never payments or reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DocumentKind {
    /// Sales quotes.
    SalesQuote,
    /// Sales orders.
    SalesOrder,
    /// Sales invoices.
    SalesInvoice,
    /// Credit notes.
    CreditNote,
    /// Delivery notes.
    DeliveryNote,
}

impl DocumentKind {
    /// Every viewable kind.
    pub const ALL: [DocumentKind; 5] = [
        DocumentKind::SalesQuote,
        DocumentKind::SalesOrder,
        DocumentKind::SalesInvoice,
        DocumentKind::CreditNote,
        DocumentKind::DeliveryNote,
    ];
}

/// Which document kinds a customer's contacts may view, replaced as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentVisibilitySet {
    /// The kinds.
    pub kinds: Vec<DocumentKind>,
}

payload_enum! {
    /// Events of a customer stream.
    pub enum CustomerEvent {
        /// See [`CustomerCreated`].
        CustomerCreated(CustomerCreated) = 3,
        /// See [`CustomerUpdated`].
        CustomerUpdated(CustomerUpdated) = 1,
        /// See [`CustomerStatusChanged`].
        CustomerStatusChanged(CustomerStatusChanged) = 1,
        /// See [`DocumentVisibilitySet`].
        DocumentVisibilitySet(DocumentVisibilitySet) = 1,
        /// See [`SecondFactorPolicySet`](super::tenant::SecondFactorPolicySet).
        SecondFactorPolicySet(super::tenant::SecondFactorPolicySet) = 1,
    }
    legacy {
        CustomerCreated v 1 => legacy::CustomerCreatedV1,
        CustomerCreated v 2 => legacy::CustomerCreatedV2,
    }
}
