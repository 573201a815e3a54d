//! `mailerd`'s loop on the distributed log.
//!
//! Each worker keeps its own copy of the state mails need (tenant and customer
//! names, templates, contacts), folded from the whole log through an ordered
//! consumer into its local state directory. The sending is shared: every
//! worker pulls from one durable consumer (explicit acks) on the subjects of
//! the events that can call for mail (contacts and invitations), so each such
//! event goes to one worker at a time.
//!
//! For each event the worker waits until its own fold has passed it, looks the
//! event id up in the shared ledger (a JetStream key-value bucket every worker
//! sees), sends if it is not there, writes the ledger, reports the outcome to
//! the service, and only then acks. While a mail is being retried the worker
//! tells the server it is still working on it, so it is not handed to another.
//!
//! The window: a worker that dies after the mail server accepted a mail and
//! before the ledger write leaves the event unacked; after the ack wait another
//! worker sends it again: at most one repeat per crash, never a loss. Both
//! copies carry the event id as their Message-ID, so a receiving system can
//! tell them apart. Writing the ledger before sending would close that window
//! only by opening a worse one (a crash after the write loses the mail).

use crate::worker::{Core, LedgerEntry, Mailer, Mode};
use access_events::Envelope;
use access_events::chain::ChainFollower;
use access_events::nats_log::NatsSettings;
use anyhow::Context;
use async_nats::jetstream::{self, AckKind, consumer::pull, kv};
use bytes::Bytes;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How the workers share their work.
#[derive(Clone, Debug)]
pub struct SharedWork {
    /// The durable consumer's name (one per deployment).
    pub consumer: String,
    /// How long a worker may hold an event without a sign of life before the
    /// server hands it to another.
    pub ack_wait: Duration,
}

impl Default for SharedWork {
    fn default() -> Self {
        SharedWork {
            consumer: "mailer".into(),
            ack_wait: Duration::from_secs(5),
        }
    }
}

/// The ledger bucket's name for a log stream.
pub fn ledger_bucket(stream: &str) -> String {
    format!("{stream}_MAIL_LEDGER")
}

/// Stream heads the fold's chain check remembers (about 100 bytes each).
const FOLLOWED_STREAMS: usize = 100_000;

/// Runs one worker until `shutdown` turns true.
pub async fn run(
    mailer: Mailer,
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
                filter_subjects: vec![
                    format!("{prefix}.ev.*.contact.>"),
                    format!("{prefix}.ev.*.invitation.>"),
                ],
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: work.ack_wait,
                max_deliver: -1,
                max_ack_pending: 1_000,
                ..Default::default()
            },
        )
        .await
        .context("opening the mailer's shared consumer")?;
    // One at a time: a message waiting in a worker's buffer gets no progress
    // acks, could time out and be sent by another worker as well.
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(1)
        .messages()
        .await
        .context("pulling from the mailer's shared consumer")?;

    let start = mailer.checkpoint()?;
    let (core, mut events) = mailer.into_parts();
    let core = Arc::new(core);
    let (folded_tx, mut folded) = watch::channel(start);
    let fold = {
        let core = core.clone();
        tokio::spawn(async move {
            let mut follower = ChainFollower::new(FOLLOWED_STREAMS);
            while let Some(next) = events.next().await {
                let e = match next {
                    Ok(e) => e,
                    Err(access_events::LogError::Damaged(d)) => return Some(d),
                    Err(err) => {
                        tracing::warn!(error = %err, "reading the log; the feed retries");
                        continue;
                    }
                };
                // Nothing is mailed from history that does not hold together.
                if let Err(d) = follower.check(&e) {
                    return Some(d);
                }
                while let Err(err) = core.handle(&e, Mode::Fold).await {
                    tracing::error!(error = ?err, position = e.position, "keeping mail state; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                folded_tx.send_replace(e.position);
            }
            None
        })
    };

    loop {
        if fold.is_finished() {
            // Without its view of the log the worker cannot write mail.
            return match fold.await {
                Ok(Some(damage)) => Err(anyhow::Error::from(damage)
                    .context("the worker stopped: the history it reads is damaged")),
                _ => Err(anyhow::anyhow!("the worker's fold of the log stopped")),
            };
        }
        let next = tokio::select! {
            next = messages.next() => next,
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let message = match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "pulling mail work");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            None => break,
        };
        // A mail in progress is finished, not cut off, when asked to stop:
        // cutting it after the server accepted it would send it twice.
        let step = handle_one(&core, &ledger, &message, &mut folded, work.ack_wait);
        tokio::pin!(step);
        let mut stopping = false;
        let outcome = tokio::select! {
            r = &mut step => r,
            _ = shutdown.wait_for(|s| *s) => {
                stopping = true;
                match tokio::time::timeout(Duration::from_secs(30), &mut step).await {
                    Ok(r) => r,
                    // Still retrying: left unacked, another worker takes it.
                    Err(_) => break,
                }
            }
        };
        if let Err(e) = outcome {
            // Left unacked with a pause: it comes round again, here or elsewhere.
            tracing::error!(error = ?e, "mail step failed; the event will be retried");
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                .await;
        }
        if stopping {
            break;
        }
    }
    fold.abort();
    core.flush().await
}

/// Sends (or finds already sent) the mail one event calls for, records it in
/// the shared ledger, reports it, and acks; telling the server it is still
/// at work every third of the ack wait throughout, so that only a dead
/// worker's mail moves on.
async fn handle_one(
    core: &Core,
    ledger: &kv::Store,
    message: &jetstream::Message,
    folded: &mut watch::Receiver<u64>,
    ack_wait: Duration,
) -> anyhow::Result<()> {
    let work = work_one(core, ledger, message, folded);
    tokio::pin!(work);
    let mut alive = tokio::time::interval(ack_wait / 3);
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

async fn work_one(
    core: &Core,
    ledger: &kv::Store,
    message: &jetstream::Message,
    folded: &mut watch::Receiver<u64>,
) -> anyhow::Result<()> {
    let position = message
        .info()
        .map_err(|e| anyhow::anyhow!("a message without its place: {e}"))?
        .stream_sequence;
    let mut envelope = match Envelope::decode(&message.payload) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(position, error = %e, "an event this build cannot read; no mail");
            return ack(message).await;
        }
    };
    envelope.position = position;
    // The state this mail needs (names, templates, the contact) must be in.
    folded
        .wait_for(|f| *f >= position)
        .await
        .context("the fold stopped")?;
    let id = envelope.event_id.simple().to_string();
    let known = ledger.get(&id).await.context("reading the mail ledger")?;
    let entry = match known {
        Some(bytes) => Some(serde_json::from_slice::<LedgerEntry>(&bytes)?),
        None => {
            let (_, outcome) = core.handle(&envelope, Mode::Send).await?;
            if let Some(entry) = &outcome {
                // The mail is out: keep trying to record it rather than let
                // the event come round and send it again.
                let bytes = Bytes::from(serde_json::to_vec(entry)?);
                let mut wait = Duration::from_millis(100);
                while let Err(e) = ledger.put(&id, bytes.clone()).await {
                    tracing::warn!(error = %e, mail = %id, "writing the mail ledger; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
            outcome
        }
    };
    if let (Some(entry), Some(reporter)) = (entry, core.reporter()) {
        // Reported again after a crash between ledger and ack: the service
        // records each mail's outcome once whatever the repeats.
        // A service that is restarting gets a minute; a report that still
        // cannot be recorded (a wrong operator key, say) must not hold the
        // event, and every mail after it, for ever: the ledger keeps it.
        let mut wait = Duration::from_millis(200);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while let Err(e) = reporter.report(entry.report.clone()).await {
            if tokio::time::Instant::now() >= deadline {
                tracing::error!(error = %e, mail = %id, "the delivery outcome could not be recorded on the contact; the mail ledger has it");
                break;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }
    ack(message).await
}

async fn ack(message: &jetstream::Message) -> anyhow::Result<()> {
    message
        .double_ack()
        .await
        .map_err(|e| anyhow::anyhow!("acknowledging: {e}"))
}
