//! Reports and bulk invitations of `access.v1.Access`: the access status
//! report, customers without a login, billable users, and bulk invites.

use super::convert::{self, Fields};
use super::status::to_status;
use super::{Shared, context};
use crate::app::{AppError, Invite};
use crate::domain::DomainError;
use crate::domain::Reason;
use crate::domain::contact::Lifecycle;
use crate::domain::policy::Staff;
use crate::domain::values::{CustomerId, Email, Message, RequestId, TenantId};
use crate::projections::{ContactRow, CustomerRow};
use access_catalogue::catalogue::{CustomerRecord, CustomerStatus};
use access_proto::v1 as pb;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};
use tonic_types::StatusExt;

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

fn internal(e: anyhow::Error) -> Status {
    to_status(AppError::Internal(e))
}

fn matches(filter: &Option<pb::CustomerFilter>, record: &CustomerRecord) -> bool {
    let Some(f) = filter else { return true };
    let eq =
        |want: &str, have: &str| want.trim().is_empty() || want.trim().eq_ignore_ascii_case(have);
    eq(&f.customer_type, &record.customer_type)
        && eq(
            &f.sales_rep,
            record.sales_rep.as_deref().unwrap_or_default(),
        )
        && eq(&f.price_list, &record.price_list)
}

fn status_word(s: CustomerStatus) -> &'static str {
    match s {
        CustomerStatus::Active => "active",
        CustomerStatus::Inactive => "inactive",
        CustomerStatus::Blacklisted => "blacklisted",
    }
}

/// Whether a customer has a login that still counts (not revoked).
fn has_login(contacts: &[ContactRow]) -> bool {
    contacts.iter().any(|c| c.lifecycle != Lifecycle::Revoked)
}

/// Walks the tenant's customers the caller may read, in id order, from a page
/// token, calling `take` until it has filled `page` rows; returns the next token.
fn walk(
    shared: &Shared,
    tenant: &TenantId,
    staff: &Staff,
    page_token: &str,
    page: usize,
    mut take: impl FnMut(&CustomerRow) -> Result<bool, Status>,
) -> Result<String, Status> {
    let models = &shared.app.models;
    let mut cursor = page_token.trim().to_owned();
    let mut taken = 0;
    loop {
        let batch = models
            .customers_after(tenant.as_str(), &cursor, 1000)
            .map_err(internal)?;
        let last_batch = batch.len() < 1000;
        for customer in &batch {
            cursor = customer.record.customer_id.clone();
            if staff
                .may_read_customer(customer.record.sales_rep.as_deref())
                .is_err()
            {
                continue;
            }
            if take(customer)? {
                taken += 1;
                if taken >= page {
                    let more = !models
                        .customers_after(tenant.as_str(), &cursor, 1)
                        .map_err(internal)?
                        .is_empty();
                    return Ok(if more { cursor } else { String::new() });
                }
            }
        }
        if last_batch {
            return Ok(String::new());
        }
    }
}

fn page_size(requested: u32) -> usize {
    match requested as usize {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    }
}

/// `ListAccess`.
pub async fn list_access(
    shared: &Shared,
    request: Request<pb::ListAccessRequest>,
) -> Result<Response<pb::ListAccessReply>, Status> {
    let (_, tenant, staff) = shared.auth.staff(&request).await?;
    let r = request.get_ref();
    shared
        .app
        .wait_for(r.min_position)
        .await
        .map_err(to_status)?;
    let models = &shared.app.models;
    let mut rows = Vec::new();
    let wanted = r.status.trim();
    let now = crate::app::now_ms();
    let next = walk(
        shared,
        &tenant,
        &staff,
        &r.page_token,
        page_size(r.page_size),
        |customer| {
            if !matches(&r.filter, &customer.record) {
                return Ok(false);
            }
            let contacts = models
                .contacts_of(tenant.as_str(), &customer.record.customer_id)
                .map_err(internal)?;
            let base = pb::AccessRow {
                customer_id: customer.record.customer_id.clone(),
                customer_name: customer.record.name.clone(),
                customer_status: status_word(customer.status).into(),
                ..Default::default()
            };
            let before = rows.len();
            if contacts.is_empty() && (wanted.is_empty() || wanted == "no_login") {
                rows.push(pb::AccessRow {
                    status: "no_login".into(),
                    ..base.clone()
                });
            }
            for c in contacts {
                if !wanted.is_empty() && c.status_at(now) != wanted {
                    continue;
                }
                let (last_email, last_email_state, _) = c.last_email_words();
                rows.push(pb::AccessRow {
                    contact_id: c.contact_id.clone(),
                    email: c.email.clone(),
                    username: c.username.clone().unwrap_or_default(),
                    kind: c.kind_word().into(),
                    status: c.status_at(now).into(),
                    has_logged_in: c.logged_in,
                    last_email,
                    last_email_state: last_email_state.into(),
                    ..base.clone()
                });
            }
            Ok(rows.len() > before)
        },
    )?;
    Ok(Response::new(pb::ListAccessReply {
        rows,
        next_page_token: next,
    }))
}

/// `ListCustomersWithoutLogin`.
pub async fn customers_without_login(
    shared: &Shared,
    request: Request<pb::ListCustomersRequest>,
) -> Result<Response<pb::ListCustomersReply>, Status> {
    let (_, tenant, staff) = shared.auth.staff(&request).await?;
    let r = request.get_ref();
    shared
        .app
        .wait_for(r.min_position)
        .await
        .map_err(to_status)?;
    let models = &shared.app.models;
    let mut customers = Vec::new();
    let next = walk(
        shared,
        &tenant,
        &staff,
        &r.page_token,
        page_size(r.page_size),
        |customer| {
            if !matches(&r.filter, &customer.record) {
                return Ok(false);
            }
            let contacts = models
                .contacts_of(tenant.as_str(), &customer.record.customer_id)
                .map_err(internal)?;
            if has_login(&contacts) {
                return Ok(false);
            }
            customers.push(super::service::customer_to_pb(customer));
            Ok(true)
        },
    )?;
    Ok(Response::new(pb::ListCustomersReply {
        customers,
        next_page_token: next,
    }))
}

/// `BillableUsers`: every login that exists, approved or not.
pub async fn billable_users(
    shared: &Shared,
    request: Request<pb::BillableUsersRequest>,
) -> Result<Response<pb::BillableUsersReply>, Status> {
    let (_, tenant, staff) = shared.auth.staff(&request).await?;
    if !matches!(
        staff.role,
        crate::domain::policy::Role::Admin | crate::domain::policy::Role::Auditor
    ) {
        return Err(to_status(
            DomainError::PermissionDenied {
                reason: Reason::Role,
                message: "billing figures are for admin and auditor keys".into(),
            }
            .into(),
        ));
    }
    shared
        .app
        .wait_for(request.get_ref().min_position)
        .await
        .map_err(to_status)?;
    let mut reply = pb::BillableUsersReply::default();
    let models = &shared.app.models;
    walk(shared, &tenant, &staff, "", usize::MAX, |customer| {
        for c in models
            .contacts_of(tenant.as_str(), &customer.record.customer_id)
            .map_err(internal)?
        {
            match (c.lifecycle, c.disabled) {
                (Lifecycle::Revoked, _) => {}
                (Lifecycle::Invited, _) => reply.invited += 1,
                (Lifecycle::PendingApproval, _) => reply.pending_approval += 1,
                (Lifecycle::Active, true) => reply.disabled += 1,
                (Lifecycle::Active, false) => reply.active += 1,
            }
        }
        Ok(false)
    })?;
    reply.billable_users = reply.active + reply.disabled + reply.pending_approval;
    Ok(Response::new(reply))
}

/// One customer of a bulk invitation, before it is tried.
struct Target {
    customer_id: String,
    email: String,
}

/// `BulkInvite`: each customer is its own invitation (own request id derived
/// from the bulk's), run concurrently so their appends share group commits.
pub async fn bulk_invite(
    shared: &Shared,
    request: Request<pb::BulkInviteRequest>,
) -> Result<Response<pb::BulkInviteReply>, Status> {
    let (principal, tenant, staff) = shared.auth.staff(&request).await?;
    let r = request.get_ref();
    let app = &shared.app;
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let message = f.parse("message", Message::parse(&r.message));
    let site_rule = convert::site_rule(&mut f, &r.site_rule);
    if !r.all_matching && r.targets.is_empty() {
        f.parse::<()>(
            "targets",
            Err("select customers, or set all_matching with a filter".into()),
        );
    }
    let (request_id, message, site_rule) = f.finish_with((request_id, message, site_rule))?;
    let head = *app.log.head().borrow();
    app.wait_for(head).await.map_err(to_status)?;
    let tenant_row = app
        .models
        .tenant(tenant.as_str())
        .map_err(internal)?
        .ok_or_else(|| to_status(DomainError::NotFound("tenant").into()))?;
    if tenant_row.username_administrators.is_empty() {
        return Err(to_status(
            DomainError::precondition(
                Reason::NoUsernameAdministrators,
                "set one to three username administrators before bulk invitations",
            )
            .into(),
        ));
    }
    let bulk_key = hex::encode(&Sha256::digest(request_id.as_str().as_bytes())[..12]);
    let sub_request = |customer_id: &str| format!("bulk-{bulk_key}-{customer_id}");
    let targets: Vec<Target> = if r.all_matching {
        let mut found = Vec::new();
        walk(shared, &tenant, &staff, "", usize::MAX, |customer| {
            if matches(&r.filter, &customer.record) {
                let id = &customer.record.customer_id;
                let contacts = app
                    .models
                    .contacts_of(tenant.as_str(), id)
                    .map_err(internal)?;
                found.push((
                    has_login(&contacts),
                    customer.record.contact.email.clone(),
                    id.clone(),
                ));
            }
            Ok(false)
        })?;
        // "Select all filtered" selects the customers without a login, and, on
        // a retry, those this bulk invited the first time.
        let mut targets = Vec::new();
        for (has_login, email, customer_id) in found {
            let invited_before = has_login
                && app
                    .log
                    .request(&crate::app::App::scoped_request_id(
                        Some(&tenant),
                        &sub_request(&customer_id),
                    ))
                    .await
                    .map_err(|e| to_status(AppError::from(e)))?
                    .is_some();
            if !has_login || invited_before {
                targets.push(Target { customer_id, email });
            }
        }
        targets
    } else {
        r.targets
            .iter()
            .map(|t| Target {
                customer_id: t.customer_id.trim().to_owned(),
                email: t.email.trim().to_owned(),
            })
            .collect()
    };
    let results = futures::stream::iter(targets.into_iter().map(|target| {
        let (tenant, staff, message, site_rule, principal, bulk_key) = (
            tenant.clone(),
            staff.clone(),
            message.clone(),
            site_rule.clone(),
            principal.clone(),
            bulk_key.clone(),
        );
        let request = &request;
        async move {
            let skip = |reason: &str, message: String| {
                Err(pb::BulkSkipped {
                    customer_id: target.customer_id.clone(),
                    reason: reason.into(),
                    message,
                })
            };
            let sub_id = sub_request(&target.customer_id);
            let Ok(sub_id) = RequestId::parse(&sub_id) else {
                return skip(Reason::NotFound.as_str(), "not a customer id".into());
            };
            let Ok(customer_id) = CustomerId::parse(&target.customer_id) else {
                return skip(Reason::NotFound.as_str(), "not a customer id".into());
            };
            // A retried bulk answers each customer from its first result.
            let seen = app
                .log
                .request(&crate::app::App::scoped_request_id(
                    Some(&tenant),
                    sub_id.as_str(),
                ))
                .await
                .map_err(|e| pb::BulkSkipped {
                    customer_id: target.customer_id.clone(),
                    reason: Reason::Unavailable.as_str().into(),
                    message: e.to_string(),
                })?;
            if seen.is_none() {
                // Whether the customer exists and is the caller's comes first,
                // so a rep learns nothing of other reps' customers.
                let customer = app
                    .models
                    .customer(tenant.as_str(), customer_id.as_str())
                    .unwrap_or_default();
                let Some(customer) = customer else {
                    return skip(Reason::NotFound.as_str(), "customer not found".into());
                };
                if let Err(e) = staff.may_manage_logins_of(customer.record.sales_rep.as_deref()) {
                    let status = to_status(e.into());
                    let reason = status
                        .get_details_error_info()
                        .map(|i| i.reason)
                        .unwrap_or_default();
                    return skip(&reason, status.message().to_owned());
                }
                if target.email.is_empty() {
                    return skip(
                        Reason::NoEmail.as_str(),
                        "no invitation address: not invited".into(),
                    );
                }
                let contacts = app
                    .models
                    .contacts_of(tenant.as_str(), customer_id.as_str())
                    .unwrap_or_default();
                if has_login(&contacts) {
                    return skip(
                        Reason::AlreadyHasLogin.as_str(),
                        "the customer already has a login".into(),
                    );
                }
            }
            let email = match Email::parse(&target.email) {
                Ok(email) => email,
                Err(m) => return skip(Reason::InvalidEmail.as_str(), m),
            };
            let cmd = Invite {
                tenant: tenant.clone(),
                by: staff,
                customer_id,
                email: email.clone(),
                message,
                site_rule,
            };
            let fp = Sha256::digest(
                format!("BulkInvite\0{bulk_key}\0{}\0{}", target.customer_id, email).as_bytes(),
            )
            .into();
            let ctx = context(request, sub_id, fp, Some(tenant), principal.actor());
            match app.execute(&ctx, &cmd).await {
                Ok(outcome) => Ok((
                    outcome.position,
                    pb::BulkInvited {
                        customer_id: target.customer_id.clone(),
                        email: email.to_string(),
                        contact_id: outcome.reply.contact_id,
                    },
                )),
                Err(e) => {
                    let status = to_status(e);
                    let reason = status
                        .get_details_error_info()
                        .map(|i| i.reason)
                        .unwrap_or_else(|| format!("{:?}", status.code()));
                    skip(&reason, status.message().to_owned())
                }
            }
        }
    }))
    .buffer_unordered(64)
    .collect::<Vec<_>>()
    .await;
    let mut reply = pb::BulkInviteReply::default();
    for result in results {
        match result {
            Ok((position, invited)) => {
                reply.position = reply.position.max(position);
                reply.invited.push(invited);
            }
            Err(skipped) => reply.skipped.push(skipped),
        }
    }
    reply
        .invited
        .sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
    reply
        .skipped
        .sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
    Ok(Response::new(reply))
}
