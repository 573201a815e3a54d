//! The state mails need, folded from the log: tenants, customers,
//! contacts, invitations, templates and settings, in the mailer's own
//! database.

use crate::delivery::{DeliveryReporter, LedgerEntry};
use crate::templates::{Kind, Template};
use crate::worker::{CHECKPOINT, CHECKPOINT_HASH, ExecutionOutcome, MailerConfig, Mode};
use access_catalogue::Envelope;
use access_catalogue::catalogue::{
    ContactEvent, CustomerCreated, CustomerEvent, CustomerUpdated, Event, IdentityEvent,
    InvitationEvent, TenantEvent,
};
use access_catalogue::personal::Personal;
use access_keyring::Keyring;
use access_log::vault::{DecodeOpenError, Vault, decode_open};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct InvitationInfo {
    pub(crate) email: String,
    pub(crate) customer_id: String,
    pub(crate) message: String,
    pub(crate) contact_id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ContactInfo {
    pub(crate) email: String,
    pub(crate) customer_id: String,
    /// Its invitation (empty for logins created by staff).
    pub(crate) invitation_id: String,
    /// Its person, so that forgetting the person clears the address here too.
    pub(crate) identity_id: String,
}

/// A personal value as the mailer keeps it: empty once its person is forgotten.
pub(crate) fn readable(p: &Personal) -> String {
    if p.is_erased() {
        String::new()
    } else {
        p.text().to_owned()
    }
}

/// The writes of one step, and its mail's outcome.
#[derive(Default)]
pub(crate) struct Step {
    /// What the mails need to know: written at once.
    pub(crate) batch: sled::Batch,
    /// What became of the mail (ledger, outcome report): written only once
    /// the mail itself is durable.
    pub(crate) ledger: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) outcome: Option<LedgerEntry>,
    /// A distributed worker never gives up on a temporary failure: the
    /// event goes back to the shared consumer and comes round again.
    pub(crate) keep_trying: bool,
    /// Outbox files written without a sync, synced with the batch's others.
    pub(crate) unsynced: Vec<String>,
    /// Whether the mail's sync may wait for the batch (one worker in log
    /// order, which records the batch itself).
    pub(crate) defer_sync: bool,
}

/// Mails sent, and events handled, whose records wait for the batch's one
/// sync (see `Core::record`).
#[derive(Default)]
pub(crate) struct Unrecorded {
    ledger: Vec<(Vec<u8>, Vec<u8>)>,
    unsynced: Vec<String>,
    /// The last event handled: the checkpoint and its hash.
    last: Option<(u64, [u8; 32])>,
    pub(crate) mails: usize,
}

/// What a step needs besides the event stream (shared across awaits, so Sync).
pub(crate) struct Core {
    pub(crate) config: MailerConfig,
    pub(crate) keyring: Keyring,
    /// Persons' keys, to read personal values.
    pub(crate) vault: Arc<dyn Vault>,
    pub(crate) db: sled::Db,
    /// When each tenant may send its next mail.
    pub(crate) pace: std::sync::Mutex<std::collections::HashMap<String, tokio::time::Instant>>,
    /// What the current batch has sent and not yet recorded.
    pub(crate) unrecorded: std::sync::Mutex<Unrecorded>,
}

/// Puts a ledger record into `step`, to be written with the mail's batch.
pub(crate) fn put_ledger<T: Serialize>(step: &mut Step, key: Vec<u8>, value: &T) {
    step.ledger
        .push((key, postcard::to_stdvec(value).unwrap_or_default()));
}

pub(crate) fn get<T: for<'a> Deserialize<'a>>(
    db: &sled::Db,
    key: &[u8],
) -> anyhow::Result<Option<T>> {
    Ok(match db.get(key)? {
        Some(v) => Some(postcard::from_bytes(&v).context("mailer state")?),
        None => None,
    })
}

pub(crate) fn put<T: Serialize>(batch: &mut sled::Batch, key: Vec<u8>, value: &T) {
    batch.insert(key, postcard::to_stdvec(value).unwrap_or_default());
}

pub(crate) fn key(parts: &[&str]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

/// The tenant part of a `contact\0<tenant>\0<id>` key.
pub(crate) fn tenant_of(k: &[u8]) -> &str {
    k.split(|b| *b == 0)
        .nth(1)
        .and_then(|t| std::str::from_utf8(t).ok())
        .unwrap_or_default()
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

    /// Mails sent in this batch and not yet recorded.
    pub(crate) fn unrecorded_mails(&self) -> usize {
        self.unrecorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .mails
    }

    /// Makes the batch's mails durable (one sync of the outbox), then
    /// writes their ledger records and the checkpoint with one flush. On a
    /// failure everything stays to be recorded by the next try.
    pub(crate) async fn record(&self) -> anyhow::Result<()> {
        let taken = std::mem::take(&mut *self.unrecorded.lock().unwrap_or_else(|p| p.into_inner()));
        if taken.last.is_none() && taken.ledger.is_empty() {
            return Ok(());
        }
        let written = async {
            self.config.transport.sync_outbox(&taken.unsynced).await?;
            let mut batch = sled::Batch::default();
            for (k, v) in &taken.ledger {
                batch.insert(k.as_slice(), v.as_slice());
            }
            if let Some((position, hash)) = &taken.last {
                put(&mut batch, CHECKPOINT.to_vec(), position);
                put(&mut batch, CHECKPOINT_HASH.to_vec(), hash);
            }
            self.db.apply_batch(batch)?;
            if taken.mails > 0 {
                // The ledger must be on disk before the next batch's mails.
                self.db.flush_async().await?;
            }
            Ok::<_, anyhow::Error>(())
        }
        .await;
        if written.is_err() {
            let mut now = self.unrecorded.lock().unwrap_or_else(|p| p.into_inner());
            let later = std::mem::replace(&mut *now, taken);
            now.ledger.extend(later.ledger);
            now.unsynced.extend(later.unsynced);
            now.last = later.last.or(now.last);
            now.mails += later.mails;
        }
        written
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
    pub(crate) async fn apply(
        &self,
        e: &Envelope,
        decoded: anyhow::Result<Event>,
        mode: Mode,
    ) -> anyhow::Result<(ExecutionOutcome, Option<LedgerEntry>)> {
        let mut step = Step {
            keep_trying: mode == Mode::Send,
            defer_sync: mode == Mode::FoldAndSend,
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
                    && matches!(e.actor, access_catalogue::Actor::ApiKey { .. }) =>
            {
                // The password itself only for a tenant that chose to mail
                // it, and only if generated: typed ones exist nowhere.
                let mail_it =
                    get::<bool>(&self.db, &key(&["mail-temporary", tenant]))?.unwrap_or(false);
                let password = p.generated.as_ref().filter(|_| mail_it).map(|g| {
                    self.keyring
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
                        .evict(&access_catalogue::personal::contact_ref(contact_id));
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
        if mode == Mode::FoldAndSend {
            // What the mails need now; what became of them with the batch.
            self.db.apply_batch(step.batch)?;
            let mut u = self.unrecorded.lock().unwrap_or_else(|p| p.into_inner());
            u.ledger.append(&mut step.ledger);
            u.unsynced.append(&mut step.unsynced);
            u.last = Some((e.position, e.hash));
            u.mails += usize::from(sent);
            return Ok((handled, step.outcome));
        }
        put(&mut step.batch, CHECKPOINT.to_vec(), &e.position);
        put(&mut step.batch, CHECKPOINT_HASH.to_vec(), &e.hash);
        for (k, v) in step.ledger {
            step.batch.insert(k, v);
        }
        self.db.apply_batch(step.batch)?;
        Ok((handled, step.outcome))
    }

    /// Clears the addresses of a forgotten person from the mailer's state.
    pub(crate) fn forget(&self, identity_id: &str, step: &mut Step) -> anyhow::Result<()> {
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
}
