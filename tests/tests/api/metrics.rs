//! The Prometheus endpoint: scraped and parsed with a Prometheus text parser;
//! its counters move with the commands, logins and mail sent.

use access_proto::v1 as pb;
use access_tests::{TestApp, new_id, token_of};
use prometheus_parse::{Sample, Scrape, Value};

async fn scrape(app: &TestApp) -> Scrape {
    let addr = app.metrics_addr.as_ref().expect("metrics are on");
    let body = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text")
}

/// The value of `name` with these labels (counters, gauges; histograms' count).
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s: &&Sample| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(h) => h.iter().map(|b| b.count).fold(0.0, f64::max),
            Value::Summary(_) => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn the_counters_move_with_what_the_service_does() {
    let app = TestApp::spawn_with(&["--metrics-addr", "127.0.0.1:0"]).await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    app.invite(&key, "C001", "bob@hardware.example").await;
    let link = app
        .wait_for_link("bob@hardware.example", "/invite/", 1)
        .await;
    app.sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(&link),
            password: "sunlit7meadow".into(),
        })
        .await
        .expect("accept");
    let login = |password: &'static str| {
        let mut sessions = app.sessions();
        let request = app.req(
            &key,
            pb::LoginRequest {
                request_id: new_id(),
                login: "bob@hardware.example".into(),
                password: password.into(),
                client_address: String::new(),
            },
        );
        async move { sessions.login(request).await }
    };
    login("sunlit7meadow").await.expect("logs in");
    login("wrong-pass-1").await.expect_err("refused");
    app.settled_head().await;

    let s = scrape(&app).await;
    assert_eq!(
        value(
            &s,
            "access_commands_total",
            &[("command", "Invite"), ("outcome", "ok")]
        ),
        1.0
    );
    assert!(
        value(
            &s,
            "access_commands_total",
            &[("command", "Accept"), ("outcome", "ok")]
        ) >= 1.0
    );
    assert_eq!(
        value(
            &s,
            "access_grpc_requests_total",
            &[
                ("method", "/access.v1.Access/InviteCustomer"),
                ("code", "OK")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "access_grpc_requests_total",
            &[
                ("method", "/access.v1.Sessions/Login"),
                ("code", "UNAUTHENTICATED")
            ]
        ),
        1.0
    );
    assert_eq!(value(&s, "access_logins_total", &[("outcome", "ok")]), 1.0);
    assert_eq!(
        value(&s, "access_logins_total", &[("outcome", "bad_credentials")]),
        1.0
    );
    assert!(
        value(&s, "access_append_seconds", &[]) >= 3.0,
        "append latency recorded"
    );
    assert!(
        value(&s, "access_group_commit_size", &[]) >= 3.0,
        "group sizes recorded"
    );
    assert_eq!(
        value(
            &s,
            "access_emails_total",
            &[("kind", "invitation"), ("outcome", "sent")]
        ),
        1.0
    );
    assert_eq!(value(&s, "access_log_available", &[]), 1.0);
    assert_eq!(value(&s, "access_projection_lag_events", &[]), 0.0);

    // Counters only go up with more work.
    app.invite(&key, "C001", "carol@hardware.example").await;
    let later = scrape(&app).await;
    assert_eq!(
        value(
            &later,
            "access_commands_total",
            &[("command", "Invite"), ("outcome", "ok")]
        ),
        2.0
    );
}
