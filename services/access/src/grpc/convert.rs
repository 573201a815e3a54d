//! Wire messages become domain commands here, through `TryFrom`-style parsing
//! that collects every field violation at once.

use super::status;
use crate::app::{
    AccessAction, AccessCommand, AddPortalUserCommand, Invite, Resend, RevokeKey,
    SetTemporaryPasswordCommand, TemporaryPassword,
};
use crate::domain::access::{Action, DocumentRequest};
use crate::domain::contact::ChangeAccess;
use crate::domain::customer::{SetDocuments, SetStatus, WriteCustomer};
use crate::domain::policy::{Role, Staff};
use crate::domain::tenant::{ChangeSettings, CreateTenant, IssueApiKey};
use crate::domain::values::{
    CustomerId, Email, FieldViolation, GeneratedId, Message, Name, Password, RequestId, SiteName,
    TenantId, Username,
};
use access_catalogue::catalogue::{
    BillingDetails, ContactDetails, CustomerRecord, CustomerStatus, DefaultVisibility,
    DocumentKind, SiteRule,
};
use access_proto::v1 as pb;
use sha2::{Digest, Sha256};
use tonic::Status;

/// Collects violations while parsing the fields of one message.
#[derive(Default)]
pub struct Fields {
    violations: Vec<FieldViolation>,
}

impl Fields {
    /// Parses one field, remembering what is wrong with it.
    pub fn parse<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(description) => {
                self.violations
                    .push(FieldViolation::new(field, description));
                None
            }
        }
    }

    /// `INVALID_ARGUMENT` with every violation, if there was one.
    pub fn finish(self) -> Result<(), Status> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(status::invalid(&self.violations))
        }
    }

    /// `INVALID_ARGUMENT` with every violation, if there was one; else the
    /// parsed values (a tuple of what [`Fields::parse`] gave).
    pub fn finish_with<T: Parsed>(self, values: T) -> Result<T::Values, Status> {
        self.finish()?;
        // `parse` gives `None` only with a violation, so this is a fault.
        values.all().ok_or_else(|| {
            tracing::error!("a field parsed to nothing without a violation");
            status::internal()
        })
    }
}

/// A tuple of parsed fields, each `Some` unless its field was wrong.
pub trait Parsed {
    /// The values themselves.
    type Values;
    /// The values, if every one is there.
    fn all(self) -> Option<Self::Values>;
}

macro_rules! parsed_tuple {
    ($($t:ident),+) => {
        impl<$($t),+> Parsed for ($(Option<$t>,)+) {
            type Values = ($($t,)+);
            #[allow(non_snake_case)]
            fn all(self) -> Option<Self::Values> {
                let ($($t,)+) = self;
                Some(($($t?,)+))
            }
        }
    };
}
parsed_tuple!(A);
parsed_tuple!(A, B);
parsed_tuple!(A, B, C);
parsed_tuple!(A, B, C, D);
parsed_tuple!(A, B, C, D, E);
parsed_tuple!(A, B, C, D, E, F);
parsed_tuple!(A, B, C, D, E, F, G);
parsed_tuple!(A, B, C, D, E, F, G, H);

/// Unwraps values that `Fields::finish` has vouched for.
macro_rules! parsed {
    ($($v:ident),*) => {
        ($(match $v { Some(v) => v, None => return Err(status::internal()) }),*)
    };
}

/// Digest of a request's payload without its request id, for idempotency.
pub fn fingerprint<M: prost::Message + Clone>(
    method: &str,
    message: &M,
    clear: impl FnOnce(&mut M),
) -> [u8; 32] {
    let mut m = message.clone();
    clear(&mut m);
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(m.encode_to_vec());
    h.finalize().into()
}

/// Parses `CreateTenantRequest`; the admin key id is fresh.
pub fn create_tenant(r: &pb::CreateTenantRequest) -> Result<(RequestId, CreateTenant), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let tenant_id = f.parse("tenant_id", TenantId::parse(&r.tenant_id));
    let name = f.parse("name", Name::parse(&r.name));
    let sites: Vec<_> = r
        .sites
        .iter()
        .enumerate()
        .filter_map(|(i, s)| f.parse(&format!("sites[{i}]"), SiteName::parse(s)))
        .collect();
    let default_order_site = f.parse("default_order_site", SiteName::parse(&r.default_order_site));
    f.finish()?;
    let (request_id, tenant_id, name, default_order_site) =
        parsed!(request_id, tenant_id, name, default_order_site);
    Ok((
        request_id,
        CreateTenant {
            tenant_id,
            name,
            sites,
            default_order_site,
            admin_key_id: GeneratedId::generate(),
            admin_key_sha256: [0; 32],
        },
    ))
}

/// Free text of at most `max` characters, trimmed, without control characters.
fn text(value: &str, max: usize) -> Result<String, String> {
    let value = value.trim();
    if value.chars().count() > max {
        Err(format!("at most {max} characters"))
    } else if value.chars().any(|c| c.is_control() && c != '\n') {
        Err("control characters are not allowed".into())
    } else {
        Ok(value.to_owned())
    }
}

/// Parses a customer record.
fn customer_record(
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
        .filter_map(|(i, k)| {
            let kind = match document_request(*k) {
                Ok(DocumentRequest::Kind(kind)) => Ok(kind),
                Ok(_) => Err("payments and reports are never viewable in the portal".to_owned()),
                Err(e) => Err(e),
            };
            f.parse(&format!("kinds[{i}]"), kind)
        })
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

/// Parses `CreateApiKeyRequest`; the key id is fresh.
pub fn create_api_key(
    tenant: TenantId,
    by: Staff,
    r: &pb::CreateApiKeyRequest,
) -> Result<(RequestId, IssueApiKey), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let role = f.parse(
        "role",
        match pb::Role::try_from(r.role) {
            Ok(pb::Role::Admin) => Ok(Role::Admin),
            Ok(pb::Role::InHouse) => Ok(Role::InHouse),
            Ok(pb::Role::Rep) => Ok(Role::Rep),
            Ok(pb::Role::Service) => Ok(Role::Service),
            Ok(pb::Role::Auditor) => Ok(Role::Auditor),
            _ => Err("choose ADMIN, IN_HOUSE, REP, SERVICE or AUDITOR".to_owned()),
        },
    );
    let name = f.parse("name", Name::parse(&r.name));
    let rep_id = f.parse("rep_id", text(&r.rep_id, 200));
    f.finish()?;
    let (request_id, role, name, rep_id) = parsed!(request_id, role, name, rep_id);
    Ok((
        request_id,
        IssueApiKey {
            tenant,
            by,
            key_id: GeneratedId::generate(),
            key_sha256: [0; 32],
            role,
            name,
            rep_id: (!rep_id.is_empty()).then_some(rep_id),
        },
    ))
}

/// Parses `RevokeApiKeyRequest`.
pub fn revoke_api_key(
    tenant: TenantId,
    by: Staff,
    r: &pb::RevokeApiKeyRequest,
) -> Result<(RequestId, RevokeKey), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let key_id = f.parse("key_id", GeneratedId::parse(&r.key_id));
    f.finish()?;
    let (request_id, key_id) = parsed!(request_id, key_id);
    Ok((request_id, RevokeKey { tenant, by, key_id }))
}

/// Parses `UpdateTenantSettingsRequest`.
pub fn change_settings(
    tenant: TenantId,
    by: Staff,
    r: &pb::UpdateTenantSettingsRequest,
) -> Result<(RequestId, ChangeSettings), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let sites: Vec<_> = r
        .sites
        .iter()
        .enumerate()
        .filter_map(|(i, s)| f.parse(&format!("sites[{i}]"), SiteName::parse(s)))
        .collect();
    let default_order_site = f.parse("default_order_site", SiteName::parse(&r.default_order_site));
    let default_visibility = if r.default_site.trim().is_empty() {
        Some(DefaultVisibility::AllSites)
    } else {
        f.parse("default_site", SiteName::parse(&r.default_site))
            .map(|s| DefaultVisibility::OneSite(s.to_string()))
    };
    f.finish()?;
    let (request_id, default_order_site, default_visibility) =
        parsed!(request_id, default_order_site, default_visibility);
    Ok((
        request_id,
        ChangeSettings {
            tenant,
            by,
            sites,
            default_order_site,
            default_visibility,
            inactive_customers_may_log_in: r.inactive_customers_may_log_in,
        },
    ))
}

fn temporary_password(f: &mut Fields, field: &str, text: &str) -> Option<TemporaryPassword> {
    if text.is_empty() {
        Some(TemporaryPassword::Generated)
    } else {
        f.parse(field, Password::parse(text))
            .map(TemporaryPassword::Typed)
    }
}

/// Parses `AddPortalUserRequest`.
pub fn add_portal_user(
    tenant: TenantId,
    by: Staff,
    r: &pb::AddPortalUserRequest,
) -> Result<(RequestId, AddPortalUserCommand), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let customer_id = f.parse("customer_id", CustomerId::parse(&r.customer_id));
    let username = f.parse(
        "username",
        Username::parse(&r.username).and_then(|u| u.staff().map(|_| u)),
    );
    let email = if r.email.trim().is_empty() {
        Some(None)
    } else {
        f.parse("email", Email::parse(&r.email)).map(Some)
    };
    let site_rule = site_rule(&mut f, &r.site_rule);
    let management_password =
        temporary_password(&mut f, "management_password", &r.management_password);
    let staff_password = temporary_password(&mut f, "staff_password", &r.staff_password);
    f.finish()?;
    let (request_id, customer_id, username, email, site_rule, management_password, staff_password) = parsed!(
        request_id,
        customer_id,
        username,
        email,
        site_rule,
        management_password,
        staff_password
    );
    Ok((
        request_id.clone(),
        AddPortalUserCommand {
            tenant,
            by,
            request_id: request_id.to_string(),
            customer_id,
            username,
            email,
            site_rule,
            management_password,
            staff_password,
            hashes: Default::default(),
        },
    ))
}

/// Parses `SetTemporaryPasswordRequest`.
pub fn set_temporary_password(
    tenant: TenantId,
    by: Staff,
    r: &pb::SetTemporaryPasswordRequest,
) -> Result<(RequestId, SetTemporaryPasswordCommand), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let contact_id = f.parse("contact_id", GeneratedId::parse(&r.contact_id));
    let password = temporary_password(&mut f, "password", &r.password);
    f.finish()?;
    let (request_id, contact_id, password) = parsed!(request_id, contact_id, password);
    Ok((
        request_id.clone(),
        SetTemporaryPasswordCommand {
            tenant,
            by,
            request_id: request_id.to_string(),
            contact_id,
            password,
            hash: Default::default(),
        },
    ))
}

/// Parses the action of a `CheckAccessRequest`.
pub fn action(r: &pb::CheckAccessRequest) -> Result<Action, Status> {
    let mut f = Fields::default();
    let action = match pb::Action::try_from(r.action) {
        Ok(pb::Action::Login) => Some(Action::Login),
        Ok(pb::Action::PlaceOrder) => Some(Action::PlaceOrder),
        Ok(pb::Action::ViewCosts) => Some(Action::ViewCosts),
        Ok(pb::Action::ViewBalance) => Some(Action::ViewBalance),
        Ok(pb::Action::ViewDocument) => f
            .parse("document_kind", document_request(r.document_kind))
            .map(Action::ViewDocument),
        Ok(pb::Action::ViewSite) => f
            .parse("site", SiteName::parse(&r.site))
            .map(|s| Action::ViewSite(s.to_string())),
        _ => f.parse::<Action>("action", Err("choose an action".into())),
    };
    f.finish()?;
    action.ok_or_else(status::internal)
}

pub(crate) fn site_rule(f: &mut Fields, rule: &Option<pb::SiteRule>) -> Option<SiteRule> {
    use pb::site_rule::Rule;
    match rule.as_ref().and_then(|r| r.rule.as_ref()) {
        None | Some(Rule::TenantDefault(_)) => Some(SiteRule::TenantDefault),
        Some(Rule::AllSites(_)) => Some(SiteRule::AllSites),
        Some(Rule::OneSite(s)) => f
            .parse("site_rule.one_site.site", SiteName::parse(&s.site))
            .map(|s| SiteRule::OneSite(s.to_string())),
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

/// Parses `InviteCustomerRequest`.
pub fn invite(
    tenant: TenantId,
    by: Staff,
    r: &pb::InviteCustomerRequest,
) -> Result<(RequestId, Invite), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let customer_id = f.parse("customer_id", CustomerId::parse(&r.customer_id));
    let email = f.parse("email", Email::parse(&r.email));
    let message = f.parse("message", Message::parse(&r.message));
    let site_rule = site_rule(&mut f, &r.site_rule);
    f.finish()?;
    let (request_id, customer_id, email, message, site_rule) =
        parsed!(request_id, customer_id, email, message, site_rule);
    Ok((
        request_id,
        Invite {
            tenant,
            by,
            customer_id,
            email,
            message,
            site_rule,
        },
    ))
}

/// Parses `ResendInvitationRequest`.
pub fn resend(
    tenant: TenantId,
    by: Staff,
    r: &pb::ResendInvitationRequest,
) -> Result<(RequestId, Resend), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let contact_id = f.parse("contact_id", GeneratedId::parse(&r.contact_id));
    f.finish()?;
    let (request_id, contact_id) = parsed!(request_id, contact_id);
    Ok((
        request_id,
        Resend {
            tenant,
            by,
            contact_id,
        },
    ))
}

/// Parses a `ContactCommand` for one of the access actions.
pub fn access(
    tenant: TenantId,
    by: Staff,
    action: AccessAction,
    r: &pb::ContactCommand,
) -> Result<(RequestId, AccessCommand), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let contact_id = f.parse("contact_id", GeneratedId::parse(&r.contact_id));
    let reason = f.parse(
        "reason",
        if r.reason.chars().count() <= 1000 {
            Ok(r.reason.trim().to_owned())
        } else {
            Err("a reason has at most 1000 characters".to_owned())
        },
    );
    f.finish()?;
    let (request_id, contact_id, reason) = parsed!(request_id, contact_id, reason);
    Ok((
        request_id,
        AccessCommand {
            action,
            change: ChangeAccess {
                tenant,
                by,
                contact_id,
                reason,
            },
        },
    ))
}

/// Parses a contact id of a query.
pub fn contact_id(s: &str) -> Result<GeneratedId, Status> {
    let mut f = Fields::default();
    let id = f.parse("contact_id", GeneratedId::parse(s));
    f.finish()?;
    id.ok_or_else(status::internal)
}

/// RFC 3339 text of Unix milliseconds.
pub fn rfc3339(ms: i64) -> String {
    rfc3339_ms(ms)
}

/// Unix milliseconds of an RFC 3339 time.
pub fn parse_time(s: &str) -> Result<i64, String> {
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| "use an RFC 3339 time such as 2027-01-31T18:00:00Z".to_owned())
}

fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
