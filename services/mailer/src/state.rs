//! What one step of the mailer works with: the core every step shares (the
//! configuration, the keys, the facts read from the log, the ledger of the
//! embedded worker), and how one event is acted on.

use crate::delivery::{DeliveryReport, DeliveryReporter, LedgerEntry};
use crate::facts::{Facts, InvitationFacts, decode_for_mail, readable};
use crate::ledger::Ledger;
use crate::templates::Kind;
use crate::worker::{ExecutionOutcome, MailerConfig, Mode};
use access_catalogue::Envelope;
use access_catalogue::catalogue::{ContactEvent, Event, IdentityEvent, InvitationEvent};
use access_keyring::Keyring;
use access_log::vault::{DecodeOpenError, Vault};
use anyhow::Context;
use std::sync::Arc;

/// One step's mail and what became of it.
#[derive(Default)]
pub(crate) struct Step {
    /// What became of the mail, for the ledger and the contact's record.
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
    /// Each mail's event position and outcome.
    outcomes: Vec<(u64, DeliveryReport)>,
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
    /// What mails need, read from the log.
    pub(crate) facts: Facts,
    /// The embedded worker's record of what it did (a distributed worker's
    /// is shared, outside).
    pub(crate) ledger: Option<Ledger>,
    /// When each tenant may send its next mail.
    pub(crate) pace: std::sync::Mutex<std::collections::HashMap<String, tokio::time::Instant>>,
    /// What the current batch has sent and not yet recorded.
    pub(crate) unrecorded: std::sync::Mutex<Unrecorded>,
}

impl Core {
    /// The configured reporter, if any.
    pub(crate) fn reporter(&self) -> Option<Arc<dyn DeliveryReporter>> {
        self.config.reporter.clone()
    }

    /// Mails sent in this batch and not yet recorded.
    pub(crate) fn unrecorded_mails(&self) -> usize {
        self.unrecorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .mails
    }

    /// Notes that every event up to `last` (position and hash) is done: the
    /// checkpoint the next recording writes.
    pub(crate) fn handled_through(&self, last: (u64, [u8; 32])) {
        self.unrecorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last = Some(last);
    }

    /// Makes the batch's mails durable (one sync of the outbox), then
    /// writes their outcomes and the checkpoint to the ledger with one sync.
    /// On a failure everything stays to be recorded by the next try.
    pub(crate) async fn record(&self) -> anyhow::Result<()> {
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        let taken = std::mem::take(&mut *self.unrecorded.lock().unwrap_or_else(|p| p.into_inner()));
        if taken.last.is_none() && taken.outcomes.is_empty() {
            return Ok(());
        }
        let written = async {
            self.config.transport.sync_outbox(&taken.unsynced).await?;
            ledger.record(&taken.outcomes, taken.last)
        }
        .await;
        if written.is_err() {
            let mut now = self.unrecorded.lock().unwrap_or_else(|p| p.into_inner());
            let later = std::mem::replace(&mut *now, taken);
            now.outcomes.extend(later.outcomes);
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
        let decoded = match decode_for_mail(self.vault.as_ref(), std::slice::from_ref(e)).await {
            Ok(mut events) => events.pop().context("one event decoded"),
            Err(DecodeOpenError::Codec(c)) => Err(anyhow::Error::from(c)),
            // The vault did not answer: try the event again later.
            Err(DecodeOpenError::Vault(v)) => return Err(v.into()),
            // A key missing without an erasure: damage, never "[erased]".
            Err(DecodeOpenError::Missing(d)) => return Err(d.into()),
        };
        self.apply(e, decoded, mode).await
    }

    /// Acts on one decoded event as `mode` says.
    pub(crate) async fn apply(
        &self,
        e: &Envelope,
        decoded: anyhow::Result<Event>,
        mode: Mode,
    ) -> anyhow::Result<(ExecutionOutcome, Option<LedgerEntry>)> {
        let mut step = Step {
            keep_trying: mode == Mode::Shared,
            defer_sync: mode == Mode::InOrder,
            ..Step::default()
        };
        let (tenant, at) = (e.stream.tenant(), e.position);
        let sent = match decoded {
            Ok(Event::Invitation(InvitationEvent::InvitationIssued(i))) => {
                let info = InvitationFacts {
                    email: readable(&i.email),
                    customer_id: i.customer_id,
                    message: readable(&i.message),
                    contact_id: i.contact_id,
                };
                self.send_invitation(
                    e,
                    &info,
                    &i.invitation_id,
                    i.generation,
                    i.expires_at_ms,
                    false,
                    &mut step,
                )
                .await?
            }
            Ok(Event::Invitation(InvitationEvent::InvitationResent(r))) => {
                let invitation_id = e.stream.id();
                let info = self
                    .facts
                    .invitation(tenant, invitation_id, at)
                    .await?
                    .context("a resent invitation the log holds no issue of")?;
                self.send_invitation(
                    e,
                    &info,
                    invitation_id,
                    r.generation,
                    r.expires_at_ms,
                    true,
                    &mut step,
                )
                .await?
            }
            Ok(Event::Contact(ContactEvent::AccessDisabled(_))) => {
                if self.facts.tenant(tenant, at).await?.notify_disabled {
                    self.send_notice(e, Kind::AccessDisabled, None, &mut step)
                        .await?
                } else {
                    false
                }
            }
            // A change to how the contact signs in is always told: if they
            // did not make it, someone else did.
            Ok(Event::Contact(ContactEvent::TotpAdded(_))) => {
                let what = "An authenticator app".to_owned();
                self.send_notice(e, Kind::SecondFactorAdded, Some(what), &mut step)
                    .await?
            }
            Ok(Event::Contact(ContactEvent::PasskeyAdded(p))) => {
                let what = format!("A passkey named \u{201c}{}\u{201d}", p.name);
                self.send_notice(e, Kind::SecondFactorAdded, Some(what), &mut step)
                    .await?
            }
            Ok(Event::Contact(ContactEvent::SecondFactorRemoved(r))) => {
                self.send_notice(
                    e,
                    Kind::SecondFactorRemoved,
                    Some(r.reason.clone()),
                    &mut step,
                )
                .await?
            }
            Ok(Event::Contact(ContactEvent::ContactAwaitingApproval(_))) => {
                self.send_approval_notice(e, true, &mut step).await?
            }
            Ok(Event::Contact(ContactEvent::ContactApproved(_))) => {
                self.send_approval_notice(e, false, &mut step).await?
            }
            Ok(Event::Contact(ContactEvent::LocalPasswordSet(p)))
                if p.temporary && matches!(e.actor, access_catalogue::Actor::ApiKey { .. }) =>
            {
                // The password itself only for a tenant that chose to mail
                // it, and only if generated: typed ones exist nowhere.
                let mail_it = self.facts.tenant(tenant, at).await?.mail_temporary;
                let password = p.generated.as_ref().filter(|_| mail_it).map(|g| {
                    self.keyring
                        .temporary_password(tenant, &g.request_id, &g.label)
                });
                self.send_notice(e, Kind::TemporaryPassword, password, &mut step)
                    .await?
            }
            Ok(Event::Identity(IdentityEvent::IdentityForgotten(f))) => {
                // Keys held in memory go with the person.
                self.vault.evict(e.stream.id());
                for (_, contact_id) in &f.contacts {
                    self.vault
                        .evict(&access_catalogue::personal::contact_ref(contact_id));
                }
                false
            }
            Ok(Event::Contact(ContactEvent::PasswordResetRequested(r))) => {
                self.send_reset(e, &r, &mut step).await?
            }
            Ok(_) => false,
            Err(err) => {
                // Written by a newer build: nothing this build could mail.
                tracing::warn!(position = e.position, error = %err, "mailer skips an event it cannot read");
                false
            }
        };
        let handled = ExecutionOutcome::Handled {
            position: e.position,
            sent,
        };
        if mode == Mode::InOrder {
            // What became of the mail is recorded with the batch.
            let mut u = self.unrecorded.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(outcome) = &step.outcome {
                u.outcomes.push((e.position, outcome.report.clone()));
            }
            u.unsynced.append(&mut step.unsynced);
            u.mails += usize::from(sent);
        }
        // A distributed worker's ledger is shared: the caller writes it.
        Ok((handled, step.outcome))
    }
}
