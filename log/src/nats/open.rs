//! Opening (or creating and checking) the log's stream, and seeding it.

use super::frame::{self, EVENTS_HEADER, Frame};
use super::index::Index;
use super::tail::{follow_index, probe_appends};
use super::write::write_frames;
use super::{Core, JetStreamLog, NatsSettings, advance, connect_client, connects, probe, storage};
use crate::log::LogError;
use access_catalogue::envelope::Envelope;
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
        let subjects = vec![
            format!("{prefix}.t.>"),
            format!("{prefix}.g.>"),
            format!("{prefix}.probe"),
        ];
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
        if info.config.subjects.contains(&format!("{prefix}.ev.>")) {
            return Err(LogError::Storage(format!(
                "stream {} holds the log in the earlier layout (a message per event); \
                 export an archive with the build that wrote it and restore it into a new stream",
                settings.stream
            )));
        }
        if !info.config.allow_atomic_publish
            || !subjects.iter().all(|s| info.config.subjects.contains(s))
        {
            return Err(LogError::Storage(format!(
                "stream {} exists but does not allow atomic batches on {:?}; \
                 it was not created by this service",
                settings.stream, subjects
            )));
        }
        // The index names the stream it was built from, by name and birth:
        // a stream made again under the same name starts it again.
        let built_from = format!("{}@{}", settings.stream, info.created);
        let index = Index::open(settings.index_dir.as_deref(), &built_from)?;
        let head = std::sync::Arc::new(watch::Sender::new(0));
        let connected_times = connects(&client);
        let core = Arc::new(Core {
            client: client.clone(),
            stream: stream.clone(),
            name: settings.stream.clone(),
            prefix,
            head: head.clone(),
            index,
            index_fault: Default::default(),
            timeout: settings.timeout,
            pulling: Default::default(),
            follower_late_at: Default::default(),
            lasts: Default::default(),
            ready_from: std::sync::atomic::AtomicU64::new(info.state.last_sequence),
            writable: std::sync::atomic::AtomicBool::new(probe::writable(&info)),
            probed_on: std::sync::atomic::AtomicU64::new(connected_times),
            also: Default::default(),
        });
        let start = core.last_event(info.state.last_sequence).await?;
        advance(&head, start);
        let indexer = tokio::spawn(follow_index(core.clone()));
        let prober = tokio::spawn(probe_appends(core.clone(), settings.timeout));
        let (jobs, queue) = mpsc::channel(4096);
        let writer = tokio::spawn(write_frames(core.clone(), queue));
        Ok(JetStreamLog {
            core,
            jobs,
            prober,
            writer,
            indexer,
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
        // Consecutive events of one scope share a frame; the order is kept.
        let mut open: Option<(String, Frame)> = None;
        let mut envelopes = envelopes.into_iter();
        loop {
            let next = envelopes.next();
            let subject = next
                .as_ref()
                .map(|e| frame::scope_of(&self.core.prefix, &e.stream));
            let full = open.as_ref().is_some_and(|(s, f)| {
                Some(s) != subject.as_ref() || f.envelopes.len() >= 64 || f.size() > 256 * 1024
            });
            if full && let Some((s, f)) = open.take() {
                let mut headers = HeaderMap::new();
                headers.insert(EVENTS_HEADER, f.envelopes.len().to_string().as_str());
                let ack = js
                    .publish_with_headers(s, headers, Bytes::from(f.encode()))
                    .await
                    .map_err(|e| LogError::Unavailable(e.to_string()))?;
                pending.push(ack);
            }
            // Acks in order, a window at a time: the log's order is kept.
            if pending.len() >= 256 || next.is_none() {
                for ack in pending.drain(..) {
                    ack.await
                        .map_err(|e| LogError::Unavailable(e.to_string()))?;
                }
            }
            let (Some(mut envelope), Some(subject)) = (next, subject) else {
                break;
            };
            envelope.position = 0;
            open.get_or_insert_with(|| (subject, Frame::default()))
                .1
                .envelopes
                .push(envelope.encode());
            written += 1;
        }
        Ok(written)
    }
}
