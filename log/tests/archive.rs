//! Archives: what is exported verifies offline; any changed byte, dropped or
//! reordered line, or cut-short file is found and named by its line.

use access_log::archive::{self, ArchiveError, Header};
use access_log::conformance::{request, stream};
use access_log::file_log::FileLog;
use access_log::log::EventLog;

async fn exported() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(dir.path()).unwrap();
    log.append(request("r1", &stream("a"), 0, 3)).await.unwrap();
    log.append(request("r2", &stream("b"), 0, 2)).await.unwrap();
    log.append(request("r3", &stream("a"), 3, 1)).await.unwrap();
    let header = Header {
        scope: "log".into(),
        exported_at_ms: 1,
        source_head: 6,
    };
    let mut out = Vec::new();
    let mut w = archive::Writer::new(&mut out, &header).unwrap();
    for e in log.read_from(1, 100).await.unwrap() {
        w.push(&e.encode()).unwrap();
    }
    let trailer = w.finish().unwrap();
    assert_eq!((trailer.events, trailer.heads.len()), (6, 2));
    out
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn joined(lines: &[String]) -> Vec<u8> {
    let mut s = lines.join("\n");
    s.push('\n');
    s.into_bytes()
}

#[tokio::test]
async fn an_export_verifies_offline() {
    let bytes = exported().await;
    let report = archive::verify(bytes.as_slice()).unwrap();
    assert_eq!(report.header.scope, "log");
    assert_eq!(report.trailer.events, 6);
}

#[tokio::test]
async fn one_changed_byte_is_found_on_its_line() {
    use base64::Engine;
    let bytes = exported().await;
    let mut l = lines(&bytes);
    // Flip one byte inside the fourth event's stored payload.
    let engine = base64::engine::general_purpose::STANDARD;
    let mut event = engine.decode(&l[5]).unwrap();
    let last = event.len() - 1;
    event[last] ^= 0x01;
    l[5] = engine.encode(&event);
    match archive::verify(joined(&l).as_slice()) {
        Err(ArchiveError::Break { line, source }) => {
            assert_eq!(line, 6);
            assert!(source.what.contains("altered"), "{source}");
        }
        Err(ArchiveError::Malformed { line, .. }) => assert_eq!(line, 6),
        other => panic!("not found: {other:?}"),
    }
}

#[tokio::test]
async fn dropped_swapped_and_cut_lines_are_found() {
    let l = lines(&exported().await);
    let mut dropped = l.clone();
    dropped.remove(4);
    assert!(archive::verify(joined(&dropped).as_slice()).is_err());
    let mut swapped = l.clone();
    swapped.swap(3, 4);
    assert!(archive::verify(joined(&swapped).as_slice()).is_err());
    let cut = &l[..l.len() - 1];
    assert!(archive::verify(joined(cut).as_slice()).is_err());
    let mut last_dropped = l.clone();
    last_dropped.remove(l.len() - 2);
    let err = archive::verify(joined(&last_dropped).as_slice()).unwrap_err();
    assert!(err.to_string().contains("trailer"), "{err}");
}

#[test]
fn a_signed_archive_verifies_and_a_signature_over_other_events_does_not() {
    use access_log::archive::{self, Header, Writer};
    use access_log::checkpoint::{Checkpoint, LogDigest, signing_key};
    let events: Vec<access_catalogue::Envelope> = (1..=5u64)
        .map(|p| {
            let r = access_log::conformance::request(
                &format!("r{p}"),
                &access_log::conformance::stream("a"),
                p - 1,
                1,
            );
            let prev = [0u8; 32];
            r.seal(&r.streams[0].stream, &r.streams[0].events[0], 1, prev, p)
                .expect("seal")
        })
        .collect();
    // Each event is the first of its own stream here: name them apart.
    let events: Vec<_> = events
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e.stream = access_log::conformance::stream(&format!("s{i}"));
            e.hash = access_catalogue::chain::hash_of(&e);
            e
        })
        .collect();
    let key = signing_key(&[3; 32]);
    let write = |covered: usize| {
        let mut out = Vec::new();
        let header = Header {
            scope: "log".into(),
            exported_at_ms: 0,
            source_head: 5,
        };
        let mut w = Writer::new(&mut out, &header).expect("header");
        let mut digest = LogDigest::default();
        for (i, e) in events.iter().enumerate() {
            w.push(&e.encode()).expect("push");
            if i < covered {
                digest.add(e);
            }
        }
        let line = Checkpoint::sign(digest, 0, &key).to_line();
        let finished = w.finish_signed(Some(&line)).map(|_| ());
        (finished, out)
    };
    let (ok, bytes) = write(5);
    ok.expect("a checkpoint over every event is accepted");
    let report = archive::verify(std::io::Cursor::new(&bytes)).expect("verifies");
    assert!(
        report
            .trailer
            .checkpoint
            .starts_with("access-checkpoint v1")
    );
    let (refused, _) = write(3);
    assert!(
        refused.is_err(),
        "a checkpoint over fewer events is refused"
    );
    // A trailer whose signature was tampered with does not verify.
    let text = String::from_utf8(bytes).expect("text");
    let tampered = text.replace("events=5", "events=4");
    assert!(archive::verify(std::io::Cursor::new(tampered.as_bytes())).is_err());
}
