//! The sled backend against the conformance checks, plus what only it promises:
//! durability across reopen and the data-directory lock.

use access_events::conformance::{self, request, stream};
use access_events::log::EventLog;
use access_events::sled_log::SledLog;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_log_meets_the_conformance_suite() {
    let root = tempfile::tempdir().unwrap();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    conformance::run_all(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = root.path().join(n.to_string());
        async move { Arc::new(SledLog::open(&dir).unwrap()) as Arc<dyn EventLog> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_and_request_ids_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let a = stream("a");
    {
        let log = SledLog::open(dir.path()).unwrap();
        log.append(request("r1", &a, 0, 2)).await.unwrap();
    }
    // The writer thread lets go of the database when the last handle drops.
    let log = loop {
        match SledLog::open(dir.path()) {
            Ok(log) => break log,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    };
    assert_eq!(*log.head().borrow(), 2);
    let retry = log.append(request("r1", &a, 0, 2)).await.unwrap();
    assert!(retry.duplicate);
    assert_eq!(log.read_stream(&a).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_share_group_commits() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(SledLog::open(dir.path()).unwrap());
    let tasks: Vec<_> = (0..256)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move {
                log.append(request(&format!("g{i}"), &stream(&format!("g{i}")), 0, 1))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stats = log.stats();
    let commits = stats.commits.load(std::sync::atomic::Ordering::Relaxed);
    let appends = stats.appends.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(appends, 256);
    assert!(
        commits < 256,
        "{commits} commits for 256 appends: no grouping"
    );
}
