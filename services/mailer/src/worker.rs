//! The consumer loop and the send ledger.
//!
//! The mailer reads the log from its checkpoint. For an event that calls for an
//! email it first looks in the ledger (keyed by event id); if the email is not
//! there it sends it, then records it in the ledger and moves the checkpoint in
//! one flushed batch. A crash between the transport's acceptance and that write
//! makes the event come round again and the email go out a second time, at most
//! once more; the outbox transport writes by event id, so there even that
//! repeat lands on the same file.

use crate::compose;
use crate::templates::{Kind, Rendered, Template, Vars};
use crate::transport::{DeliveryError, Transport};
use access_events::Envelope;
use access_events::catalogue::{
    ContactEvent, CustomerCreated, CustomerEvent, CustomerUpdated, Event, IdentityEvent,
    InvitationEvent, PasswordResetRequested, TenantEvent,
};
use access_events::chain::ChainFollower;
use access_events::damage::Damage;
use access_events::links::{LinkClaims, LinkSigner};
use access_events::log::{EventLog, subscribe};
use access_events::personal::{DecodeOpenError, Personal, Vault, decode_open};
use anyhow::Context;
use futures::StreamExt;
use futures::stream::BoxStream;
use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Stream heads the chain check remembers (about 100 bytes each).
const FOLLOWED_STREAMS: usize = 100_000;

/// How the mailer is set up.
#[derive(Clone, Debug)]
pub struct MailerConfig {
    /// Where the ledger and checkpoint live.
    pub state_dir: PathBuf,
    /// The base of links in emails, e.g. `https://portal-access.example`.
    pub public_base_url: String,
    /// The sender of every email.
    pub from: Mailbox,
    /// Where mail goes.
    pub transport: Transport,
    /// How transient failures are retried.
    pub retry: RetryPolicy,
    /// Where delivery outcomes go (the service, which records them as events).
    pub reporter: Option<Arc<dyn DeliveryReporter>>,
    /// At most this many mails a second per tenant (`None`: as fast as the
    /// transport takes them), so that a bulk invitation is paced rather than
    /// refused by the relay.
    pub per_tenant_rate: Option<f64>,
}

/// What became of one email, for the contact's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    /// The tenant.
    pub tenant: String,
    /// The contact the email was about.
    pub contact_id: String,
    /// The event that called for it (the mail's id).
    pub source_event_id: String,
    /// Which email.
    pub kind: String,
    /// `None` when accepted; why not otherwise.
    pub failure: Option<String>,
}

/// Takes delivery outcomes back to the service; must be idempotent per
/// `source_event_id`, since a report may be given again after a crash.
pub trait DeliveryReporter: Send + Sync + std::fmt::Debug {
    /// Records one outcome.
    fn report(&self, report: DeliveryReport) -> futures::future::BoxFuture<'_, anyhow::Result<()>>;
}

/// How transient delivery failures are retried: exponential backoff with
/// jitter, up to a number of attempts; permanent failures are not retried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles with each further one.
    pub base: Duration,
    /// The longest wait between two attempts.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt` + 1 (attempt counts from 1), with
    /// ±50 % jitter so that many failed mails do not retry in step.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let wait = exp.min(self.cap);
        wait.mul_f64(rand::random_range(0.5..1.5))
    }
}

/// What one step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecutionOutcome {
    /// An event was handled (and maybe a mail sent).
    Handled {
        /// Its position.
        position: u64,
        /// Whether a mail went out.
        sent: bool,
    },
    /// The log ended (shutdown).
    Finished,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct InvitationInfo {
    email: String,
    customer_id: String,
    message: String,
    contact_id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct ContactInfo {
    email: String,
    customer_id: String,
    /// Its invitation (empty for logins created by staff).
    invitation_id: String,
    /// Its person, so that forgetting the person clears the address here too.
    identity_id: String,
}

/// A personal value as the mailer keeps it: empty once its person is forgotten.
fn readable(p: &Personal) -> String {
    if p.is_erased() {
        String::new()
    } else {
        p.text().to_owned()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SentRecord {
    pub(crate) at_ms: i64,
}

/// A mail given up on, kept so that a replay does not try it again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FailedRecord {
    pub(crate) reason: String,
    pub(crate) attempts: u32,
}

pub(crate) const CHECKPOINT: &[u8] = b"checkpoint";

/// The hash of the event at the checkpoint: what tells, on start, that the
/// log still holds the history this state was built from.
pub(crate) const CHECKPOINT_HASH: &[u8] = b"checkpoint-hash";

/// The damage an error carries, if it is one: a damaged log or vault stops
/// the mailer rather than be retried or read around.
pub fn damage_of(e: &anyhow::Error) -> Option<&Damage> {
    e.chain().find_map(|c| {
        c.downcast_ref::<Damage>()
            .or_else(|| match c.downcast_ref() {
                Some(access_events::LogError::Damaged(d)) => Some(d),
                _ => None,
            })
    })
}

/// Takes queued delivery outcomes to the reporter, many at once so their
/// appends share group commits; what fails stays queued for the next step.
async fn drain_reports(db: &sled::Db, reporter: &Arc<dyn DeliveryReporter>) {
    let prefix = key(&["report", ""]);
    let mut pending = Vec::new();
    for item in db.scan_prefix(&prefix).take(256) {
        let Ok((k, v)) = item else { break };
        match postcard::from_bytes::<DeliveryReport>(&v) {
            Ok(report) => pending.push((k, report)),
            Err(_) => {
                let _ = db.remove(&k);
            }
        }
    }
    let results = futures::future::join_all(
        pending
            .into_iter()
            .map(|(k, report)| async move { (k, reporter.report(report).await) }),
    )
    .await;
    for (k, result) in results {
        match result {
            Ok(()) => {
                let _ = db.remove(&k);
            }
            Err(e) => tracing::warn!(error = %e, "a delivery outcome could not be recorded yet"),
        }
    }
}

/// What the mailer does with an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Keep the state mails need and send them: one worker, in log order
    /// (embedded mode).
    FoldAndSend,
    /// Keep the state only: a distributed worker's view of the whole log.
    Fold,
    /// Send only, on state already folded past the event: a distributed
    /// worker's share of the mail.
    Send,
}

/// What became of one event's mail, as a shared ledger keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// `None`: accepted by the mail server; else why it was given up on.
    pub failure: Option<String>,
    /// The outcome as the service records it on the contact.
    pub report: DeliveryReport,
}

/// The writes of one step, and its mail's outcome.
#[derive(Default)]
struct Step {
    batch: sled::Batch,
    outcome: Option<LedgerEntry>,
    /// A distributed worker never gives up on a temporary failure: the
    /// event goes back to the shared consumer and comes round again.
    keep_trying: bool,
}

/// What a step needs besides the event stream (shared across awaits, so Sync).
pub(crate) struct Core {
    config: MailerConfig,
    links: LinkSigner,
    /// Persons' keys, to read personal values.
    vault: Arc<dyn Vault>,
    db: sled::Db,
    /// When each tenant may send its next mail.
    pace: std::sync::Mutex<std::collections::HashMap<String, tokio::time::Instant>>,
}

/// The mailer worker.
pub struct Mailer {
    core: Core,
    events: BoxStream<'static, Result<Envelope, access_events::LogError>>,
    /// An event whose step failed, handled again before anything newer.
    retry: Option<Envelope>,
    /// Checks each event against its stream's chain before it is acted on.
    follower: ChainFollower,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("config", &self.core.config)
            .finish_non_exhaustive()
    }
}

fn get<T: for<'a> Deserialize<'a>>(db: &sled::Db, key: &[u8]) -> anyhow::Result<Option<T>> {
    Ok(match db.get(key)? {
        Some(v) => Some(postcard::from_bytes(&v).context("mailer state")?),
        None => None,
    })
}

fn put<T: Serialize>(batch: &mut sled::Batch, key: Vec<u8>, value: &T) {
    batch.insert(key, postcard::to_stdvec(value).unwrap_or_default());
}

pub(crate) fn key(parts: &[&str]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

/// The tenant part of a `contact\0<tenant>\0<id>` key.
fn tenant_of(k: &[u8]) -> &str {
    k.split(|b| *b == 0)
        .nth(1)
        .and_then(|t| std::str::from_utf8(t).ok())
        .unwrap_or_default()
}

impl Mailer {
    /// Opens the mailer's state and subscribes to the log after its checkpoint.
    pub fn open(
        config: MailerConfig,
        links: LinkSigner,
        log: Arc<dyn EventLog>,
        vault: Arc<dyn Vault>,
    ) -> anyhow::Result<Self> {
        let db = sled::Config::new()
            .path(&config.state_dir)
            .open()
            .with_context(|| format!("opening mailer state in {}", config.state_dir.display()))?;
        let checkpoint: u64 = get(&db, CHECKPOINT)?.unwrap_or(0);
        Ok(Mailer {
            core: Core {
                config,
                links,
                vault,
                db,
                pace: Default::default(),
            },
            events: subscribe(log, checkpoint + 1),
            retry: None,
            follower: ChainFollower::new(FOLLOWED_STREAMS),
        })
    }

    /// Its state database.
    pub(crate) fn db(&self) -> &sled::Db {
        &self.core.db
    }

    /// Where its state lives.
    pub(crate) fn state_dir(&self) -> &std::path::Path {
        &self.core.config.state_dir
    }

    /// The last position handled.
    pub fn checkpoint(&self) -> anyhow::Result<u64> {
        Ok(get(&self.core.db, CHECKPOINT)?.unwrap_or(0))
    }

    /// Handles events until `shutdown` turns true; returns the damage that
    /// stopped it instead, if any (a damaged log or vault is not retried).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Option<Damage> {
        // Outcomes go back to the service from a task of their own, a batch at
        // a time, so that mail never waits for their appends.
        let reports = self.core.config.reporter.clone().map(|reporter| {
            let db = self.core.db.clone();
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    drain_reports(&db, &reporter).await;
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                }
                drain_reports(&db, &reporter).await;
            })
        });
        let mut stopped_by = None;
        loop {
            let step = tokio::select! {
                step = self.try_execute_task() => step,
                _ = shutdown.wait_for(|stop| *stop) => break,
            };
            match step {
                Ok(ExecutionOutcome::Finished) => break,
                Ok(ExecutionOutcome::Handled { .. }) => {}
                Err(e) if damage_of(&e).is_some() => {
                    let damage = damage_of(&e).cloned();
                    tracing::error!(error = ?e, "mailer stopped: the history it reads is damaged; no mail goes out until it is repaired");
                    stopped_by = damage;
                    break;
                }
                Err(e) => {
                    // The event stays unhandled; try it again after a pause.
                    tracing::error!(error = ?e, "mailer step failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
        if let Some(reports) = reports {
            reports.abort();
            if let Some(reporter) = &self.core.config.reporter {
                drain_reports(&self.core.db, reporter).await;
            }
        }
        if let Err(e) = self.core.db.flush() {
            tracing::error!(error = %e, "flushing mailer state");
        }
        stopped_by
    }

    /// Handles the next event; a failed step leaves the event to be retried.
    pub async fn try_execute_task(&mut self) -> anyhow::Result<ExecutionOutcome> {
        let Some(next) = self.pending_or_next().await else {
            return Ok(ExecutionOutcome::Finished);
        };
        let envelope = next?;
        self.follower.check(&envelope)?;
        let result = self.core.handle(&envelope, Mode::FoldAndSend).await;
        if result.is_err() {
            self.retry = Some(envelope);
        }
        result.map(|(outcome, _)| outcome)
    }
}

impl Mailer {
    /// Its state and its feed of the log, for the distributed loop.
    pub(crate) fn into_parts(
        self,
    ) -> (
        Core,
        BoxStream<'static, Result<Envelope, access_events::LogError>>,
    ) {
        (self.core, self.events)
    }

    async fn pending_or_next(&mut self) -> Option<Result<Envelope, access_events::LogError>> {
        match self.retry.take() {
            Some(e) => Some(Ok(e)),
            None => self.events.next().await,
        }
    }
}

impl Core {
    /// The configured reporter, if any.
    pub(crate) fn reporter(&self) -> Option<Arc<dyn DeliveryReporter>> {
        self.config.reporter.clone()
    }

    /// Writes everything folded so far to disk.
    pub(crate) async fn flush(&self) -> anyhow::Result<()> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// Handles one event as `mode` says; returns what a mail came to, if one
    /// was tried.
    pub(crate) async fn handle(
        &self,
        e: &Envelope,
        mode: Mode,
    ) -> anyhow::Result<(ExecutionOutcome, Option<LedgerEntry>)> {
        let decoded = match decode_open(self.vault.as_ref(), std::slice::from_ref(e)).await {
            Ok(mut events) => events.pop().context("one event decoded"),
            Err(DecodeOpenError::Codec(c)) => Err(anyhow::Error::from(c)),
            // The vault did not answer: try the event again later.
            Err(DecodeOpenError::Vault(v)) => return Err(v.into()),
            // A key missing without an erasure: damage, never "[erased]".
            Err(DecodeOpenError::Missing(d)) => return Err(d.into()),
        };
        self.apply(e, decoded, mode).await
    }

    /// Folds a run of events into the state mails need, reading them (and
    /// their keys) together; an event this build cannot read is skipped, as
    /// one at a time.
    pub(crate) async fn fold_all(&self, events: &[Envelope]) -> anyhow::Result<()> {
        match decode_open(self.vault.as_ref(), events).await {
            Ok(decoded) => {
                for (e, event) in events.iter().zip(decoded) {
                    self.apply(e, Ok(event), Mode::Fold).await?;
                }
            }
            Err(DecodeOpenError::Codec(_)) => {
                for e in events {
                    self.handle(e, Mode::Fold).await?;
                }
            }
            Err(DecodeOpenError::Vault(v)) => return Err(v.into()),
            Err(DecodeOpenError::Missing(d)) => return Err(d.into()),
        }
        Ok(())
    }

    /// Acts on one decoded event as `mode` says.
    async fn apply(
        &self,
        e: &Envelope,
        decoded: anyhow::Result<Event>,
        mode: Mode,
    ) -> anyhow::Result<(ExecutionOutcome, Option<LedgerEntry>)> {
        let mut step = Step {
            keep_trying: mode == Mode::Send,
            ..Step::default()
        };
        let send = mode != Mode::Fold;
        let mut sent = false;
        let tenant = e.stream.tenant();
        match decoded {
            Ok(Event::Tenant(TenantEvent::TenantCreated(t))) => {
                put(&mut step.batch, key(&["tenant", tenant]), &t.name);
            }
            Ok(Event::Customer(
                CustomerEvent::CustomerCreated(CustomerCreated { record, .. })
                | CustomerEvent::CustomerUpdated(CustomerUpdated { record }),
            )) => {
                put(
                    &mut step.batch,
                    key(&["customer", tenant, &record.customer_id]),
                    &record.name,
                );
            }
            Ok(Event::Invitation(InvitationEvent::InvitationIssued(i))) => {
                let info = InvitationInfo {
                    email: readable(&i.email),
                    customer_id: i.customer_id,
                    message: readable(&i.message),
                    contact_id: i.contact_id,
                };
                put(
                    &mut step.batch,
                    key(&["invitation", tenant, &i.invitation_id]),
                    &info,
                );
                if send {
                    sent = self
                        .send_invitation(
                            e,
                            &info,
                            &i.invitation_id,
                            i.generation,
                            i.expires_at_ms,
                            false,
                            &mut step,
                        )
                        .await?;
                }
            }
            Ok(Event::Invitation(InvitationEvent::InvitationResent(r))) if send => {
                let invitation_id = e.stream.id();
                let info: InvitationInfo =
                    get(&self.db, &key(&["invitation", tenant, invitation_id]))?
                        .context("a resent invitation the mailer never saw issued")?;
                sent = self
                    .send_invitation(
                        e,
                        &info,
                        invitation_id,
                        r.generation,
                        r.expires_at_ms,
                        true,
                        &mut step,
                    )
                    .await?;
            }
            Ok(Event::Contact(ContactEvent::ContactInvited(c))) => {
                let info = ContactInfo {
                    email: readable(&c.email),
                    customer_id: c.customer_id,
                    invitation_id: c.invitation_id,
                    identity_id: c.identity_id,
                };
                put(
                    &mut step.batch,
                    key(&["contact", tenant, &c.contact_id]),
                    &info,
                );
            }
            Ok(Event::Contact(ContactEvent::LoginCreated(c))) => {
                let info = ContactInfo {
                    email: c.email.as_ref().map(readable).unwrap_or_default(),
                    customer_id: c.customer_id,
                    invitation_id: String::new(),
                    identity_id: c.identity_id.unwrap_or_default(),
                };
                put(
                    &mut step.batch,
                    key(&["contact", tenant, &c.contact_id]),
                    &info,
                );
            }
            Ok(Event::Contact(ContactEvent::ContactDetailsChanged(d))) => {
                // Later links go to the new address.
                let contact_key = key(&["contact", tenant, e.stream.id()]);
                if let Some(mut info) = get::<ContactInfo>(&self.db, &contact_key)? {
                    info.email = d.email.as_ref().map(readable).unwrap_or_default();
                    info.identity_id = d.identity_id.unwrap_or_default();
                    let invitation_key = key(&["invitation", tenant, &info.invitation_id]);
                    if let Some(mut invitation) = get::<InvitationInfo>(&self.db, &invitation_key)?
                    {
                        invitation.email = info.email.clone();
                        put(&mut step.batch, invitation_key, &invitation);
                    }
                    put(&mut step.batch, contact_key, &info);
                }
            }
            Ok(Event::Tenant(TenantEvent::EmailTemplateSet(t))) => {
                let template = Template {
                    subject: t.subject,
                    text: t.text,
                    html: t.html,
                };
                put(
                    &mut step.batch,
                    key(&["template", tenant, &t.kind]),
                    &template,
                );
            }
            Ok(Event::Tenant(TenantEvent::EmailTemplateReset(t))) => {
                step.batch.remove(key(&["template", tenant, &t.kind]));
            }
            Ok(Event::Tenant(TenantEvent::NotificationPolicySet(p))) => {
                put(
                    &mut step.batch,
                    key(&["notify-disabled", tenant]),
                    &p.access_disabled,
                );
                put(
                    &mut step.batch,
                    key(&["mail-temporary", tenant]),
                    &p.email_temporary_password,
                );
            }
            Ok(Event::Contact(ContactEvent::AccessDisabled(_))) if send => {
                if get::<bool>(&self.db, &key(&["notify-disabled", tenant]))?.unwrap_or(false) {
                    sent = self
                        .send_notice(e, Kind::AccessDisabled, None, &mut step)
                        .await?;
                }
            }
            Ok(Event::Tenant(TenantEvent::UsernameAdministratorsSet(a))) => {
                put(&mut step.batch, key(&["admins", tenant]), &a.emails);
            }
            Ok(Event::Contact(ContactEvent::ContactAwaitingApproval(_))) if send => {
                sent = self.send_approval_notice(e, true, &mut step).await?;
            }
            Ok(Event::Contact(ContactEvent::ContactApproved(_))) if send => {
                sent = self.send_approval_notice(e, false, &mut step).await?;
            }
            Ok(Event::Contact(ContactEvent::LocalPasswordSet(p)))
                if send
                    && p.temporary
                    && matches!(e.actor, access_events::Actor::ApiKey { .. }) =>
            {
                // The password itself only for a tenant that chose to mail
                // it, and only if generated: typed ones exist nowhere.
                let mail_it =
                    get::<bool>(&self.db, &key(&["mail-temporary", tenant]))?.unwrap_or(false);
                let password = p.generated.as_ref().filter(|_| mail_it).map(|g| {
                    self.links
                        .temporary_password(tenant, &g.request_id, &g.label)
                });
                sent = self
                    .send_notice(e, Kind::TemporaryPassword, password, &mut step)
                    .await?;
            }
            Ok(Event::Identity(IdentityEvent::IdentityForgotten(f))) => {
                self.vault.evict(e.stream.id());
                for (_, contact_id) in &f.contacts {
                    self.vault
                        .evict(&access_events::personal::contact_ref(contact_id));
                }
                self.forget(e.stream.id(), &mut step)?;
            }
            Ok(Event::Contact(ContactEvent::PasswordResetRequested(r))) if send => {
                sent = self.send_reset(e, &r, &mut step).await?;
            }
            Ok(_) => {}
            Err(err) => {
                // Written by a newer build: nothing this build could mail.
                tracing::warn!(position = e.position, error = %err, "mailer skips an event it cannot read");
            }
        }
        let handled = ExecutionOutcome::Handled {
            position: e.position,
            sent,
        };
        if mode == Mode::Send {
            // A distributed worker's ledger is shared: the caller writes it.
            return Ok((handled, step.outcome));
        }
        put(&mut step.batch, CHECKPOINT.to_vec(), &e.position);
        put(&mut step.batch, CHECKPOINT_HASH.to_vec(), &e.hash);
        self.db.apply_batch(step.batch)?;
        if sent {
            // The ledger entry must be on disk before the next mail goes out.
            self.db.flush_async().await?;
        }
        Ok((handled, step.outcome))
    }

    /// Tells the username administrators of a registration awaiting approval
    /// (`to_admins`), or the contact that it was approved.
    async fn send_approval_notice(
        &self,
        e: &Envelope,
        to_admins: bool,
        step: &mut Step,
    ) -> anyhow::Result<bool> {
        let event_id = e.event_id.simple().to_string();
        if self.handled(&event_id)? {
            return Ok(false);
        }
        let tenant = e.stream.tenant();
        let Some(contact) =
            get::<ContactInfo>(&self.db, &key(&["contact", tenant, e.stream.id()]))?
        else {
            return Ok(false);
        };
        let tenant_name: String =
            get(&self.db, &key(&["tenant", tenant]))?.unwrap_or_else(|| tenant.to_owned());
        let customer_name: String =
            get(&self.db, &key(&["customer", tenant, &contact.customer_id]))?
                .unwrap_or_else(|| contact.customer_id.clone());
        let (recipients, kind) = if to_admins {
            let admins: Vec<String> = get(&self.db, &key(&["admins", tenant]))?.unwrap_or_default();
            (admins, Kind::ApprovalRequest)
        } else {
            (vec![contact.email.clone()], Kind::Approved)
        };
        let recipients: Vec<String> = recipients.into_iter().filter(|r| !r.is_empty()).collect();
        if recipients.is_empty() {
            return Ok(false);
        }
        let vars = Vars {
            tenant_name,
            customer_name,
            contact_email: contact.email.clone(),
            ..Vars::default()
        };
        let recipients: Vec<&str> = recipients
            .iter()
            .map(String::as_str)
            .filter(|r| !r.is_empty())
            .collect();
        if recipients.is_empty() {
            tracing::warn!(tenant, "an approval notice with no recipient; nothing sent");
            return Ok(false);
        }
        let rendered = self.render(tenant, kind, &vars)?;
        let message = compose::message(&self.config.from, &recipients, &rendered, &event_id)?;
        if !self
            .deliver(
                &event_id,
                &message,
                (
                    tenant,
                    e.stream.id(),
                    if to_admins {
                        "approval_request"
                    } else {
                        "approved"
                    },
                ),
                step,
            )
            .await?
        {
            return Ok(false);
        }
        put(
            &mut step.batch,
            key(&["sent", &event_id]),
            &SentRecord {
                at_ms: e.occurred_at_ms,
            },
        );
        tracing::info!(tenant, to_admins, "approval notice sent");
        Ok(true)
    }

    /// Renders `kind` with the tenant's template, or the built-in one if the
    /// tenant has none (or, which setting it prevents, one that fails).
    fn render(&self, tenant: &str, kind: Kind, vars: &Vars) -> anyhow::Result<Rendered> {
        let custom: Option<Template> = get(&self.db, &key(&["template", tenant, kind.as_str()]))?;
        match compose::render(kind, custom.as_ref(), vars) {
            Ok(rendered) => Ok(rendered),
            Err(e) => {
                tracing::warn!(tenant, kind = kind.as_str(), error = %e, "tenant template failed; using the built-in one");
                Ok(compose::render(kind, None, vars)?)
            }
        }
    }

    /// Waits until `tenant` may send again under the configured rate.
    async fn wait_turn(&self, tenant: &str) {
        let Some(rate) = self.config.per_tenant_rate.filter(|r| *r > 0.0) else {
            return;
        };
        let gap = Duration::from_secs_f64(1.0 / rate);
        let now = tokio::time::Instant::now();
        let at = {
            let mut pace = self.pace.lock().unwrap_or_else(|p| p.into_inner());
            let next = pace.entry(tenant.to_owned()).or_insert(now);
            let at = (*next).max(now);
            *next = at + gap;
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// Whether a mail for this event was sent or given up on before.
    fn handled(&self, event_id: &str) -> anyhow::Result<bool> {
        Ok(self.db.contains_key(key(&["sent", event_id]))?
            || self.db.contains_key(key(&["failed", event_id]))?)
    }

    /// Delivers with retries. `Ok(true)`: accepted. `Ok(false)`: given up on
    /// (a permanent failure, or the attempts ran out), recorded in `batch`.
    async fn deliver(
        &self,
        id: &str,
        message: &lettre::Message,
        about: (&str, &str, &str),
        step: &mut Step,
    ) -> anyhow::Result<bool> {
        let (tenant, contact_id, kind) = about;
        self.wait_turn(tenant).await;
        let mut report = DeliveryReport {
            tenant: tenant.to_owned(),
            contact_id: contact_id.to_owned(),
            source_event_id: id.to_owned(),
            kind: kind.to_owned(),
            failure: None,
        };
        let policy = self.config.retry;
        let mut attempt = 1;
        loop {
            let error = match self.config.transport.deliver(id, message).await {
                Ok(()) => {
                    metrics::counter!("access_emails_total", "kind" => kind.to_owned(), "outcome" => "sent")
                        .increment(1);
                    put(&mut step.batch, key(&["report", id]), &report);
                    step.outcome = Some(LedgerEntry {
                        failure: None,
                        report: report.clone(),
                    });
                    return Ok(true);
                }
                Err(e) => e,
            };
            let give_up = match &error {
                DeliveryError::Permanent(_) => true,
                DeliveryError::Transient(_) => attempt >= policy.max_attempts,
            };
            if give_up && step.keep_trying && matches!(error, DeliveryError::Transient(_)) {
                anyhow::bail!("mail {id} not accepted after {attempt} attempts, for now: {error}");
            }
            if give_up {
                metrics::counter!("access_emails_total", "kind" => kind.to_owned(), "outcome" => "failed")
                    .increment(1);
                tracing::warn!(mail = id, attempts = attempt, error = %error, "mail given up on");
                put(
                    &mut step.batch,
                    key(&["failed", id]),
                    &FailedRecord {
                        reason: error.to_string(),
                        attempts: attempt,
                    },
                );
                report.failure = Some(error.to_string());
                put(&mut step.batch, key(&["report", id]), &report);
                step.outcome = Some(LedgerEntry {
                    failure: Some(error.to_string()),
                    report: report.clone(),
                });
                return Ok(false);
            }
            metrics::counter!("access_email_retries_total", "kind" => kind.to_owned()).increment(1);
            let wait = policy.backoff(attempt);
            tracing::info!(mail = id, attempt, error = %error, wait_ms = wait.as_millis() as u64, "mail not accepted; retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Clears the addresses of a forgotten person from the mailer's state.
    fn forget(&self, identity_id: &str, step: &mut Step) -> anyhow::Result<()> {
        for item in self.db.scan_prefix(key(&["contact", ""])) {
            let (k, v) = item?;
            let Ok(mut info) = postcard::from_bytes::<ContactInfo>(&v) else {
                continue;
            };
            if info.identity_id != identity_id {
                continue;
            }
            info.email.clear();
            let invitation_key = key(&["invitation", tenant_of(&k), &info.invitation_id]);
            if let Some(mut invitation) = get::<InvitationInfo>(&self.db, &invitation_key)? {
                invitation.email.clear();
                invitation.message.clear();
                put(&mut step.batch, invitation_key, &invitation);
            }
            put(&mut step.batch, k.to_vec(), &info);
        }
        Ok(())
    }

    /// Tells a contact something without a link (a temporary password was set,
    /// never the password itself; access was disabled).
    async fn send_notice(
        &self,
        e: &Envelope,
        kind: Kind,
        temporary_password: Option<String>,
        step: &mut Step,
    ) -> anyhow::Result<bool> {
        let event_id = e.event_id.simple().to_string();
        if self.handled(&event_id)? {
            return Ok(false);
        }
        let tenant = e.stream.tenant();
        let contact_id = e.stream.id();
        let email = get::<ContactInfo>(&self.db, &key(&["contact", tenant, contact_id]))?
            .map(|c| c.email)
            .filter(|e| !e.is_empty());
        let Some(email) = email else {
            // A login without an email (a staff login, say): nobody to tell.
            return Ok(false);
        };
        let tenant_name: String =
            get(&self.db, &key(&["tenant", tenant]))?.unwrap_or_else(|| tenant.to_owned());
        let vars = Vars {
            tenant_name,
            contact_email: email.clone(),
            temporary_password: temporary_password.unwrap_or_default(),
            ..Vars::default()
        };
        let rendered = self.render(tenant, kind, &vars)?;
        let message = compose::message(&self.config.from, &[&email], &rendered, &event_id)?;
        if !self
            .deliver(
                &event_id,
                &message,
                (tenant, contact_id, kind.as_str()),
                step,
            )
            .await?
        {
            return Ok(false);
        }
        put(
            &mut step.batch,
            key(&["sent", &event_id]),
            &SentRecord {
                at_ms: e.occurred_at_ms,
            },
        );
        tracing::info!(tenant, contact_id, kind = kind.as_str(), "notice sent");
        Ok(true)
    }

    async fn send_reset(
        &self,
        e: &Envelope,
        r: &PasswordResetRequested,
        step: &mut Step,
    ) -> anyhow::Result<bool> {
        let event_id = e.event_id.simple().to_string();
        let ledger_key = key(&["sent", &event_id]);
        if self.handled(&event_id)? {
            return Ok(false);
        }
        let tenant = e.stream.tenant();
        let contact_id = e.stream.id();
        let email = get::<ContactInfo>(&self.db, &key(&["contact", tenant, contact_id]))?
            .map(|c| c.email)
            .filter(|e| !e.is_empty());
        let Some(email) = email else {
            // The service refuses resets for logins without an email.
            tracing::warn!(
                tenant,
                contact_id,
                "a reset for a login with no email; nothing sent"
            );
            return Ok(false);
        };
        let tenant_name: String =
            get(&self.db, &key(&["tenant", tenant]))?.unwrap_or_else(|| tenant.to_owned());
        let token = self.links.reset_token(&LinkClaims {
            tenant: tenant.to_owned(),
            subject_id: contact_id.to_owned(),
            generation: r.generation,
        });
        let link = format!(
            "{}/reset/{token}",
            self.config.public_base_url.trim_end_matches('/')
        );
        let vars = Vars {
            tenant_name,
            contact_email: email.clone(),
            link,
            expiry: compose::expiry_words(r.expires_at_ms),
            ..Vars::default()
        };
        let kind = if r.first_time {
            Kind::Welcome
        } else {
            Kind::PasswordReset
        };
        let rendered = self.render(tenant, kind, &vars)?;
        let message = compose::message(&self.config.from, &[&email], &rendered, &event_id)?;
        if !self
            .deliver(
                &event_id,
                &message,
                (
                    tenant,
                    contact_id,
                    if r.first_time {
                        "welcome"
                    } else {
                        "password_reset"
                    },
                ),
                step,
            )
            .await?
        {
            return Ok(false);
        }
        put(
            &mut step.batch,
            ledger_key,
            &SentRecord {
                at_ms: e.occurred_at_ms,
            },
        );
        tracing::info!(
            tenant,
            contact_id,
            generation = r.generation,
            "password-reset email sent"
        );
        Ok(true)
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_invitation(
        &self,
        e: &Envelope,
        info: &InvitationInfo,
        invitation_id: &str,
        generation: u32,
        expires_at_ms: i64,
        resent: bool,
        step: &mut Step,
    ) -> anyhow::Result<bool> {
        let event_id = e.event_id.simple().to_string();
        let ledger_key = key(&["sent", &event_id]);
        if self.handled(&event_id)? {
            return Ok(false);
        }
        if info.email.is_empty() {
            // The person was forgotten: there is nobody to write to.
            return Ok(false);
        }
        let tenant = e.stream.tenant();
        let tenant_name: String =
            get(&self.db, &key(&["tenant", tenant]))?.unwrap_or_else(|| tenant.to_owned());
        let customer_name: String = get(&self.db, &key(&["customer", tenant, &info.customer_id]))?
            .unwrap_or_else(|| info.customer_id.clone());
        let token = self.links.invitation_token(&LinkClaims {
            tenant: tenant.to_owned(),
            subject_id: invitation_id.to_owned(),
            generation,
        });
        let link = format!(
            "{}/invite/{token}",
            self.config.public_base_url.trim_end_matches('/')
        );
        let vars = Vars {
            tenant_name,
            customer_name,
            contact_email: info.email.clone(),
            message: info.message.clone(),
            link,
            expiry: compose::expiry_words(expires_at_ms),
            ..Vars::default()
        };
        let kind = if resent {
            Kind::InvitationResent
        } else {
            Kind::Invitation
        };
        let rendered = self.render(tenant, kind, &vars)?;
        let message = compose::message(&self.config.from, &[&info.email], &rendered, &event_id)?;
        if !self
            .deliver(
                &event_id,
                &message,
                (tenant, &info.contact_id, kind.as_str()),
                step,
            )
            .await?
        {
            return Ok(false);
        }
        put(
            &mut step.batch,
            ledger_key,
            &SentRecord {
                at_ms: e.occurred_at_ms,
            },
        );
        tracing::info!(tenant, invitation_id, generation, "invitation email sent");
        Ok(true)
    }
}
