//! The embedded log on a disk that refuses writes, through the test-only
//! trigger file. Its own test binary: the trigger is read from the
//! environment, which one test here may set without racing another.

use access_log::conformance::{request, stream};
use access_log::file_log::{DISK_FULL_TRIGGER_VAR, FileLog};
use access_log::log::{AppendError, EventLog};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_writes_leave_nothing_behind_and_the_log_goes_on_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let trigger = dir.path().join("disk-full");
    // SAFETY: the only test of this binary; no other thread reads the environment yet.
    unsafe { std::env::set_var(DISK_FULL_TRIGGER_VAR, &trigger) };
    let log = Arc::new(FileLog::open(&dir.path().join("log")).unwrap());
    log.append(request("before", &stream("a"), 0, 2))
        .await
        .unwrap();

    // Many appends at once, so groups are staged on top of the failing one.
    std::fs::write(&trigger, "").unwrap();
    let tries: Vec<_> = (0..64)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move {
                log.append(request(
                    &format!("full{i}"),
                    &stream(&format!("s{i}")),
                    0,
                    1,
                ))
                .await
            })
        })
        .collect();
    for t in tries {
        assert!(matches!(t.await.unwrap(), Err(AppendError::Unavailable(_))));
    }
    assert_eq!(*log.head().borrow(), 2, "nothing of them is visible");

    std::fs::remove_file(&trigger).unwrap();
    let next = log
        .append(request("full7", &stream("s7"), 0, 1))
        .await
        .unwrap();
    assert_eq!(next.first_position, 3, "positions go on without a gap");
    let after = log
        .append(request("after", &stream("a"), 2, 1))
        .await
        .unwrap();
    assert_eq!(after.first_position, 4);
    let all = log.read_from(1, 100).await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(log.read_stream(&stream("a")).await.unwrap().len(), 3);
}
