//! The portal-link RPCs of `access.v1.Access`.

use super::convert::{self, Fields, document_kind_to_pb, fingerprint, rfc3339};
use super::status::to_status;
use super::{Shared, context};
use crate::app::{AppError, CreatePortalLinkCommand, DeletePortalLinkCommand};
use crate::domain::DomainError;
use crate::domain::Reason;
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
    let app = &shared.app;
    let link_id = GeneratedId::generate();
    let token = app
        .keyring
        .portal_link_token(tenant.as_str(), link_id.as_str());
    let cmd = CreatePortalLinkCommand {
        customer_id,
        link: CreatePortalLink {
            tenant: tenant.clone(),
            by: staff,
            link_id,
            kinds,
            expires_at_ms,
            now_ms: 0,
            token_sha256: crate::secrets::sha256(&token),
        },
    };
    let fp = fingerprint("CreatePortalLink", r, |m| m.request_id.clear());
    let ctx = context(
        &request,
        request_id,
        fp,
        Some(tenant.clone()),
        principal.actor(),
    );
    let outcome = app.execute(&ctx, &cmd).await.map_err(to_status)?;
    // A retry gets the first link back: its token is derived from its id.
    let token = app
        .keyring
        .portal_link_token(tenant.as_str(), &outcome.reply);
    Ok(Response::new(pb::CreatePortalLinkReply {
        position: outcome.position,
        url: format!(
            "{}/p/{token}",
            app.settings.public_base_url.trim_end_matches('/')
        ),
        link_id: outcome.reply,
        token,
    }))
}

/// `ResolvePortalLink`: one read-model lookup and one counter update.
pub async fn resolve(
    shared: &Shared,
    request: Request<pb::ResolvePortalLinkRequest>,
) -> Result<Response<pb::ResolvePortalLinkReply>, Status> {
    let (_, tenant, staff) = shared.auth.staff(&request).await?;
    staff.may_check_access().map_err(|e| to_status(e.into()))?;
    let token = request.get_ref().token.trim();
    let unknown = || to_status(DomainError::NotFound("portal link").into());
    if !token.starts_with("pl_") || token.len() > 100 {
        return Err(unknown());
    }
    let app = &shared.app;
    let hash = crate::secrets::sha256(token);
    let lookup = || {
        app.models
            .portal_link(&hash)
            .map_err(|e| to_status(AppError::Internal(e)))
            .map(|row| row.filter(|row| row.tenant == tenant.as_str()))
    };
    let mut row = lookup()?;
    if row.is_none() {
        // A link created a moment ago may not be projected yet.
        let head = *app.log.head().borrow();
        if app.models.checkpoint() < head {
            app.wait_for(head).await.map_err(to_status)?;
            row = lookup()?;
        }
    }
    let row = row.ok_or_else(unknown)?;
    if row.deleted {
        return Err(to_status(
            DomainError::precondition(Reason::LinkDeleted, "this link was deleted").into(),
        ));
    }
    if row.expires_at_ms.is_some_and(|t| t <= crate::app::now_ms()) {
        return Err(to_status(
            DomainError::precondition(Reason::LinkExpired, "this link has expired").into(),
        ));
    }
    let resolve_count = app
        .models
        .count_resolve(&row.link_id)
        .map_err(|e| to_status(AppError::Internal(e)))?;
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
    let (principal, tenant, staff) = shared.auth.staff(&request).await?;
    let r = request.get_ref();
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let link_id = f.parse("link_id", GeneratedId::parse(&r.link_id));
    let (request_id, link_id) = f.finish_with((request_id, link_id))?;
    let cmd = DeletePortalLinkCommand {
        tenant: tenant.clone(),
        by: staff,
        link_id,
    };
    let fp = fingerprint("DeletePortalLink", r, |m| m.request_id.clear());
    let ctx = context(&request, request_id, fp, Some(tenant), principal.actor());
    let app = &shared.app;
    let outcome = app.execute(&ctx, &cmd).await.map_err(to_status)?;
    app.wait_for(outcome.position).await.map_err(to_status)?;
    Ok(Response::new(pb::DeletePortalLinkReply {
        position: outcome.position,
    }))
}
