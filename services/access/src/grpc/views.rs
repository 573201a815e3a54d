//! Read-model rows and domain values as wire messages.

use super::convert::rfc3339;
use crate::projections::{ContactRow, CustomerRow};
use access_catalogue::catalogue::{
    CustomerRecord, CustomerStatus, DocumentKind, FactorRequirement, SiteRule,
};
use access_proto::v1 as pb;

/// The wire form of a customer record.
pub fn customer_record_to_pb(r: &CustomerRecord) -> pb::CustomerRecord {
    pb::CustomerRecord {
        customer_id: r.customer_id.clone(),
        name: r.name.clone(),
        short_name: r.short_name.clone(),
        default_department: r.default_department.clone(),
        contact: Some(pb::ContactDetails {
            email: r.contact.email.clone(),
            phone: r.contact.phone.clone(),
            address: r.contact.address.clone(),
        }),
        billing: Some(pb::BillingDetails {
            email: r.billing.email.clone(),
            address: r.billing.address.clone(),
            tax_id: r.billing.tax_id.clone(),
        }),
        customer_type: r.customer_type.clone(),
        price_list: r.price_list.clone(),
        sales_rep: r.sales_rep.clone().unwrap_or_default(),
    }
}

/// The wire form of a customer status.
pub fn status_to_pb(s: CustomerStatus) -> pb::CustomerStatus {
    match s {
        CustomerStatus::Active => pb::CustomerStatus::Active,
        CustomerStatus::Inactive => pb::CustomerStatus::Inactive,
        CustomerStatus::Blacklisted => pb::CustomerStatus::Blacklisted,
    }
}

/// The wire form of a document kind.
pub fn document_kind_to_pb(kind: DocumentKind) -> pb::DocumentKind {
    match kind {
        DocumentKind::SalesQuote => pb::DocumentKind::SalesQuote,
        DocumentKind::SalesOrder => pb::DocumentKind::SalesOrder,
        DocumentKind::SalesInvoice => pb::DocumentKind::SalesInvoice,
        DocumentKind::CreditNote => pb::DocumentKind::CreditNote,
        DocumentKind::DeliveryNote => pb::DocumentKind::DeliveryNote,
    }
}

/// The wire form of a site rule.
pub fn site_rule_to_pb(rule: &SiteRule) -> pb::SiteRule {
    use pb::site_rule::Rule;
    pb::SiteRule {
        rule: Some(match rule {
            SiteRule::TenantDefault => Rule::TenantDefault(pb::TenantDefault {}),
            SiteRule::AllSites => Rule::AllSites(pb::AllSites {}),
            SiteRule::OneSite(site) => Rule::OneSite(pb::OneSite { site: site.clone() }),
        }),
    }
}

/// A contact as the API shows it, its lock judged at `now`.
pub fn contact_to_pb(row: ContactRow, now: i64) -> pb::Contact {
    let (last_email, last_email_state, last_email_error) = row.last_email_words();
    let kind = row.kind_word();
    let failed_logins = row.failed_logins.len() as u32;
    let locked_until = if row.locked_until_ms > now {
        rfc3339(row.locked_until_ms)
    } else {
        String::new()
    };
    pb::Contact {
        failed_logins,
        locked_until,
        status: row.status().into(),
        site_rule: Some(site_rule_to_pb(&row.site_rule)),
        contact_id: row.contact_id,
        customer_id: row.customer_id,
        email: row.email,
        invitation_id: row.invitation_id,
        username: row.username.unwrap_or_default(),
        kind: kind.into(),
        must_change_password: row.temporary,
        has_logged_in: row.logged_in,
        last_email,
        last_email_state: last_email_state.into(),
        last_email_error,
        // Read beside the row, where a caller shows them.
        second_factors: Vec::new(),
    }
}

/// A customer as the API shows it.
pub fn customer_to_pb(row: &CustomerRow) -> pb::Customer {
    let kinds = row
        .documents
        .clone()
        .unwrap_or_else(|| access_catalogue::catalogue::DocumentKind::ALL.to_vec());
    pb::Customer {
        record: Some(customer_record_to_pb(&row.record)),
        status: status_to_pb(row.status) as i32,
        visible_documents: kinds
            .into_iter()
            .map(|k| document_kind_to_pb(k) as i32)
            .collect(),
        second_factor: requirement_to_pb(row.second_factor) as i32,
    }
}

/// A sign-in requirement as the API names it.
pub fn requirement_to_pb(r: FactorRequirement) -> pb::SecondFactorRequirement {
    match r {
        FactorRequirement::None => pb::SecondFactorRequirement::Password,
        FactorRequirement::AnySecondFactor => pb::SecondFactorRequirement::AnySecondFactor,
        FactorRequirement::Passkey => pb::SecondFactorRequirement::Passkey,
    }
}
