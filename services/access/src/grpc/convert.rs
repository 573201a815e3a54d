//! Wire messages become domain commands here, through `TryFrom`-style parsing
//! that collects every field violation at once.

use super::status;
use crate::app::{AccessAction, AccessCommand, Invite, Resend};
use crate::domain::contact::ChangeAccess;
use crate::domain::customer::CreateCustomer;
use crate::domain::tenant::CreateTenant;
use crate::domain::values::{
    CustomerId, Email, FieldViolation, GeneratedId, Message, Name, RequestId, SiteName, TenantId,
};
use access_events::catalogue::SiteRule;
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
}

/// Unwraps values that `Fields::finish` has vouched for.
macro_rules! parsed {
    ($($v:ident),*) => {
        ($(match $v { Some(v) => v, None => return Err(Status::internal("parse bookkeeping")) }),*)
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

/// Parses `CreateCustomerRequest`.
pub fn create_customer(
    tenant: TenantId,
    r: &pb::CreateCustomerRequest,
) -> Result<(RequestId, CreateCustomer), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let customer_id = f.parse("customer_id", CustomerId::parse(&r.customer_id));
    let name = f.parse("name", Name::parse(&r.name));
    f.finish()?;
    let (request_id, customer_id, name) = parsed!(request_id, customer_id, name);
    Ok((
        request_id,
        CreateCustomer {
            tenant,
            customer_id,
            name,
        },
    ))
}

fn site_rule(f: &mut Fields, rule: &Option<pb::SiteRule>) -> Option<SiteRule> {
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
    r: &pb::ResendInvitationRequest,
) -> Result<(RequestId, Resend), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let contact_id = f.parse("contact_id", GeneratedId::parse(&r.contact_id));
    f.finish()?;
    let (request_id, contact_id) = parsed!(request_id, contact_id);
    Ok((request_id, Resend { tenant, contact_id }))
}

/// Parses a `ContactCommand` for one of the access actions.
pub fn access(
    tenant: TenantId,
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
    id.ok_or_else(|| Status::internal("parse bookkeeping"))
}

/// RFC 3339 text of Unix milliseconds.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
