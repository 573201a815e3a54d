//! The JetStream backend against the same conformance checks as the embedded
//! log, on a real `nats-server`.

use access_log::conformance;
use access_log::log::EventLog;
use access_log::nats::{JetStreamLog, NatsSettings};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_replicas_making_one_persons_key_all_get_the_same_key() {
    use access_log::nats::KvVault;
    use access_log::vault::Vault;
    let nats = Nats::cluster().await;
    let mut vaults = Vec::new();
    for _ in 0..2 {
        let urls: Vec<async_nats::ServerAddr> = nats
            .urls()
            .split(',')
            .map(|u| u.parse().expect("url"))
            .collect();
        let client = async_nats::connect(urls).await.expect("connects");
        let js = async_nats::jetstream::new(client);
        vaults.push(Arc::new(
            KvVault::open(&js, "VAULTTEST", 3).await.expect("opens"),
        ));
    }
    for round in 0..5 {
        let key_ref = format!("person{round}");
        let tries: Vec<_> = (0..8)
            .map(|i| {
                let vault = vaults[i % 2].clone();
                let key_ref = key_ref.clone();
                tokio::spawn(async move { vault.get_or_create(&key_ref).await })
            })
            .collect();
        let mut keys = Vec::new();
        for t in tries {
            keys.push(t.await.expect("task").expect("a key"));
        }
        assert!(keys.windows(2).all(|w| w[0] == w[1]), "one key per person");
        let read = vaults[1].get(&key_ref).await.expect("read");
        assert_eq!(read, Some(keys[0]));
        vaults[0].destroy(&key_ref).await.expect("destroy");
        assert_eq!(vaults[1].get(&key_ref).await.expect("read"), None);
    }
}
