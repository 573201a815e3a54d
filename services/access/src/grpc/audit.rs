//! `Audit`: a tenant's history, its access at a past moment, and its chains,
//! for the tenant's `admin` and `auditor` keys.

use super::Shared;
use super::auth::Principal;
use super::convert::{Fields, parse_time, rfc3339};
use super::status::to_status;
use crate::audit::export::Exported;
use crate::audit::{HistoryQuery, history::Subject};
use crate::checkpoints::CheckpointUnavailable;
use crate::domain::Reason;
use crate::domain::values::{CustomerId, GeneratedId};
use access_proto::v1 as pb;
use access_proto::v1::audit_server::Audit;
use std::pin::Pin;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// The `Audit` service.
pub struct AuditService(pub Shared);

/// Lines in flight between the log walk and a slow reader.
const STREAM_BUFFER: usize = 256;

fn optional_time(f: &mut Fields, field: &str, text: &str) -> Option<Option<i64>> {
    if text.trim().is_empty() {
        Some(None)
    } else {
        f.parse(field, parse_time(text)).map(Some)
    }
}

impl AuditService {
    async fn auditor<T>(&self, request: &Request<T>) -> Result<String, Status> {
        let (_, tenant, staff) = self.0.auth.staff(request).await?;
        staff.may_audit().map_err(|e| to_status(e.into()))?;
        Ok(tenant.to_string())
    }
}

/// How long a checkpoint waits for the follower to reach the log's head.
const CHECKPOINT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

#[tonic::async_trait]
impl Audit for AuditService {
    type ReplayHistoryStream = Pin<Box<dyn Stream<Item = Result<pb::HistoryEvent, Status>> + Send>>;
    type ExportLogStream = Pin<Box<dyn Stream<Item = Result<pb::ExportedEvent, Status>> + Send>>;

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn replay_history(
        &self,
        request: Request<pb::ReplayHistoryRequest>,
    ) -> Result<Response<Self::ReplayHistoryStream>, Status> {
        let tenant = self.auditor(&request).await?;
        let r = request.into_inner();
        let mut f = Fields::default();
        let given = [&r.customer_id, &r.contact_id, &r.key_id]
            .iter()
            .filter(|s| !s.trim().is_empty())
            .count();
        if given > 1 {
            f.parse::<()>(
                "customer_id",
                Err("give at most one of customer_id, contact_id and key_id".into()),
            );
        }
        let subject = if !r.customer_id.trim().is_empty() {
            f.parse("customer_id", CustomerId::parse(&r.customer_id))
                .map(|c| Subject::Customer(c.to_string()))
        } else if !r.contact_id.trim().is_empty() {
            f.parse("contact_id", GeneratedId::parse(&r.contact_id))
                .map(|c| Subject::Contact(c.to_string()))
        } else if !r.key_id.trim().is_empty() {
            Some(Subject::Key(r.key_id.trim().to_owned()))
        } else {
            Some(Subject::Tenant)
        };
        let from_ms = optional_time(&mut f, "from_time", &r.from_time);
        let to_ms = optional_time(&mut f, "to_time", &r.to_time);
        let (subject, from_ms, to_ms) = f.finish_with((subject, from_ms, to_ms))?;
        let query = HistoryQuery {
            tenant,
            subject,
            from_ms,
            to_ms,
            from_position: r.from_position,
            to_position: r.to_position,
        };
        let mut rx = self.0.app.history(query);
        let (out_tx, out_rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                let item = line.map_err(to_status).map(|l| pb::HistoryEvent {
                    position: l.envelope.position,
                    occurred_at: rfc3339(l.envelope.occurred_at_ms),
                    stream: l.envelope.stream.to_string(),
                    event_type: l.envelope.event_type.clone(),
                    schema_version: u32::from(l.envelope.schema_version),
                    actor: l.actor,
                    request_id: crate::app::App::caller_request_id(
                        l.envelope.tenant.as_deref(),
                        &l.envelope.request_id,
                    )
                    .to_owned(),
                    correlation_id: l.envelope.correlation_id.to_string(),
                    summary: l.summary,
                    payload_json: l.payload_json,
                    event_id: l.envelope.event_id.to_string(),
                });
                if out_tx.send(item).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn access_at(
        &self,
        request: Request<pb::AccessAtRequest>,
    ) -> Result<Response<pb::AccessAtReply>, Status> {
        let tenant = self.auditor(&request).await?;
        let r = request.get_ref();
        let mut f = Fields::default();
        let at = f.parse("at", parse_time(&r.at));
        let (customer, contact) = match (r.customer_id.trim(), r.contact_id.trim()) {
            ("", "") => {
                f.parse::<()>(
                    "customer_id",
                    Err("give a customer_id or a contact_id".into()),
                );
                (None, None)
            }
            (customer, "") => (
                f.parse("customer_id", CustomerId::parse(customer))
                    .map(|c| c.to_string()),
                None,
            ),
            ("", contact) => (
                None,
                f.parse("contact_id", GeneratedId::parse(contact))
                    .map(|c| c.to_string()),
            ),
            _ => {
                f.parse::<()>(
                    "customer_id",
                    Err("give a customer_id or a contact_id, not both".into()),
                );
                (None, None)
            }
        };
        let at = f.finish_with((at,))?.0;
        let answer = self
            .0
            .app
            .access_at(&tenant, at, customer.as_deref(), contact.as_deref())
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::AccessAtReply {
            at: rfc3339(at),
            position: answer.position,
            events_replayed: answer.events_replayed,
            contacts: answer
                .contacts
                .into_iter()
                .map(|a| pb::ContactAccess {
                    status: a.contact.status().into(),
                    contact_id: a.contact.contact_id,
                    customer_id: a.contact.customer_id,
                    email: a.contact.email,
                    username: a.contact.username.unwrap_or_default(),
                    could_log_in: a.could_log_in,
                    could_place_orders: a.could_place_orders,
                    reason: a.reason,
                    visible_sites: a.visibility.visible_sites,
                    order_site: a.visibility.order_site,
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn get_checkpoint(
        &self,
        request: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::GetCheckpointReply>, Status> {
        if let Principal::Staff { .. } = self.0.auth.authenticate(&request).await? {
            self.auditor(&request).await?;
        }
        let head = self.0.app.latest().await.map_err(to_status)?;
        let checkpoint = self
            .0
            .checkpoints
            .sign_at_least(head, CHECKPOINT_WAIT)
            .await
            .map_err(|e| match e {
                CheckpointUnavailable::Behind { .. } => {
                    to_status(crate::app::AppError::Unavailable(e.to_string()))
                }
                CheckpointUnavailable::Damaged(_) => to_status(
                    crate::domain::DomainError::FailedPrecondition {
                        reason: Reason::HistoryDamaged,
                        message: e.to_string(),
                    }
                    .into(),
                ),
            })?;
        Ok(Response::new(pb::GetCheckpointReply {
            checkpoint: checkpoint.to_line(),
            position: checkpoint.state.position,
            public_key: hex::encode(checkpoint.key),
        }))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn export_log(
        &self,
        request: Request<pb::ExportLogRequest>,
    ) -> Result<Response<Self::ExportLogStream>, Status> {
        let tenant = match self.0.auth.authenticate(&request).await? {
            Principal::Operator => None,
            Principal::Staff { .. } => Some(self.auditor(&request).await?),
        };
        let mut exported = self.0.app.export(tenant);
        let checkpoints = self.0.checkpoints.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            while let Some(part) = exported.recv().await {
                let item = part.map_err(to_status).map(|part| match part {
                    Exported::Event {
                        position,
                        envelope,
                        first,
                    } => {
                        let (scope, source_head) = first.unwrap_or_default();
                        pb::ExportedEvent {
                            position,
                            envelope,
                            scope,
                            source_head,
                            checkpoint: String::new(),
                        }
                    }
                    // The service's signature over exactly what the archive holds.
                    Exported::Digest(digest) => pb::ExportedEvent {
                        checkpoint: checkpoints.sign(digest).to_line(),
                        ..Default::default()
                    },
                });
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn verify_log(
        &self,
        request: Request<pb::VerifyLogRequest>,
    ) -> Result<Response<pb::VerifyLogReply>, Status> {
        let tenant = self.auditor(&request).await?;
        let v = self.0.app.verify_chains(Some(&tenant)).await;
        Ok(Response::new(pb::VerifyLogReply {
            ok: v.first_break.is_empty(),
            events_checked: v.events,
            streams_checked: v.streams,
            first_break: v.first_break,
        }))
    }
}
