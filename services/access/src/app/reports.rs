//! The tenant's reports, read from the read models: access status by
//! customer and contact, customers without a login, billable users. Each
//! walks the customers the caller may read, in id order, a page at a time.

use super::{App, AppError};
use crate::domain::contact::Lifecycle;
use crate::domain::policy::{Role, Staff};
use crate::domain::values::TenantId;
use crate::domain::{DomainError, Reason};
use crate::projections::{ContactRow, CustomerRow};
use access_catalogue::catalogue::CustomerRecord;

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// Which customers a report or a bulk invitation covers; an empty field
/// matches every customer.
#[derive(Clone, Debug, Default)]
pub struct CustomerFilter {
    /// The customer type, as the ERP names it.
    pub customer_type: String,
    /// The sales rep's id.
    pub sales_rep: String,
    /// The price list.
    pub price_list: String,
}

impl CustomerFilter {
    /// Whether `record` matches (case-insensitively, ignoring spaces around).
    pub fn matches(&self, record: &CustomerRecord) -> bool {
        let eq = |want: &str, have: &str| {
            want.trim().is_empty() || want.trim().eq_ignore_ascii_case(have)
        };
        eq(&self.customer_type, &record.customer_type)
            && eq(
                &self.sales_rep,
                record.sales_rep.as_deref().unwrap_or_default(),
            )
            && eq(&self.price_list, &record.price_list)
    }
}

/// Where a page starts and how long it may be.
#[derive(Clone, Debug, Default)]
pub struct PageRequest {
    /// The token a previous page gave, or empty for the first.
    pub token: String,
    /// Rows wanted; 0 for the default, at most 1,000.
    pub size: u32,
}

impl PageRequest {
    fn rows(&self) -> usize {
        match self.size as usize {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        }
    }
}

/// One row of the access report: a customer with one contact, or with none.
#[derive(Clone, Debug)]
pub struct AccessLine {
    /// The customer.
    pub customer: CustomerRow,
    /// The contact, or `None` for a customer without any.
    pub contact: Option<ContactRow>,
    /// `no_login` or the contact's status at the time of the report.
    pub status: &'static str,
}

/// How many logins a tenant has, by state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BillableUsers {
    /// Active logins.
    pub active: u64,
    /// Disabled logins.
    pub disabled: u64,
    /// Logins waiting for approval.
    pub pending_approval: u64,
    /// Invitations not accepted yet.
    pub invited: u64,
}

/// Whether a customer has a login that still counts (not revoked).
pub(super) fn has_login(contacts: &[ContactRow]) -> bool {
    contacts.iter().any(|c| c.lifecycle != Lifecycle::Revoked)
}

impl App {
    /// The access report: every contact of the matching customers (and each
    /// customer without one, as `no_login`), optionally only those in
    /// `status`; returns the rows and the next page's token.
    pub async fn list_access(
        &self,
        tenant: &TenantId,
        staff: &Staff,
        filter: &CustomerFilter,
        status: &str,
        page: &PageRequest,
        min_position: u64,
    ) -> Result<(Vec<AccessLine>, String), AppError> {
        self.wait_for(min_position).await?;
        let now = self.now_ms();
        let wanted = status.trim();
        let mut rows = Vec::new();
        let next = self.walk(tenant, staff, &page.token, page.rows(), |customer| {
            if !filter.matches(&customer.record) {
                return Ok(false);
            }
            let contacts = self.contacts_of(tenant, &customer.record.customer_id)?;
            let before = rows.len();
            if contacts.is_empty() && (wanted.is_empty() || wanted == "no_login") {
                rows.push(AccessLine {
                    customer: customer.clone(),
                    contact: None,
                    status: "no_login",
                });
            }
            for c in contacts {
                let status = c.status_at(now);
                if wanted.is_empty() || status == wanted {
                    rows.push(AccessLine {
                        customer: customer.clone(),
                        contact: Some(c),
                        status,
                    });
                }
            }
            Ok(rows.len() > before)
        })?;
        Ok((rows, next))
    }

    /// The matching customers without a login that counts.
    pub async fn customers_without_login(
        &self,
        tenant: &TenantId,
        staff: &Staff,
        filter: &CustomerFilter,
        page: &PageRequest,
        min_position: u64,
    ) -> Result<(Vec<CustomerRow>, String), AppError> {
        self.wait_for(min_position).await?;
        let mut customers = Vec::new();
        let next = self.walk(tenant, staff, &page.token, page.rows(), |customer| {
            if !filter.matches(&customer.record)
                || has_login(&self.contacts_of(tenant, &customer.record.customer_id)?)
            {
                return Ok(false);
            }
            customers.push(customer.clone());
            Ok(true)
        })?;
        Ok((customers, next))
    }

    /// Every login that exists, approved or not: for admin and auditor keys.
    pub async fn billable_users(
        &self,
        tenant: &TenantId,
        staff: &Staff,
        min_position: u64,
    ) -> Result<BillableUsers, AppError> {
        if !matches!(staff.role, Role::Admin | Role::Auditor) {
            return Err(DomainError::PermissionDenied {
                reason: Reason::Role,
                message: "billing figures are for admin and auditor keys".into(),
            }
            .into());
        }
        self.wait_for(min_position).await?;
        let mut users = BillableUsers::default();
        self.walk(tenant, staff, "", usize::MAX, |customer| {
            for c in self.contacts_of(tenant, &customer.record.customer_id)? {
                match (c.lifecycle, c.disabled) {
                    (Lifecycle::Revoked, _) => {}
                    (Lifecycle::Invited, _) => users.invited += 1,
                    (Lifecycle::PendingApproval, _) => users.pending_approval += 1,
                    (Lifecycle::Active, true) => users.disabled += 1,
                    (Lifecycle::Active, false) => users.active += 1,
                }
            }
            Ok(false)
        })?;
        Ok(users)
    }

    /// The contacts of one customer, as the read models have them.
    pub(super) fn contacts_of(
        &self,
        tenant: &TenantId,
        customer_id: &str,
    ) -> Result<Vec<ContactRow>, AppError> {
        self.models
            .contacts_of(tenant.as_str(), customer_id)
            .map_err(AppError::Internal)
    }

    /// Walks the tenant's customers the caller may read, in id order, from a
    /// page token, calling `take` until it has taken `page` of them; returns
    /// the next page's token (empty after the last).
    pub(super) fn walk(
        &self,
        tenant: &TenantId,
        staff: &Staff,
        page_token: &str,
        page: usize,
        mut take: impl FnMut(&CustomerRow) -> Result<bool, AppError>,
    ) -> Result<String, AppError> {
        const BATCH: usize = 1000;
        let mut cursor = page_token.trim().to_owned();
        let mut taken = 0;
        loop {
            let batch = self
                .models
                .customers_after(tenant.as_str(), &cursor, BATCH)
                .map_err(AppError::Internal)?;
            for customer in &batch {
                cursor = customer.record.customer_id.clone();
                if staff
                    .may_read_customer(customer.record.sales_rep.as_deref())
                    .is_err()
                    || !take(customer)?
                {
                    continue;
                }
                taken += 1;
                if taken >= page {
                    let more = !self
                        .models
                        .customers_after(tenant.as_str(), &cursor, 1)
                        .map_err(AppError::Internal)?
                        .is_empty();
                    return Ok(if more { cursor } else { String::new() });
                }
            }
            if batch.len() < BATCH {
                return Ok(String::new());
            }
        }
    }
}
