//! Webhooks: a real HTTP receiver (Python, verifying each signature with
//! the Standard Webhooks reference library) that is down, then up, and
//! counts exactly what arrived; giving up, resuming and replaying; filters;
//! who may manage them; two replicas on NATS delivering each event once.

use access_proto::v1 as pb;
use access_proto::v1::audit_client::AuditClient;
use access_proto::v1::events_client::EventsClient;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use access_tests::{TestApp, new_id};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tonic::Code;

/// The Python receiver on a fixed port, so it can stop and start again.
struct Receiver {
    child: Option<tokio::process::Child>,
    port: u16,
    secrets: Vec<String>,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    fn new(secrets: &[&str]) -> Receiver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("a directory");
        Receiver {
            child: None,
            port,
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
            out: dir.path().join("received.jsonl"),
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    async fn start(&mut self) {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("webhooks/receiver.py");
        let mut command = tokio::process::Command::new("python3");
        command
            .arg(&script)
            .args(["--port", &self.port.to_string()])
            .args(["--out", &self.out.display().to_string()]);
        for s in &self.secrets {
            command.args(["--secret", s]);
        }
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs");
        let stdout = child.stdout.take().expect("its output");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the receiver starts in time");
        assert_eq!(first.ok().flatten().as_deref(), Some("listening"));
        self.child = Some(child);
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Every delivery that arrived, in order.
    fn received(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// The ids that arrived, each once, in the order they first came.
    fn ids(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.received()
            .iter()
            .filter(|l| l["verified"] == true)
            .map(|l| l["id"].as_str().unwrap_or_default().to_owned())
            .filter(|id| seen.insert(id.clone()))
            .collect()
    }

    /// Waits until `n` distinct events arrived.
    async fn wait_for(&self, n: usize, within: Duration) {
        self.wait_until(within, |r| r.ids().len() >= n).await;
    }

    /// Waits until `n` deliveries arrived, repeats counted.
    async fn wait_for_deliveries(&self, n: usize) {
        self.wait_until(Duration::from_secs(30), |r| r.received().len() >= n)
            .await;
    }

    async fn wait_until(&self, within: Duration, done: impl Fn(&Receiver) -> bool) {
        let deadline = tokio::time::Instant::now() + within;
        while !done(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} distinct events arrived: {:?}",
                self.ids().len(),
                self.received()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn admin_client(app: &TestApp) -> TenantAdminClient<tonic::transport::Channel> {
    TenantAdminClient::new(app.channel.clone())
}

async fn create(
    app: &TestApp,
    key: &str,
    url: &str,
    types: &[&str],
) -> Result<pb::CreateWebhookReply, tonic::Status> {
    admin_client(app)
        .create_webhook(app.req(
            key,
            pb::CreateWebhookRequest {
                request_id: new_id(),
                settings: Some(pb::WebhookSettings {
                    url: url.into(),
                    event_types: types.iter().map(|t| t.to_string()).collect(),
                    description: "ERP".into(),
                }),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn get(app: &TestApp, key: &str, id: &str) -> pb::Webhook {
    admin_client(app)
        .get_webhook(app.req(
            key,
            pb::GetWebhookRequest {
                webhook_id: id.into(),
                min_position: 0,
            },
        ))
        .await
        .expect("the webhook")
        .into_inner()
}

async fn wait_for_state(
    app: &TestApp,
    key: &str,
    id: &str,
    state: pb::WebhookState,
) -> pb::Webhook {
    webhook_until(app, key, id, |w| w.state == state as i32).await
}

/// The webhook once `done` holds of it, within 30 s.
async fn webhook_until(
    app: &TestApp,
    key: &str,
    id: &str,
    done: impl Fn(&pb::Webhook) -> bool,
) -> pb::Webhook {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let w = get(app, key, id).await;
        if done(&w) {
            return w;
        }
        assert!(tokio::time::Instant::now() < deadline, "never so: {w:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The tenant's public events after `after`, as a subscriber reads them
/// once the service has settled: what a webhook taking every type gets.
async fn public_ids(app: &TestApp, tenant: &str, after: u64) -> Vec<String> {
    app.settled_head().await;
    let mut stream = EventsClient::new(app.channel.clone())
        .subscribe(app.req(
            &app.operator_key,
            pb::SubscribeRequest {
                tenant: tenant.into(),
                after_position: after,
                ..Default::default()
            },
        ))
        .await
        .expect("subscribed")
        .into_inner();
    let mut ids = Vec::new();
    while let Ok(Ok(Some(e))) =
        tokio::time::timeout(Duration::from_millis(1500), stream.message()).await
    {
        ids.push(e.id);
    }
    ids
}

async fn disable(app: &TestApp, key: &str, contact: &str) {
    app.access()
        .disable_access(app.req(
            key,
            pb::ContactCommand {
                request_id: new_id(),
                contact_id: contact.into(),
                reason: "unpaid invoices".into(),
            },
        ))
        .await
        .expect("disabled");
}

/// Retries a second apart, and the receiver on this machine allowed.
const QUICK_RETRIES: [&str; 2] = ["--webhook-max-backoff=1s", "--webhook-private-addresses"];

#[tokio::test]
async fn a_receiver_down_then_up_gets_every_event_once_in_order_and_signed() {
    let app = TestApp::spawn_with(&QUICK_RETRIES).await;
    let admin = app.create_tenant("acme").await;
    let mut receiver = Receiver::new(&[]);
    let made = create(&app, &admin, &receiver.url(), &[])
        .await
        .expect("added");
    assert!(made.secret.starts_with("whsec_"), "{}", made.secret);
    receiver.secrets = vec![made.secret.clone()];
    // Down: everything waits.
    app.create_customer(&admin, "C001").await;
    let mut contacts = Vec::new();
    for i in 0..8 {
        let invited = app
            .invite(&admin, "C001", &format!("buyer{i}@acme.example"))
            .await;
        contacts.push(invited.contact_id);
    }
    let failing = wait_for_state(&app, &admin, &made.webhook_id, pb::WebhookState::Failing).await;
    let failure = failing.failure.expect("what fails");
    assert!(failure.attempts >= 1);
    assert_eq!(failing.delivered, 0);
    // Up: all of it, in the log's order.
    receiver.start().await;
    let expected = public_ids(&app, "acme", made.position).await;
    assert!(expected.len() >= 10, "{expected:?}");
    receiver
        .wait_for(expected.len(), Duration::from_secs(30))
        .await;
    assert_eq!(receiver.ids(), expected);
    // Down again mid-way, then up: the rest, nothing lost.
    receiver.stop().await;
    for c in &contacts[..4] {
        disable(&app, &admin, c).await;
    }
    receiver.start().await;
    let expected = public_ids(&app, "acme", made.position).await;
    receiver
        .wait_for(expected.len(), Duration::from_secs(30))
        .await;
    assert_eq!(receiver.ids(), expected, "every event once, in order");
    let received = receiver.received();
    assert!(
        received.iter().all(|l| l["verified"] == true),
        "{received:?}"
    );
    // A repeat is possible only for a delivery cut off mid-answer.
    assert!(received.len() - expected.len() <= 2, "{received:?}");
    let positions: Vec<(u64, u64)> = received
        .iter()
        .map(|l| {
            (
                l["position"].as_u64().unwrap_or(0),
                l["part"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] <= w[1]), "{positions:?}");
    let w = webhook_until(&app, &admin, &made.webhook_id, |w| {
        w.delivered == expected.len() as u64 && w.state == pb::WebhookState::Delivering as i32
    })
    .await;
    assert_eq!(w.last_delivered_event_id, *expected.last().expect("some"));
    // The history says it in words.
    let mut history = AuditClient::new(app.channel.clone())
        .replay_history(app.req(&admin, pb::ReplayHistoryRequest::default()))
        .await
        .expect("the history")
        .into_inner();
    let mut said = Vec::new();
    while let Some(e) = history.message().await.expect("an event") {
        if e.stream.starts_with("webhook.") {
            said.push(e.summary);
        }
    }
    let id = &made.webhook_id;
    assert!(
        said[0].contains(&format!("added webhook {id} posting every event to")),
        "{said:?}"
    );
    let stuck = format!("could not deliver event {}", failure.event_id);
    assert!(said.iter().any(|s| s.contains(&stuck)), "{said:?}");
    let delivered: u64 = said
        .iter()
        .filter_map(|s| s.split_once(") delivered ").map(|(_, rest)| rest))
        .filter_map(|s| s.split(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(delivered, expected.len() as u64, "{said:?}");
}

#[tokio::test]
async fn deliveries_given_up_wait_for_a_resume_and_a_replay_posts_a_range_again_with_its_ids() {
    let app = TestApp::spawn_with(&[
        QUICK_RETRIES[0],
        QUICK_RETRIES[1],
        "--webhook-give-up-after",
        "2s",
    ])
    .await;
    let admin = app.create_tenant("acme").await;
    let mut receiver = Receiver::new(&[]);
    let made = create(&app, &admin, &receiver.url(), &["customer.created"])
        .await
        .expect("added");
    receiver.secrets = vec![made.secret.clone()];
    for c in ["C001", "C002", "C003"] {
        app.create_customer(&admin, c).await;
    }
    let gave_up = wait_for_state(&app, &admin, &made.webhook_id, pb::WebhookState::GaveUp).await;
    assert!(gave_up.failure.is_some());
    receiver.start().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(receiver.received().is_empty(), "nothing until resumed");
    let resumed = admin_client(&app)
        .resume_webhook(app.req(
            &admin,
            pb::ResumeWebhookRequest {
                request_id: new_id(),
                webhook_id: made.webhook_id.clone(),
            },
        ))
        .await
        .expect("resumed")
        .into_inner();
    assert_eq!(
        resumed.webhook.map(|w| w.state),
        Some(pb::WebhookState::Delivering as i32)
    );
    receiver.wait_for(3, Duration::from_secs(30)).await;
    let first = receiver.ids();
    // Deliveries are recorded a moment after they are accepted.
    let w = webhook_until(&app, &admin, &made.webhook_id, |w| w.delivered == 3).await;
    // The operator replays the range, naming the tenant.
    let replay = |through: u64| pb::ReplayWebhookRequest {
        request_id: new_id(),
        webhook_id: made.webhook_id.clone(),
        from_position: 1,
        through_position: through,
        tenant: "acme".into(),
    };
    let beyond = admin_client(&app)
        .replay_webhook(app.req(&app.operator_key, replay(w.delivered_through_position + 1)))
        .await
        .expect_err("not past what was delivered");
    assert_eq!(beyond.code(), Code::InvalidArgument);
    admin_client(&app)
        .replay_webhook(app.req(&app.operator_key, replay(w.delivered_through_position)))
        .await
        .expect("replaying");
    receiver.wait_for_deliveries(6).await;
    let again: Vec<String> = receiver.received()[3..]
        .iter()
        .map(|l| l["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(again, first, "the same events, with the same ids");
    webhook_until(&app, &admin, &made.webhook_id, |w| w.replay.is_none()).await;
    // New events go on after the replay, to the live cursor.
    app.create_customer(&admin, "C004").await;
    receiver.wait_for(4, Duration::from_secs(30)).await;
    assert_eq!(receiver.received().len(), 7);
    // The same range again is a replay of its own.
    admin_client(&app)
        .replay_webhook(app.req(&app.operator_key, replay(w.delivered_through_position)))
        .await
        .expect("replaying again");
    receiver.wait_for_deliveries(10).await;
    webhook_until(&app, &admin, &made.webhook_id, |w| w.replay.is_none()).await;
    let again: Vec<String> = receiver.received()[7..]
        .iter()
        .map(|l| l["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(again, first);
    // A second run of failures is recorded and given up like the first.
    receiver.stop().await;
    app.create_customer(&admin, "C005").await;
    let again = wait_for_state(&app, &admin, &made.webhook_id, pb::WebhookState::GaveUp).await;
    assert_ne!(
        again.failure.map(|f| f.event_id),
        gave_up.failure.map(|f| f.event_id)
    );
    assert_eq!(get(&app, &admin, &made.webhook_id).await.delivered, 10);
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_and_filters_pick_types() {
    let app = TestApp::spawn_with(&QUICK_RETRIES).await;
    let admin = app.create_tenant("acme").await;
    let mut receiver = Receiver::new(&[]);
    let made = create(&app, &admin, &receiver.url(), &["contact.disabled"])
        .await
        .expect("added");
    receiver.secrets = vec![made.secret.clone()];
    receiver.start().await;
    app.create_customer(&admin, "C001").await;
    let bob = app.invite(&admin, "C001", "bob@acme.example").await;
    disable(&app, &admin, &bob.contact_id).await;
    receiver.wait_for(1, Duration::from_secs(30)).await;
    let rotated = admin_client(&app)
        .rotate_webhook_secret(app.req(
            &admin,
            pb::RotateWebhookSecretRequest {
                request_id: new_id(),
                webhook_id: made.webhook_id.clone(),
            },
        ))
        .await
        .expect("rotated")
        .into_inner();
    assert_ne!(rotated.secret, made.secret);
    let carol = app.invite(&admin, "C001", "carol@acme.example").await;
    disable(&app, &admin, &carol.contact_id).await;
    // The receiver still holds the old secret: the second signature by it
    // verifies.
    receiver.wait_for(2, Duration::from_secs(30)).await;
    let received = receiver.received();
    let types: Vec<&str> = received
        .iter()
        .map(|l| l["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(types, ["contact.disabled", "contact.disabled"]);
    assert_eq!(received[0]["signatures"], 1);
    assert_eq!(received[1]["signatures"], 2);
    // And one holding only the new secret verifies too.
    receiver.stop().await;
    receiver.secrets = vec![rotated.secret.clone()];
    receiver.start().await;
    let dave = app.invite(&admin, "C001", "dave@acme.example").await;
    disable(&app, &admin, &dave.contact_id).await;
    receiver.wait_for(3, Duration::from_secs(30)).await;
    assert!(receiver.received().iter().all(|l| l["verified"] == true));
}

#[tokio::test]
async fn webhooks_are_admin_business_checked_whole_and_bounded_per_tenant() {
    let app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    let service = app
        .create_key(&admin, pb::Role::Service, "erp", "")
        .await
        .api_key;
    let refused = create(&app, &service, "https://erp.acme.example/h", &[])
        .await
        .expect_err("not an admin");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = create(
        &app,
        &admin,
        "http://erp.acme.example/h",
        &["contact.nonsense"],
    )
    .await
    .expect_err("plain http elsewhere, an unknown type");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let message = refused.message();
    assert!(
        message.contains("url") && message.contains("event_types[0]"),
        "{message}"
    );
    // Nothing inside the operator's network unless the operator allows it.
    for inside in [
        "http://127.0.0.1:9/h",
        "https://169.254.169.254/latest",
        "https://[::1]/h",
    ] {
        let refused = create(&app, &admin, inside, &[])
            .await
            .expect_err("a private address");
        assert_eq!(refused.code(), Code::InvalidArgument, "{inside}");
        assert!(
            refused.message().contains("--webhook-private-addresses"),
            "{inside}: {}",
            refused.message()
        );
    }
    let refused = create(&app, &app.operator_key, "https://erp.acme.example/h", &[])
        .await
        .expect_err("the operator has no tenant here");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let mut ids = Vec::new();
    for i in 0..10 {
        let url = format!("https://erp{i}.acme.example/h");
        ids.push(
            create(&app, &admin, &url, &[])
                .await
                .expect("added")
                .webhook_id,
        );
    }
    let refused = create(&app, &admin, "https://erp.acme.example/h", &[])
        .await
        .expect_err("ten at most");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let listed = admin_client(&app)
        .list_webhooks(app.req(&admin, pb::ListWebhooksRequest { min_position: 0 }))
        .await
        .expect("listed")
        .into_inner();
    assert_eq!(listed.webhooks.len(), 10);
    let removed = admin_client(&app)
        .delete_webhook(app.req(
            &admin,
            pb::DeleteWebhookRequest {
                request_id: new_id(),
                webhook_id: ids[0].clone(),
                reason: "moved".into(),
            },
        ))
        .await
        .expect("removed")
        .into_inner();
    assert!(removed.webhook.is_none());
    let other = app.create_tenant("other").await;
    let unseen = admin_client(&app)
        .get_webhook(app.req(
            &other,
            pb::GetWebhookRequest {
                webhook_id: ids[1].clone(),
                min_position: 0,
            },
        ))
        .await
        .expect_err("another tenant's");
    assert_eq!(unseen.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_nats_two_replicas_deliver_each_event_once_and_one_carries_on_when_the_other_dies() {
    use access_tests::nats::Nats;
    let nats = Nats::single().await;
    let keys = tempfile::tempdir().expect("a directory");
    let urls = nats.urls();
    let key_dir = keys.path().display().to_string();
    let args = [
        "--nats-url",
        &urls,
        "--key-dir",
        &key_dir,
        QUICK_RETRIES[0],
        QUICK_RETRIES[1],
    ];
    let mut a = TestApp::spawn_with(&args).await;
    let b = TestApp::spawn_with(&args).await;
    let admin = a.create_tenant("acme").await;
    let mut receiver = Receiver::new(&[]);
    let made = create(&a, &admin, &receiver.url(), &["customer.created"])
        .await
        .expect("added");
    receiver.secrets = vec![made.secret.clone()];
    receiver.start().await;
    for i in 0..10 {
        let app = if i % 2 == 0 { &a } else { &b };
        app.create_customer(&admin, &format!("C{i:03}")).await;
    }
    receiver.wait_for(10, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.received().len(),
        10,
        "no replica posted an event twice"
    );
    // Whichever held the lease, the other goes on once a dies.
    a.kill9().await;
    for i in 10..15 {
        b.create_customer(&admin, &format!("C{i:03}")).await;
    }
    receiver.wait_for(15, Duration::from_secs(60)).await;
    let received = receiver.received();
    // A replica killed mid-post may leave one repeat, with the same id.
    assert!(received.len() <= 16, "{received:?}");
}

#[tokio::test]
async fn a_crash_mid_delivery_repeats_at_most_the_unrecorded_deliveries_with_their_ids() {
    let mut app = TestApp::spawn_with(&QUICK_RETRIES).await;
    let admin = app.create_tenant("acme").await;
    let mut receiver = Receiver::new(&[]);
    let made = create(&app, &admin, &receiver.url(), &["customer.created"])
        .await
        .expect("added");
    receiver.secrets = vec![made.secret.clone()];
    for i in 0..300 {
        app.create_customer(&admin, &format!("C{i:03}")).await;
    }
    receiver.start().await;
    receiver.wait_for(60, Duration::from_secs(30)).await;
    app.kill9().await;
    let app = app.start_again().await;
    receiver.wait_for(300, Duration::from_secs(60)).await;
    let expected = public_ids(&app, "acme", made.position).await;
    assert_eq!(receiver.ids(), expected, "every event, in order");
    let received = receiver.received();
    let repeats = received.len() - expected.len();
    // At most what was accepted and not yet recorded: 100 deliveries or a
    // second's worth.
    assert!(repeats <= 100, "{repeats} repeats");
    let known: std::collections::HashSet<&String> = expected.iter().collect();
    assert!(received.iter().all(|l| {
        l["verified"] == true
            && l["id"]
                .as_str()
                .is_some_and(|id| known.contains(&id.to_owned()))
    }));
}

#[tokio::test]
async fn accessctl_adds_lists_and_removes_webhooks() {
    let app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    let os = |args: &[&str]| -> std::process::Output {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        app.accessctl(&admin, &args)
    };
    let added = os(&[
        "webhook",
        "add",
        "--url",
        "https://erp.acme.example/hooks",
        "--event",
        "contact.revoked",
    ]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let text = String::from_utf8_lossy(&added.stdout).to_string();
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("webhook "))
        .expect("its id")
        .to_owned();
    assert!(text.contains("secret whsec_"), "{text}");
    let listed = os(&["webhook", "list"]);
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.contains(&id) && listed.contains("contact.revoked"),
        "{listed}"
    );
    let removed = os(&["webhook", "remove", "--id", &id, "--reason", "moved"]);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    let listed = os(&["webhook", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).trim().is_empty());
}
