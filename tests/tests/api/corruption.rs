//! The crash-and-corruption harness, in the spirit of the ALICE and Jepsen
//! file-system studies: a data directory with acknowledged history is
//! damaged at random (cut, flipped, zeroed, duplicated, swapped, deleted),
//! and the real `accessd` is started on it. In every case either every
//! acknowledged event is served intact, or the start is refused (exit 65)
//! with a message naming the damage, or the part that met it says so in its
//! health. A shorter or altered history is never served silently.
//!
//! The default run tries `ACCESS_CORRUPTION_CASES` cases (30 unless set);
//! `ACCESS_CORRUPTION_SEED` replays one run. The long mode is the same test
//! with a larger count, e.g. `ACCESS_CORRUPTION_CASES=1000`.

use access_proto::v1 as pb;
use access_tests::{TestApp, new_id};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A small, seedable generator: each case is replayable from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What the pristine directory holds.
struct Pristine {
    dir: PathBuf,
    /// Acknowledged contacts and their emails.
    contacts: Vec<(String, String)>,
    key: String,
    head: u64,
    _root: tempfile::TempDir,
}

async fn pristine() -> Pristine {
    let root = tempfile::tempdir().expect("dir");
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    let mut contacts = Vec::new();
    for i in 0..24 {
        let email = format!("buyer{i}@example.com");
        let reply = app.invite(&key, "C001", &email).await;
        contacts.push((reply.contact_id, email));
    }
    // Every invitation mailed and its delivery recorded, so the mailer's
    // state and ledger are part of what is damaged.
    for (_, email) in &contacts {
        app.wait_for_mail(email, 1).await;
    }
    let head = app.settled_head().await;
    let dir = root.path().join("pristine");
    let mut app = app;
    app.terminate().await;
    copy_dir(&app.dir, &dir);
    Pristine {
        dir,
        contacts,
        key,
        head,
        _root: root,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The frames of the events file: (start, end).
fn frames(events: &Path) -> Vec<(usize, usize)> {
    let file = std::fs::File::open(events).expect("events");
    let len = file.metadata().expect("len").len();
    let mut reader = access_log::file_log::frames::Frames::new(&file, 0, len, 1 << 16);
    let mut out = Vec::new();
    while let Ok(Some(f)) = reader.next_frame() {
        out.push((f.offset as usize, f.end() as usize));
    }
    out
}

/// Applies one random damage to the data directory `dir`; returns what.
fn damage(dir: &Path, rng: &mut Rng) -> String {
    let events = dir.join("log/events");
    let mut bytes = std::fs::read(&events).expect("events");
    let len = bytes.len() as u64;
    let write = |b: &[u8]| std::fs::write(&events, b).expect("write events");
    let pick_file = |rng: &mut Rng, sub: &str| {
        let files = files_under(&dir.join(sub));
        (!files.is_empty()).then(|| files[rng.below(files.len() as u64) as usize].clone())
    };
    match rng.below(15) {
        0 | 1 => {
            let at = rng.below(len) as usize;
            bytes[at] ^= 1 << rng.below(8);
            write(&bytes);
            format!("flipped a bit of log/events at {at}")
        }
        2 => {
            let page = rng.below(len.div_ceil(4096)) as usize * 4096;
            let end = (page + 4096).min(bytes.len());
            bytes[page..end].fill(0);
            write(&bytes);
            format!("zeroed the 4 KiB page of log/events at {page}")
        }
        3 | 4 => {
            let at = rng.below(len) as usize;
            bytes.truncate(at);
            write(&bytes);
            let lose_index = rng.below(2) == 0;
            if lose_index {
                let _ = std::fs::remove_dir_all(dir.join("log/index"));
            }
            format!("cut log/events at {at} (index removed: {lose_index})")
        }
        5 | 6 => {
            let f = frames(&events);
            let i = rng.below(f.len() as u64 - 1) as usize;
            let (a, b) = (f[i], f[i + 1]);
            let first = bytes[a.0..a.1].to_vec();
            let second = bytes[b.0..b.1].to_vec();
            let mut out = bytes[..a.0].to_vec();
            let what = if rng.below(2) == 0 {
                out.extend_from_slice(&first);
                out.extend_from_slice(&first);
                out.extend_from_slice(&second);
                "duplicated"
            } else {
                out.extend_from_slice(&second);
                out.extend_from_slice(&first);
                "swapped"
            };
            out.extend_from_slice(&bytes[b.1..]);
            write(&out);
            let lose_index = rng.below(2) == 0;
            if lose_index {
                let _ = std::fs::remove_dir_all(dir.join("log/index"));
            }
            format!("{what} frame {i} of log/events (index removed: {lose_index})")
        }
        7 => {
            let _ = std::fs::remove_dir_all(dir.join("log/index"));
            "removed log/index".into()
        }
        8 => {
            let sub = ["log/index", "readmodels", "vault", "mailer"][rng.below(4) as usize];
            // Inside the index only its settings: fjall aborts on some damage
            // to its segments' metadata (a known limit, see the README).
            let picked = match sub {
                "log/index" => Some(dir.join("log/index/partitions/index/config")),
                _ => pick_file(rng, sub),
            };
            match picked.filter(|f| f.exists()) {
                Some(file) => {
                    let mut b = std::fs::read(&file).expect("read");
                    let at = rng.below(b.len() as u64) as usize;
                    b[at] ^= 1 << rng.below(8);
                    std::fs::write(&file, b).expect("write");
                    format!("flipped a bit of {} at {at}", file.display())
                }
                None => format!("nothing to flip in {sub}"),
            }
        }
        9 => {
            let sub = ["readmodels", "vault", "mailer", "log/index"][rng.below(4) as usize];
            let _ = std::fs::remove_dir_all(dir.join(sub));
            format!("removed {sub}")
        }
        10 => {
            let sub = ["readmodels", "vault", "mailer"][rng.below(3) as usize];
            match pick_file(rng, sub) {
                Some(file) => {
                    let len = std::fs::metadata(&file).expect("len").len();
                    let at = rng.below(len);
                    let f = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&file)
                        .expect("open");
                    f.set_len(at).expect("cut");
                    format!("cut {} at {at}", file.display())
                }
                None => format!("nothing to cut in {sub}"),
            }
        }
        11 => {
            let _ = std::fs::remove_file(dir.join("log/synced"));
            let _ = std::fs::remove_dir_all(dir.join("log/index"));
            let at = frames(&events)
                .iter()
                .map(|f| f.1)
                .nth(rng.below(8) as usize)
                .unwrap_or(0);
            bytes.truncate(at);
            write(&bytes);
            format!("cut log/events at frame end {at}, mark and index removed")
        }
        12 => {
            let _ = std::fs::remove_file(dir.join("FORMAT"));
            "removed FORMAT".into()
        }
        13 => {
            let _ = std::fs::remove_file(dir.join("log/synced"));
            "removed log/synced".into()
        }
        _ => {
            // An event rewritten by someone who knows the framing: a changed
            // payload byte and a fresh CRC.
            let f = frames(&events);
            let (start, end) = f[rng.below(f.len() as u64) as usize];
            let body = &bytes[start + 9..end];
            match access_catalogue::Envelope::decode(body) {
                Ok(mut e) if !e.payload.is_empty() => {
                    let at = rng.below(e.payload.len() as u64) as usize;
                    e.payload[at] ^= 1;
                    let mut frame = Vec::new();
                    access_log::file_log::frames::push(
                        &mut frame,
                        access_log::file_log::frames::EVENT,
                        &e.encode(),
                    );
                    bytes.splice(start..end, frame);
                    write(&bytes);
                    format!(
                        "rewrote position {} of log/events with a fresh CRC",
                        e.position
                    )
                }
                _ => "picked a commit frame: nothing rewritten".into(),
            }
        }
    }
}

async fn health(app: &TestApp) -> i32 {
    let mut client = tonic_health::pb::health_client::HealthClient::new(app.channel.clone());
    client
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status)
        .unwrap_or(-1)
}

/// Whether the whole server's health turns `NOT_SERVING` within 3 s (the
/// background check of every chain found the damage).
async fn health_becomes_not_serving(app: &TestApp) -> bool {
    for _ in 0..30 {
        if health(app).await == 2 {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// Whether `app` serves every acknowledged contact intact, verifies clean,
/// and answers a new command with a readable result; else why not.
async fn served_intact(app: &TestApp, p: &Pristine) -> Result<(), String> {
    let head = app.head().await;
    if head < p.head {
        return Err(format!(
            "the log's head is {head}, below the acknowledged {}",
            p.head
        ));
    }
    for (contact, email) in &p.contacts {
        let got = app
            .access()
            .get_contact(app.req(
                &p.key,
                pb::GetContactRequest {
                    contact_id: contact.clone(),
                    min_position: p.head,
                },
            ))
            .await
            .map_err(|s| format!("contact {contact}: {s:?}"))?
            .into_inner();
        if &got.email != email {
            return Err(format!(
                "contact {contact} reads {:?}, not {email:?}",
                got.email
            ));
        }
    }
    let verified = app.verify().await;
    if !verified.ok {
        return Err(format!("VerifyLog: {}", verified.first_break));
    }
    let invited = app
        .access()
        .invite_customer(app.req(
            &p.key,
            access_tests::invite_request("C001", &format!("{}@example.com", new_id()), None),
        ))
        .await;
    if let Ok(reply) = invited {
        let reply = reply.into_inner();
        app.access()
            .get_contact(app.req(
                &p.key,
                pb::GetContactRequest {
                    contact_id: reply.contact_id,
                    min_position: reply.position,
                },
            ))
            .await
            .map_err(|s| format!("a new command answered OK, its result unreadable: {s:?}"))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_data_is_refused_or_served_intact_never_shortened_or_altered() {
    let cases: u64 = std::env::var("ACCESS_CORRUPTION_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let seed: u64 = std::env::var("ACCESS_CORRUPTION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    let p = pristine().await;
    let started = Instant::now();
    let (mut refused, mut intact, mut flagged) = (0, 0, 0);
    let mut failures = Vec::new();
    for case in 0..cases {
        let case_seed = seed.wrapping_add(case.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1;
        let mut rng = Rng(case_seed);
        let work = tempfile::tempdir().expect("dir");
        let dir = work.path().join("data");
        copy_dir(&p.dir, &dir);
        let what = damage(&dir, &mut rng);
        match TestApp::try_open_dir(dir.clone()).await {
            Err(r) => {
                let named = r.log.contains("damaged") || r.log.contains("missing");
                if r.code == Some(65) && named {
                    refused += 1;
                } else {
                    failures.push(format!(
                        "case {case} (seed {case_seed}, {what}): refused without naming damage: {r}"
                    ));
                }
            }
            Ok(mut app) => {
                match served_intact(&app, &p).await {
                    Ok(()) => intact += 1,
                    // Serving what it had, with its health saying it stopped.
                    Err(_) if health_becomes_not_serving(&app).await => flagged += 1,
                    Err(why) => failures.push(format!(
                        "case {case} (seed {case_seed}, {what}): served silently: {why}\n{}",
                        app.log_tail(6)
                    )),
                }
                app.kill9().await;
            }
        }
    }
    eprintln!(
        "corruption harness: {cases} cases (seed {seed}) in {:.1?}: {refused} refused, {intact} served intact, {flagged} flagged by health",
        started.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test]
async fn a_quarantine_is_an_explicit_recorded_act_and_the_service_starts_after_it() {
    // Arrange: acknowledged history, then a damaged byte in its middle.
    let mut app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    let mut contacts = Vec::new();
    for i in 0..10 {
        let email = format!("early{i}@example.com");
        contacts.push((app.invite(&key, "C001", &email).await, email));
    }
    app.terminate().await;
    let events = app.dir.join("log/events");
    let f = frames(&events);
    let (start, end) = f[f.len() * 2 / 3];
    let mut bytes = std::fs::read(&events).expect("events");
    bytes[(start + end) / 2] ^= 0x10;
    std::fs::write(&events, bytes).expect("write");
    let dir = app.dir.clone();
    let accessd = |args: &[&str]| {
        std::process::Command::new(access_tests::binary("accessd"))
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .output()
            .expect("accessd runs")
    };
    let refused = TestApp::try_open_dir(dir.clone())
        .await
        .err()
        .expect("refused");
    assert_eq!(refused.code, Some(65), "{refused}");
    let check = accessd(&["check"]);
    assert_eq!(check.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&check.stdout).contains("damage: "));

    // Act: nothing happens without the explicit flag; with it, the repair.
    let unasked = accessd(&["repair", "--reason", "test"]);
    assert!(!unasked.status.success());
    let repaired = accessd(&["repair", "--quarantine", "--reason", "disk fault on host 3"]);
    let said = String::from_utf8_lossy(&repaired.stdout);
    assert!(
        repaired.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&repaired.stderr)
    );

    // Assert: the directory checks clean, the lost part is kept, the repair
    // is an event, and what came before the damage is served.
    let check = accessd(&["check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let kept: Vec<_> = std::fs::read_dir(dir.join("log"))
        .expect("log dir")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("events.quarantined-")
        })
        .collect();
    assert_eq!(kept.len(), 1, "{said}");
    let app = TestApp::open_dir(dir.clone()).await;
    assert!(app.verify().await.ok);
    let head = app.head().await;
    let last = access_proto::v1::audit_client::AuditClient::new(app.channel.clone())
        .export_log(app.req(&app.operator_key, pb::ExportLogRequest {}))
        .await
        .expect("export");
    let mut stream = last.into_inner();
    let mut repair = None;
    while let Some(e) = stream.message().await.expect("message") {
        if e.envelope.is_empty() {
            continue;
        }
        let envelope = access_catalogue::Envelope::decode(&e.envelope).expect("envelope");
        if envelope.event_type == "LogRepaired" {
            repair = Some(envelope.position);
        }
    }
    // Recorded after what the log kept (the rebuilt mailer may report
    // deliveries after it).
    assert!(
        repair.is_some_and(|p| p <= head),
        "the repair is in the log"
    );
    let (first, email) = &contacts[0];
    let got = app
        .access()
        .get_contact(app.req(
            &key,
            pb::GetContactRequest {
                contact_id: first.contact_id.clone(),
                min_position: head,
            },
        ))
        .await
        .expect("an early contact is still served")
        .into_inner();
    assert_eq!(&got.email, email);
}

#[tokio::test]
async fn a_repair_from_a_backup_takes_the_damaged_events_back_and_loses_nothing() {
    // Arrange: a backup, more history after it, then a damaged byte in an
    // event the backup holds.
    let mut app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    let mut contacts = Vec::new();
    for i in 0..8 {
        let email = format!("before{i}@example.com");
        contacts.push((app.invite(&key, "C001", &email).await, email));
    }
    let backup_dir = tempfile::tempdir().expect("dir");
    let backup = backup_dir.path().join("log.archive");
    let exported = app.accessctl(
        &app.operator_key,
        &[
            "audit".as_ref(),
            "export".as_ref(),
            "--out".as_ref(),
            backup.as_os_str(),
        ],
    );
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    for i in 0..5 {
        let email = format!("after{i}@example.com");
        contacts.push((app.invite(&key, "C001", &email).await, email));
    }
    app.terminate().await;
    let events = app.dir.join("log/events");
    let f = frames(&events);
    let (start, end) = f[f.len() / 4];
    let mut bytes = std::fs::read(&events).expect("events");
    bytes[(start + end) / 2] ^= 0x04;
    std::fs::write(&events, bytes).expect("write");
    let dir = app.dir.clone();
    assert!(TestApp::try_open_dir(dir.clone()).await.is_err());

    // Act
    let repaired = std::process::Command::new(access_tests::binary("accessd"))
        .args(["repair", "--data-dir"])
        .arg(&dir)
        .arg("--from-archive")
        .arg(&backup)
        .args(["--reason", "bit rot on host 3"])
        .output()
        .expect("accessd runs");
    let said = String::from_utf8_lossy(&repaired.stdout);
    assert!(
        repaired.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&repaired.stderr)
    );
    assert!(
        said.contains("events back") && said.contains("whole again"),
        "{said}"
    );

    // Assert: every contact, before and after the backup, is served.
    let app = TestApp::open_dir(dir).await;
    assert!(app.verify().await.ok);
    let head = app.head().await;
    for (reply, email) in &contacts {
        let got = app
            .access()
            .get_contact(app.req(
                &key,
                pb::GetContactRequest {
                    contact_id: reply.contact_id.clone(),
                    min_position: head,
                },
            ))
            .await
            .expect("served")
            .into_inner();
        assert_eq!(&got.email, email);
    }
}
