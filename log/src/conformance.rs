//! The behaviour every [`EventLog`] backend must show, written once and run
//! against each backend by its own tests.
//!
//! Each check takes a fresh, empty log and panics with a message on failure.

use crate::log::{AppendError, AppendRequest, EventLog, NewEvent, StreamAppend, subscribe};
use access_catalogue::envelope::{Actor, Aggregate, StreamId};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A stream id for tests.
pub fn stream(id: &str) -> StreamId {
    StreamId::new(Aggregate::Customer, "conformance", id).expect("valid test stream")
}

/// An append of `count` events to one stream at `expected` version.
pub fn request(
    request_id: &str,
    stream_id: &StreamId,
    expected: u64,
    count: usize,
) -> AppendRequest {
    AppendRequest {
        request_id: request_id.to_owned(),
        fingerprint: *blake(request_id),
        tenant: Some("conformance".into()),
        actor: Actor::Operator,
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        occurred_at_ms: 1_700_000_000_000,
        streams: vec![StreamAppend {
            stream: stream_id.clone(),
            expected_version: expected,
            events: (0..count)
                .map(|i| NewEvent {
                    event_id: Uuid::new_v4(),
                    event_type: "Test".into(),
                    schema_version: 1,
                    payload: format!("{request_id}/{i}").into_bytes(),
                })
                .collect(),
        }],
        reply: request_id.as_bytes().to_vec(),
    }
}

fn blake(s: &str) -> Box<[u8; 32]> {
    use sha2::Digest;
    Box::new(sha2::Sha256::digest(s.as_bytes()).into())
}

/// A command's events get consecutive positions, later commands higher ones
/// (the embedded log has no gaps; JetStream's request records take numbers
/// between commands), stream versions count from 1, and reads return events
/// in order.
pub async fn appends_are_ordered(log: Arc<dyn EventLog>) {
    let a = stream("a");
    let b = stream("b");
    let c1 = log
        .append(request("r1", &a, 0, 2))
        .await
        .expect("first append");
    assert_eq!(c1.last_position, c1.first_position + 1);
    assert!(c1.first_position >= 1);
    let c2 = log
        .append(request("r2", &b, 0, 1))
        .await
        .expect("second append");
    assert!(c2.first_position > c1.last_position);
    assert_eq!(c2.first_position, c2.last_position);
    let c3 = log
        .append(request("r3", &a, 2, 1))
        .await
        .expect("third append");
    assert!(c3.first_position > c2.last_position);
    let events = log.read_stream(&a).await.expect("read stream");
    let versions: Vec<_> = events
        .iter()
        .map(|e| (e.stream_version, e.position))
        .collect();
    assert_eq!(
        versions,
        vec![
            (1, c1.first_position),
            (2, c1.last_position),
            (3, c3.last_position)
        ]
    );
    let all = log.read_from(1, 100).await.expect("read all");
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![
            c1.first_position,
            c1.last_position,
            c2.last_position,
            c3.last_position
        ]
    );
    let one = log
        .read_from(c1.last_position + 1, 1)
        .await
        .expect("read one");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].position, c2.first_position);
    assert!(
        log.read_from(c3.last_position + 1, 10)
            .await
            .expect("read past head")
            .is_empty()
    );
    assert_eq!(*log.head().borrow(), c3.last_position);
    let mut verifier = log.chain_verifier();
    for e in &all {
        verifier.check(e).expect("chain verifies");
    }
}

/// A stale expected version is a conflict that stores nothing.
pub async fn conflicts_store_nothing(log: Arc<dyn EventLog>) {
    let a = stream("a");
    let first = log
        .append(request("r1", &a, 0, 1))
        .await
        .expect("first append");
    let err = log
        .append(request("r2", &a, 0, 1))
        .await
        .expect_err("stale version");
    assert!(
        matches!(
            err,
            AppendError::Conflict {
                actual: 1,
                expected: 0,
                ..
            }
        ),
        "{err:?}"
    );
    let mut two = request("r3", &stream("b"), 0, 1);
    two.streams.push(StreamAppend {
        stream: a.clone(),
        expected_version: 0,
        events: request("x", &a, 0, 1).streams.remove(0).events,
    });
    assert!(
        log.append(two).await.is_err(),
        "a multi-stream append with one stale stream"
    );
    assert!(
        log.read_stream(&stream("b"))
            .await
            .expect("read")
            .is_empty(),
        "all or nothing"
    );
    assert_eq!(*log.head().borrow(), first.last_position);
    assert!(log.request("r2").await.expect("lookup").is_none());
}

/// The same request id with the same payload is answered from the first
/// result; with another payload it is refused.
pub async fn request_ids_are_idempotent(log: Arc<dyn EventLog>) {
    let a = stream("a");
    let first = log.append(request("r1", &a, 0, 2)).await.expect("first");
    let again = log.append(request("r1", &a, 0, 2)).await.expect("retry");
    assert!(again.duplicate);
    assert_eq!(
        (again.first_position, again.last_position),
        (first.first_position, first.last_position)
    );
    assert_eq!(again.reply, first.reply);
    assert_eq!(
        *log.head().borrow(),
        first.last_position,
        "a retry appends nothing"
    );
    let mut other = request("r1", &a, 2, 1);
    other.fingerprint = [7; 32];
    assert!(matches!(
        log.append(other).await,
        Err(AppendError::RequestIdReused(_))
    ));
    let record = log
        .request("r1")
        .await
        .expect("lookup")
        .expect("remembered");
    assert_eq!(record.first_position, first.first_position);
    assert_eq!(record.last_position, first.last_position);
}

/// Concurrent appenders each get a distinct place, and every stream's chain
/// holds.
pub async fn concurrent_appends_are_serialised(log: Arc<dyn EventLog>) {
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move {
                let s = stream(&format!("s{}", i % 8));
                loop {
                    let version = log.read_stream(&s).await.expect("read").len() as u64;
                    match log.append(request(&format!("c{i}"), &s, version, 1)).await {
                        Ok(c) => return c.last_position,
                        Err(AppendError::Conflict { .. }) => continue,
                        Err(e) => panic!("append failed: {e}"),
                    }
                }
            })
        })
        .collect();
    let mut positions = Vec::new();
    for t in tasks {
        positions.push(t.await.expect("task"));
    }
    positions.sort_unstable();
    positions.dedup();
    assert_eq!(positions.len(), 64, "every append has a place of its own");
    let mut verifier = log.chain_verifier();
    let mut read = 0;
    let mut from = 1;
    loop {
        let batch = log.read_from(from, 1000).await.expect("read all");
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        for e in &batch {
            verifier.check(e).expect("chain verifies");
            read += 1;
        }
    }
    assert_eq!(read, 64);
    if log.dense_positions() {
        assert_eq!(positions, (1..=64).collect::<Vec<_>>());
    }
}

/// A subscription replays from its position and then receives live events.
pub async fn subscriptions_replay_then_tail(log: Arc<dyn EventLog>) {
    let a = stream("a");
    let first = log.append(request("r1", &a, 0, 3)).await.expect("append");
    let mut sub = subscribe(log.clone(), first.first_position + 1);
    assert_eq!(
        next(&mut sub).await.expect("ok").position,
        first.first_position + 1
    );
    assert_eq!(
        next(&mut sub).await.expect("ok").position,
        first.last_position
    );
    let writer = {
        let log = log.clone();
        let a = a.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            log.append(request("r2", &a, 3, 2))
                .await
                .expect("live append")
        })
    };
    let live = [
        next(&mut sub).await.expect("ok"),
        next(&mut sub).await.expect("ok"),
    ];
    let second = writer.await.expect("writer");
    assert_eq!(
        live.map(|e| (e.stream_version, e.position)),
        [(4, second.first_position), (5, second.last_position)]
    );
}

async fn next(
    sub: &mut futures::stream::BoxStream<
        'static,
        Result<access_catalogue::Envelope, crate::LogError>,
    >,
) -> Result<access_catalogue::Envelope, crate::LogError> {
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("event within 5 s")
        .expect("stream open")
}

/// Runs every check, each on a fresh log from `fresh`.
pub async fn run_all<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn EventLog>>,
{
    appends_are_ordered(fresh().await).await;
    conflicts_store_nothing(fresh().await).await;
    request_ids_are_idempotent(fresh().await).await;
    concurrent_appends_are_serialised(fresh().await).await;
    subscriptions_replay_then_tail(fresh().await).await;
}
