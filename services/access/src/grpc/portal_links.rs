//! The portal-link RPCs of `access.v1.Access`.

use super::convert::{self, Fields, fingerprint, rfc3339};
use super::status::to_status;
use super::views::document_kind_to_pb;
use super::{Shared, context};
use crate::app::{CreatePortalLinkCommand, DeletePortalLinkCommand};
use crate::domain::access::DocumentRequest;
use crate::domain::portal_links::CreatePortalLink;
use crate::domain::values::{CustomerId, GeneratedId, RequestId};
use access_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::parse_time;

/// `CreatePortalLink`.
pub async fn create(
    shared: &Shared,
    request: Request<pb::CreatePortalLinkRequest>,
) -> Result<Response<pb::CreatePortalLinkReply>, Status> {
    let (principal, tenant, staff) = shared.auth.staff(&request).await?;
    let r = request.get_ref();
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let customer_id = f.parse("customer_id", CustomerId::parse(&r.customer_id));
    let kinds: Vec<_> = r
        .kinds
        .iter()
        .enumerate()
        .filter_map(|(i, k)| {
            let kind = match convert::document_request(*k) {
                Ok(DocumentRequest::Kind(kind)) => Ok(kind),
                Ok(_) => Err("payments and reports are never viewable in the portal".to_owned()),
                Err(e) => Err(e),
            };
            f.parse(&format!("kinds[{i}]"), kind)
        })
        .collect();
    let expires_at_ms = if r.expires_at.trim().is_empty() {
        Some(None)
    } else {
        f.parse("expires_at", parse_time(&r.expires_at)).map(Some)
    };
    let (request_id, customer_id, expires_at_ms) =
        f.finish_with((request_id, customer_id, expires_at_ms))?;
    let cmd = CreatePortalLinkCommand {
        customer_id,
        link: CreatePortalLink {
            tenant: tenant.clone(),
            by: staff,
            link_id: GeneratedId::generate(),
            kinds,
            expires_at_ms,
            now_ms: 0,
            token_sha256: [0; 32],
        },
    };
    let fp = fingerprint("CreatePortalLink", r, |m| m.request_id.clear());
    let ctx = context(&request, request_id, fp, Some(tenant), principal.actor());
    let outcome = shared
        .app
        .create_portal_link(&ctx, cmd)
        .await
        .map_err(to_status)?;
    Ok(Response::new(pb::CreatePortalLinkReply {
        position: outcome.position,
        url: outcome.reply.url,
        link_id: outcome.reply.link_id,
        token: outcome.reply.token,
    }))
}

/// `ResolvePortalLink`: one read-model lookup and one counter update.
pub async fn resolve(
    shared: &Shared,
    request: Request<pb::ResolvePortalLinkRequest>,
) -> Result<Response<pb::ResolvePortalLinkReply>, Status> {
    let (_, tenant, staff) = shared.auth.staff(&request).await?;
    staff.may_check_access().map_err(|e| to_status(e.into()))?;
    let (row, resolve_count) = shared
        .app
        .resolve_portal_link(&tenant, request.get_ref().token.trim())
        .await
        .map_err(to_status)?;
    Ok(Response::new(pb::ResolvePortalLinkReply {
        link_id: row.link_id,
        customer_id: row.customer_id,
        kinds: row
            .kinds
            .into_iter()
            .map(|k| document_kind_to_pb(k) as i32)
            .collect(),
        resolve_count,
        expires_at: row.expires_at_ms.map(rfc3339).unwrap_or_default(),
    }))
}

/// `DeletePortalLink`: answers once the link no longer resolves.
pub async fn delete(
    shared: &Shared,
    request: Request<pb::DeletePortalLinkRequest>,
) -> Result<Response<pb::DeletePortalLinkReply>, Status> {
    let parse = |tenant, by, r: &pb::DeletePortalLinkRequest| {
        let mut f = Fields::default();
        let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
        let link_id = f.parse("link_id", GeneratedId::parse(&r.link_id));
        let (request_id, link_id) = f.finish_with((request_id, link_id))?;
        let cmd = DeletePortalLinkCommand {
            tenant,
            by,
            link_id,
        };
        Ok((request_id, cmd))
    };
    let clear = |m: &mut pb::DeletePortalLinkRequest| m.request_id.clear();
    let c = shared
        .staff_command(&request, "DeletePortalLink", clear, parse)
        .await?;
    let outcome = shared
        .app
        .delete_portal_link(&c.ctx, &c.cmd)
        .await
        .map_err(to_status)?;
    Ok(Response::new(pb::DeletePortalLinkReply {
        position: outcome.position,
    }))
}
