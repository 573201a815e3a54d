//! Delivery outcomes from the mailer, recorded on the contact so that staff
//! see "invitation sent / failed" and can resend.

use super::{App, AppError, Command, CommandContext, Unit};
use crate::domain::contact::{self, ContactState};
use crate::domain::values::{GeneratedId, RequestId, TenantId};
use crate::domain::{Change, streams};
use access_catalogue::Actor;
use access_catalogue::catalogue::EmailDelivery;
use access_mailer::{DeliveryReport, DeliveryReporter};
use futures::future::BoxFuture;

/// Records one delivery outcome.
#[derive(Clone, Debug)]
pub struct RecordDelivery {
    /// The contact's tenant.
    pub tenant: TenantId,
    /// The contact.
    pub contact_id: GeneratedId,
    /// The outcome.
    pub delivery: EmailDelivery,
    /// Accepted by the mail server.
    pub sent: bool,
}

impl Command for RecordDelivery {
    type Reply = ();

    async fn decide(&self, _app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        let contact: ContactState = unit
            .load(&streams::contact(&self.tenant, &self.contact_id))
            .await?;
        let changes = contact::record_delivery(
            &contact,
            &self.tenant,
            &self.contact_id,
            self.delivery.clone(),
            self.sent,
        )?;
        Ok((changes, ()))
    }
}

/// The in-process mailer's way back into the service: each outcome is a
/// command whose request id is derived from the mail, so a repeated report
/// records nothing twice.
#[derive(Clone)]
pub struct MailReporter(pub App);

impl std::fmt::Debug for MailReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MailReporter")
    }
}

impl App {
    /// Records one delivery outcome on its contact, under a request id
    /// derived from the mail, so a repeated report records nothing twice.
    /// Returns the position it was recorded at; `None` when there is nothing
    /// to record it on (not a contact of ours, or one since removed).
    pub async fn record_delivery(&self, report: DeliveryReport) -> Result<Option<u64>, AppError> {
        let (Ok(tenant), Ok(contact_id)) = (
            TenantId::parse(&report.tenant),
            GeneratedId::parse(&report.contact_id),
        ) else {
            return Ok(None);
        };
        let request_id = RequestId::parse(&format!("mail:{}", report.source_event_id))
            .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
        let ctx = CommandContext {
            fingerprint: crate::secrets::sha256(request_id.as_str()),
            request_id,
            tenant: Some(tenant.clone()),
            actor: Actor::System {
                component: "mailer".into(),
            },
            correlation_id: uuid::Uuid::new_v4(),
        };
        let cmd = RecordDelivery {
            tenant,
            contact_id,
            delivery: EmailDelivery {
                source_event_id: report.source_event_id,
                kind: report.kind,
                reason: report.failure.clone().unwrap_or_default(),
            },
            sent: report.failure.is_none(),
        };
        match self.execute(&ctx, &cmd).await {
            Ok(outcome) => Ok(Some(outcome.position)),
            Err(AppError::Domain(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl DeliveryReporter for MailReporter {
    fn report(&self, report: DeliveryReport) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            self.0
                .record_delivery(report)
                .await
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("{e}"))
        })
    }
}
