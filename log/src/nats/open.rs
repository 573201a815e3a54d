//! Opening (or creating and checking) the log's stream, and seeding it.

use super::append::{last_event, write_groups};
use super::tail::{follow_head, probe_appends};
use super::{Core, JetStreamLog, NatsSettings, connect_client, connects, probe, storage};
use crate::log::LogError;
use access_catalogue::envelope::{Envelope, StreamId};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

impl JetStreamLog {
    /// Connects, creates the stream if it does not exist (checking it if it
    /// does), and starts following its head.
    pub async fn open(settings: &NatsSettings) -> Result<Self, LogError> {
        let client = connect_client(settings).await?;
        Self::with_client(client, settings).await
    }

    /// Like [`JetStreamLog::open`], on a connection the caller made.
    pub async fn with_client(
        client: async_nats::Client,
        settings: &NatsSettings,
    ) -> Result<Self, LogError> {
        let mut js = jetstream::new(client.clone());
        js.set_timeout(settings.timeout);
        let prefix = settings.prefix.clone();
        let subjects = vec![format!("{prefix}.ev.>"), format!("{prefix}.req.>")];
        let config = stream::Config {
            name: settings.stream.clone(),
            description: Some("customer portal access: event log".into()),
            subjects: subjects.clone(),
            storage: stream::StorageType::File,
            num_replicas: settings.replicas,
            allow_atomic_publish: true,
            allow_direct: true,
            // The log is append-only: nobody deletes or purges through NATS.
            deny_delete: true,
            deny_purge: true,
            duplicate_window: settings.duplicate_window,
            ..Default::default()
        };
        // A cluster that is starting has no JetStream leader for a few
        // seconds: keep asking for a while before giving up.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut stream = loop {
            match js.get_or_create_stream(config.clone()).await {
                Ok(stream) => break stream,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(error = %e, "JetStream not ready; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    return Err(storage(&format!("opening stream {}", settings.stream), e));
                }
            }
        };
        let info = stream
            .info()
            .await
            .map_err(|e| storage("reading the stream's settings", e))?
            .clone();
        if !info.config.allow_atomic_publish
            || !subjects.iter().all(|s| info.config.subjects.contains(s))
        {
            return Err(LogError::Storage(format!(
                "stream {} exists but does not allow atomic batches on {:?}; \
                 it was not created by this service",
                settings.stream, subjects
            )));
        }
        let start = last_event(info.state.last_sequence);
        let head = std::sync::Arc::new(watch::Sender::new(start));
        let follower = tokio::spawn(follow_head(
            client.clone(),
            stream.clone(),
            format!("{prefix}.ev.>"),
            head.clone(),
        ));
        let connected_times = connects(&client);
        let core = Arc::new(Core {
            client,
            stream,
            name: settings.stream.clone(),
            prefix,
            head,
            heads: Default::default(),
            writable: std::sync::atomic::AtomicBool::new(probe::writable(&info)),
            probed_on: std::sync::atomic::AtomicU64::new(connected_times),
            also: Default::default(),
        });
        let prober = tokio::spawn(probe_appends(core.clone(), settings.timeout));
        let (jobs, queue) = mpsc::channel(4096);
        let writer = tokio::spawn(write_groups(core.clone(), queue));
        Ok(JetStreamLog {
            core,
            jobs,
            follower,
            prober,
            writer,
        })
    }

    /// Probes `other` (with a subject it stores) with the log's stream from
    /// now on: a command that also writes there (the key vault) can be
    /// stored only when both can.
    pub fn probe_also(&self, other: stream::Stream, subject: String) {
        self.core
            .also
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(probe::Probed {
                stream: other,
                subject,
            });
    }

    /// The subject of one aggregate stream.
    pub fn subject_of(&self, stream: &StreamId) -> String {
        self.core.subject_of(stream)
    }

    /// Seeds an empty stream with a whole log (a restored backup, an
    /// embedded log moving to the distributed mode), in order, as the events
    /// are: hashes and chains untouched; positions become this stream's
    /// sequences. Request records are not carried over.
    pub async fn import(
        &self,
        envelopes: impl IntoIterator<Item = Envelope>,
    ) -> Result<u64, LogError> {
        let mut stream = self.core.stream.clone();
        let info = stream
            .info()
            .await
            .map_err(|e| LogError::Unavailable(e.to_string()))?;
        if info.state.messages > 0 {
            return Err(LogError::Storage(format!(
                "stream {} is not empty: a restore only goes into an empty stream",
                self.core.name
            )));
        }
        let js = jetstream::new(self.core.client.clone());
        let mut pending = Vec::new();
        let mut written = 0u64;
        for mut envelope in envelopes {
            envelope.position = 0;
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", envelope.event_id.to_string().as_str());
            headers.insert("Access-Event-Type", envelope.event_type.as_str());
            let subject = self.core.subject_of(&envelope.stream);
            let ack = js
                .publish_with_headers(subject, headers, Bytes::from(envelope.encode()))
                .await
                .map_err(|e| LogError::Unavailable(e.to_string()))?;
            pending.push(ack);
            written += 1;
            // Acks in order, a window at a time: the log's order is kept.
            if pending.len() >= 256 {
                for ack in pending.drain(..) {
                    ack.await
                        .map_err(|e| LogError::Unavailable(e.to_string()))?;
                }
            }
        }
        for ack in pending {
            ack.await
                .map_err(|e| LogError::Unavailable(e.to_string()))?;
        }
        Ok(written)
    }
}
