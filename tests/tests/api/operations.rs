//! What an operator relies on: a data directory one process at a time, a
//! clear refusal of a directory from a newer release, and logs that never
//! hold a secret.

use access_proto::v1 as pb;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use access_tests::{TestApp, binary, new_id, token_of};

/// Runs `accessctl backup` against `app` with the operator key.
fn backup(app: &TestApp, archive: &std::path::Path) -> std::process::Output {
    std::process::Command::new(binary("accessctl"))
        .args([
            "--addr",
            &format!("http://{}", app.grpc_addr),
            "backup",
            "--out",
        ])
        .arg(archive)
        .env("ACCESS_KEY", &app.operator_key)
        .output()
        .expect("accessctl runs")
}

/// Runs `accessd serve` on `dir` expecting it to stop at once; its stderr.
fn refused_start(dir: &std::path::Path) -> String {
    let out = std::process::Command::new(binary("accessd"))
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir)
        .env_remove("ACCESS_SMTP_URL")
        .output()
        .expect("accessd runs");
    assert!(!out.status.success(), "it must refuse");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_second_accessd_on_the_same_directory_fails_at_once_and_says_why() {
    let app = TestApp::spawn().await;
    let error = refused_start(&app.dir);
    assert!(error.contains("in use by another process"), "{error}");
}

#[tokio::test]
async fn a_directory_from_a_newer_release_is_refused_with_a_clear_message() {
    let mut app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.terminate().await;
    let format = std::fs::read_to_string(app.dir.join("FORMAT")).expect("the format is recorded");
    assert!(format.starts_with("access-data "), "{format}");
    std::fs::write(app.dir.join("FORMAT"), "access-data 99\n").expect("write");
    let error = refused_start(&app.dir);
    assert!(error.contains("newer accessd"), "{error}");
    // Put back, the directory opens as before: nothing was touched.
    std::fs::write(app.dir.join("FORMAT"), format).expect("write");
    let app = app.start_again().await;
    assert!(app.verify().await.ok);
}

#[tokio::test]
async fn no_password_token_or_key_ever_reaches_the_logs() {
    // The harness runs accessd with JSON logs into a file next to its data;
    // everything down to debug, so that the most talkative setting is checked.
    let app = TestApp::spawn_with_env(&[], &[("RUST_LOG", "debug")]).await;
    let admin = app.create_tenant("acme").await;
    let staff_key = TenantAdminClient::new(app.channel.clone())
        .create_api_key(app.req(
            &admin,
            pb::CreateApiKeyRequest {
                request_id: new_id(),
                role: pb::Role::InHouse as i32,
                name: "office".into(),
                rep_id: String::new(),
            },
        ))
        .await
        .expect("key")
        .into_inner()
        .api_key;
    app.create_customer(&admin, "C001").await;
    app.invite(&admin, "C001", "bob@hardware.example").await;
    let link = app
        .wait_for_link("bob@hardware.example", "/invite/", 1)
        .await;
    let invite_token = token_of(&link);
    let session = app
        .sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: invite_token.clone(),
            password: "sunlit7meadow".into(),
        })
        .await
        .expect("accept")
        .into_inner();
    let _ = app
        .sessions()
        .login(app.req(
            &staff_key,
            pb::LoginRequest {
                request_id: new_id(),
                login: "bob@hardware.example".into(),
                password: "wrong-pass-77".into(),
                client_address: String::new(),
            },
        ))
        .await;
    let portal = app
        .access()
        .create_portal_link(app.req(
            &admin,
            pb::CreatePortalLinkRequest {
                request_id: new_id(),
                customer_id: "C001".into(),
                kinds: vec![pb::DocumentKind::SalesInvoice as i32],
                expires_at: String::new(),
            },
        ))
        .await
        .expect("portal link")
        .into_inner();
    let _ = app
        .sessions()
        .request_password_reset(app.req(
            &admin,
            pb::RequestPasswordResetRequest {
                request_id: new_id(),
                login: "bob@hardware.example".into(),
            },
        ))
        .await;
    let reset = app
        .wait_for_link("bob@hardware.example", "/reset/", 1)
        .await;
    app.settled_head().await;

    let log = std::fs::read_to_string(app.dir.with_extension("log")).expect("the log file");
    assert!(log.lines().count() > 10, "the run logged");
    assert!(
        log.lines()
            .any(|l| l.contains("\"correlation_id\"") && l.contains("\"tenant\":\"acme\"")),
        "lines about a command name its tenant and correlation id"
    );
    for (what, secret) in [
        ("password", "sunlit7meadow".to_owned()),
        ("wrong password", "wrong-pass-77".to_owned()),
        ("admin key", admin.clone()),
        ("staff key", staff_key.clone()),
        ("operator key", app.operator_key.clone()),
        ("session token", session.session_token.clone()),
        ("invitation token", invite_token),
        ("reset token", token_of(&reset)),
        ("portal link token", portal.token.clone()),
    ] {
        assert!(!secret.is_empty());
        assert!(!log.contains(&secret), "the {what} is in the logs");
    }
}

#[tokio::test]
async fn config_check_layers_the_file_under_environment_and_flags_and_refuses_unknown_keys() {
    // The example file lists every key with its default: uncommented, it is
    // a valid configuration (so it stays in step with the flags).
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/accessd.example.toml"),
    )
    .expect("the example config");
    let settings: Vec<&str> = example
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| l.contains(" = ") && !l.ends_with("\"\""))
        .collect();
    assert!(settings.len() > 20, "every key is in the example");
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("accessd.toml");
    // A key given twice is not TOML: keep the example's own value there.
    let text = settings
        .iter()
        .map(|l| {
            if *l == "lockout_attempts = 5" {
                "lockout_attempts = 7"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&file, text).expect("write");

    let out = std::process::Command::new(binary("accessd"))
        .args(["config", "check", "--session-ttl", "1h", "--config"])
        .arg(&file)
        .env("ACCESS_LINK_TTL", "2h")
        .env("ACCESS_SMTP_URL", "smtp://user:hunter2@relay.example:587")
        .output()
        .expect("accessd runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("lockout_attempts = 7  # file"), "{text}");
    assert!(text.contains("link_ttl = 2h  # environment"), "{text}");
    assert!(text.contains("session_ttl = 1h  # flag"), "{text}");
    assert!(text.contains("ACCESS_SMTP_URL: set (not shown)"), "{text}");
    assert!(!text.contains("hunter2"), "secrets are masked");

    std::fs::write(&file, "lockout_atempts = 7\n").expect("write");
    let out = std::process::Command::new(binary("accessd"))
        .args(["config", "check", "--config"])
        .arg(&file)
        .output()
        .expect("accessd runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown key `lockout_atempts`"));
}

/// Starts a query that waits (5 s) for a log position that will not come,
/// sends SIGTERM while it waits; how long the stop took, and its answer.
async fn stop_during_a_slow_request(
    args: &[&str],
) -> (std::time::Duration, Result<(), tonic::Status>) {
    let mut app = TestApp::spawn_with(args).await;
    let key = app.create_tenant("acme").await;
    let head = app.head().await;
    let mut access = app.access();
    let request = app.req(
        &key,
        pb::GetCustomerRequest {
            customer_id: "C001".into(),
            min_position: head + 1_000,
        },
    );
    let slow = tokio::spawn(async move { access.get_customer(request).await.map(|_| ()) });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    app.terminate().await;
    let took = started.elapsed();
    let answer = slow.await.expect("task");
    (took, answer)
}

#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish_within_the_drain_deadline() {
    // Within the deadline: the request gets its answer, then the process stops.
    let (took, answer) = stop_during_a_slow_request(&[]).await;
    let status = answer.expect_err("the position never comes");
    // A position past the log's head: after the wait, the caller is told no
    // retry can reach it (its real answer, not a cut connection).
    assert_eq!(
        status.code(),
        tonic::Code::FailedPrecondition,
        "its real answer, not a cut connection: {status:?}"
    );
    assert!(status.message().contains("beyond"), "{status:?}");
    assert!(
        took >= std::time::Duration::from_secs(3),
        "it waited for the request: {took:?}"
    );

    // A short deadline cuts it off.
    let (took, _) = stop_during_a_slow_request(&["--drain-timeout", "1s"]).await;
    assert!(
        took < std::time::Duration::from_secs(4),
        "stopped at the deadline: {took:?}"
    );
}

#[tokio::test]
async fn an_online_backup_under_load_restores_into_an_empty_directory_with_the_same_answers() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    let mut before = Vec::new();
    for i in 0..20 {
        let email = format!("buyer{i}@shop.example");
        before.push((app.invite(&key, "C001", &email).await.contact_id, email));
    }

    // Invitations keep coming while the backup runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (mut access, stop) = (app.access(), stop.clone());
        let requests: Vec<_> = (0..2000)
            .map(|i| {
                app.req(
                    &key,
                    access_tests::invite_request("C001", &format!("late{i}@shop.example"), None),
                )
            })
            .collect();
        tokio::spawn(async move {
            let mut done = 0;
            for r in requests {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                if access.invite_customer(r).await.is_ok() {
                    done += 1;
                }
            }
            done
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let dir = tempfile::tempdir().expect("dir");
    let archive = dir.path().join("acme.backup");
    let backup = backup(&app, &archive);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    assert!(load.await.expect("load") > 0, "the backup ran under load");

    // Restore into an empty directory with the deployment's key files.
    let restored = dir.path().join("restored");
    let out = std::process::Command::new(binary("accessd"))
        .args(["restore", "--archive"])
        .arg(&archive)
        .arg("--keys")
        .arg(dir.path().join("acme.backup.keys"))
        .arg("--data-dir")
        .arg(&restored)
        .output()
        .expect("accessd runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in ["server.key", "operator.key"] {
        std::fs::copy(app.dir.join(file), restored.join(file)).expect("key file");
    }
    let copy = TestApp::open_dir(restored.clone()).await;
    assert!(copy.verify().await.ok, "the restored chains verify");
    for (contact, email) in &before {
        let c = copy
            .access()
            .get_contact(copy.req(
                &key,
                pb::GetContactRequest {
                    contact_id: contact.clone(),
                    min_position: copy.head().await,
                },
            ))
            .await
            .expect("the contact came back")
            .into_inner();
        assert_eq!(
            &c.email, email,
            "personal data readable with the restored keys"
        );
    }
    // A second restore into a directory that is not empty is refused.
    let again = std::process::Command::new(binary("accessd"))
        .args(["restore", "--archive"])
        .arg(&archive)
        .arg("--data-dir")
        .arg(&restored)
        .output()
        .expect("accessd runs");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
}

#[tokio::test]
async fn a_full_disk_refuses_commands_as_unavailable_and_the_service_recovers_by_itself() {
    let dir = tempfile::tempdir().expect("dir");
    let trigger = dir.path().join("disk-full");
    let trigger_text = trigger.display().to_string();
    let app = TestApp::spawn_with_env(&[], &[("ACCESS_FAULT_DISK_FULL", &trigger_text)]).await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    let head = app.settled_head().await;

    // The disk fills up: commands are refused, nothing is acknowledged.
    std::fs::write(&trigger, "").expect("trigger");
    let request = access_tests::invite_request("C001", "bob@hardware.example", None);
    let refused = app
        .access()
        .invite_customer(app.req(&key, request.clone()))
        .await
        .expect_err("no space");
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    assert_eq!(
        tonic_types::StatusExt::get_details_error_info(&refused).map(|i| i.reason),
        Some("log_unavailable".to_owned())
    );
    assert_eq!(app.head().await, head, "nothing new is visible");
    let still = app
        .access()
        .invite_customer(app.req(
            &key,
            access_tests::invite_request("C001", "carol@hardware.example", None),
        ))
        .await
        .expect_err("still no space");
    assert_eq!(
        still.code(),
        tonic::Code::Unavailable,
        "{}",
        app.log_tail(5)
    );

    // Space returns: the log catches up by itself within a second; the same
    // request, retried, then succeeds once, and new ones too.
    std::fs::remove_file(&trigger).expect("space again");
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let retried = app
        .access()
        .invite_customer(app.req(&key, request.clone()))
        .await
        .expect("recovered without a restart")
        .into_inner();
    let again = app
        .access()
        .invite_customer(app.req(&key, request))
        .await
        .expect("the same request id")
        .into_inner();
    assert_eq!(retried.contact_id, again.contact_id, "one contact, not two");
    app.invite(&key, "C001", "dan@hardware.example").await;
    assert!(app.verify().await.ok, "nothing half-written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_backup_seeds_the_distributed_mode() {
    // One machine outgrown: back up the embedded service…
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    let mut invited = Vec::new();
    for i in 0..10 {
        let email = format!("buyer{i}@shop.example");
        invited.push((app.invite(&key, "C001", &email).await.contact_id, email));
    }
    let dir = tempfile::tempdir().expect("dir");
    let archive = dir.path().join("acme.backup");
    let backup = backup(&app, &archive);
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );

    // …restore it into an empty stream on NATS, with the same key files…
    let nats = access_tests::nats::Nats::single().await;
    let urls = nats.urls();
    let restored = std::process::Command::new(binary("accessd"))
        .args(["restore", "--nats-url", &urls, "--archive"])
        .arg(&archive)
        .arg("--keys")
        .arg(dir.path().join("acme.backup.keys"))
        .output()
        .expect("accessd runs");
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).expect("key dir");
    for file in ["server.key", "operator.key"] {
        std::fs::copy(app.dir.join(file), keys.join(file)).expect("key file");
    }

    // …and a replica on it answers as the embedded service did.
    let replica = TestApp::spawn_with(&[
        "--nats-url",
        &urls,
        "--key-dir",
        keys.to_str().expect("path"),
    ])
    .await;
    assert!(replica.verify().await.ok, "the chains verify on JetStream");
    let head = replica.head().await;
    for (contact, email) in &invited {
        let c = replica
            .access()
            .get_contact(replica.req(
                &key,
                pb::GetContactRequest {
                    contact_id: contact.clone(),
                    min_position: head,
                },
            ))
            .await
            .expect("the contact is there")
            .into_inner();
        assert_eq!(&c.email, email);
    }
    // New work goes on from there, and the same archive cannot seed it twice.
    replica.invite(&key, "C001", "new@shop.example").await;
    let twice = std::process::Command::new(binary("accessd"))
        .args(["restore", "--nats-url", &urls, "--archive"])
        .arg(&archive)
        .output()
        .expect("accessd runs");
    assert!(!twice.status.success());
    assert!(String::from_utf8_lossy(&twice.stderr).contains("not empty"));
}
