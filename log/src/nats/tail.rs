//! Following the log: the probe of whether it takes appends, the head,
//! and the feed every consumer reads.

use super::frame;
use super::index::Applied;
use super::{Core, READ_BATCH, advance, connects, offline, probe, storage};
use crate::log::LogError;
use access_catalogue::envelope::Envelope;
use async_nats::jetstream::{self, stream};
use futures::FutureExt;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

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
        subject: format!("{}.probe", core.prefix),
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
        let mut last_seq = 0;
        if offline(&core.client).is_none()
            && let Some(last) = probe::takes_appends(&core.client, &main, timeout).await
        {
            if let Ok(position) = core.last_event(last).await {
                advance(&core.head, position);
            }
            last_seq = last;
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
                // The index's follower has likely lost its consumer in the
                // gap: reads fill the index themselves until it is back, and
                // the replica says it takes commands once the index holds
                // what the log held now.
                core.note_follower_late();
                core.ready_from.fetch_max(last_seq, Ordering::Relaxed);
                tracing::info!("JetStream takes appends again");
            } else {
                tracing::warn!(
                    "JetStream cannot take appends now (no connection, no leader or no quorum)"
                );
            }
        }
        let ready_from = core.ready_from.load(Ordering::Relaxed);
        if ok
            && core.index.applied() < ready_from
            && let Err(e) = core.pull_into_index(ready_from).await
        {
            tracing::debug!(error = %e, "filling the index after a gap");
        }
    }
}

/// How long the index's follower may be silent while the log's head is past it.
const FEED_SILENCE: Duration = Duration::from_secs(2);

/// About the most bytes one read of a feed behind the index asks for.
const FEED_BYTES: usize = 4 * 1024 * 1024;

/// Sends every event from position `from` on into `tx`, in order, through
/// reconnects, until the receiver goes away. The events come from what the
/// index applies, as it applies them: each message is fetched from NATS and
/// decoded once per replica, whoever reads it. What the index applied before
/// the reader came, or what a reader missed by falling behind, is read from
/// the log itself.
pub(super) async fn feed(core: Arc<Core>, from: u64, tx: mpsc::Sender<Result<Envelope, LogError>>) {
    let mut from = from;
    loop {
        let failure = tokio::select! {
            failure = feed_from(&core, &mut from, &tx) => failure,
            _ = tx.closed() => return,
        };
        // Never step over an event: report it and start again at the same
        // place (a newer build may read it).
        if tx.send(Err(failure)).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Sends events from `from` on, moving `from` past each one sent, until
/// something goes wrong (the receiver going away ends it too, with an error
/// no one reads).
async fn feed_from(
    core: &Core,
    from: &mut u64,
    tx: &mpsc::Sender<Result<Envelope, LogError>>,
) -> LogError {
    let send = |e: Envelope, from: &mut u64| {
        *from = e.position + 1;
        tx.send(Ok(e))
    };
    loop {
        // Listening first, so that no batch falls between what is read
        // below and what is heard.
        let mut live = core.index.published();
        // Every message up to `done` is handled. The one `from` falls in may
        // be handled in part: it is read again, its earlier events skipped.
        let mut done = frame::sequence_of(*from).max(1) - 1;
        // What the index applied before: read from the stream, up to what
        // the index holds and no further (what it has not checked, or
        // stopped at as damaged, is not handed on).
        loop {
            if let Some(fault) = core.index_fault() {
                return fault;
            }
            let applied = core.index.applied();
            if done >= applied {
                break;
            }
            let (frames, last, _) = match core.direct_batch(done + 1, READ_BATCH, FEED_BYTES).await
            {
                Ok(read) => read,
                Err(e) => return e,
            };
            if last <= done {
                // The member that answered has less than this replica's
                // index: a gap now would be a gap for good.
                return LogError::Unavailable(
                    "the stream's member that answered is behind this replica; reading again"
                        .into(),
                );
            }
            for (seq, _, frame) in frames {
                if seq > applied {
                    break;
                }
                for e in frame.envelopes {
                    if e.position >= *from && send(e, from).await.is_err() {
                        return closed();
                    }
                }
            }
            done = last.min(applied);
        }
        loop {
            let heard = tokio::select! {
                heard = live.recv() => heard,
                _ = tokio::time::sleep(FEED_SILENCE) => match core.index_fault() {
                    Some(fault) => return fault,
                    None => continue,
                },
            };
            match heard {
                Ok(batch) if batch.last <= done => {}
                // Messages between were applied before this reader listened,
                // or went by unheard: read them from the stream.
                Ok(batch) if batch.first > done + 1 => break,
                Ok(batch) => {
                    let skip = *from;
                    for e in batch.events.iter().filter(|e| e.position >= skip) {
                        if send(e.clone(), from).await.is_err() {
                            return closed();
                        }
                    }
                    done = batch.last;
                }
                // Fallen behind what the index keeps: read the log again.
                Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => return closed(),
            }
        }
    }
}

fn closed() -> LogError {
    LogError::Storage("the log's feed ended".into())
}

/// Follows the stream's messages from sequence `from` on with an ordered
/// consumer, each decoded by `decode` (its sequence and payload),
/// into the channel returned; an error ends it (the caller starts again).
/// A consumer silent while the head is past it is taken for lost.
async fn frames<T: Send + 'static>(
    client: &async_nats::Client,
    stream: &stream::Stream,
    from: u64,
    head: &watch::Receiver<u64>,
    decode: impl Fn(u64, &bytes::Bytes) -> Result<T, LogError> + Send + 'static,
) -> Result<mpsc::Receiver<Result<T, LogError>>, LogError> {
    let config = jetstream::consumer::push::OrderedConfig {
        deliver_subject: client.new_inbox(),
        deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
            start_sequence: from,
        },
        ..Default::default()
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|e| storage("following the log", e))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| storage("following the log", e))?;
    let (tx, rx) = mpsc::channel(64);
    let head = head.clone();
    tokio::spawn(async move {
        let mut next_seq = from;
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                // Silent while the log has moved past it: the consumer was
                // lost across a reconnect (the client can take many seconds
                // to notice); the caller makes a new one.
                _ = tokio::time::sleep(FEED_SILENCE) => {
                    if frame::sequence_of(*head.borrow()) >= next_seq {
                        let _ = tx.send(Err(LogError::Unavailable(format!(
                            "the log's feed is silent at message {next_seq} while the head is past it; resubscribing"
                        )))).await;
                        return;
                    }
                    if tx.is_closed() {
                        return;
                    }
                    continue;
                }
            };
            let item = match next {
                None => Err(LogError::Storage("the log's feed ended".into())),
                Some(Err(e)) => Err(storage("the log's feed", e)),
                Some(Ok(m)) => match m.info().map(|i| i.stream_sequence) {
                    Err(_) => Err(LogError::Storage("a fed message without its place".into())),
                    Ok(seq) => {
                        next_seq = seq + 1;
                        decode(seq, &m.payload)
                    }
                },
            };
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                return;
            }
        }
    });
    Ok(rx)
}

/// Most messages, and about the most bytes of events, the follower applies
/// at once.
const FOLLOW_BATCH: usize = 256;
const FOLLOW_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Fills the index from the log, in order, through reconnects; stops for
/// good on damage, which every read and append then reports.
pub(super) async fn follow_index(core: std::sync::Arc<Core>) {
    loop {
        let from = core.index.applied() + 1;
        let head = core.head.subscribe();
        let failure = match frames(&core.client, &core.stream, from, &head, |seq, m| {
            let frame = frame::read(m, seq)?;
            Ok(Applied { seq, frame })
        })
        .await
        {
            Ok(mut messages) => loop {
                let Some(first) = messages.recv().await else {
                    break LogError::Storage("the log's feed ended".into());
                };
                let mut batch = Vec::new();
                let mut bytes = 0;
                let mut failed = None;
                let mut next = Some(first);
                // What has arrived goes in together: one commit for many
                // messages while catching up, of a size the feed's readers
                // may hold.
                while let Some(item) = next {
                    match item {
                        Ok(a) => {
                            bytes += a
                                .frame
                                .envelopes
                                .iter()
                                .map(|e| e.payload.len() + 256)
                                .sum::<usize>();
                            batch.push(a);
                        }
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                    if batch.len() >= FOLLOW_BATCH || bytes >= FOLLOW_BATCH_BYTES {
                        break;
                    }
                    next = messages.recv().now_or_never().flatten();
                }
                match (core.apply(batch), failed) {
                    (Err(e), _) | (Ok(()), Some(e)) => break e,
                    (Ok(()), None) => {}
                }
            },
            Err(e) => e,
        };
        match failure {
            LogError::Damaged(_) | LogError::Corrupt { .. } => {
                tracing::error!(error = %failure, "the log's index stops: the log is damaged");
                *core.index_fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(failure);
                return;
            }
            other => tracing::warn!(error = %other, "following the log for the index; retrying"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
