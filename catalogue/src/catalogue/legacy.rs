use super::{
    ApiKeyIssued, ContactEvent, CustomerCreated, CustomerEvent, CustomerRecord, CustomerStatus,
    LocalPasswordSet, NotificationPolicySet, TenantEvent,
};
use serde::{Deserialize, Serialize};

/// `CustomerCreated` v1: the first customer record, before it had a status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerCreatedV1 {
    /// The customer's id in the tenant's ERP.
    pub customer_id: String,
    /// The customer's name.
    pub name: String,
}

/// `CustomerCreated` v2: id, name and status, before the full record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerCreatedV2 {
    /// The customer's id in the tenant's ERP.
    pub customer_id: String,
    /// The customer's name.
    pub name: String,
    /// Whether the customer may order.
    pub status: CustomerStatus,
}

impl From<CustomerCreatedV1> for CustomerEvent {
    fn from(v1: CustomerCreatedV1) -> Self {
        // A customer recorded before statuses existed was trading normally.
        CustomerCreatedV2 {
            customer_id: v1.customer_id,
            name: v1.name,
            status: CustomerStatus::Active,
        }
        .into()
    }
}

impl From<CustomerCreatedV2> for CustomerEvent {
    fn from(v2: CustomerCreatedV2) -> Self {
        CustomerEvent::CustomerCreated(CustomerCreated {
            record: CustomerRecord {
                customer_id: v2.customer_id,
                name: v2.name,
                ..CustomerRecord::default()
            },
            status: v2.status,
        })
    }
}

/// `NotificationPolicySet` v1: before a tenant could choose to mail
/// generated temporary passwords.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationPolicySetV1 {
    /// Tell a contact when their access is disabled.
    pub access_disabled: bool,
}

impl From<NotificationPolicySetV1> for TenantEvent {
    fn from(v1: NotificationPolicySetV1) -> Self {
        TenantEvent::NotificationPolicySet(NotificationPolicySet {
            access_disabled: v1.access_disabled,
            email_temporary_password: false,
        })
    }
}

/// `LocalPasswordSet` v1: before generated passwords said where from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalPasswordSetV1 {
    /// argon2id PHC string.
    pub password_hash: String,
    /// Set by staff.
    pub temporary: bool,
}

impl From<LocalPasswordSetV1> for ContactEvent {
    fn from(v1: LocalPasswordSetV1) -> Self {
        ContactEvent::LocalPasswordSet(LocalPasswordSet {
            password_hash: v1.password_hash,
            temporary: v1.temporary,
            generated: None,
        })
    }
}

/// `ApiKeyIssued` v1: before keys had a holder's name and a rep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyIssuedV1 {
    /// Public id of the key.
    pub key_id: String,
    /// Its role.
    pub role: String,
    /// SHA-256 of the key text.
    pub key_sha256: [u8; 32],
}

impl From<ApiKeyIssuedV1> for TenantEvent {
    fn from(v1: ApiKeyIssuedV1) -> Self {
        TenantEvent::ApiKeyIssued(ApiKeyIssued {
            name: format!("{} key", v1.role),
            key_id: v1.key_id,
            role: v1.role,
            key_sha256: v1.key_sha256,
            rep_id: None,
        })
    }
}
