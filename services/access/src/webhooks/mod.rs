//! The webhook delivery worker, in every replica of both modes: one task
//! per webhook, posting the tenant's public events in order (`deliver`),
//! signed (`sign`). The log is the outbox: a webhook's delivery records say
//! how far it got, and a task starts again from the last record.
//!
//! In the distributed mode each webhook is delivered by the replica that
//! holds its lease, a key in a NATS key-value bucket that expires unless
//! renewed; a replica that dies leaves its webhooks to another within the
//! lease's life. Should two ever post at once, only one can record, since
//! a record must continue from the last; the other stops at its next.

pub mod address;
mod deliver;
pub mod sign;

use crate::app::App;
use async_nats::jetstream::kv;
use deliver::{Ended, Worker};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How the worker delivers.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The longest wait between two tries at one delivery.
    pub max_backoff: Duration,
    /// How long deliveries may fail before they are given up.
    pub give_up_after: Duration,
    /// Whether loopback and private network addresses may be posted to.
    pub private_addresses: bool,
}

/// How often the worker looks for webhooks added, removed or resumed, and
/// renews its leases.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// A lease's life: a replica that stops renewing loses its webhooks after it.
const LEASE_LIFE: Duration = Duration::from_secs(15);
/// How long one post may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// A task stops posting this long before its lease could expire.
const LEASE_MARGIN: Duration = Duration::from_secs(3);

/// Who delivers which webhook.
#[derive(Clone)]
pub enum Leases {
    /// One process: it delivers every webhook.
    Local,
    /// Replicas sharing a NATS key-value bucket of leases.
    Nats {
        /// The bucket.
        store: Box<kv::Store>,
        /// This replica's name, the value of the leases it holds.
        holder: String,
    },
}

impl Leases {
    /// The leases of the log stream `stream` on NATS, in a bucket made
    /// with `replicas` copies.
    pub async fn nats(
        client: async_nats::Client,
        stream: &str,
        replicas: usize,
    ) -> anyhow::Result<Self> {
        let js = async_nats::jetstream::new(client);
        let bucket = format!("{stream}_WEBHOOK_LEASES");
        let store = match js.get_key_value(&bucket).await {
            Ok(store) => store,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket,
                    history: 1,
                    max_age: LEASE_LIFE,
                    storage: async_nats::jetstream::stream::StorageType::Memory,
                    num_replicas: replicas.max(1),
                    ..Default::default()
                })
                .await
                .map_err(|e| anyhow::anyhow!("creating the webhooks' lease bucket: {e}"))?,
        };
        Ok(Leases::Nats {
            store: Box::new(store),
            holder: uuid::Uuid::new_v4().to_string(),
        })
    }

    /// Takes the lease of `key` if no one holds it: its revision.
    async fn take(&self, key: &str) -> Option<u64> {
        match self {
            Leases::Local => Some(0),
            Leases::Nats { store, holder } => store.create(key, holder.clone().into()).await.ok(),
        }
    }

    /// Renews a lease held at `revision`: the new revision, or `None` if it
    /// was lost.
    async fn renew(&self, key: &str, revision: u64) -> Option<u64> {
        match self {
            Leases::Local => Some(0),
            Leases::Nats { store, holder } => store
                .update(key, holder.clone().into(), revision)
                .await
                .ok(),
        }
    }

    /// Gives a lease back, so another replica need not wait for it to expire.
    async fn release(&self, key: &str, revision: u64) {
        if let Leases::Nats { store, .. } = self {
            let _ = store.delete_expect_revision(key, Some(revision)).await;
        }
    }
}

/// A webhook being delivered here.
struct Running {
    task: JoinHandle<Ended>,
    revision: u64,
    fence: Fence,
}

/// Until when a task may post: its lease's life from the last renewal
/// asked for, less a margin. A task whose lease was not renewed in time
/// (the broker slow, this replica paused) stops posting by itself, before
/// another replica can have taken the lease.
#[derive(Clone, Debug)]
pub struct Fence {
    started: Instant,
    /// Milliseconds after `started`; `u64::MAX` for a lease that never ends.
    until_ms: Arc<AtomicU64>,
}

impl Fence {
    fn new(forever: bool) -> Self {
        let until = if forever { u64::MAX } else { 0 };
        Fence {
            started: Instant::now(),
            until_ms: Arc::new(AtomicU64::new(until)),
        }
    }

    /// A renewal asked for at `asked` succeeded.
    fn renewed(&self, asked: Instant) {
        if self.until_ms.load(Ordering::Relaxed) == u64::MAX {
            return;
        }
        let until = asked.saturating_duration_since(self.started) + LEASE_LIFE - LEASE_MARGIN;
        self.until_ms
            .store(until.as_millis() as u64, Ordering::Relaxed);
    }

    /// Whether the lease still holds.
    pub fn holds(&self) -> bool {
        (self.started.elapsed().as_millis() as u64) < self.until_ms.load(Ordering::Relaxed)
    }
}

/// Delivers every webhook this replica holds until `shutdown`.
pub async fn run(app: App, leases: Leases, options: Options, mut shutdown: watch::Receiver<bool>) {
    let mut http = reqwest::Client::builder()
        .timeout(POST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if !options.private_addresses {
        http = http.dns_resolver(Arc::new(address::PublicOnly));
    }
    let http = match http.build() {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "the webhook worker has no HTTP client; no webhook is delivered");
            return;
        }
    };
    let mut running: HashMap<(String, String), Running> = HashMap::new();
    loop {
        let wanted = app.all_webhooks();
        // Ended tasks give their lease back; a failure starts again at the
        // next look.
        let ended: Vec<_> = running
            .iter()
            .filter(|(_, r)| r.task.is_finished())
            .map(|(key, r)| (key.clone(), r.revision))
            .collect();
        for (key, revision) in ended {
            running.remove(&key);
            leases.release(&lease_key(&key), revision).await;
        }
        // Renewed side by side, each within a third of the lease's life: a
        // broker that is slow to answer one does not cost the others theirs.
        let asked = Instant::now();
        let renewals = running.iter().map(|(key, r)| {
            let (leases, key, revision) = (&leases, lease_key(key), r.revision);
            async move {
                tokio::time::timeout(LEASE_LIFE / 3, leases.renew(&key, revision))
                    .await
                    .ok()
                    .flatten()
            }
        });
        let renewed = futures::future::join_all(renewals).await;
        for ((key, r), renewed) in running.iter_mut().zip(renewed) {
            match renewed {
                Some(revision) => {
                    r.revision = revision;
                    r.fence.renewed(asked);
                }
                None => {
                    tracing::info!(tenant = %key.0, webhook = %key.1, "lost a webhook's lease; another replica delivers it");
                    r.task.abort();
                }
            }
        }
        for key in wanted {
            if running.contains_key(&key) || !deliverable(&app, &key) {
                continue;
            }
            let asked = Instant::now();
            let Some(revision) = leases.take(&lease_key(&key)).await else {
                continue;
            };
            let fence = Fence::new(matches!(leases, Leases::Local));
            fence.renewed(asked);
            let worker = Worker {
                fence: fence.clone(),
                app: app.clone(),
                http: http.clone(),
                tenant: key.0.clone(),
                webhook_id: key.1.clone(),
                options,
                shutdown: shutdown.clone(),
            };
            let task = tokio::spawn(async move {
                let ended = worker.run().await;
                if let Ended::Failed(e) = &ended {
                    tracing::warn!(error = %e, "a webhook's deliveries stopped; starting again");
                }
                ended
            });
            running.insert(
                key,
                Running {
                    task,
                    revision,
                    fence,
                },
            );
        }
        tokio::select! {
            () = tokio::time::sleep(LOOK_EVERY) => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    for (key, mut r) in running {
        // Each task records what it delivered before it ends; one that
        // cannot is stopped before its lease is given back.
        if tokio::time::timeout(Duration::from_secs(5), &mut r.task)
            .await
            .is_err()
        {
            r.task.abort();
            let _ = r.task.await;
        }
        leases.release(&lease_key(&key), r.revision).await;
    }
}

/// Whether a webhook has deliveries to make: not given up.
fn deliverable(app: &App, (tenant, id): &(String, String)) -> bool {
    app.webhook_now(tenant, id)
        .is_some_and(|row| row.gave_up.is_none())
}

fn lease_key((tenant, id): &(String, String)) -> String {
    format!("{tenant}.{id}")
}
