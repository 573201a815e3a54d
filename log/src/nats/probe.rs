//! Whether a JetStream stream could store an append now, asked without
//! storing anything: its leader must answer a publish it refuses, with the
//! leader a majority of its replicas must be current, and a direct read of
//! a subject must be answered.
//!
//! Stream info alone is not enough: while a stream has no leader, another
//! server may still answer it, naming the dead leader. The refused publish
//! (an expected last sequence no subject can have) is answered only by a
//! live leader, and adds nothing to the stream.

use async_nats::HeaderMap;
use async_nats::jetstream::stream;
use serde::Deserialize;
use std::time::Duration;

/// A stream to probe, and a subject of it to send the refused publish to.
#[derive(Clone)]
pub(crate) struct Probed {
    /// The stream.
    pub stream: stream::Stream,
    /// A subject the stream stores, where nothing is ever written.
    pub subject: String,
}

/// The server's error code for a wrong expected last subject sequence.
const WRONG_LAST_SEQUENCE: u64 = 10071;

#[derive(Deserialize)]
struct Refusal {
    #[serde(default)]
    error: Option<Code>,
}

#[derive(Deserialize)]
struct Code {
    #[serde(default)]
    err_code: u64,
}

/// Whether a stream's info shows a leader and, with it, a majority of its
/// replicas current.
pub(crate) fn writable(info: &stream::Info) -> bool {
    let Some(cluster) = &info.cluster else {
        return true;
    };
    let replicas = info.config.num_replicas.max(1);
    let current = cluster
        .replicas
        .iter()
        .filter(|p| p.current && !p.offline)
        .count();
    cluster.leader.is_some() && 1 + current > replicas / 2
}

/// The stream's last sequence if it could store an append now, each
/// question bounded by `timeout`.
pub(crate) async fn takes_appends(
    client: &async_nats::Client,
    probed: &Probed,
    timeout: Duration,
) -> Option<u64> {
    let mut stream = probed.stream.clone();
    let info = tokio::time::timeout(timeout, stream.info())
        .await
        .ok()?
        .ok()?;
    let last = info.state.last_sequence;
    if !writable(info) {
        return None;
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        "Nats-Expected-Last-Subject-Sequence",
        u64::MAX.to_string().as_str(),
    );
    let answer = tokio::time::timeout(
        timeout,
        client.request_with_headers(probed.subject.clone(), headers, bytes::Bytes::new()),
    )
    .await
    .ok()?
    .ok()?;
    let refusal: Refusal = serde_json::from_slice(&answer.payload).ok()?;
    if refusal.error?.err_code != WRONG_LAST_SEQUENCE {
        return None;
    }
    // Commands read request records and stream heads by direct get, which
    // a restarted stream may refuse (503) for a while after it has a leader.
    let read = tokio::time::timeout(
        timeout,
        probed
            .stream
            .get_last_raw_message_by_subject(&probed.subject),
    )
    .await
    .ok()?;
    match read {
        Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Some(last),
        _ => None,
    }
}
