//! `access.v1.Operator`: tenants and the log itself.

use super::convert::{self, fingerprint};
use super::status::to_status;
use super::{Shared, context};
use crate::app::ForgetIdentity;
use crate::domain::values::{Email, GeneratedId, RequestId};
use access_proto::v1 as pb;
use access_proto::v1::operator_server::Operator;
use tonic::{Request, Response, Status};

/// The operator service.
#[derive(Clone)]
pub struct OperatorService(pub Shared);

#[tonic::async_trait]
impl Operator for OperatorService {
    type ExportKeysStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::PersonKey, Status>> + Send>>;

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn export_keys(
        &self,
        request: Request<pb::ExportKeysRequest>,
    ) -> Result<Response<Self::ExportKeysStream>, Status> {
        self.0.auth.operator(&request).await?;
        let keys = self.0.app.person_keys().await.map_err(to_status)?;
        let items = keys.into_iter().map(|(key_ref, key)| {
            Ok(pb::PersonKey {
                key_ref,
                key: key.to_vec(),
            })
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(items))))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant_id, request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn create_tenant(
        &self,
        request: Request<pb::CreateTenantRequest>,
    ) -> Result<Response<pb::CreateTenantReply>, Status> {
        let principal = self.0.auth.operator(&request).await?;
        let r = request.get_ref();
        let (request_id, cmd) = convert::create_tenant(r)?;
        let fp = fingerprint("CreateTenant", r, |m| m.request_id.clear());
        let ctx = context(
            &request,
            request_id,
            fp,
            Some(cmd.tenant_id.clone()),
            principal.actor(),
        );
        let outcome = self
            .0
            .app
            .create_tenant(&ctx, cmd)
            .await
            .map_err(to_status)?;
        let (tenant, admin_api_key) = outcome.reply;
        Ok(Response::new(pb::CreateTenantReply {
            position: outcome.position,
            tenant_id: tenant.tenant_id,
            admin_api_key,
            admin_key_id: tenant.admin_key_id,
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn forget_identity(
        &self,
        request: Request<pb::ForgetIdentityRequest>,
    ) -> Result<Response<pb::ForgetIdentityReply>, Status> {
        let principal = self.0.auth.operator(&request).await?;
        let r = request.get_ref();
        let mut f = convert::Fields::default();
        let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
        let identity_id = match (r.email.trim(), r.identity_id.trim()) {
            ("", "") => f.parse::<GeneratedId>(
                "email",
                Err("give the person's email or identity id".into()),
            ),
            (email, "") => f
                .parse("email", Email::parse(email))
                .map(|e| e.identity_id()),
            ("", id) => f.parse("identity_id", GeneratedId::parse(id)),
            _ => f.parse::<GeneratedId>(
                "identity_id",
                Err("give the email or the identity id, not both".into()),
            ),
        };
        let (request_id, identity_id) = f.finish_with((request_id, identity_id))?;
        let cmd = ForgetIdentity {
            identity_id: identity_id.clone(),
            reason: r.reason.trim().to_owned(),
        };
        let fp = fingerprint("ForgetIdentity", r, |m| m.request_id.clear());
        let ctx = context(&request, request_id, fp, None, principal.actor());
        let outcome = self
            .0
            .app
            .forget_identity(&ctx, &cmd)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ForgetIdentityReply {
            position: outcome.position,
            identity_id: identity_id.to_string(),
            contacts: outcome
                .reply
                .contacts
                .into_iter()
                .map(|(tenant_id, contact_id)| pb::ForgottenContact {
                    tenant_id,
                    contact_id,
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant_id, mail = %request.get_ref().source_event_id), err(level = "info"))]
    async fn record_email_delivery(
        &self,
        request: Request<pb::RecordEmailDeliveryRequest>,
    ) -> Result<Response<pb::RecordEmailDeliveryReply>, Status> {
        self.0.auth.operator(&request).await?;
        let r = request.into_inner();
        // Parsed like every other input: a report that names no real tenant,
        // contact, event or kind of mail is refused, not quietly accepted.
        let mut f = convert::Fields::default();
        f.parse(
            "tenant_id",
            crate::domain::values::TenantId::parse(&r.tenant_id),
        );
        f.parse("contact_id", GeneratedId::parse(&r.contact_id));
        f.parse(
            "source_event_id",
            uuid::Uuid::parse_str(r.source_event_id.trim())
                .map_err(|_| "the id of the event that called for the mail (a UUID)".to_owned()),
        );
        f.parse(
            "kind",
            access_mailer::templates::Kind::parse(r.kind.trim())
                .ok_or_else(|| "a kind of mail (invitation, password_reset, …)".to_owned()),
        );
        if r.failure.chars().count() > 2048 {
            f.parse::<()>("failure", Err("at most 2048 characters".into()));
        }
        f.finish()?;
        let report = access_mailer::DeliveryReport {
            tenant: r.tenant_id,
            contact_id: r.contact_id,
            source_event_id: r.source_event_id,
            kind: r.kind,
            failure: (!r.failure.is_empty()).then_some(r.failure),
        };
        let position = self
            .0
            .app
            .record_delivery(report)
            .await
            .map_err(to_status)?
            .unwrap_or(0);
        Ok(Response::new(pb::RecordEmailDeliveryReply { position }))
    }

    async fn get_log_status(
        &self,
        request: Request<pb::GetLogStatusRequest>,
    ) -> Result<Response<pb::GetLogStatusReply>, Status> {
        self.0.auth.operator(&request).await?;
        let mail = self.0.mail.as_ref().map(|m| *m.borrow());
        Ok(Response::new(pb::GetLogStatusReply {
            head_position: self.0.app.head(),
            read_model_position: self.0.app.read_model_position(),
            sends_mail: mail.is_some(),
            mailer_position: mail.map_or(0, |m| m.checkpoint),
            mail_outcomes_pending: mail.map_or(0, |m| m.outcomes_pending as u64),
            background_pending: self.0.app.background_pending() as u64,
        }))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn verify_log(
        &self,
        request: Request<pb::VerifyLogRequest>,
    ) -> Result<Response<pb::VerifyLogReply>, Status> {
        self.0.auth.operator(&request).await?;
        let v = self.0.app.verify_chains(None).await;
        Ok(Response::new(pb::VerifyLogReply {
            ok: v.first_break.is_empty(),
            events_checked: v.events,
            streams_checked: v.streams,
            first_break: v.first_break,
        }))
    }
}
