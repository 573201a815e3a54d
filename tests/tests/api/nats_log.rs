//! The JetStream backend against the same conformance checks as the embedded
//! log, on a real `nats-server`.

use access_events::conformance;
use access_events::log::EventLog;
use access_events::nats_log::{JetStreamLog, NatsSettings};
use access_tests::nats::Nats;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_log_meets_the_conformance_suite() {
    let nats = Nats::single().await;
    let counter = AtomicUsize::new(0);
    conformance::run_all(|| {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let mut settings = NatsSettings::new(nats.urls());
        settings.stream = format!("CONFORMANCE{n}");
        settings.prefix = format!("conformance{n}");
        async move {
            Arc::new(JetStreamLog::open(&settings).await.expect("the log opens"))
                as Arc<dyn EventLog>
        }
    })
    .await;
}
