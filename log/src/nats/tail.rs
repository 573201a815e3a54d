//! Following the log: the probe of whether it takes appends, the head,
//! and the feed every consumer reads.

use super::append::last_event;
use super::{Core, advance, connects, offline, probe, storage};
use crate::log::LogError;
use access_catalogue::envelope::Envelope;
use async_nats::jetstream::{self, stream};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How often JetStream is asked whether it could store an append; more
/// often while it cannot, so that commands refused at once are taken again
/// soon after it recovers.
const PROBE_EVERY: Duration = Duration::from_secs(1);
const PROBE_WHILE_DOWN: Duration = Duration::from_millis(250);

/// Asks every second whether the log's stream (and the others a command
/// writes to) could store an append, and moves the head to the leader's:
/// the connection being up says nothing of a stream with no leader, and the
/// follower's head stalls while it resubscribes.
pub(super) async fn probe_appends(core: Arc<Core>, timeout: Duration) {
    use std::sync::atomic::Ordering;
    let timeout = timeout.min(Duration::from_secs(2));
    let main = probe::Probed {
        stream: core.stream.clone(),
        subject: format!("{}.req.probe", core.prefix),
    };
    loop {
        let pause = if core.writable.load(Ordering::Relaxed) {
            PROBE_EVERY
        } else {
            PROBE_WHILE_DOWN
        };
        tokio::time::sleep(pause).await;
        let connection = connects(&core.client);
        let mut ok = false;
        if offline(&core.client).is_none()
            && let Some(last) = probe::takes_appends(&core.client, &main, timeout).await
        {
            advance(&core.head, last_event(last));
            ok = true;
        }
        let others = core.also.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for other in &others {
            if !ok {
                break;
            }
            ok = probe::takes_appends(&core.client, other, timeout)
                .await
                .is_some();
        }
        core.probed_on.store(connection, Ordering::Relaxed);
        if core.writable.swap(ok, Ordering::Relaxed) != ok {
            if ok {
                tracing::info!("JetStream takes appends again");
            } else {
                tracing::warn!(
                    "JetStream cannot take appends now (no connection, no leader or no quorum)"
                );
            }
        }
    }
}

/// Keeps `head` at the last event's sequence, through reconnects.
pub(super) async fn follow_head(
    client: async_nats::Client,
    stream: stream::Stream,
    filter: String,
    head: std::sync::Arc<watch::Sender<u64>>,
) {
    loop {
        let from = *head.borrow() + 1;
        let config = jetstream::consumer::push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: filter.clone(),
            headers_only: true,
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        };
        match stream.create_consumer(config).await {
            Ok(consumer) => match consumer.messages().await {
                Ok(mut messages) => {
                    while let Some(Ok(m)) = messages.next().await {
                        if let Ok(info) = m.info() {
                            advance(&head, info.stream_sequence);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "following the log's head"),
            },
            Err(e) => tracing::warn!(error = %e, "following the log's head"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How long the feed may be silent while the log's head is past it.
const FEED_SILENCE: Duration = Duration::from_secs(2);

/// Sends every event from `from` on into `tx`, in order, through reconnects,
/// until the receiver goes away.
pub(super) async fn feed(
    client: async_nats::Client,
    stream: stream::Stream,
    filter: String,
    mut from: u64,
    head: watch::Receiver<u64>,
    tx: mpsc::Sender<Result<Envelope, LogError>>,
) {
    loop {
        let config = jetstream::consumer::push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: filter.clone(),
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        };
        let failure = match stream.create_consumer(config).await {
            Ok(consumer) => match consumer.messages().await {
                Ok(mut messages) => loop {
                    let next = tokio::select! {
                        next = messages.next() => next,
                        // Silent while the log has moved past it: the
                        // consumer was lost across a reconnect (the client
                        // can take many seconds to notice); make a new one.
                        _ = tokio::time::sleep(FEED_SILENCE) => {
                            if *head.borrow() >= from {
                                break LogError::Unavailable(format!(
                                    "the log's feed is silent at {from} while the head is past it; resubscribing"
                                ));
                            }
                            continue;
                        }
                    };
                    let Some(next) = next else {
                        break LogError::Storage("the log's feed ended".into());
                    };
                    let m = match next {
                        Ok(m) => m,
                        Err(e) => break storage("the log's feed", e),
                    };
                    let Ok(position) = m.info().map(|i| i.stream_sequence) else {
                        break LogError::Storage("a fed message without its place".into());
                    };
                    match Envelope::decode(&m.payload) {
                        Ok(mut e) => {
                            e.position = position;
                            from = position + 1;
                            if tx.send(Ok(e)).await.is_err() {
                                return;
                            }
                        }
                        // Never step over an event: report it and start
                        // again at the same place (a newer build may read it).
                        Err(e) => {
                            break LogError::Corrupt {
                                position,
                                reason: e.to_string(),
                            };
                        }
                    }
                },
                Err(e) => storage("following the log", e),
            },
            Err(e) => storage("following the log", e),
        };
        if tx.send(Err(failure)).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
