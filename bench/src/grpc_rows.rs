//! Rows against the real `accessd` (release build) over gRPC on loopback, and
//! the in-process rows that read its data directory afterwards.

use crate::empty;
use crate::footprint_rows::dir_size;
use crate::log_rows::fsync_loop;
use crate::measure::{Row, Run, Target, drive, drive_blocking, quantile};
use crate::seed::{self, spread};
use access_catalogue::catalogue::Event;
use access_log::file_log::FileLog;
use access_log::log::EventLog;
use access_proto::v1 as pb;
use access_service::projections::ReadModels;
use access_tests::{TestApp, invite_request, new_id, token_of};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

/// The empty baseline server, in its own process.
pub struct EmptyServer {
    /// A client on one channel.
    pub client: empty::Client,
    /// Its HTTP side, `http://<addr>`.
    pub http: String,
    _child: tokio::process::Child,
}

impl EmptyServer {
    /// Starts `access-bench empty-server` and connects.
    pub async fn start() -> anyhow::Result<Self> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["empty-server", "--addr", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let (mut addr, mut http) = (String::new(), String::new());
        while let Some(line) = lines.next_line().await? {
            if let Some(a) = line.strip_prefix("empty: http ") {
                http = format!("http://{a}");
            }
            if let Some(a) = line.strip_prefix("empty: listening ") {
                addr = a.to_owned();
                break;
            }
        }
        let client = empty::Client::connect(format!("http://{addr}")).await?;
        Ok(EmptyServer {
            client,
            http,
            _child: child,
        })
    }
}

/// A service with `contacts` invited contacts over `tenants` tenants.
pub struct Seeded {
    /// The running service.
    pub app: TestApp,
    /// Each tenant's admin key.
    pub keys: Vec<String>,
    /// (tenant index, contact id) of every contact.
    pub contacts: Vec<(usize, String)>,
    /// How long seeding took.
    pub took: Duration,
    /// Invitations per second over each tenth of the contacts, in order.
    pub scaling: String,
}

/// Starts `accessd` and invites `contacts` contacts, ten per customer, over
/// `tenants` tenants, 64 calls at a time.
pub async fn seed(tenants: usize, contacts: usize) -> anyhow::Result<Seeded> {
    let app = TestApp::spawn().await;
    let started = Instant::now();
    let mut keys = Vec::new();
    for t in 0..tenants {
        keys.push(app.create_tenant(&format!("t{t:04}")).await);
    }
    let customers = contacts.div_ceil(10);
    let app_ref = &app;
    let keys_ref = &keys;
    spread(customers, 64, |c| {
        seed::create_customer(app_ref, &keys_ref[c % tenants], c)
    })
    .await?;
    let done = &std::sync::atomic::AtomicUsize::new(0);
    // When each tenth of the contacts was in: how seeding scales.
    let tenth = contacts.div_ceil(10).max(1);
    let marks = &std::sync::Mutex::new(vec![(0, started.elapsed())]);
    let found = spread(contacts, 64, |i| async move {
        let t = i / 10 % tenants;
        let email = format!("p{i}@shop{}.example", i % 97);
        let id = seed::invite(app_ref, &keys_ref[t], i, &email).await?;
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if n.is_multiple_of(tenth) || n == contacts {
            if let Ok(mut marks) = marks.lock() {
                marks.push((n, started.elapsed()));
            }
            eprintln!(
                "bench: {n} contacts invited, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
        Ok((t, id))
    })
    .await?;
    let took = started.elapsed();
    let marks = marks.lock().map(|m| m.clone()).unwrap_or_default();
    let scaling = marks
        .windows(2)
        .map(|w| {
            let rate = (w[1].0 - w[0].0) as f64 / (w[1].1 - w[0].1).as_secs_f64().max(1e-9);
            format!("{:.0}", rate)
        })
        .collect::<Vec<_>>()
        .join(", ");
    // The embedded mailer writes one invitation per contact to the outbox
    // and lags behind a burst of invitations; rows measured while it catches
    // up would measure its file writes too.
    seed::wait_until(
        Duration::from_secs(3600),
        Duration::from_millis(200),
        "the mailer did not write every invitation",
        || app.outbox_count() >= contacts,
    )
    .await?;
    eprintln!(
        "bench: the mailer caught up {:.0} s after the last invitation",
        (started.elapsed() - took).as_secs_f64()
    );
    // Its delivery outcomes become events a moment later, and the read
    // models apply them: the rows start once nothing is left to do.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let s = app.log_status().await;
        if s.mail_outcomes_pending == 0 && s.read_model_position >= s.head_position {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the service did not settle within 10 minutes of seeding"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(Seeded {
        app,
        keys,
        contacts: found,
        took,
        scaling,
    })
}

/// `CheckAccess` with 64 concurrent callers against the empty handler.
pub async fn check_access(s: &Seeded, empty: &EmptyServer, runs: usize, length: Duration) -> Row {
    let contacts = Arc::new(s.contacts.clone());
    let keys = Arc::new(s.keys.clone());
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let channel = s.app.channel.clone();
        let (ours_contacts, ours_keys) = (contacts.clone(), keys.clone());
        ours.push(
            drive(64, length, move |c, n| {
                let contacts = &ours_contacts;
                let (t, id) = contacts[(c * 7919 + n as usize * 104_729) % contacts.len()].clone();
                let mut client = pb::access_client::AccessClient::new(channel.clone());
                let req = with_key(check_request(&id), &ours_keys[t]);
                async move {
                    client.check_access(req?).await?;
                    Ok(())
                }
            })
            .await,
        );
        let client = empty.client.clone();
        let (contacts, keys) = (contacts.clone(), keys.clone());
        base.push(
            drive(64, length, move |c, n| {
                let (t, id) = contacts[(c * 7919 + n as usize * 104_729) % contacts.len()].clone();
                let mut client = client.clone();
                let req = with_key(check_request(&id), &keys[t]);
                async move {
                    client.check_access(req?).await?;
                    Ok(())
                }
            })
            .await,
        );
    }
    Row {
        ours: "`CheckAccess` over gRPC, 64 concurrent callers".into(),
        baseline: "an empty tonic handler, same messages, client and server settings".into(),
        unit: "calls/s",
        ours_runs: ours,
        base_runs: base,
        target: Target::RateAndP99(0.8, 2.0),
        note: format!("{} contacts", s.contacts.len()),
    }
}

/// A request carrying a tenant's key, as every call of ours does. The
/// baseline's calls carry it too: the transport moves the same bytes for
/// both, and only checking the key is ours.
pub(crate) fn with_key<T>(message: T, key: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse()?);
    Ok(req)
}

/// The `n`th invitation of a row with `callers` callers: a new address at
/// one of the seeded customers, with its tenant's key.
fn nth_invitation(
    n: usize,
    callers: usize,
    customers: usize,
    keys: &[String],
) -> anyhow::Result<tonic::Request<pb::InviteCustomerRequest>> {
    let c = n % customers;
    with_key(
        invite_request(
            &format!("C{c:07}"),
            &format!("bench{callers}-{n}@new{}.example", n % 89),
            None,
        ),
        &keys[c % keys.len()],
    )
}

fn check_request(contact_id: &str) -> pb::CheckAccessRequest {
    pb::CheckAccessRequest {
        contact_id: contact_id.to_owned(),
        action: pb::Action::Login as i32,
        ..Default::default()
    }
}

/// Durable `InviteCustomer` with `callers` callers, against `baseline`.
pub async fn invite(
    s: &Seeded,
    empty: &EmptyServer,
    callers: usize,
    runs: usize,
    length: Duration,
) -> anyhow::Result<Row> {
    let keys = Arc::new(s.keys.clone());
    let counter = Arc::new(AtomicU64::new(0));
    let customers = s.contacts.len().div_ceil(10);
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    // The bytes one invitation appends, for the disk baseline.
    let bytes = bytes_per_command(&s.app).await;
    for _ in 0..runs {
        let channel = s.app.channel.clone();
        let (ours_keys, counter) = (keys.clone(), counter.clone());
        ours.push(
            drive(callers, length, move |_, _| {
                let n = counter.fetch_add(1, Ordering::Relaxed) as usize;
                let req = nth_invitation(n, callers, customers, &ours_keys);
                let mut client = pb::access_client::AccessClient::new(channel.clone());
                async move {
                    client.invite_customer(req?).await?;
                    Ok(())
                }
            })
            .await,
        );
        if callers == 1 {
            let dir = s.app.dir.clone();
            base.push(
                tokio::task::spawn_blocking(move || fsync_loop(&dir, bytes, 1, length)).await?,
            );
        } else {
            let client = empty.client.clone();
            let keys = keys.clone();
            base.push(
                drive(callers, length, move |_, n| {
                    let mut client = client.clone();
                    let req = nth_invitation(n as usize, callers, customers, &keys);
                    async move {
                        client.invite_customer(req?).await?;
                        Ok(())
                    }
                })
                .await,
            );
        }
    }
    Ok(Row {
        ours: format!("durable `InviteCustomer` over gRPC, {callers} caller(s), embedded"),
        baseline: if callers == 1 {
            "raw `write` + `fdatasync` of the same bytes, same disk".into()
        } else {
            format!("the empty tonic handler at {callers} callers")
        },
        unit: "cmds/s",
        ours_runs: ours,
        base_runs: base,
        target: Target::RateAtLeast(0.5),
        note: format!("{bytes} bytes per command"),
    })
}

/// The average bytes a command appends, from the running service's head and
/// its log's files.
async fn bytes_per_command(app: &TestApp) -> usize {
    let head = app.head().await.max(1);
    let size = dir_size(&app.dir.join("log"));
    // About three events per invitation; the log's own overhead included.
    ((size / head) * 3).clamp(256, 64 * 1024) as usize
}

/// `Login` with a correct password at production argon2id cost, against a
/// bare argon2id verify loop with the same parameters on the same cores.
pub async fn login(runs: usize, length: Duration) -> anyhow::Result<Row> {
    let (app, key) =
        with_login(&["--argon2-memory-kib", "19456", "--argon2-iterations", "2"]).await?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let phc = {
        use argon2::PasswordHasher;
        let salt = argon2::password_hash::SaltString::generate(
            &mut argon2::password_hash::rand_core::OsRng,
        );
        argon2_instance()
            .hash_password(b"correct horse 7", &salt)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .to_string()
    };
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let channel = app.channel.clone();
        let key = key.clone();
        ours.push(
            drive(cores * 2, length, move |_, _| {
                let mut client = pb::sessions_client::SessionsClient::new(channel.clone());
                let mut req = tonic::Request::new(pb::LoginRequest {
                    request_id: new_id(),
                    login: "ann@shop.example".into(),
                    password: "correct horse 7".into(),
                    client_address: String::new(),
                });
                let bearer = format!("Bearer {key}").parse();
                async move {
                    req.metadata_mut().insert("authorization", bearer?);
                    client.login(req).await?;
                    Ok(())
                }
            })
            .await,
        );
        let phc = phc.clone();
        base.push(
            tokio::task::spawn_blocking(move || {
                drive_blocking(cores, length, move |_| {
                    use argon2::PasswordVerifier;
                    let Ok(hash) = argon2::PasswordHash::new(&phc) else {
                        return 0;
                    };
                    u64::from(
                        argon2_instance()
                            .verify_password(b"correct horse 7", &hash)
                            .is_ok(),
                    )
                })
            })
            .await?,
        );
    }
    Ok(Row {
        ours: "`Login` with a correct password over gRPC".into(),
        baseline: format!("bare argon2id verify (19456 KiB, t=2, p=1) on {cores} threads"),
        unit: "logins/s",
        ours_runs: ours,
        base_runs: base,
        target: Target::RateAtLeast(0.9),
        note: String::new(),
    })
}

/// `accessd` started with `args`, with one contact, `ann@shop.example`, who
/// signs in with the password `correct horse 7`; and the tenant's key.
async fn with_login(args: &[&str]) -> anyhow::Result<(TestApp, String)> {
    let app = TestApp::spawn_with(args).await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    app.invite(&key, "C1", "ann@shop.example").await;
    let link = app.wait_for_link("ann@shop.example", "/invite/", 1).await;
    app.sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(&link),
            password: "correct horse 7".into(),
        })
        .await?;
    Ok((app, key))
}

fn argon2_instance() -> argon2::Argon2<'static> {
    let params = argon2::Params::new(19_456, 2, 1, None).unwrap_or_default();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// The baseline of the in-process rows: `samples` lookups in a `HashMap`
/// of every contact, in the order the rows ask ours.
pub fn map_lookups(
    map: &HashMap<String, String>,
    contacts: &[(usize, String)],
    samples: usize,
) -> Run {
    let mut lat = Vec::with_capacity(samples);
    let started = Instant::now();
    for i in 0..samples {
        let (t, id) = &contacts[(i * 7919) % contacts.len()];
        let s = Instant::now();
        std::hint::black_box(map.get(&format!("t{t:04}/{id}")));
        lat.push(s.elapsed());
    }
    Run {
        rate: samples as f64 / started.elapsed().as_secs_f64(),
        p99: quantile(&mut lat, 0.99),
    }
}

/// The read-model lookups of a check, in-process, on the data directory of a
/// stopped service, against a `HashMap` of the same key count.
pub fn lookups(
    dir: &std::path::Path,
    contacts: &[(usize, String)],
    runs: usize,
) -> anyhow::Result<Row> {
    let models = ReadModels::open(&dir.join("readmodels"))?;
    let map: HashMap<String, String> = contacts
        .iter()
        .map(|(t, id)| (format!("t{t:04}/{id}"), id.clone()))
        .collect();
    // A running service has read its rows before; one pass over every
    // contact, so the row measures lookups, not first reads from disk.
    for (t, id) in contacts {
        let tenant = format!("t{t:04}");
        models.with_check_rows(&tenant, id, |rows| std::hint::black_box(rows.is_ok()));
    }
    let samples = 200_000.min(contacts.len() * 20);
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut lat = Vec::with_capacity(samples);
        let started = Instant::now();
        for i in 0..samples {
            let (t, id) = &contacts[(i * 7919) % contacts.len()];
            let tenant = format!("t{t:04}");
            let s = Instant::now();
            // As the check reads them: borrowed in place, under one read of
            // the tables, nothing copied.
            let found = models.with_check_rows(&tenant, id, |rows| {
                std::hint::black_box(rows.map(|r| (r.contact.lifecycle, r.customer.status))).is_ok()
            });
            lat.push(s.elapsed());
            anyhow::ensure!(found, "contact {id} of t{t:04} not found");
        }
        ours.push(Run {
            rate: samples as f64 / started.elapsed().as_secs_f64(),
            p99: quantile(&mut lat, 0.99),
        });
        base.push(crate::grpc_rows::map_lookups(&map, contacts, samples));
    }
    Ok(Row {
        ours: "the check's read-model lookups in-process (contact, then customer, borrowed)".into(),
        baseline: "a `HashMap` lookup, same key count".into(),
        unit: "lookups/s",
        ours_runs: ours,
        base_runs: base,
        target: Target::P99UnderMicros(5.0),
        note: format!(
            "{} contacts, after one pass over all of them",
            contacts.len()
        ),
    })
}

/// Rebuilding every read model from the log of a stopped service, against a
/// bare read-and-decode of the same log.
/// A bare read-and-decode of a whole log, in batches of 1,024: how many
/// events, and at what rate.
pub async fn bare_read(log: &dyn EventLog) -> anyhow::Result<(u64, Run)> {
    let started = Instant::now();
    let (mut n, mut from) = (0u64, 1);
    loop {
        let batch = log.read_from(from, 1024).await?;
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        for e in &batch {
            std::hint::black_box(Event::decode(e).ok());
            n += 1;
        }
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    Ok((
        n,
        Run {
            rate,
            p99: Duration::ZERO,
        },
    ))
}

pub async fn rebuild(dir: &std::path::Path, runs: usize) -> anyhow::Result<Row> {
    let log: Arc<dyn EventLog> = Arc::new(FileLog::open(&dir.join("log"))?);
    let head = log.latest().await?;
    // The service's own vault: a rebuild opens every personal value.
    let vault = access_log::vault::CachedVault::new(std::sync::Arc::new(
        access_log::file_vault::FileVault::open(&dir.join("vault"))?,
    ));
    let scratch = tempfile::tempdir_in(".")?;
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let (n, bare) = bare_read(log.as_ref()).await?;
        base.push(bare);
        // As a start without read models does it: the projector follows
        // the log from its beginning to the head (and snapshots as it goes).
        let models = Arc::new(ReadModels::open(&scratch.path().join(format!("m{run}")))?);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let started = Instant::now();
        let projector = tokio::spawn(access_service::projections::run_projector(
            models.clone(),
            log.clone(),
            vault.clone(),
            Default::default(),
            stopped,
        ));
        models
            .wait_for(head, Duration::from_secs(3600))
            .await
            .map_err(|b| anyhow::anyhow!("the rebuild did not reach the head: {b}"))?;
        let _ = stop.send(true);
        projector.await?;
        ours.push(Run {
            rate: n as f64 / started.elapsed().as_secs_f64(),
            p99: Duration::ZERO,
        });
    }
    // The log's writer threads let the directory go a moment after the
    // last handle is dropped; the next row opens it.
    drop(log);
    seed::wait_until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        "the rebuild's log was not let go",
        || {
            // Free when its lock can be taken (and at once given back).
            std::fs::File::open(dir.join("log").join("lock")).is_ok_and(|f| f.try_lock().is_ok())
        },
    )
    .await?;
    Ok(Row {
        ours: "rebuild every read model from the log".into(),
        baseline: "bare read-and-decode of the same log".into(),
        unit: "events/s",
        ours_runs: ours,
        base_runs: base,
        target: Target::RateAtLeast(0.5),
        note: String::new(),
    })
}
