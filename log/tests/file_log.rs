//! The embedded (file) backend against the conformance checks, plus what only it promises:
//! durability across reopen and the data-directory lock.

use access_log::conformance::{self, request, stream};
use access_log::file_log::FileLog;
use access_log::log::EventLog;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_log_meets_the_conformance_suite() {
    let root = tempfile::tempdir().unwrap();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    conformance::run_all(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = root.path().join(n.to_string());
        async move { Arc::new(FileLog::open(&dir).unwrap()) as Arc<dyn EventLog> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_and_request_ids_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let a = stream("a");
    {
        let log = FileLog::open(dir.path()).unwrap();
        log.append(request("r1", &a, 0, 2)).await.unwrap();
    }
    let log = reopen(dir.path()).await;
    assert_eq!(*log.head().borrow(), 2);
    let retry = log.append(request("r1", &a, 0, 2)).await.unwrap();
    assert!(retry.duplicate);
    assert_eq!(log.read_stream(&a).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_share_group_commits() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(FileLog::open(dir.path()).unwrap());
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

/// Opens `dir` again once the previous handles have let go of it (the
/// writer threads let go of the directory when the last handle drops).
async fn reopen(dir: &std::path::Path) -> FileLog {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match FileLog::open(dir) {
            Ok(log) => break log,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(e) => panic!("the log did not let go of {} in 10 s: {e}", dir.display()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_cut_short_by_a_crash_is_gone_whole_and_the_rest_kept() {
    let a = stream("a");
    // What the file holds after both appends, to take the torn bytes from.
    let full = tempfile::tempdir().unwrap();
    let first_end = {
        let log = FileLog::open(full.path()).unwrap();
        log.append(request("r1", &a, 0, 2)).await.unwrap();
        let end = std::fs::metadata(full.path().join("events")).unwrap().len();
        log.append(request("r2", &a, 2, 3)).await.unwrap();
        end
    };
    let all = std::fs::read(full.path().join("events")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    {
        let log = FileLog::open(dir.path()).unwrap();
        log.append(request("r1", &a, 0, 2)).await.unwrap();
    }
    // A crash in the middle of the second append's write, before its sync:
    // its last bytes (the commit frame and part of an event) never reached
    // the disk, and it was never acknowledged.
    let events = dir.path().join("events");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&events)
        .unwrap();
    std::io::Write::write_all(&mut file, &all[first_end as usize..all.len() - 150]).unwrap();
    drop(file);
    let log = reopen(dir.path()).await;
    assert_eq!(*log.head().borrow(), 2, "only the whole append is left");
    assert_eq!(log.read_stream(&a).await.unwrap().len(), 2);
    assert_eq!(log.read_from(1, 10).await.unwrap().len(), 2);
    let torn: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("events.torn-"))
        .collect();
    assert_eq!(torn.len(), 1, "the cut-off bytes are kept aside");
    // The request that was never acknowledged can be made again.
    let again = log.append(request("r2", &a, 2, 3)).await.unwrap();
    assert!(!again.duplicate);
    assert_eq!(again.last_position, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_or_stale_index_is_rebuilt_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = stream("a");
    let before = {
        let log = FileLog::open(dir.path()).unwrap();
        for i in 0..200u64 {
            log.append(request(&format!("r{i}"), &a, i, 1))
                .await
                .unwrap();
        }
        log.read_from(1, 1000).await.unwrap()
    };
    // The index is disposable: delete it.
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let log = reopen(dir.path()).await;
    assert_eq!(*log.head().borrow(), 200);
    assert_eq!(log.read_from(1, 1000).await.unwrap(), before);
    assert_eq!(log.read_from(130, 5).await.unwrap(), before[129..134]);
    assert_eq!(log.read_stream(&a).await.unwrap(), before);
    assert_eq!(log.stream_head(&a).unwrap().version, 200);
    let retry = log.append(request("r7", &a, 7, 1)).await.unwrap();
    assert!(retry.duplicate, "request records come back from the file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_from_any_position_return_the_same_events() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(dir.path()).unwrap();
    for i in 0..50u64 {
        log.append(request(
            &format!("m{i}"),
            &stream(&format!("s{}", i % 7)),
            i / 7 * 3,
            3,
        ))
        .await
        .unwrap();
    }
    let all = log.read_from(1, 1000).await.unwrap();
    assert_eq!(all.len(), 150);
    for from in [1u64, 2, 63, 64, 65, 66, 128, 129, 149, 150] {
        let part = log.read_from(from, 17).await.unwrap();
        let want: Vec<_> = all
            .iter()
            .skip(from as usize - 1)
            .take(17)
            .cloned()
            .collect();
        assert_eq!(part, want, "from {from}");
    }
    assert!(log.read_from(151, 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_open_of_a_directory_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = FileLog::open(dir.path()).unwrap();
    let second = FileLog::open(dir.path()).expect_err("in use");
    assert!(
        second.to_string().contains("in use by another process"),
        "{second}"
    );
}
