//! Customer messages parsed into commands.

use super::text;
use super::{Fields, status};
use crate::domain::access::DocumentRequest;
use crate::domain::customer::{SetDocuments, SetStatus, WriteCustomer};
use crate::domain::policy::Staff;
use crate::domain::values::{CustomerId, Email, Name, RequestId, TenantId};
use access_catalogue::catalogue::{
    BillingDetails, ContactDetails, CustomerRecord, CustomerStatus, DocumentKind,
};
use access_proto::v1 as pb;
use tonic::Status;

/// Parses a customer record.
pub(crate) fn customer_record(
    f: &mut Fields,
    r: &Option<pb::CustomerRecord>,
) -> Option<(CustomerId, CustomerRecord)> {
    let default = pb::CustomerRecord::default();
    let r = r.as_ref().unwrap_or(&default);
    let contact = r.contact.clone().unwrap_or_default();
    let billing = r.billing.clone().unwrap_or_default();
    let customer_id = f.parse("customer.customer_id", CustomerId::parse(&r.customer_id));
    let name = f.parse("customer.name", Name::parse(&r.name));
    let mut short = |field: &str, value: &str| f.parse(field, text(value, 200)).unwrap_or_default();
    let short_name = short("customer.short_name", &r.short_name);
    let default_department = short("customer.default_department", &r.default_department);
    let customer_type = short("customer.customer_type", &r.customer_type);
    let price_list = short("customer.price_list", &r.price_list);
    let sales_rep = short("customer.sales_rep", &r.sales_rep);
    let phone = short("customer.contact.phone", &contact.phone);
    let tax_id = short("customer.billing.tax_id", &billing.tax_id);
    let mut long = |field: &str, value: &str| f.parse(field, text(value, 1000)).unwrap_or_default();
    let contact_address = long("customer.contact.address", &contact.address);
    let billing_address = long("customer.billing.address", &billing.address);
    let mut email = |field: &str, value: &str| {
        if value.trim().is_empty() {
            String::new()
        } else {
            f.parse(field, Email::parse(value))
                .map(|e| e.to_string())
                .unwrap_or_default()
        }
    };
    let contact_email = email("customer.contact.email", &contact.email);
    let billing_email = email("customer.billing.email", &billing.email);
    let (customer_id, name) = (customer_id?, name?);
    let record = CustomerRecord {
        customer_id: customer_id.to_string(),
        name: name.to_string(),
        short_name,
        default_department,
        contact: ContactDetails {
            email: contact_email,
            phone,
            address: contact_address,
        },
        billing: BillingDetails {
            email: billing_email,
            address: billing_address,
            tax_id,
        },
        customer_type,
        price_list,
        sales_rep: (!sales_rep.is_empty()).then_some(sales_rep),
    };
    Some((customer_id, record))
}

/// Parses `CreateCustomerRequest` or `UpdateCustomerRequest`.
pub fn write_customer(
    tenant: TenantId,
    by: Staff,
    request_id: &str,
    customer: &Option<pb::CustomerRecord>,
) -> Result<(RequestId, WriteCustomer), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(request_id));
    let record = customer_record(&mut f, customer);
    f.finish()?;
    let (request_id, (customer_id, record)) = parsed!(request_id, record);
    Ok((
        request_id,
        WriteCustomer {
            tenant,
            by,
            customer_id,
            record,
        },
    ))
}

/// Parses `SetCustomerStatusRequest`.
pub fn set_status(
    tenant: TenantId,
    by: Staff,
    r: &pb::SetCustomerStatusRequest,
) -> Result<(RequestId, SetStatus), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let customer_id = f.parse("customer_id", CustomerId::parse(&r.customer_id));
    let status = f.parse(
        "status",
        match pb::CustomerStatus::try_from(r.status) {
            Ok(pb::CustomerStatus::Active) => Ok(CustomerStatus::Active),
            Ok(pb::CustomerStatus::Inactive) => Ok(CustomerStatus::Inactive),
            Ok(pb::CustomerStatus::Blacklisted) => Ok(CustomerStatus::Blacklisted),
            _ => Err("choose ACTIVE, INACTIVE or BLACKLISTED".to_owned()),
        },
    );
    let reason = f.parse("reason", text(&r.reason, 1000));
    f.finish()?;
    let (request_id, customer_id, status, reason) =
        parsed!(request_id, customer_id, status, reason);
    Ok((
        request_id,
        SetStatus {
            tenant,
            by,
            customer_id,
            status,
            reason,
        },
    ))
}

/// A document kind from the wire: a viewable kind, or a request for payments or reports.
pub fn document_request(kind: i32) -> Result<DocumentRequest, String> {
    Ok(match pb::DocumentKind::try_from(kind) {
        Ok(pb::DocumentKind::SalesQuote) => DocumentRequest::Kind(DocumentKind::SalesQuote),
        Ok(pb::DocumentKind::SalesOrder) => DocumentRequest::Kind(DocumentKind::SalesOrder),
        Ok(pb::DocumentKind::SalesInvoice) => DocumentRequest::Kind(DocumentKind::SalesInvoice),
        Ok(pb::DocumentKind::CreditNote) => DocumentRequest::Kind(DocumentKind::CreditNote),
        Ok(pb::DocumentKind::DeliveryNote) => DocumentRequest::Kind(DocumentKind::DeliveryNote),
        Ok(pb::DocumentKind::Payment) => DocumentRequest::Payment,
        Ok(pb::DocumentKind::Report) => DocumentRequest::Report,
        _ => return Err("choose a document kind".into()),
    })
}

/// A document kind contacts may view: payments and reports never are.
pub fn viewable_kind(kind: i32) -> Result<DocumentKind, String> {
    match document_request(kind)? {
        DocumentRequest::Kind(kind) => Ok(kind),
        _ => Err("payments and reports are never viewable in the portal".to_owned()),
    }
}

/// Parses `SetDocumentVisibilityRequest`.
pub fn set_documents(
    tenant: TenantId,
    by: Staff,
    r: &pb::SetDocumentVisibilityRequest,
) -> Result<(RequestId, SetDocuments), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let customer_id = f.parse("customer_id", CustomerId::parse(&r.customer_id));
    let kinds: Vec<_> = r
        .kinds
        .iter()
        .enumerate()
        .filter_map(|(i, k)| f.parse(&format!("kinds[{i}]"), viewable_kind(*k)))
        .collect();
    f.finish()?;
    let (request_id, customer_id) = parsed!(request_id, customer_id);
    Ok((
        request_id,
        SetDocuments {
            tenant,
            by,
            customer_id,
            kinds,
        },
    ))
}
