//! The webhook RPCs of `access.v1.TenantAdmin`: admin keys, and the
//! operator for replays.

use super::auth::Principal;
use super::convert::{self, Fields};
use super::status::to_status;
use super::{Shared, context};
use crate::app::{Outcome, WebhookChange, WebhookChanged, WebhookCommand};
use crate::domain::policy::Staff;
use crate::domain::values::{RequestId, TenantId};
use crate::projections::{Failure, WebhookRow};
use access_proto::v1 as pb;
use tonic::{Request, Response, Status};

fn failure_to_pb(f: Failure) -> pb::WebhookFailure {
    pb::WebhookFailure {
        event_id: f.event_id,
        position: f.at.position,
        part: f.at.part,
        attempts: f.attempts,
        error: f.error,
        since_ms: f.since_ms,
    }
}

/// A webhook as the API shows it (never its secret).
fn webhook_to_pb(row: WebhookRow) -> pb::Webhook {
    let state = match (&row.gave_up, &row.failing) {
        (Some(_), _) => pb::WebhookState::GaveUp,
        (None, Some(_)) => pb::WebhookState::Failing,
        (None, None) => pb::WebhookState::Delivering,
    };
    let (last_id, last_ms) = row.last_delivered.unwrap_or_default();
    pb::Webhook {
        webhook_id: row.webhook_id,
        settings: Some(pb::WebhookSettings {
            url: row.settings.url,
            event_types: row.settings.event_types,
            description: row.settings.description,
        }),
        secret_generation: row.secret.generation,
        state: state.into(),
        delivered_through_position: row.cursor.position,
        delivered_through_part: row.cursor.part,
        delivered: row.delivered,
        last_delivered_event_id: last_id,
        last_delivered_at_ms: last_ms,
        failure: row.gave_up.or(row.failing).map(failure_to_pb),
        replay: row.replay.map(|r| pb::WebhookReplay {
            position: r.cursor.position,
            part: r.cursor.part,
            through_position: r.through,
            count: r.count,
        }),
    }
}

/// How a change's message is parsed into its command.
type Parse<M> = fn(TenantId, Staff, &M) -> Result<(RequestId, WebhookCommand), Status>;

/// A staff change to a webhook, run.
async fn change<M: prost::Message + Clone>(
    shared: &Shared,
    request: &Request<M>,
    method: &'static str,
    parse: Parse<M>,
    clear: fn(&mut M),
) -> Result<(WebhookCommand, Outcome<WebhookChanged>), Status> {
    let c = shared.staff_command(request, method, clear, parse).await?;
    let outcome = shared
        .app
        .change_webhook(&c.ctx, &c.cmd)
        .await
        .map_err(to_status)?;
    Ok((c.cmd, outcome))
}

/// The reply of a change: the webhook as it is after it (none once deleted).
async fn reply(
    shared: &Shared,
    cmd: &WebhookCommand,
    position: u64,
) -> Result<Response<pb::WebhookReply>, Status> {
    let row = shared
        .app
        .webhook(&cmd.tenant, cmd.webhook_id.as_str(), position)
        .await
        .ok();
    Ok(Response::new(pb::WebhookReply {
        position,
        webhook: row.map(webhook_to_pb),
    }))
}

/// `CreateWebhook`.
pub async fn create(
    shared: &Shared,
    request: Request<pb::CreateWebhookRequest>,
) -> Result<Response<pb::CreateWebhookReply>, Status> {
    let parse: Parse<pb::CreateWebhookRequest> = |tenant, by, r| {
        let settings = convert::webhook_settings(&r.settings)?;
        convert::webhook_change(
            tenant,
            Some(by),
            &r.request_id,
            None,
            WebhookChange::Create(settings),
        )
    };
    let clear = |m: &mut pb::CreateWebhookRequest| m.request_id.clear();
    let (_, outcome) = change(shared, &request, "CreateWebhook", parse, clear).await?;
    Ok(Response::new(pb::CreateWebhookReply {
        position: outcome.position,
        webhook_id: outcome.reply.webhook_id.clone(),
        secret: outcome.reply.secret.clone().unwrap_or_default(),
    }))
}

/// `UpdateWebhook`.
pub async fn update(
    shared: &Shared,
    request: Request<pb::UpdateWebhookRequest>,
) -> Result<Response<pb::WebhookReply>, Status> {
    let parse: Parse<pb::UpdateWebhookRequest> = |tenant, by, r| {
        let settings = convert::webhook_settings(&r.settings)?;
        let id = Some(r.webhook_id.as_str());
        convert::webhook_change(
            tenant,
            Some(by),
            &r.request_id,
            id,
            WebhookChange::Update(settings),
        )
    };
    let clear = |m: &mut pb::UpdateWebhookRequest| m.request_id.clear();
    let (cmd, outcome) = change(shared, &request, "UpdateWebhook", parse, clear).await?;
    reply(shared, &cmd, outcome.position).await
}

/// `RotateWebhookSecret`.
pub async fn rotate_secret(
    shared: &Shared,
    request: Request<pb::RotateWebhookSecretRequest>,
) -> Result<Response<pb::RotateWebhookSecretReply>, Status> {
    let parse: Parse<pb::RotateWebhookSecretRequest> = |tenant, by, r| {
        let id = Some(r.webhook_id.as_str());
        convert::webhook_change(
            tenant,
            Some(by),
            &r.request_id,
            id,
            WebhookChange::RotateSecret,
        )
    };
    let clear = |m: &mut pb::RotateWebhookSecretRequest| m.request_id.clear();
    let (_, outcome) = change(shared, &request, "RotateWebhookSecret", parse, clear).await?;
    Ok(Response::new(pb::RotateWebhookSecretReply {
        position: outcome.position,
        secret: outcome.reply.secret.clone().unwrap_or_default(),
    }))
}

/// `DeleteWebhook`.
pub async fn delete(
    shared: &Shared,
    request: Request<pb::DeleteWebhookRequest>,
) -> Result<Response<pb::WebhookReply>, Status> {
    let parse: Parse<pb::DeleteWebhookRequest> = |tenant, by, r| {
        let id = Some(r.webhook_id.as_str());
        let remove = WebhookChange::Remove(r.reason.trim().to_owned());
        convert::webhook_change(tenant, Some(by), &r.request_id, id, remove)
    };
    let clear = |m: &mut pb::DeleteWebhookRequest| m.request_id.clear();
    let (cmd, outcome) = change(shared, &request, "DeleteWebhook", parse, clear).await?;
    reply(shared, &cmd, outcome.position).await
}

/// `ResumeWebhook`.
pub async fn resume(
    shared: &Shared,
    request: Request<pb::ResumeWebhookRequest>,
) -> Result<Response<pb::WebhookReply>, Status> {
    let parse: Parse<pb::ResumeWebhookRequest> = |tenant, by, r| {
        let id = Some(r.webhook_id.as_str());
        convert::webhook_change(tenant, Some(by), &r.request_id, id, WebhookChange::Resume)
    };
    let clear = |m: &mut pb::ResumeWebhookRequest| m.request_id.clear();
    let (cmd, outcome) = change(shared, &request, "ResumeWebhook", parse, clear).await?;
    reply(shared, &cmd, outcome.position).await
}

/// `ReplayWebhook`: an admin of the tenant, or the operator naming it.
pub async fn replay(
    shared: &Shared,
    request: Request<pb::ReplayWebhookRequest>,
) -> Result<Response<pb::WebhookReply>, Status> {
    let principal = shared.auth.authenticate(&request).await?;
    let r = request.get_ref();
    let (tenant, by) = match &principal {
        Principal::Operator => {
            let mut f = Fields::default();
            let tenant = f.parse("tenant", TenantId::parse(r.tenant.trim()));
            (f.finish_with((tenant,))?.0, None)
        }
        Principal::Staff { .. } => {
            let (_, tenant, staff) = shared.auth.staff(&request).await?;
            if !r.tenant.trim().is_empty() && r.tenant.trim() != tenant.as_str() {
                let mut f = Fields::default();
                f.parse::<()>(
                    "tenant",
                    Err("a key replays its own tenant's webhooks only".into()),
                );
                f.finish()?;
            }
            (tenant, Some(staff))
        }
    };
    let range = convert::replay_range(r)?;
    let (request_id, cmd) = convert::webhook_change(
        tenant.clone(),
        by,
        &r.request_id,
        Some(&r.webhook_id),
        range,
    )?;
    let fp = convert::fingerprint("ReplayWebhook", r, |m| m.request_id.clear());
    let ctx = context(&request, request_id, fp, Some(tenant), principal.actor());
    let outcome = shared
        .app
        .change_webhook(&ctx, &cmd)
        .await
        .map_err(to_status)?;
    reply(shared, &cmd, outcome.position).await
}

/// `GetWebhook`.
pub async fn get(
    shared: &Shared,
    request: Request<pb::GetWebhookRequest>,
) -> Result<Response<pb::Webhook>, Status> {
    let (_, tenant, staff) = shared.auth.staff(&request).await?;
    staff.may_manage_tenant().map_err(|e| to_status(e.into()))?;
    let r = request.get_ref();
    let row = shared
        .app
        .webhook(&tenant, r.webhook_id.trim(), r.min_position)
        .await
        .map_err(to_status)?;
    Ok(Response::new(webhook_to_pb(row)))
}

/// `ListWebhooks`.
pub async fn list(
    shared: &Shared,
    request: Request<pb::ListWebhooksRequest>,
) -> Result<Response<pb::ListWebhooksReply>, Status> {
    let (_, tenant, staff) = shared.auth.staff(&request).await?;
    staff.may_manage_tenant().map_err(|e| to_status(e.into()))?;
    let rows = shared
        .app
        .webhooks(&tenant, request.get_ref().min_position)
        .await
        .map_err(to_status)?;
    Ok(Response::new(pb::ListWebhooksReply {
        webhooks: rows.into_iter().map(webhook_to_pb).collect(),
    }))
}
