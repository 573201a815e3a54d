//! `mailerd`'s loop on the distributed log.
//!
//! A worker keeps no state of its own (its index of the log is a cache the
//! log rebuilds): what a mail needs besides its event
//! (tenant and customer names, templates, the contact's address) is read from
//! the log's streams as they stood at the event (see `facts`). It follows the
//! log from its start only to check each stream's chain as it grows and to
//! drop the keys of persons forgotten. The sending is shared: every worker
//! pulls from one durable consumer (explicit acks) on the tenants' subjects,
//! and takes from each message the events that can call for mail (contacts'
//! and invitations'), so each such message goes to one worker at a time.
//!
//! A worker sends up to `in_flight` mails at once, each on its own SMTP
//! connection, and holds four messages per such slot (waiting for a slot,
//! or for their reports); mails of one log stream (an invitation and its
//! resend) wait for each other, in event order. For each event the worker
//! checks that the log's copy of its stream holds it, looks the event id up
//! in the shared ledger (a JetStream key-value bucket every worker sees),
//! sends if it is not there and writes the ledger, all within its sending
//! slot; then it reports the outcome to the service; the message is acked
//! once all of its events are done. While a message is in hand the worker tells
//! the server it is still working on it, so it is not handed to another.
//!
//! The window: a worker that dies after the mail server accepted a mail and
//! before the ledger write leaves its message unacked; after the ack wait
//! another worker takes the message, finds the mails already in the ledger
//! and sends that one again: at most `in_flight` repeats per crash (the mails
//! being sent), never a loss.
//! Both copies carry the event id as their Message-ID, so a receiving system
//! can tell them apart. Writing the ledger before sending would close that
//! window only by opening a worse one (a crash after the write loses the mail).

use crate::delivery::LedgerEntry;
use crate::facts::Facts;
use crate::state::Core;
use crate::worker::{MailerConfig, Mode};
use access_catalogue::Envelope;
use access_catalogue::catalogue::{Event, IdentityEvent};
use access_catalogue::chain::ChainFollower;
use access_catalogue::damage::Damage;
use access_catalogue::envelope::Aggregate;
use access_keyring::Keyring;
use access_log::LogError;
use access_log::log::{EventLog, subscribe};
use access_log::nats::NatsSettings;
use access_log::vault::Vault;
use anyhow::Context;
use async_nats::jetstream::{self, AckKind, consumer::pull, kv};
use bytes::Bytes;
use futures::FutureExt;
use futures::StreamExt;
use futures::future::Shared;
use futures::stream::BoxStream;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

/// How the workers share their work.
#[derive(Clone, Debug)]
pub struct SharedWork {
    /// The durable consumer's name (one per deployment).
    pub consumer: String,
    /// How long a worker may hold an event without a sign of life before the
    /// server hands it to another.
    pub ack_wait: Duration,
    /// Mails one worker sends at once (from the ledger's answer to its
    /// record there). A worker killed mid-way leaves at most this many to
    /// be sent again by another.
    pub in_flight: usize,
}

impl Default for SharedWork {
    fn default() -> Self {
        SharedWork {
            consumer: "mailer".into(),
            ack_wait: Duration::from_secs(5),
            in_flight: 8,
        }
    }
}

/// The ledger bucket's name for a log stream.
pub fn ledger_bucket(stream: &str) -> String {
    format!("{stream}_MAIL_LEDGER")
}

/// Stream heads the chain check remembers (about 100 bytes each).
const FOLLOWED_STREAMS: usize = 100_000;

/// What a worker reads and sends with.
pub struct Parts {
    /// The mail settings.
    pub config: MailerConfig,
    /// The keys links and temporary passwords are derived from.
    pub keyring: Keyring,
    /// The log, for the facts mails need.
    pub log: Arc<dyn EventLog>,
    /// Persons' keys (with a cache that forgotten persons leave).
    pub vault: Arc<dyn Vault>,
}

/// Runs one worker until `shutdown` turns true.
pub async fn run(
    parts: Parts,
    client: async_nats::Client,
    settings: &NatsSettings,
    work: &SharedWork,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let js = jetstream::new(client);
    let stream = js
        .get_stream(&settings.stream)
        .await
        .with_context(|| format!("opening stream {}", settings.stream))?;
    let ledger = match js.get_key_value(ledger_bucket(&settings.stream)).await {
        Ok(store) => store,
        Err(_) => js
            .create_key_value(kv::Config {
                bucket: ledger_bucket(&settings.stream),
                description: "customer portal access: which mails went out".into(),
                history: 1,
                storage: jetstream::stream::StorageType::File,
                // As safe as the log itself.
                num_replicas: stream.cached_info().config.num_replicas,
                ..Default::default()
            })
            .await
            .context("creating the mail ledger bucket")?,
    };
    let prefix = &settings.prefix;
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            &work.consumer,
            pull::Config {
                durable_name: Some(work.consumer.clone()),
                description: Some("customer portal access: mail to send".into()),
                // Contacts and invitations are a tenant's: every message of
                // a tenant, of which their events are taken.
                filter_subjects: vec![access_log::nats::tenant_subjects(prefix)],
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: work.ack_wait,
                max_deliver: -1,
                max_ack_pending: 1_000,
                ..Default::default()
            },
        )
        .await
        .context("opening the mailer's shared consumer")?;
    let Parts {
        config,
        keyring,
        log,
        vault,
    } = parts;
    // Keys cached before the worker started are none: the watch starts at
    // the head.
    let head = log.latest().await.context("reading the log's head")?;
    let events = subscribe(log.clone(), head + 1);
    let core = Arc::new(Core {
        config,
        keyring,
        facts: Facts::new(log, vault.clone(), false),
        vault,
        ledger: None,
        pace: Default::default(),
        unrecorded: Default::default(),
    });
    let mut fold = tokio::spawn(watch_log(core.clone(), events));
    let bench = Arc::new(Bench {
        core: core.clone(),
        ledger,
        ack_wait: work.ack_wait,
    });
    let stopped = dispatch(
        &consumer,
        &bench,
        work.in_flight.max(1),
        &mut fold,
        &mut shutdown,
    )
    .await;
    fold.abort();
    stopped
}

/// Follows the log in order: checks each stream's chain as it grows, and
/// drops the cached keys of persons forgotten; returns the damage that stops
/// it, if any.
async fn watch_log(
    core: Arc<Core>,
    mut events: BoxStream<'static, Result<Envelope, LogError>>,
) -> Option<Damage> {
    let mut follower = ChainFollower::new(FOLLOWED_STREAMS);
    while let Some(next) = events.next().await {
        match next {
            Ok(e) => {
                // Nothing is mailed from history that does not hold together.
                if let Err(d) = follower.check(&e) {
                    return Some(d);
                }
                if e.event_type == "IdentityForgotten"
                    && let Ok(Event::Identity(IdentityEvent::IdentityForgotten(f))) =
                        Event::decode(&e)
                {
                    core.vault.evict(e.stream.id());
                    for (_, contact_id) in &f.contacts {
                        core.vault
                            .evict(&access_catalogue::personal::contact_ref(contact_id));
                    }
                }
            }
            Err(LogError::Damaged(d)) => return Some(d),
            Err(err) => tracing::warn!(error = %err, "reading the log; the feed retries"),
        }
    }
    None
}

/// What every mail in progress shares.
struct Bench {
    core: Arc<Core>,
    ledger: kv::Store,
    ack_wait: Duration,
}

/// How long a worker taking over a mail waits for the ledger before sending.
const REDELIVERY_GRACE: Duration = Duration::from_secs(2);

/// Messages a worker holds per mail it may send at once.
const MESSAGES_PER_SLOT: usize = 4;

/// How long one pull for work waits for mail before it is asked again.
const PULL_WAIT: Duration = Duration::from_secs(1);

/// Takes mail from the shared consumer, `in_flight` mails at a time, until
/// asked to stop or the fold stops. A worker pulls only as many messages as
/// it has free slots for, so every message it holds is in its own task,
/// which sends progress acks: none waits in a buffer to time out and be
/// taken by another worker as well.
async fn dispatch(
    consumer: &jetstream::consumer::PullConsumer,
    bench: &Arc<Bench>,
    in_flight: usize,
    fold: &mut JoinHandle<Option<Damage>>,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // Messages in hand, and mails being sent: a message can hold many
    // mails, and a crash repeats at most the mails being sent. Messages in
    // hand wait for sending slots, and for their reports once sent, so
    // several per slot keep the slots busy (each tells the server it is
    // being worked on meanwhile).
    let slots = Arc::new(Semaphore::new(in_flight * MESSAGES_PER_SLOT));
    let sending = Arc::new(Semaphore::new(in_flight));
    let mut order = StreamOrder::default();
    let mut tasks = JoinSet::new();
    let outcome = loop {
        while tasks.try_join_next().is_some() {}
        if fold.is_finished() {
            // Without its check of the log the worker must not write mail.
            break Err(match fold.await {
                Ok(Some(damage)) => anyhow::Error::from(damage)
                    .context("the worker stopped: the history it reads is damaged"),
                _ => anyhow::anyhow!("the worker's watch of the log stopped"),
            });
        }
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => permit,
            _ = shutdown.wait_for(|s| *s) => break Ok(()),
        };
        let Ok(first) = first else {
            break Ok(());
        };
        let mut permits = vec![first];
        while let Ok(p) = slots.clone().try_acquire_owned() {
            permits.push(p);
        }
        let batch = consumer
            .batch()
            .max_messages(permits.len())
            .expires(PULL_WAIT)
            .messages()
            .await;
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "pulling mail work");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                next = batch.next() => next,
                _ = shutdown.wait_for(|s| *s) => break,
            };
            let message = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "pulling mail work");
                    break;
                }
                None => break,
            };
            // The pull asked for no more than there are permits.
            let Some(slot) = permits.pop() else { break };
            let mails = match mails_of(&message) {
                Ok(mails) => mails,
                Err(e) => {
                    tracing::warn!(error = %e, "a message this build cannot read; no mail");
                    let _ = ack(&message).await;
                    continue;
                }
            };
            // Entered in the log's order, so one stream's mails keep it.
            let mails: Vec<_> = mails
                .into_iter()
                .map(|e| {
                    let (after, done) = order.enter(e.stream.as_str());
                    (e, after, done)
                })
                .collect();
            let (bench, sending) = (bench.clone(), sending.clone());
            tasks.spawn(async move {
                if let Err(e) = handle_message(&bench, &message, mails, &sending).await {
                    // Left unacked with a pause: it comes round again, here or
                    // elsewhere; the ledger keeps what was sent.
                    tracing::error!(error = ?e, "mail step failed; the event will be retried");
                    let _ = message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                        .await;
                }
                drop(slot);
            });
        }
        if *shutdown.borrow() {
            break Ok(());
        }
    };
    // Mail in progress is finished, not cut off, when asked to stop: cutting
    // one after the server accepted it would send it twice. What is still
    // retrying after half a minute is left unacked for another worker.
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    outcome
}

/// The mail before one on its stream: done when its holder drops.
type Turn = Shared<oneshot::Receiver<()>>;

/// What a mail holds while in hand; dropping it lets the next mail of its
/// stream go.
struct InHand {
    _done: oneshot::Sender<()>,
    _alive: Arc<()>,
}

/// Keeps the mails of one log stream (an invitation and its resend, say) in
/// the order of their events, while other streams' mail goes on beside them.
#[derive(Default)]
struct StreamOrder {
    /// Per log stream, the last mail taken on, and whether it is still
    /// in hand.
    last: HashMap<String, (Turn, Weak<()>)>,
}

impl StreamOrder {
    /// Enters a mail of `stream`: the mail it must wait for, if one is
    /// still in hand, and what it holds until it is done.
    fn enter(&mut self, stream: &str) -> (Option<Turn>, InHand) {
        if self.last.len() > 1_024 {
            self.last.retain(|_, (_, alive)| alive.strong_count() > 0);
        }
        let (done, turn) = oneshot::channel();
        let alive = Arc::new(());
        let before = self
            .last
            .insert(stream.to_owned(), (turn.shared(), Arc::downgrade(&alive)));
        let before = before
            .filter(|(_, alive)| alive.strong_count() > 0)
            .map(|(turn, _)| turn);
        let hand = InHand {
            _done: done,
            _alive: alive,
        };
        (before, hand)
    }
}

/// The events of a pulled message that can call for mail: its contacts'
/// and invitations'.
fn mails_of(message: &jetstream::Message) -> anyhow::Result<Vec<Envelope>> {
    let seq = message
        .info()
        .map_err(|e| anyhow::anyhow!("a message without its place: {e}"))?
        .stream_sequence;
    let events = access_log::nats::events_of(&message.payload, seq)?;
    Ok(events
        .into_iter()
        .filter(|e| {
            matches!(
                e.stream.aggregate(),
                Aggregate::Contact | Aggregate::Invitation
            )
        })
        .collect())
}

/// Sends (or finds already sent) the mail each of a message's events calls
/// for, each in its stream's turn and with a sending slot, records them in
/// the shared ledger, reports them, and acks the message once all are done;
/// telling the server it is still at work every third of the ack wait
/// throughout, so that only a dead worker's message moves on.
async fn handle_message(
    bench: &Bench,
    message: &jetstream::Message,
    mails: Vec<(Envelope, Option<Turn>, InHand)>,
    sending: &Semaphore,
) -> anyhow::Result<()> {
    let delivered = message
        .info()
        .map_err(|e| anyhow::anyhow!("a message without its place: {e}"))?
        .delivered;
    let work = async {
        let each = mails.into_iter().map(|(envelope, after, hand)| async move {
            if let Some(before) = after {
                // Done or dropped: either way its turn is over.
                let _ = before.await;
            }
            if delivered > 1 {
                // Taken over: the worker that had it may be alive, its
                // ledger write held up by the same fault that held up its
                // acks. Give that write the time to land before deciding to
                // send again.
                tokio::time::sleep(REDELIVERY_GRACE).await;
            }
            // The sending slot covers the mail from the ledger's answer to
            // the ledger's record of it: the mails a crash can repeat. The
            // report to the service goes on outside it.
            let slot = sending.acquire().await?;
            let entry = deliver(bench, &envelope).await;
            drop(slot);
            drop(hand);
            report(bench, entry?).await;
            Ok::<(), anyhow::Error>(())
        });
        for done in futures::future::join_all(each).await {
            done?;
        }
        ack(message).await
    };
    tokio::pin!(work);
    let mut alive = tokio::time::interval(bench.ack_wait / 3);
    alive.tick().await;
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = alive.tick() => {
                let _ = message.ack_with(AckKind::Progress).await;
            }
        }
    }
}

/// Sends the mail `envelope` calls for unless the ledger has it, and records
/// it there: what was sent (or found sent), if anything.
async fn deliver(bench: &Bench, envelope: &Envelope) -> anyhow::Result<Option<LedgerEntry>> {
    let Bench { core, ledger, .. } = bench;
    // Mailed only if the log's verified copy of its stream holds it.
    core.facts.holds(envelope).await?;
    let id = envelope.event_id.simple().to_string();
    let known = ledger.get(&id).await.context("reading the mail ledger")?;
    Ok(match known {
        Some(bytes) => Some(serde_json::from_slice::<LedgerEntry>(&bytes)?),
        None => {
            let (_, outcome) = core.handle(envelope, Mode::Shared).await?;
            if let Some(entry) = &outcome {
                // The mail is out: keep trying to record it rather than let
                // the event come round and send it again.
                let bytes = Bytes::from(serde_json::to_vec(entry)?);
                let mut wait = Duration::from_millis(100);
                while let Err(e) = ledger.put(&id, bytes.clone()).await {
                    tracing::warn!(error = %e, mail = %id, "writing the mail ledger; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(1));
                }
            }
            outcome
        }
    })
}

/// Tells the service what became of a mail (again, after a crash between
/// ledger and ack: the service records each outcome once).
async fn report(bench: &Bench, entry: Option<LedgerEntry>) {
    if let (Some(entry), Some(reporter)) = (entry, bench.core.reporter()) {
        // Reported again after a crash between ledger and ack: the service
        // records each mail's outcome once whatever the repeats.
        // A service that is restarting gets a minute; a report that still
        // cannot be recorded (a wrong operator key, say) must not hold the
        // event, and every mail after it, for ever: the ledger keeps it.
        let mut wait = Duration::from_millis(200);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while let Err(e) = reporter.report(entry.report.clone()).await {
            if tokio::time::Instant::now() >= deadline {
                tracing::error!(error = %e, mail = %entry.report.source_event_id, "the delivery outcome could not be recorded on the contact; the mail ledger has it");
                break;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }
}

async fn ack(message: &jetstream::Message) -> anyhow::Result<()> {
    message
        .double_ack()
        .await
        .map_err(|e| anyhow::anyhow!("acknowledging: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stream_s_mails_wait_for_each_other_and_other_streams_do_not() {
        let mut order = StreamOrder::default();
        let (first, first_done) = order.enter("invitation.acme.i1");
        assert!(first.is_none());
        let (second, second_done) = order.enter("invitation.acme.i1");
        let (other, _other_done) = order.enter("invitation.acme.i2");
        assert!(other.is_none(), "another stream's mail goes at once");
        let second = second.expect("the resend waits for the invitation");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), second.clone())
                .await
                .is_err(),
            "the invitation is still in hand"
        );
        drop(first_done);
        let _ = tokio::time::timeout(Duration::from_secs(1), second)
            .await
            .expect("the resend's turn comes once the invitation is done");
        drop(second_done);
        let (third, _) = order.enter("invitation.acme.i1");
        assert!(third.is_none(), "nothing left in hand on the stream");
        for i in 0..2_000 {
            let _ = order.enter(&format!("invitation.acme.x{i}"));
        }
        assert!(order.last.len() <= 1_025, "streams done with are forgotten");
    }
}
