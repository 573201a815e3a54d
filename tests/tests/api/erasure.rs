//! The right to erasure in an immutable log: personal data is stored sealed
//! under the person's key; forgetting the person destroys the key, so their
//! events stay, chained and verifiable, with the personal data unreadable,
//! and the record says who forgot them and why.

use access_proto::v1 as pb;
use access_proto::v1::audit_client::AuditClient;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use access_tests::{TestApp, new_id, token_of};

const EMAIL: &str = "ann.person@shop.example";

/// Every file under `dir`, searched for `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

async fn history(app: &TestApp, key: &str) -> Vec<pb::HistoryEvent> {
    let mut stream = AuditClient::new(app.channel.clone())
        .replay_history(app.req(key, pb::ReplayHistoryRequest::default()))
        .await
        .expect("history")
        .into_inner();
    let mut out = Vec::new();
    while let Some(e) = stream.message().await.expect("event") {
        out.push(e);
    }
    out
}

async fn auditor(app: &TestApp, admin: &str) -> String {
    TenantAdminClient::new(app.channel.clone())
        .create_api_key(app.req(
            admin,
            pb::CreateApiKeyRequest {
                request_id: new_id(),
                role: pb::Role::Auditor as i32,
                name: "audit".into(),
                rep_id: String::new(),
            },
        ))
        .await
        .expect("auditor")
        .into_inner()
        .api_key
}

#[tokio::test]
async fn a_forgotten_person_reads_as_erased_everywhere_and_the_chain_still_verifies() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let other = app.create_tenant("other").await;
    app.create_customer(&acme, "C001").await;
    app.create_customer(&other, "X1").await;
    let at_acme = app.invite(&acme, "C001", EMAIL).await;
    let at_other = app.invite(&other, "X1", EMAIL).await;
    let link = app.wait_for_link(EMAIL, "/invite/", 1).await;
    app.sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(&link),
            password: "sunlit7meadow".into(),
        })
        .await
        .expect("accept");
    let _ = app
        .sessions()
        .login(app.req(
            &acme,
            pb::LoginRequest {
                request_id: new_id(),
                login: EMAIL.into(),
                password: "wrong-pass-1".into(),
                client_address: "203.0.113.77".into(),
            },
        ))
        .await;
    app.settled_head().await;

    // Sealed from the start: the stored log never holds the address in clear.
    let log_dir = app.dir.join("log");
    assert!(files_containing(&log_dir, EMAIL.as_bytes()).is_empty());
    assert!(files_containing(&log_dir, b"203.0.113.77").is_empty());
    let audit = auditor(&app, &acme).await;
    let before = history(&app, &audit).await;
    assert!(
        before.iter().any(|e| e.summary.contains(EMAIL)),
        "readable before"
    );

    // Forget the person.
    let forgotten = app
        .operator()
        .forget_identity(app.req(
            &app.operator_key,
            pb::ForgetIdentityRequest {
                request_id: new_id(),
                email: EMAIL.into(),
                identity_id: String::new(),
                reason: "erasure request of 2026-11-20".into(),
            },
        ))
        .await
        .expect("forget")
        .into_inner();
    let ended: Vec<&str> = forgotten
        .contacts
        .iter()
        .map(|c| c.contact_id.as_str())
        .collect();
    assert!(
        ended.contains(&at_acme.contact_id.as_str())
            && ended.contains(&at_other.contact_id.as_str())
    );

    // Every event is still there, the chain verifies, the data is unreadable.
    let after = history(&app, &audit).await;
    assert!(after.len() > before.len());
    for e in &after {
        assert!(!e.summary.contains(EMAIL), "{}", e.summary);
        assert!(!e.payload_json.contains(EMAIL), "{}", e.payload_json);
        assert!(
            !e.payload_json.contains("203.0.113.77"),
            "{}",
            e.payload_json
        );
    }
    assert!(after.iter().any(|e| e.summary.contains("[erased]")));
    let record = after
        .iter()
        .find(|e| e.event_type == "IdentityForgotten")
        .expect("the erasure is on record");
    assert_eq!(record.actor, "operator");
    assert!(
        record.summary.contains("erasure request of 2026-11-20"),
        "{}",
        record.summary
    );
    assert!(app.verify().await.ok);

    // Access ended at both suppliers; the email reads as erased.
    let contact = app
        .access()
        .get_contact(app.req(
            &acme,
            pb::GetContactRequest {
                contact_id: at_acme.contact_id.clone(),
                min_position: forgotten.position,
            },
        ))
        .await
        .expect("contact")
        .into_inner();
    assert_eq!(
        (contact.status.as_str(), contact.email.as_str()),
        ("revoked", "[erased]")
    );
    let login = app
        .sessions()
        .login(app.req(
            &acme,
            pb::LoginRequest {
                request_id: new_id(),
                login: EMAIL.into(),
                password: "sunlit7meadow".into(),
                client_address: String::new(),
            },
        ))
        .await
        .expect_err("no login");
    assert_eq!(login.code(), tonic::Code::Unauthenticated);

    // A rebuild from the log cannot bring anything back.
    let mut app = app;
    app.terminate().await;
    std::fs::remove_dir_all(app.dir.join("readmodels")).expect("drop read models");
    let app = app.start_again().await;
    let contact = app
        .access()
        .get_contact(app.req(
            &acme,
            pb::GetContactRequest {
                contact_id: at_acme.contact_id.clone(),
                min_position: app.head().await,
            },
        ))
        .await
        .expect("contact")
        .into_inner();
    assert_eq!(contact.email, "[erased]");

    // The person may come back as a new contact with a new key.
    let again = app.invite(&acme, "C001", EMAIL).await;
    assert_ne!(again.contact_id, at_acme.contact_id);
}
