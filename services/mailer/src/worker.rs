//! The consumer loop and the send ledger.
//!
//! The mailer reads the log from its checkpoint. For an event that calls for an
//! email it first looks in the ledger (keyed by event id); if the email is not
//! there it sends it. A batch's mails go out side by side, each on a
//! connection of its own (`batch.rs` keeps the order a reader sees), and
//! are recorded together (up to [`MAX_UNRECORDED`]): the outbox files are
//! synced together, then the ledger
//! records and the checkpoint are appended with one sync. A crash before
//! that write makes the batch's events come round again and their emails go
//! out a second time, at most once more each and at most [`MAX_UNRECORDED`] in
//! all; every repeat carries the same `Message-ID`, and the outbox transport
//! writes by event id, so there a repeat lands on the same file.

use crate::batch::Batch;
use crate::delivery::{DeliveryReporter, RetryPolicy};
use crate::facts::Facts;
use crate::ledger::Ledger;
use crate::state::Core;
use crate::transport::Transport;
use access_catalogue::Envelope;
use access_catalogue::chain::ChainFollower;
use access_catalogue::damage::Damage;
use access_keyring::Keyring;
use access_log::log::{EventLog, subscribe};
use access_log::vault::Vault;
use anyhow::Context;
use futures::StreamExt;
use futures::stream::BoxStream;
use lettre::message::Mailbox;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Most mails under way or sent before their ledger records are written
/// (one sync of the outbox and one of the ledger for all of them): after a
/// crash at most this many go out again, each under the same `Message-ID`
/// (and outbox file).
pub const MAX_UNRECORDED: usize = 8;

/// How long a batch that sent mail waits for another event before it is
/// recorded: a steady trickle of invitations shares its syncs.
const LINGER: Duration = Duration::from_millis(20);

/// Most events in one batch: its events are kept until it is recorded, in
/// case one fails and they are handled again.
const MAX_EVENTS_PER_BATCH: usize = 1024;

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

/// The damage an error carries, if it is one: a damaged log or vault stops
/// the mailer rather than be retried or read around.
pub fn damage_of(e: &anyhow::Error) -> Option<&Damage> {
    e.chain().find_map(|c| {
        c.downcast_ref::<Damage>()
            .or_else(|| match c.downcast_ref() {
                Some(access_log::LogError::Damaged(d)) => Some(d),
                _ => None,
            })
    })
}

/// Takes queued delivery outcomes to the reporter, many at once so their
/// appends share group commits; what fails stays queued for the next step.
async fn drain_reports(ledger: &Ledger, reporter: &Arc<dyn DeliveryReporter>) {
    let results =
        futures::future::join_all(ledger.pending(256).into_iter().map(|report| async move {
            let id = report.source_event_id.clone();
            (id, reporter.report(report).await)
        }))
        .await;
    let mut done = Vec::new();
    for (id, result) in results {
        match result {
            Ok(()) => done.push(id),
            Err(e) => tracing::warn!(error = %e, "a delivery outcome could not be recorded yet"),
        }
    }
    if let Err(e) = ledger.reported(done) {
        tracing::warn!(error = %e, "noting recorded delivery outcomes; they are reported again");
    }
}

/// What the mailer does with an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One worker, in log order, recording its own batches (embedded mode).
    InOrder,
    /// A distributed worker's share of the mail: it never gives up on a
    /// temporary failure, and the shared ledger is written by its caller.
    Shared,
}

/// The mailer worker.
pub struct Mailer {
    core: Arc<Core>,
    /// How far it has come, for whoever waits on it.
    progress: Arc<watch::Sender<Progress>>,
    events: BoxStream<'static, Result<Envelope, access_log::LogError>>,
    /// Events whose batch failed, from the failed one on, handled again
    /// before anything newer (checked against the chain already).
    retry: std::collections::VecDeque<Envelope>,
    /// Checks each event against its stream's chain before it is acted on.
    follower: ChainFollower,
}

/// How far a mailer has come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// The last position handled.
    pub checkpoint: u64,
    /// Delivery outcomes still to be recorded on their contacts.
    pub outcomes_pending: usize,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("config", &self.core.config)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Opens the mailer's ledger (moving an earlier one out of sled once)
    /// and subscribes to the log after its checkpoint.
    pub fn open(
        config: MailerConfig,
        keyring: Keyring,
        log: Arc<dyn EventLog>,
        vault: Arc<dyn Vault>,
    ) -> anyhow::Result<Self> {
        let ledger = crate::sled_upgrade::open(&config.state_dir)?;
        let (checkpoint, _) = ledger.checkpoint();
        let progress = Progress {
            checkpoint,
            outcomes_pending: ledger.pending_count(),
        };
        Ok(Mailer {
            core: Arc::new(Core {
                config,
                keyring,
                facts: Facts::new(log.clone(), vault.clone(), true),
                vault,
                ledger: Some(ledger),
                pace: Default::default(),
                unrecorded: Default::default(),
            }),
            events: subscribe(log, checkpoint + 1),
            retry: Default::default(),
            follower: ChainFollower::new(FOLLOWED_STREAMS),
            progress: Arc::new(watch::channel(progress).0),
        })
    }

    /// Its ledger.
    pub(crate) fn ledger(&self) -> anyhow::Result<&Ledger> {
        self.core
            .ledger
            .as_ref()
            .context("the in-order mailer has a ledger")
    }

    /// Where its state lives.
    pub(crate) fn state_dir(&self) -> &std::path::Path {
        &self.core.config.state_dir
    }

    /// How far it has come, as it goes (the last position handled, and the
    /// outcomes still to record): what a caller waits on instead of time.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// The last position handled.
    pub fn checkpoint(&self) -> anyhow::Result<u64> {
        Ok(self.ledger()?.checkpoint().0)
    }

    /// Handles events until `shutdown` turns true; returns the damage that
    /// stopped it instead, if any (a damaged log or vault is not retried).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Option<Damage> {
        // Outcomes go back to the service from a task of their own, a batch at
        // a time, so that mail never waits for their appends.
        let core = self.core.clone();
        let reports = core.config.reporter.clone().map(|reporter| {
            let core = core.clone();
            let mut stop = shutdown.clone();
            let progress = self.progress.clone();
            tokio::spawn(async move {
                let Some(ledger) = &core.ledger else { return };
                loop {
                    drain_reports(ledger, &reporter).await;
                    // Counted under the watch's lock, so the last writer
                    // always tells the latest count.
                    progress.send_if_modified(|p| {
                        let pending = ledger.pending_count();
                        let changed = p.outcomes_pending != pending;
                        p.outcomes_pending = pending;
                        changed
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                }
                drain_reports(ledger, &reporter).await;
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
                Ok(ExecutionOutcome::Handled { position, .. }) => {
                    let pending = core.ledger.as_ref().map_or(0, Ledger::pending_count);
                    self.progress.send_modify(|p| {
                        p.checkpoint = position;
                        p.outcomes_pending = pending;
                    });
                }
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
            if let (Some(reporter), Some(ledger)) = (&core.config.reporter, &core.ledger) {
                drain_reports(ledger, reporter).await;
            }
        }
        // A batch cut short by the stop is recorded before the state closes.
        if let Err(e) = self.core.record().await {
            tracing::error!(error = %e, "recording the mails of the last batch failed; they go out again at the next start");
        }
        if let Some(Err(e)) = core.ledger.as_ref().map(Ledger::sync) {
            tracing::error!(error = %e, "syncing the mailer's ledger");
        }
        stopped_by
    }

    /// Handles the next batch of events and records it; a failed step
    /// leaves its event to be retried, and what came before it recorded.
    pub async fn try_execute_task(&mut self) -> anyhow::Result<ExecutionOutcome> {
        // Leftovers of a try whose recording failed go first.
        self.core.record().await?;
        let handled = self.execute_batch().await;
        let recorded = self.core.record().await;
        let outcome = handled?;
        recorded?;
        Ok(outcome)
    }

    /// Handles events as they come, side by side, until [`MAX_UNRECORDED`]
    /// mails were sent or are under way, or none comes within [`LINGER`] of
    /// a mail (at once, without mails). Every event started is done before
    /// this returns; a failure leaves the failed event and those after it to
    /// be handled again.
    async fn execute_batch(&mut self) -> anyhow::Result<ExecutionOutcome> {
        let mut batch = Batch::new(self.core.clone());
        let mut read_error = None;
        while !batch.failed() && batch.started() < MAX_EVENTS_PER_BATCH {
            let next = if batch.started() == 0 {
                self.next_event().await
            } else {
                let mails = self.core.unrecorded_mails();
                if mails + batch.running() >= MAX_UNRECORDED {
                    if batch.running() == 0 {
                        break;
                    }
                    batch.one_done().await;
                    continue;
                }
                let wait = if mails + batch.running() > 0 {
                    LINGER
                } else {
                    Duration::ZERO
                };
                // Cancelling `next_event` loses nothing: the stream is
                // cancel-safe and an event is checked once it is taken.
                tokio::select! {
                    next = tokio::time::timeout(wait, self.next_event()) => match next {
                        Ok(next) => next,
                        Err(_) => break,
                    },
                    () = batch.one_done(), if batch.running() > 0 => continue,
                }
            };
            match next {
                None => break,
                Some(Ok(envelope)) => batch.start(envelope).await,
                Some(Err(e)) => {
                    read_error = Some(e);
                    break;
                }
            }
        }
        let finished = batch.finish().await;
        if let Some(last) = finished.last {
            self.core.handled_through(last);
        }
        if let Some((e, again)) = finished.failed {
            self.retry.extend(again);
            // Damage met while reading stops the mailer: it goes first.
            return Err(read_error.unwrap_or(e));
        }
        if let Some(e) = read_error {
            return Err(e);
        }
        Ok(match finished.last {
            Some((position, _)) => ExecutionOutcome::Handled {
                position,
                sent: finished.sent,
            },
            None => ExecutionOutcome::Finished,
        })
    }

    /// The next event to handle: one to be handled again, or the log's
    /// next, checked against its stream's chain.
    async fn next_event(&mut self) -> Option<anyhow::Result<Envelope>> {
        if let Some(e) = self.retry.pop_front() {
            return Some(Ok(e));
        }
        let envelope = match self.events.next().await? {
            Ok(e) => e,
            Err(e) => return Some(Err(e.into())),
        };
        if let Err(damage) = self.follower.check(&envelope) {
            return Some(Err(damage.into()));
        }
        self.core.facts.saw(&envelope);
        Some(Ok(envelope))
    }
}
