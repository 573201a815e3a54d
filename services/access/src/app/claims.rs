//! What a portal learns about a contact from an ID token or the userinfo
//! endpoint, and whether the contact may still be signed in at all.
//!
//! Claim names beyond OpenID Connect's own (documented in the README):
//! `tenant`, `customer_id`, `customer_status`, `login_kind`
//! (`management` or `staff`), `site_rule` (`tenant_default`, `all_sites`,
//! `one_site`), `sites` (the sites whose stock the contact sees),
//! `order_site`, `stock_totals`, `may_order`, `document_kinds`.

use super::{App, AppError, check_in};
use crate::domain::access::Action;
use crate::projections::{ContactRow, SiteVisibility};
use access_catalogue::catalogue::{CustomerStatus, DocumentKind, LoginKind, SiteRule};
use serde_json::{Map, Value, json};

/// A contact who may be signed in, with their claims.
pub struct SignInClaims {
    /// The contact's row.
    pub contact: ContactRow,
    /// The claims the scopes allow.
    pub claims: Map<String, Value>,
}

fn kind_name(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::SalesQuote => "sales_quote",
        DocumentKind::SalesOrder => "sales_order",
        DocumentKind::SalesInvoice => "sales_invoice",
        DocumentKind::CreditNote => "credit_note",
        DocumentKind::DeliveryNote => "delivery_note",
    }
}

impl App {
    /// Whether a contact may still sign in (the check alone, for every
    /// token presented): their row, or why not.
    pub fn may_sign_in(
        &self,
        tenant: &str,
        contact_id: &str,
    ) -> Result<Result<ContactRow, String>, AppError> {
        let Some(contact) = self
            .models
            .contact(tenant, contact_id)
            .map_err(AppError::Internal)?
        else {
            return Ok(Err("the contact is gone".into()));
        };
        let decision = check_in(&self.models, tenant, &contact, &Action::Login)?;
        if !decision.allowed {
            return Ok(Err(decision.message));
        }
        if contact.temporary {
            return Ok(Err("the contact was given a temporary password".into()));
        }
        Ok(Ok(contact))
    }

    /// The claims of a contact who may still sign in (not disabled, revoked,
    /// forgotten, pending, on a temporary password, or kept out by the
    /// customer's status), or why not.
    pub fn sign_in_claims(
        &self,
        tenant: &str,
        contact_id: &str,
        scopes: &[String],
    ) -> Result<Result<SignInClaims, String>, AppError> {
        let contact = match self.may_sign_in(tenant, contact_id)? {
            Ok(contact) => contact,
            Err(why) => return Ok(Err(why)),
        };
        let (Some(tenant_row), Some(customer)) = (
            self.models.tenant(tenant).map_err(AppError::Internal)?,
            self.models
                .customer(tenant, &contact.customer_id)
                .map_err(AppError::Internal)?,
        ) else {
            return Ok(Err("the customer is gone".into()));
        };
        let visibility = SiteVisibility::resolve(&contact.site_rule, &tenant_row);
        let may_order = check_in(&self.models, tenant, &contact, &Action::PlaceOrder)?.allowed;
        let documents: Vec<&str> = customer
            .documents
            .as_deref()
            .unwrap_or(&DocumentKind::ALL)
            .iter()
            .map(|k| kind_name(*k))
            .collect();
        let mut claims = json!({
            "tenant": tenant,
            "customer_id": contact.customer_id,
            "customer_status": match customer.status {
                CustomerStatus::Active => "active",
                CustomerStatus::Inactive => "inactive",
                CustomerStatus::Blacklisted => "blacklisted",
            },
            "login_kind": match contact.kind {
                LoginKind::Management => "management",
                LoginKind::Staff => "staff",
            },
            "site_rule": match contact.site_rule {
                SiteRule::TenantDefault => "tenant_default",
                SiteRule::AllSites => "all_sites",
                SiteRule::OneSite(_) => "one_site",
            },
            "sites": visibility.visible_sites,
            "order_site": visibility.order_site,
            "stock_totals": visibility.stock_totals,
            "may_order": may_order,
            "document_kinds": documents,
        });
        let map = claims
            .as_object_mut()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("claims are an object")))?;
        let has = |s: &str| scopes.iter().any(|x| x == s);
        if has("email") && !contact.email.is_empty() {
            map.insert("email".into(), contact.email.clone().into());
            // An invited contact proved the email by setting a password
            // through the link sent to it.
            map.insert(
                "email_verified".into(),
                (!contact.identity_id.is_empty()).into(),
            );
        }
        if has("profile") {
            let name = contact
                .username
                .clone()
                .unwrap_or_else(|| contact.email.clone());
            map.insert("preferred_username".into(), name.into());
        }
        let claims = std::mem::take(map);
        Ok(Ok(SignInClaims { contact, claims }))
    }
}
