//! Reports and bulk invitations of `access.v1.Access`: the access status
//! report, customers without a login, billable users, and bulk invites.

use super::convert::{self, Fields};
use super::status::to_status;
use super::{Shared, context};
use crate::app::{BulkInvite, BulkSelection, CustomerFilter, PageRequest};
use crate::domain::values::{Message, RequestId};
use access_catalogue::catalogue::CustomerStatus;
use access_proto::v1 as pb;
use tonic::{Request, Response, Status};
use tonic_types::StatusExt;

fn filter(f: &Option<pb::CustomerFilter>) -> CustomerFilter {
    f.as_ref()
        .map(|f| CustomerFilter {
            customer_type: f.customer_type.clone(),
            sales_rep: f.sales_rep.clone(),
            price_list: f.price_list.clone(),
        })
        .unwrap_or_default()
}

fn status_word(s: CustomerStatus) -> &'static str {
    match s {
        CustomerStatus::Active => "active",
        CustomerStatus::Inactive => "inactive",
        CustomerStatus::Blacklisted => "blacklisted",
    }
}

/// `ListAccess`.
pub async fn list_access(
    shared: &Shared,
    request: Request<pb::ListAccessRequest>,
) -> Result<Response<pb::ListAccessReply>, Status> {
    let (_, tenant, staff) = shared.auth.staff(&request).await?;
    let r = request.get_ref();
    let page = PageRequest {
        token: r.page_token.clone(),
        size: r.page_size,
    };
    let (lines, next_page_token) = shared
        .app
        .list_access(
            &tenant,
            &staff,
            &filter(&r.filter),
            &r.status,
            &page,
            r.min_position,
        )
        .await
        .map_err(to_status)?;
    let rows = lines
        .into_iter()
        .map(|line| {
            let record = &line.customer.record;
            let mut row = pb::AccessRow {
                customer_id: record.customer_id.clone(),
                customer_name: record.name.clone(),
                customer_status: status_word(line.customer.status).into(),
                status: line.status.into(),
                ..Default::default()
            };
            if let Some(c) = line.contact {
                let (last_email, last_email_state, _) = c.last_email_words();
                row.kind = c.kind_word().into();
                row.has_logged_in = c.logged_in;
                row.last_email = last_email;
                row.last_email_state = last_email_state.into();
                row.username = c.username.unwrap_or_default();
                row.contact_id = c.contact_id;
                row.email = c.email;
            }
            row
        })
        .collect();
    Ok(Response::new(pb::ListAccessReply {
        rows,
        next_page_token,
    }))
}

/// `ListCustomersWithoutLogin`.
pub async fn customers_without_login(
    shared: &Shared,
    request: Request<pb::ListCustomersRequest>,
) -> Result<Response<pb::ListCustomersReply>, Status> {
    let (_, tenant, staff) = shared.auth.staff(&request).await?;
    let r = request.get_ref();
    let page = PageRequest {
        token: r.page_token.clone(),
        size: r.page_size,
    };
    let (customers, next_page_token) = shared
        .app
        .customers_without_login(&tenant, &staff, &filter(&r.filter), &page, r.min_position)
        .await
        .map_err(to_status)?;
    Ok(Response::new(pb::ListCustomersReply {
        customers: customers.iter().map(super::views::customer_to_pb).collect(),
        next_page_token,
    }))
}

/// `BillableUsers`: every login that exists, approved or not.
pub async fn billable_users(
    shared: &Shared,
    request: Request<pb::BillableUsersRequest>,
) -> Result<Response<pb::BillableUsersReply>, Status> {
    let (_, tenant, staff) = shared.auth.staff(&request).await?;
    let users = shared
        .app
        .billable_users(&tenant, &staff, request.get_ref().min_position)
        .await
        .map_err(to_status)?;
    Ok(Response::new(pb::BillableUsersReply {
        active: users.active,
        disabled: users.disabled,
        pending_approval: users.pending_approval,
        invited: users.invited,
        billable_users: users.active + users.disabled + users.pending_approval,
    }))
}

/// `BulkInvite`.
pub async fn bulk_invite(
    shared: &Shared,
    request: Request<pb::BulkInviteRequest>,
) -> Result<Response<pb::BulkInviteReply>, Status> {
    let (principal, tenant, staff) = shared.auth.staff(&request).await?;
    let r = request.get_ref();
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
    let selection = if r.all_matching {
        BulkSelection::AllMatching(filter(&r.filter))
    } else {
        BulkSelection::Targets(
            r.targets
                .iter()
                .map(|t| (t.customer_id.clone(), t.email.clone()))
                .collect(),
        )
    };
    // Each invitation gets its own request id and fingerprint from the bulk's.
    let ctx = context(
        &request,
        request_id,
        [0; 32],
        Some(tenant.clone()),
        principal.actor(),
    );
    let bulk = BulkInvite {
        tenant,
        by: staff,
        message,
        site_rule,
        selection,
    };
    let outcome = shared
        .app
        .bulk_invite(&ctx, bulk)
        .await
        .map_err(to_status)?;
    Ok(Response::new(pb::BulkInviteReply {
        position: outcome.position,
        invited: outcome
            .invited
            .into_iter()
            .map(|i| pb::BulkInvited {
                customer_id: i.customer_id,
                email: i.email,
                contact_id: i.contact_id,
            })
            .collect(),
        skipped: outcome
            .skipped
            .into_iter()
            .map(|s| {
                let status = to_status(s.error);
                pb::BulkSkipped {
                    customer_id: s.customer_id,
                    reason: status
                        .get_details_error_info()
                        .map(|i| i.reason)
                        .unwrap_or_else(|| format!("{:?}", status.code())),
                    message: status.message().to_owned(),
                }
            })
            .collect(),
    }))
}
