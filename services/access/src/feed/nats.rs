//! The public events on NATS, in the distributed mode: each event of the log
//! published once, as protobuf, to `<prefix>.public.<tenant>.<type>`, kept
//! in a stream of their own for subscribers that want to catch up.
//!
//! The replicas share one durable consumer of the log with one message in
//! hand at a time, so one replica publishes a message's events, in the log's
//! order, and acknowledges the message only once every publish is stored.
//! A replica that dies between the two leaves the message to another, whose
//! publishes carry the same message ids: the public stream keeps one of each
//! within its duplicate window, far longer than the consumer's ack wait.

use crate::app::{App, AppError};
use crate::feed::Disclosure;
use access_catalogue::chain::ChainFollower;
use access_log::LogError;
use access_log::nats::{NatsSettings, events_of};
use async_nats::jetstream::{self, AckKind, consumer::pull, message::PublishMessage, stream};
use futures::StreamExt;
use prost::Message as _;
use std::time::Duration;
use tokio::sync::watch;

/// The durable consumer the replicas share.
const CONSUMER: &str = "public-events";
/// How long a replica may hold a message, silent, before another gets it:
/// longer than it waits for its read models (it says it is at work first).
const ACK_WAIT: Duration = Duration::from_secs(60);
/// How long the public stream recognises a publish it has already.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(300);
/// How long public events are kept for subscribers catching up.
const KEPT_FOR: Duration = Duration::from_secs(7 * 24 * 3600);
/// Stream heads the publisher's chain check remembers.
const FOLLOWED_STREAMS: usize = 10_000;
/// The longest pause between two tries after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The public stream's name for a log stream.
pub fn stream_name(log_stream: &str) -> String {
    format!("{log_stream}_PUBLIC")
}

/// The subject of a public event.
pub fn subject(prefix: &str, tenant: &str, kind: &str) -> String {
    format!("{prefix}.public.{tenant}.{kind}")
}

/// Publishes every event of the log, from the consumer's place on, until
/// `shutdown`; transient failures are retried for ever, damage stops it.
pub async fn publish(
    app: App,
    client: async_nats::Client,
    settings: NatsSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut failures = 0u32;
    loop {
        let started = std::time::Instant::now();
        let outcome = tokio::select! {
            outcome = run(&app, &client, &settings) => outcome,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        // A run that went well for a while starts the backoff again.
        if started.elapsed() > Duration::from_secs(60) {
            failures = 0;
        }
        match outcome {
            Ok(never) => match never {},
            Err(Stop::Damaged(e)) => {
                tracing::error!(error = %e, "the public events on NATS stop: an event of the log cannot be read or mapped; the other replicas stop at it too");
                return;
            }
            Err(Stop::Transient(e)) => {
                failures += 1;
                let wait =
                    (Duration::from_millis(100) * 2u32.pow(failures.min(6))).min(MAX_BACKOFF);
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "publishing the public events; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait_for(|s| *s) => return,
                }
            }
        }
    }
}

/// Why publishing stopped.
enum Stop {
    /// Worth trying again: NATS out of reach, the read models behind.
    Transient(String),
    /// The log cannot be read or mapped as it is.
    Damaged(String),
}

fn transient(e: impl std::fmt::Display) -> Stop {
    Stop::Transient(e.to_string())
}

async fn run(
    app: &App,
    client: &async_nats::Client,
    settings: &NatsSettings,
) -> Result<std::convert::Infallible, Stop> {
    let js = jetstream::new(client.clone());
    js.get_or_create_stream(stream::Config {
        name: stream_name(&settings.stream),
        description: Some("customer portal access: public events".into()),
        subjects: vec![format!("{}.public.>", settings.prefix)],
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        duplicate_window: DUPLICATE_WINDOW,
        max_age: KEPT_FOR,
        ..Default::default()
    })
    .await
    .map_err(transient)?;
    let log = js.get_stream(&settings.stream).await.map_err(transient)?;
    let consumer: jetstream::consumer::PullConsumer = log
        .get_or_create_consumer(
            CONSUMER,
            pull::Config {
                durable_name: Some(CONSUMER.into()),
                description: Some("customer portal access: public events to publish".into()),
                filter_subjects: vec![
                    format!("{}.t.>", settings.prefix),
                    format!("{}.g.>", settings.prefix),
                ],
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_deliver: -1,
                // One message in hand across all replicas: the log's order.
                max_ack_pending: 1,
                ..Default::default()
            },
        )
        .await
        .map_err(transient)?;
    // What is published is checked, as every reader of the log does.
    let mut chain = ChainFollower::new(FOLLOWED_STREAMS);
    loop {
        let mut batch = consumer
            .batch()
            .max_messages(1)
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .map_err(transient)?;
        while let Some(message) = batch.next().await {
            let message = message.map_err(transient)?;
            if let Err(stop) = handle(app, &js, settings, &mut chain, &message).await {
                // Back to the consumer soon, here or at another replica.
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_millis(500))))
                    .await;
                return Err(stop);
            }
        }
    }
}

/// Publishes one log message's public events and acknowledges it.
async fn handle(
    app: &App,
    js: &jetstream::Context,
    settings: &NatsSettings,
    chain: &mut ChainFollower,
    message: &jetstream::Message,
) -> Result<(), Stop> {
    let seq = message.info().map_err(transient)?.stream_sequence;
    let envelopes = events_of(&message.payload, seq).map_err(|e| match e {
        LogError::Damaged(_) | LogError::Corrupt { .. } => Stop::Damaged(e.to_string()),
        other => transient(other),
    })?;
    for envelope in &envelopes {
        chain
            .check(envelope)
            .map_err(|d| Stop::Damaged(d.to_string()))?;
    }
    // At work: the ack wait starts again, however long the read models take.
    message
        .ack_with(AckKind::Progress)
        .await
        .map_err(transient)?;
    let mut acks = Vec::new();
    for envelope in &envelopes {
        let public = app
            .public_events_of(envelope, Disclosure { personal: false })
            .await
            .map_err(|e| match e {
                // Waiting helps: NATS, the vault or the read models are back soon.
                AppError::Unavailable(_) | AppError::Behind(_) | AppError::Busy(_) => transient(e),
                // A message that will never map would hold every replica's
                // single slot for ever: stop, loudly.
                other => Stop::Damaged(other.to_string()),
            })?;
        for event in public {
            let publish = PublishMessage::build()
                .message_id(format!("{}#{}", event.id, event.part))
                .payload(event.encode_to_vec().into());
            let to = subject(&settings.prefix, &event.tenant, &event.r#type);
            acks.push(js.send_publish(to, publish).await.map_err(transient)?);
        }
    }
    for ack in acks {
        ack.await.map_err(transient)?;
    }
    message.double_ack().await.map_err(transient)
}
