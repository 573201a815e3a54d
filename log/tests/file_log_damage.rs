//! What the embedded log does with damaged files: a tail a crash tore (never
//! acknowledged) is cut off; anything else refuses the open, naming the file,
//! offset, position and stream, and leaves every byte where it was.

use access_catalogue::damage::Damage;
use access_log::conformance::{request, stream};
use access_log::file_log::CheckReport;
use access_log::file_log::FileLog;
use access_log::file_log::frames::{COMMIT, EVENT, Frames};
use access_log::log::{EventLog, LogError};
use std::path::Path;

/// A frame of the events file: kind, start and end.
#[derive(Clone, Copy, Debug)]
struct At {
    kind: u8,
    start: u64,
    end: u64,
}

fn frames_of(dir: &Path) -> Vec<At> {
    let file = std::fs::File::open(dir.join("events")).unwrap();
    let len = file.metadata().unwrap().len();
    let mut frames = Frames::new(&file, 0, len, 4096);
    let mut out = Vec::new();
    while let Some(f) = frames.next_frame().unwrap() {
        out.push(At {
            kind: f.kind,
            start: f.offset,
            end: f.end(),
        });
    }
    out
}

/// A log of `appends` appends of two events each, to streams a0, a1, ...
async fn written(dir: &Path, appends: u64) {
    let log = FileLog::open(dir).unwrap();
    for i in 0..appends {
        log.append(request(&format!("r{i}"), &stream(&format!("a{i}")), 0, 2))
            .await
            .unwrap();
    }
}

/// Opens `dir` once the writer threads of earlier handles have let go.
async fn open(dir: &Path) -> Result<FileLog, LogError> {
    for _ in 0..200 {
        match FileLog::open(dir) {
            Err(LogError::Storage(e)) if e.contains("in use") => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
    FileLog::open(dir)
}

/// The full check of `dir`, once the writer threads of earlier handles have
/// let go of it (the check leaves it free again when it returns).
async fn check_when_free(dir: &Path, hashes_of: &[u64]) -> CheckReport {
    loop {
        match FileLog::check_dir(dir, hashes_of) {
            Err(LogError::Storage(e)) if e.contains("in use") => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            other => return other.unwrap(),
        }
    }
}

async fn damage(dir: &Path) -> Damage {
    match open(dir).await {
        Err(LogError::Damaged(d)) => d,
        Err(e) => panic!("expected damage, got {e}"),
        Ok(_) => panic!("a damaged log was opened"),
    }
}

fn flip(dir: &Path, offset: u64) {
    let path = dir.join("events");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offset as usize] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
}

/// Rewrites the `nth` event as someone who knows the framing would: a
/// changed payload byte and a fresh CRC (same length, so offsets hold).
fn rewrite_event(dir: &Path, nth: usize) {
    let frames = frames_of(dir);
    let victim = frames.iter().filter(|f| f.kind == EVENT).nth(nth).unwrap();
    let path = dir.join("events");
    let mut bytes = std::fs::read(&path).unwrap();
    let body = &bytes[victim.start as usize + 9..victim.end as usize];
    let mut envelope = access_catalogue::Envelope::decode(body).unwrap();
    envelope.payload[0] ^= 1;
    let mut frame = Vec::new();
    access_log::file_log::frames::push(&mut frame, EVENT, &envelope.encode());
    bytes.splice(victim.start as usize..victim.end as usize, frame);
    std::fs::write(&path, bytes).unwrap();
}

fn torn_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("events.torn-"))
        .count()
}

fn len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("events")).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_frame_with_appends_after_it_is_refused_and_named() {
    for lose_index in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        written(dir.path(), 20).await;
        let frames = frames_of(dir.path());
        // The first event of the fifth append (position 9, stream a4).
        let victim = frames.iter().filter(|f| f.kind == EVENT).nth(8).unwrap();
        flip(dir.path(), victim.end - 3);
        if lose_index {
            std::fs::remove_dir_all(dir.path().join("index")).unwrap();
        }
        let before = len(dir.path());
        let d = damage(dir.path()).await;
        assert_eq!(d.offset, Some(victim.start), "{d}");
        assert_eq!(d.position, Some(9), "{d}");
        assert_eq!(d.stream.as_deref(), Some("customer.conformance.a4"), "{d}");
        assert!(d.place.ends_with("events"), "{d}");
        assert_eq!(len(dir.path()), before, "nothing is cut");
        assert_eq!(torn_files(dir.path()), 0, "nothing is moved aside");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_in_the_last_acknowledged_append_is_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), 5).await;
    let last_event = *frames_of(dir.path())
        .iter()
        .rfind(|f| f.kind == EVENT)
        .unwrap();
    flip(dir.path(), last_event.end - 2);
    // Even without the index, the synced mark says it was acknowledged.
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let d = damage(dir.path()).await;
    assert_eq!(d.offset, Some(last_event.start), "{d}");
    assert_eq!(d.position, Some(10), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_cut_short_is_refused_whichever_witness_remains() {
    for (lose_index, lose_mark) in [(false, false), (true, false), (false, true)] {
        let dir = tempfile::tempdir().unwrap();
        written(dir.path(), 10).await;
        // Cut exactly at the end of the seventh append: a log that looks whole.
        let seventh = frames_of(dir.path())
            .iter()
            .filter(|f| f.kind == COMMIT)
            .nth(6)
            .unwrap()
            .end;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("events"))
            .unwrap();
        file.set_len(seventh).unwrap();
        drop(file);
        if lose_index {
            std::fs::remove_dir_all(dir.path().join("index")).unwrap();
        }
        if lose_mark {
            std::fs::remove_file(dir.path().join("synced")).unwrap();
        }
        let d = damage(dir.path()).await;
        assert!(d.what.contains("missing"), "{d}");
        assert_eq!(d.offset, Some(seventh), "{d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_or_swapped_frame_is_refused() {
    for swap in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        written(dir.path(), 8).await;
        let frames = frames_of(dir.path());
        let path = dir.path().join("events");
        let bytes = std::fs::read(&path).unwrap();
        let (a, b) = (frames[3], frames[4]); // two events of the second append
        let (a_bytes, b_bytes) = (
            &bytes[a.start as usize..a.end as usize],
            &bytes[b.start as usize..b.end as usize],
        );
        let mut out = bytes[..a.start as usize].to_vec();
        if swap {
            out.extend_from_slice(b_bytes);
            out.extend_from_slice(a_bytes);
        } else {
            out.extend_from_slice(a_bytes);
            out.extend_from_slice(a_bytes);
            out.extend_from_slice(b_bytes);
        }
        out.extend_from_slice(&bytes[b.end as usize..]);
        std::fs::write(&path, out).unwrap();
        std::fs::remove_dir_all(dir.path().join("index")).unwrap();
        let d = damage(dir.path()).await;
        assert!(d.what.contains("position"), "{d}");
        assert_eq!(d.offset, Some(if swap { a.start } else { b.start }), "{d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_torn_by_a_crash_above_the_mark_is_cut_off() {
    // The bytes a crash could leave: part of an append that was never synced.
    let full = tempfile::tempdir().unwrap();
    written(full.path(), 3).await;
    let whole = frames_of(full.path())
        .iter()
        .filter(|f| f.kind == COMMIT)
        .nth(1)
        .unwrap()
        .end;
    let bytes = std::fs::read(full.path().join("events")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), 2).await;
    let path = dir.path().join("events");
    let mut torn = std::fs::read(&path).unwrap();
    torn.extend_from_slice(&bytes[whole as usize..bytes.len() - 20]);
    std::fs::write(&path, torn).unwrap();
    let log = open(dir.path()).await.unwrap();
    assert_eq!(*log.head().borrow(), 4);
    assert_eq!(len(dir.path()), whole);
    assert_eq!(
        torn_files(dir.path()),
        1,
        "the cut-off bytes are kept aside"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_mark_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), 2).await;
    let path = dir.path().join("synced");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[6] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let d = damage(dir.path()).await;
    assert!(d.place.ends_with("synced"), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_altered_with_its_checksum_recomputed_breaks_its_stream() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), 3).await;
    // The second append's first event.
    rewrite_event(dir.path(), 2);
    let log = open(dir.path()).await.unwrap();
    match log.read_stream(&stream("a1")).await {
        Err(LogError::Damaged(d)) => {
            assert_eq!(d.position, Some(3), "{d}");
            assert_eq!(d.stream.as_deref(), Some("customer.conformance.a1"));
            assert!(d.what.contains("altered"), "{d}");
        }
        other => panic!("an altered stream was read: {other:?}"),
    }
    // The other streams read as before.
    assert_eq!(log.read_stream(&stream("a2")).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_check_names_every_kind_of_damage_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), 6).await;
    let clean = check_when_free(dir.path(), &[3]).await;
    assert!(clean.damage.is_empty(), "{:?}", clean.damage);
    assert_eq!((clean.events, clean.streams, clean.head), (12, 6, 12));
    assert!(clean.hashes.contains_key(&3));
    // An event rewritten with a fresh checksum: its chain breaks there.
    rewrite_event(dir.path(), 4);
    let path = dir.path().join("events");
    let bytes = std::fs::read(&path).unwrap();
    let report = FileLog::check_dir(dir.path(), &[]).unwrap();
    assert_eq!(report.damage.len(), 1, "{:?}", report.damage);
    assert_eq!(report.damage[0].position, Some(5));
    assert_eq!(
        report.damage[0].stream.as_deref(),
        Some("customer.conformance.a2")
    );
    assert_eq!(report.events, 12, "the rest of the log is still checked");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_index_config_is_named_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), 3).await;
    // fjall panics (and aborts in a destructor) on some damaged settings:
    // the index's own config is checked before fjall reads it.
    let cfg = dir.path().join("index/partitions/index/config");
    let mut b = std::fs::read(&cfg).unwrap();
    b[19] ^= 1 << 3;
    std::fs::write(&cfg, b).unwrap();
    let d = damage(dir.path()).await;
    assert!(d.place.contains("index"), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_check_names_each_stream_whose_head_the_index_lost_or_got_wrong() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), 6).await;
    // Once the writer threads have let go of the directory and its index.
    check_when_free(dir.path(), &[]).await;
    {
        let keyspace = fjall::Config::new(dir.path().join("index")).open().unwrap();
        let index = keyspace
            .open_partition("index", fjall::PartitionCreateOptions::default())
            .unwrap();
        let head = |name: &str| [b"h".as_slice(), name.as_bytes()].concat();
        let a3 = index.get(head("customer.conformance.a3")).unwrap().unwrap();
        index.remove(head("customer.conformance.a1")).unwrap();
        index
            .insert(head("customer.conformance.a2"), a3.clone())
            .unwrap();
        index.insert(head("customer.conformance.zz"), a3).unwrap();
        keyspace.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let report = check_when_free(dir.path(), &[]).await;
    let mut named: Vec<_> = report
        .damage
        .iter()
        .map(|d| (d.stream.clone().unwrap_or_default(), d.what.clone()))
        .collect();
    named.sort();
    assert_eq!(
        named,
        [
            (
                "customer.conformance.a1".to_owned(),
                "the index holds no head of this stream".to_owned()
            ),
            (
                "customer.conformance.a2".to_owned(),
                "the index's head of this stream differs from the file's".to_owned()
            ),
            (
                "customer.conformance.zz".to_owned(),
                "the index's head of this stream differs from the file's".to_owned()
            ),
        ]
    );
    assert_eq!(report.streams, 6);
}
