//! The auditor's questions: the history in order and in words, with no
//! credential in it; who could log in at a moment in the past; a changed byte
//! in the stored log found and named; an archive that verifies offline.

use access_proto::v1 as pb;
use access_proto::v1::audit_client::AuditClient;
use access_tests::{TestApp, binary, customer, invite_request, new_id, token_of};
use std::time::Duration;
use tonic::Code;

async fn history(
    app: &TestApp,
    key: &str,
    request: pb::ReplayHistoryRequest,
) -> Vec<pb::HistoryEvent> {
    let mut stream = AuditClient::new(app.channel.clone())
        .replay_history(app.req(key, request))
        .await
        .expect("replay")
        .into_inner();
    let mut out = Vec::new();
    while let Some(e) = stream.message().await.expect("event") {
        out.push(e);
    }
    out
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

async fn access_at(app: &TestApp, key: &str, at: &str, customer: &str) -> pb::AccessAtReply {
    AuditClient::new(app.channel.clone())
        .access_at(app.req(
            key,
            pb::AccessAtRequest {
                at: at.into(),
                customer_id: customer.into(),
                contact_id: String::new(),
            },
        ))
        .await
        .expect("access at")
        .into_inner()
}

#[tokio::test]
async fn an_auditor_reads_who_did_what_in_words_and_what_was_true_at_a_moment() {
    let app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    let anna = app.create_key(&admin, pb::Role::Rep, "anna", "R1").await;
    let auditor = app
        .create_key(&admin, pb::Role::Auditor, "external audit", "")
        .await;
    app.create_customer_with(&admin, customer("C001", Some("R1")))
        .await;
    app.create_customer(&admin, "C002").await;
    let bob = app
        .access()
        .invite_customer(app.req(
            &anna.api_key,
            invite_request("C001", "bob@acme.example", Some("York")),
        ))
        .await
        .expect("invite")
        .into_inner();
    app.invite(&admin, "C002", "carol@other.example").await;
    let link = app.wait_for_mail("bob@acme.example", 1).await;
    app.sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(&link),
            password: "sunlit7meadow".into(),
        })
        .await
        .expect("accept");
    app.settled_head().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let while_active = now_rfc3339();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let disable_id = new_id();
    app.access()
        .disable_access(app.req(
            &admin,
            pb::ContactCommand {
                request_id: disable_id.clone(),
                contact_id: bob.contact_id.clone(),
                reason: "left the company".into(),
            },
        ))
        .await
        .expect("disable");

    // The customer's history, in order, in words, without credentials.
    let events = history(
        &app,
        &auditor.api_key,
        pb::ReplayHistoryRequest {
            customer_id: "C001".into(),
            ..Default::default()
        },
    )
    .await;
    let summaries: Vec<&str> = events.iter().map(|e| e.summary.as_str()).collect();
    // Each line carries the request id as its caller sent it.
    let disabled = events
        .iter()
        .find(|e| e.event_type == "AccessDisabled")
        .expect("the disable in the history");
    assert_eq!(disabled.request_id, disable_id);
    assert!(
        summaries.iter().any(|s| s.contains(&format!(
            "rep key 'anna' ({}) invited bob@acme.example to Customer C001 (C001), site York",
            anna.key_id
        ))),
        "{summaries:#?}"
    );
    assert!(
        summaries
            .iter()
            .any(|s| s.contains("disabled the access of bob@acme.example: left the company")),
        "{summaries:#?}"
    );
    assert!(
        !summaries.iter().any(|s| s.contains("carol")),
        "another customer's events stay out: {summaries:#?}"
    );
    assert!(events.windows(2).all(|w| w[0].position < w[1].position));
    let everything = history(&app, &auditor.api_key, pb::ReplayHistoryRequest::default()).await;
    for e in &everything {
        assert!(!e.payload_json.contains("argon2"), "{}", e.payload_json);
    }
    assert!(
        everything
            .iter()
            .any(|e| e.payload_json.contains(r#""password_hash":"[redacted]""#)),
        "the password events are there, redacted"
    );
    let by_anna = history(
        &app,
        &auditor.api_key,
        pb::ReplayHistoryRequest {
            key_id: anna.key_id.clone(),
            ..Default::default()
        },
    )
    .await;
    assert!(!by_anna.is_empty());
    assert!(by_anna.iter().all(|e| e.actor.contains("anna")));

    // Only admin and auditor keys may read it.
    let denied = AuditClient::new(app.channel.clone())
        .replay_history(app.req(&anna.api_key, pb::ReplayHistoryRequest::default()))
        .await
        .expect_err("a rep key may not");
    assert_eq!(denied.code(), Code::PermissionDenied);

    // What was true then, and what is true now.
    let then = access_at(&app, &auditor.api_key, &while_active, "C001").await;
    assert_eq!(then.contacts.len(), 1);
    let c = &then.contacts[0];
    assert!(c.could_log_in && c.could_place_orders, "{c:?}");
    assert_eq!(
        (c.visible_sites.clone(), c.order_site.as_str()),
        (vec!["York".to_string()], "York")
    );
    let now = access_at(&app, &auditor.api_key, &now_rfc3339(), "C001").await;
    assert!(!now.contacts[0].could_log_in);
    assert_eq!(now.contacts[0].reason, "disabled");
    assert!(now.position > then.position);
}

#[tokio::test]
async fn one_changed_byte_in_the_stored_log_is_found_and_named() {
    let mut app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    app.create_customer(&admin, "C001").await;
    let invited = app.invite(&admin, "C001", "bob@acme.example").await;
    let target = invited.position;
    assert!(app.verify().await.ok);

    app.terminate().await;
    {
        // Someone who knows the file format: the envelope's payload changes
        // and its frame gets a matching checksum, so only the hash chain can
        // tell.
        use access_log::file_log::frames;
        use std::os::unix::fs::FileExt;
        let (offset, envelope) = access_tests::stored_events(&app.dir)
            .into_iter()
            .find(|(_, e)| e.position == target)
            .expect("the event");
        let mut body = envelope.encode();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(app.dir.join("log").join("events"))
            .expect("open the stored log");
        // The envelope ends with its payload: change its last byte.
        let last = body.len() - 1;
        body[last] ^= 0x20;
        let mut rewritten = Vec::new();
        frames::push(&mut rewritten, frames::EVENT, &body);
        file.write_all_at(&rewritten, offset).expect("write");
        file.sync_all().expect("sync");
    }
    let app = app.start_again().await;
    let verdict = app.verify().await;
    assert!(!verdict.ok);
    assert!(
        verdict.first_break.contains(&format!("position {target}"))
            && verdict.first_break.contains("(stream invitation.acme.")
            && verdict.first_break.contains("altered"),
        "{}",
        verdict.first_break
    );
    let auditor = app.create_key(&admin, pb::Role::Auditor, "audit", "").await;
    let tenant_view = AuditClient::new(app.channel.clone())
        .verify_log(app.req(&auditor.api_key, pb::VerifyLogRequest {}))
        .await
        .expect("verify")
        .into_inner();
    assert!(!tenant_view.ok);
    assert!(
        tenant_view
            .first_break
            .contains(&format!("position {target}"))
    );
}

#[tokio::test]
async fn an_export_verifies_offline_and_a_changed_archive_does_not() {
    let app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    app.create_customer(&admin, "C001").await;
    app.invite(&admin, "C001", "bob@acme.example").await;
    let other = app.create_tenant("other").await;
    app.create_customer(&other, "X1").await;
    let dir = tempfile::tempdir().expect("dir");
    let archive = dir.path().join("acme.archive");

    let export = std::process::Command::new(binary("accessctl"))
        .args(["--addr", &format!("http://{}", app.grpc_addr)])
        .args(["audit", "export", "--out"])
        .arg(&archive)
        .env("ACCESS_KEY", &admin)
        .output()
        .expect("accessctl runs");
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let text = std::fs::read_to_string(&archive).expect("archive");
    assert!(text.starts_with("access-archive v1\n"));
    assert!(text.contains("tenant acme"));

    let verify = |path: &std::path::Path| {
        std::process::Command::new(binary("accessctl"))
            .args(["audit", "verify", "--archive"])
            .arg(path)
            .output()
            .expect("accessctl runs")
    };
    let ok = verify(&archive);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("chain: intact"));

    // One event line replaced by another tenant's or re-encoded: refused, by line.
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.swap(3, 4);
    let changed = dir.path().join("changed.archive");
    std::fs::write(&changed, lines.join("\n") + "\n").expect("write");
    let refused = verify(&changed);
    assert!(!refused.status.success());
    let out = String::from_utf8_lossy(&refused.stdout);
    // Positions may skip (another tenant's), never go back: the line that
    // goes back is named.
    assert!(out.contains("BROKEN") && out.contains("line 5"), "{out}");
}
