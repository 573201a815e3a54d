//! Webhooks as tenant configuration, and the steps their delivery worker
//! records (`crate::webhooks` drives it). A webhook's signing secret is
//! derived from the server key, the webhook and the secret's generation, so
//! a retry shows the same secret and nothing of it is stored.

use super::{App, AppError, Command, CommandContext, Outcome, Unit};
use crate::domain::policy::Staff;
use crate::domain::values::{GeneratedId, TenantId};
use crate::domain::webhooks::{self, Hook, MAX_PER_TENANT, Progress, Replay, WebhookState};
use crate::domain::{Change, DomainError, Reason, streams};
use crate::projections::{SecretRef, WebhookRow};
use access_catalogue::Actor;
use access_catalogue::catalogue::{FeedPoint, WebhookSettings};
use base64::Engine as _;

/// A change to one webhook of a tenant.
#[derive(Clone, Debug)]
pub struct WebhookCommand {
    /// The webhook's tenant.
    pub tenant: TenantId,
    /// Who asks: tenant staff, or the operator (`None`), who may only replay.
    pub by: Option<Staff>,
    /// The webhook.
    pub webhook_id: GeneratedId,
    /// What to do.
    pub change: WebhookChange,
}

/// What staff can do to a webhook.
#[derive(Clone, Debug)]
pub enum WebhookChange {
    /// Add it, receiving what happens from now on.
    Create(WebhookSettings),
    /// Replace its settings.
    Update(WebhookSettings),
    /// Give it a new signing secret.
    RotateSecret,
    /// Remove it, for this reason.
    Remove(String),
    /// Go on after it gave up.
    Resume,
    /// Post again the public events after a place, through a log position.
    Replay(FeedPoint, u64),
}

/// What the caller learns of a change: the secret of a create or rotation.
#[derive(Clone)]
pub struct WebhookChanged {
    /// The webhook's id.
    pub webhook_id: String,
    /// The new signing secret (`whsec_…`), shown once.
    pub secret: Option<String>,
}

impl std::fmt::Debug for WebhookChanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookChanged({}, <redacted>)", self.webhook_id)
    }
}

impl Command for WebhookCommand {
    /// The webhook (a retried create answers with the first one's id) and
    /// its secret after the change.
    type Reply = (String, SecretRef);

    async fn decide(
        &self,
        app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, (String, SecretRef)), AppError> {
        let hook = Hook {
            tenant: &self.tenant,
            id: &self.webhook_id,
        };
        let state = match self.change {
            // A new stream: nothing to fold, and it must not exist.
            WebhookChange::Create(_) => {
                unit.load(&streams::webhook(&self.tenant, &self.webhook_id))
                    .await?
            }
            _ => {
                app.webhook_state(unit, &self.tenant, &self.webhook_id)
                    .await?
            }
        };
        let server_key_id = app.keyring.current().id();
        let mut secret = SecretRef {
            generation: state.generation,
            server_key_id,
        };
        let staff = || {
            self.by.as_ref().ok_or_else(|| {
                AppError::Domain(DomainError::PermissionDenied {
                    reason: Reason::TenantKeyRequired,
                    message: "only the tenant's admins change its webhooks".into(),
                })
            })
        };
        let changes = match &self.change {
            WebhookChange::Create(settings) => {
                secret.generation = 1;
                let head = *app.log.head().borrow();
                let starts_after = FeedPoint {
                    position: head,
                    part: u32::MAX,
                };
                webhooks::create(
                    &state,
                    hook,
                    staff()?,
                    settings.clone(),
                    (server_key_id, starts_after),
                )?
            }
            WebhookChange::Update(settings) => {
                webhooks::update(&state, hook, staff()?, settings.clone())?
            }
            WebhookChange::RotateSecret => {
                secret.generation += 1;
                webhooks::rotate_secret(&state, hook, staff()?, server_key_id)?
            }
            WebhookChange::Remove(reason) => webhooks::remove(&state, hook, staff()?, reason)?,
            WebhookChange::Resume => webhooks::resume(&state, hook, staff()?)?,
            WebhookChange::Replay(after, through) => {
                if let Some(by) = &self.by {
                    by.may_manage_tenant()?;
                }
                webhooks::replay(&state, hook, *after, *through)?
            }
        };
        Ok((changes, (self.webhook_id.to_string(), secret)))
    }
}

/// One step of the delivery worker on one webhook.
#[derive(Clone, Debug)]
struct WebhookStep {
    tenant: TenantId,
    webhook_id: GeneratedId,
    step: Progress,
}

impl Command for WebhookStep {
    type Reply = ();

    async fn decide(&self, app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        let state = app
            .webhook_state(unit, &self.tenant, &self.webhook_id)
            .await?;
        let hook = Hook {
            tenant: &self.tenant,
            id: &self.webhook_id,
        };
        Ok((webhooks::progress(&state, hook, self.step.clone())?, ()))
    }
}

/// A webhook's state as its read-model row has it.
fn state_of(row: &WebhookRow) -> WebhookState {
    WebhookState {
        exists: true,
        removed: false,
        settings: Some(row.settings.clone()),
        generation: row.secret.generation,
        cursor: row.cursor,
        replay: row.replay.map(|r| Replay {
            after: r.after,
            cursor: r.cursor,
            through: r.through,
            count: r.count,
        }),
        gave_up: row.gave_up.is_some(),
    }
}

impl App {
    /// A webhook's state for a decision: its row once the read models have
    /// reached the log's head (after a conflict, the winner), at the
    /// stream's version the row was built from. A removed or unknown
    /// webhook has no row: the decision finds nothing.
    async fn webhook_state(
        &self,
        unit: &mut Unit<'_>,
        tenant: &TenantId,
        webhook_id: &GeneratedId,
    ) -> Result<WebhookState, AppError> {
        let head = *self.log.head().borrow();
        self.wait_for(head).await?;
        let Some(row) = self.models.webhook(tenant.as_str(), webhook_id.as_str()) else {
            return Ok(WebhookState::default());
        };
        unit.assume(&streams::webhook(tenant, webhook_id), row.stream_version);
        Ok(state_of(&row))
    }

    /// Changes a webhook (or adds one); answers once the change can be
    /// read. A create's or rotation's reply holds the new secret.
    pub async fn change_webhook(
        &self,
        ctx: &CommandContext,
        cmd: &WebhookCommand,
    ) -> Result<Outcome<WebhookChanged>, AppError> {
        if matches!(cmd.change, WebhookChange::Create(_)) && !self.is_retry(ctx).await? {
            // Bounded per tenant; concurrent creates may pass it by their number.
            let head = *self.log.head().borrow();
            self.wait_for(head).await?;
            if self.models.webhooks_of(cmd.tenant.as_str()).len() >= MAX_PER_TENANT {
                return Err(DomainError::precondition(
                    Reason::LimitReached,
                    format!("a tenant has at most {MAX_PER_TENANT} webhooks; remove one first"),
                )
                .into());
            }
        }
        if let WebhookChange::Create(settings) | WebhookChange::Update(settings) = &cmd.change
            && !self.settings.webhook_private_addresses
            && let Some(problem) = crate::webhooks::address::literal_problem(&settings.url)
        {
            return Err(DomainError::invalid("url", problem).into());
        }
        let outcome = self.execute(ctx, cmd).await?;
        self.wait_for(outcome.position).await?;
        let shown = matches!(
            cmd.change,
            WebhookChange::Create(_) | WebhookChange::RotateSecret
        );
        let (webhook_id, secret) = outcome.reply.clone();
        let secret = if shown {
            Some(self.webhook_secret_text(&cmd.tenant, &webhook_id, secret)?)
        } else {
            None
        };
        Ok(outcome.map(|_| WebhookChanged { webhook_id, secret }))
    }

    /// Whether `ctx`'s request was answered before (a retry is answered
    /// from its record, whatever holds now).
    async fn is_retry(&self, ctx: &CommandContext) -> Result<bool, AppError> {
        let scoped = Self::scoped_request_id(ctx.tenant.as_ref(), ctx.request_id.as_str());
        Ok(self
            .log
            .request(&scoped)
            .await
            .map_err(AppError::from)?
            .is_some())
    }

    /// A webhook's signing key of one secret; refused once its server key
    /// has left the ring.
    pub fn webhook_key(
        &self,
        tenant: &str,
        webhook_id: &str,
        secret: SecretRef,
    ) -> Result<[u8; 32], AppError> {
        self.keyring
            .webhook_secret(secret.server_key_id, tenant, webhook_id, secret.generation)
            .ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!(
                    "server key {} is no longer in the ring; rotate the webhook's secret",
                    secret.server_key_id
                ))
            })
    }

    /// A secret as the receiver holds it: `whsec_` and the key in base64
    /// (the Standard Webhooks form).
    fn webhook_secret_text(
        &self,
        tenant: &TenantId,
        webhook_id: &str,
        secret: SecretRef,
    ) -> Result<String, AppError> {
        let key = self.webhook_key(tenant.as_str(), webhook_id, secret)?;
        Ok(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        ))
    }

    /// One webhook of the tenant, after `position`.
    pub async fn webhook(
        &self,
        tenant: &TenantId,
        webhook_id: &str,
        position: u64,
    ) -> Result<WebhookRow, AppError> {
        self.wait_for(position).await?;
        self.models
            .webhook(tenant.as_str(), webhook_id)
            .ok_or_else(|| DomainError::NotFound("webhook").into())
    }

    /// A webhook's row as the read models have it now (for the worker).
    pub fn webhook_now(&self, tenant: &str, webhook_id: &str) -> Option<WebhookRow> {
        self.models.webhook(tenant, webhook_id)
    }

    /// Every tenant's webhooks, as (tenant, webhook id).
    pub fn all_webhooks(&self) -> Vec<(String, String)> {
        self.models.all_webhooks()
    }

    /// The tenant's webhooks, after `position`.
    pub async fn webhooks(
        &self,
        tenant: &TenantId,
        position: u64,
    ) -> Result<Vec<WebhookRow>, AppError> {
        self.wait_for(position).await?;
        Ok(self.models.webhooks_of(tenant.as_str()))
    }

    /// Records a step of the delivery worker under a request id derived
    /// from where the webhook stood, so a step taken twice is recorded once;
    /// the position it was written at.
    pub async fn record_webhook_step(
        &self,
        tenant: &str,
        webhook_id: &str,
        step: Progress,
    ) -> Result<u64, AppError> {
        let (Ok(tenant), Ok(id)) = (TenantId::parse(tenant), GeneratedId::parse(webhook_id)) else {
            return Err(DomainError::NotFound("webhook").into());
        };
        // Each record is fenced by the stream's version and decided from
        // where the webhook stands, never answered from an earlier record:
        // a worker that lost its reply starts again from the log.
        let request_id = format!("webhook-step:{}", uuid::Uuid::now_v7());
        let actor = Actor::System {
            component: "webhooks".into(),
        };
        let cmd = WebhookStep {
            tenant: tenant.clone(),
            webhook_id: id,
            step,
        };
        let outcome = self
            .execute_derived(&request_id, &tenant, actor, &cmd)
            .await?;
        // The worker reads the webhook's row next: it must show this.
        self.wait_for(outcome.position).await?;
        Ok(outcome.position)
    }
}
