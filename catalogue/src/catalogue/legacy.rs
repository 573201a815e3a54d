use super::{
    ApiKeyIssued, AuthorizationCodeIssued, ContactEvent, CustomerCreated, CustomerEvent,
    CustomerRecord, CustomerStatus, LocalPasswordSet, NotificationPolicySet, OidcClientEvent,
    OidcClientKind, OidcClientRegistered, OidcClientSettings, OidcClientUpdated, OidcGrantEvent,
    TenantEvent,
};
use crate::personal::Personal;
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

/// `SecondFactorRemoved` v1: when an authenticator app was the only kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFactorRemovedV1 {
    /// The factor.
    pub factor_id: String,
    /// Why, for the record.
    pub reason: String,
}

impl From<SecondFactorRemovedV1> for ContactEvent {
    fn from(v1: SecondFactorRemovedV1) -> Self {
        ContactEvent::SecondFactorRemoved(super::contact::SecondFactorRemoved {
            factor_id: v1.factor_id,
            reason: v1.reason,
            kind: "totp".into(),
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

/// `OidcClientSettings` v1: before logout URIs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcClientSettingsV1 {
    /// Shown to the contact on the pages.
    pub name: String,
    /// Where authorization answers may go, matched exactly.
    pub redirect_uris: Vec<String>,
    /// Scopes the client may ask for.
    pub scopes: Vec<String>,
    /// How long its access tokens live, in seconds.
    pub access_token_ttl_s: u32,
    /// How long its refresh tokens live unused, in seconds.
    pub refresh_token_ttl_s: u32,
}

impl From<OidcClientSettingsV1> for OidcClientSettings {
    fn from(v1: OidcClientSettingsV1) -> Self {
        // A client registered before logout URIs was told of no logout, and
        // its tokens were signed with EdDSA.
        OidcClientSettings {
            name: v1.name,
            redirect_uris: v1.redirect_uris,
            scopes: v1.scopes,
            access_token_ttl_s: v1.access_token_ttl_s,
            refresh_token_ttl_s: v1.refresh_token_ttl_s,
            backchannel_logout_uri: None,
            post_logout_redirect_uris: Vec::new(),
            token_signing_alg: "EdDSA".into(),
            initiate_login_uri: None,
        }
    }
}

/// `OidcClientRegistered` v1: with the settings of v1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcClientRegisteredV1 {
    /// The client's id.
    pub client_id: String,
    /// Confidential or public.
    pub kind: OidcClientKind,
    /// What it may do.
    pub settings: OidcClientSettingsV1,
    /// SHA-256 of its secret; `None` for a public client.
    pub secret_sha256: Option<[u8; 32]>,
    /// The server key the secret is derived from.
    pub server_key_id: u8,
}

impl From<OidcClientRegisteredV1> for OidcClientEvent {
    fn from(v1: OidcClientRegisteredV1) -> Self {
        OidcClientEvent::OidcClientRegistered(OidcClientRegistered {
            client_id: v1.client_id,
            kind: v1.kind,
            settings: v1.settings.into(),
            secret_sha256: v1.secret_sha256,
            server_key_id: v1.server_key_id,
        })
    }
}

/// `OidcClientUpdated` v1: with the settings of v1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcClientUpdatedV1 {
    /// The new settings.
    pub settings: OidcClientSettingsV1,
}

impl From<OidcClientUpdatedV1> for OidcClientEvent {
    fn from(v1: OidcClientUpdatedV1) -> Self {
        OidcClientEvent::OidcClientUpdated(OidcClientUpdated {
            settings: v1.settings.into(),
        })
    }
}

/// `AuthorizationCodeIssued` v1: before a sign-in said how the contact
/// authenticated; every sign-in then was a password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationCodeIssuedV1 {
    /// The client signed in to.
    pub client_id: String,
    /// The contact who signed in.
    pub contact_id: String,
    /// Where the code was sent.
    pub redirect_uri: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// The client's nonce.
    pub nonce: Option<String>,
    /// When the contact proved the password, Unix milliseconds.
    pub auth_time_ms: i64,
    /// When the code stops working, Unix milliseconds.
    pub expires_at_ms: i64,
    /// The provider's browser session.
    pub session_id: String,
    /// The server key the code and refresh tokens are derived from.
    pub server_key_id: u8,
    /// The browser's network address.
    pub client_address: Personal,
}

impl From<AuthorizationCodeIssuedV1> for OidcGrantEvent {
    fn from(v1: AuthorizationCodeIssuedV1) -> Self {
        OidcGrantEvent::AuthorizationCodeIssued(AuthorizationCodeIssued {
            client_id: v1.client_id,
            contact_id: v1.contact_id,
            redirect_uri: v1.redirect_uri,
            scopes: v1.scopes,
            code_challenge: v1.code_challenge,
            nonce: v1.nonce,
            auth_time_ms: v1.auth_time_ms,
            expires_at_ms: v1.expires_at_ms,
            session_id: v1.session_id,
            server_key_id: v1.server_key_id,
            client_address: v1.client_address,
            amr: vec!["pwd".into()],
        })
    }
}
