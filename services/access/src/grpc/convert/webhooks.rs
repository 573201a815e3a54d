//! Webhook messages parsed into commands.

use super::Fields;
use crate::app::{WebhookChange, WebhookCommand};
use crate::domain::DomainError;
use crate::domain::policy::Staff;
use crate::domain::values::{GeneratedId, RequestId, TenantId};
use crate::domain::webhooks::check_settings;
use access_catalogue::catalogue::{FeedPoint, WebhookSettings};
use access_proto::v1 as pb;
use tonic::Status;

/// The settings as sent, checked: every problem at once.
pub fn webhook_settings(s: &Option<pb::WebhookSettings>) -> Result<WebhookSettings, Status> {
    let s = s.clone().unwrap_or_default();
    let settings = WebhookSettings {
        url: s.url.trim().to_owned(),
        event_types: s.event_types.iter().map(|t| t.trim().to_owned()).collect(),
        description: s.description.trim().to_owned(),
    };
    let problems = check_settings(&settings, crate::feed::map::is_type);
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(super::super::status::to_status(
            DomainError::Invalid(problems).into(),
        ))
    }
}

/// A change to the webhook `webhook_id` (a fresh id for a create).
pub fn webhook_change(
    tenant: TenantId,
    by: Option<Staff>,
    request_id: &str,
    webhook_id: Option<&str>,
    change: WebhookChange,
) -> Result<(RequestId, WebhookCommand), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(request_id));
    let webhook_id = match webhook_id {
        Some(id) => f.parse("webhook_id", GeneratedId::parse(id)),
        None => Some(GeneratedId::generate()),
    };
    let (request_id, webhook_id) = f.finish_with((request_id, webhook_id))?;
    Ok((
        request_id,
        WebhookCommand {
            tenant,
            by,
            webhook_id,
            change,
        },
    ))
}

/// Parses `ReplayWebhookRequest`'s range: from a position, inclusive.
pub fn replay_range(r: &pb::ReplayWebhookRequest) -> Result<WebhookChange, Status> {
    let mut f = Fields::default();
    let from = f.parse(
        "from_position",
        if r.from_position == 0 {
            Err("the first position to post again, 1 or more".to_owned())
        } else {
            Ok(r.from_position)
        },
    );
    let from = f.finish_with((from,))?.0;
    Ok(WebhookChange::Replay(
        FeedPoint {
            position: from - 1,
            part: u32::MAX,
        },
        r.through_position,
    ))
}
