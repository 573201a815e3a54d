//! Reads of single rows for the transports: a customer or contact the
//! caller may read, a tenant's settings. Each waits for the read models to
//! reach the caller's position first, so a caller reads its own writes.

use super::{App, AppError};
use crate::domain::DomainError;
use crate::domain::policy::Staff;
use crate::domain::values::TenantId;
use crate::projections::{ContactRow, CustomerRow, KeyRow, TenantRow};
use access_keyring::{BadToken, LinkClaims};

impl App {
    /// A customer of the tenant the caller may read, after `position`.
    pub async fn customer(
        &self,
        tenant: &TenantId,
        staff: &Staff,
        customer_id: &str,
        position: u64,
    ) -> Result<CustomerRow, AppError> {
        self.wait_for(position).await?;
        let row = self
            .models
            .customer(tenant.as_str(), customer_id)
            .map_err(AppError::Internal)?
            .ok_or(DomainError::NotFound("customer"))?;
        staff.may_read_customer(row.record.sales_rep.as_deref())?;
        Ok(row)
    }

    /// A contact of the tenant the caller may read, with its customer, after
    /// `position`.
    pub async fn contact(
        &self,
        tenant: &TenantId,
        staff: &Staff,
        contact_id: &str,
        position: u64,
    ) -> Result<(ContactRow, CustomerRow), AppError> {
        self.wait_for(position).await?;
        let row = self
            .contact_row(tenant.as_str(), contact_id)?
            .ok_or(DomainError::NotFound("contact"))?;
        let customer = self.customer(tenant, staff, &row.customer_id, 0).await?;
        Ok((row, customer))
    }

    /// A contact as the read models have it now, whoever asks (a session's
    /// own contact, a link's).
    pub fn contact_row(
        &self,
        tenant: &str,
        contact_id: &str,
    ) -> Result<Option<ContactRow>, AppError> {
        self.models
            .contact(tenant, contact_id)
            .map_err(AppError::Internal)
    }

    /// A tenant's settings, after `position`.
    pub async fn tenant(&self, tenant: &TenantId, position: u64) -> Result<TenantRow, AppError> {
        self.wait_for(position).await?;
        self.tenant_row(tenant.as_str())?
            .ok_or_else(|| DomainError::NotFound("tenant").into())
    }

    /// A tenant's settings as the read models have them now.
    pub fn tenant_row(&self, tenant: &str) -> Result<Option<TenantRow>, AppError> {
        self.models.tenant(tenant).map_err(AppError::Internal)
    }

    /// The tenant's API keys (id and row; never their text), after `position`.
    pub async fn api_keys(
        &self,
        tenant: &TenantId,
        position: u64,
    ) -> Result<Vec<(String, KeyRow)>, AppError> {
        self.wait_for(position).await?;
        self.models
            .api_keys_of(tenant.as_str())
            .map_err(AppError::Internal)
    }

    /// What a genuine invitation link token points at.
    pub fn invitation_link(&self, token: &str) -> Result<LinkClaims, BadToken> {
        self.keyring.verify_invitation(token)
    }

    /// A form's CSRF token, bound to the browser's CSRF cookie and the form.
    pub fn csrf_token(&self, cookie: &str, action: &str) -> String {
        self.keyring.csrf_token(cookie, action)
    }

    /// Whether `given` is the CSRF token of `cookie` and `action`.
    pub fn verify_csrf(&self, cookie: &str, action: &str, given: &str) -> bool {
        self.keyring.verify_csrf(cookie, action, given)
    }

    /// What a genuine password-reset link token points at.
    pub fn reset_link(&self, token: &str) -> Result<LinkClaims, BadToken> {
        self.keyring.verify_reset(token)
    }
}
