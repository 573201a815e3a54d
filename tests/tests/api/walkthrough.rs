//! The README walkthrough as a user lives it: invite → set password → log in →
//! disable → restore → revoke → invite again.

use access_proto::v1 as pb;
use access_tests::{TestApp, invite_request, new_id, token_of};
use tonic::Code;
use tonic_types::StatusExt;

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

async fn login(
    app: &TestApp,
    key: &str,
    email: &str,
    password: &str,
) -> Result<pb::Session, tonic::Status> {
    app.sessions()
        .login(app.req(
            key,
            pb::LoginRequest {
                request_id: new_id(),
                login: email.into(),
                password: password.into(),
                client_address: String::new(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn accept(app: &TestApp, link: &str, password: &str) -> Result<pb::Session, tonic::Status> {
    app.sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(link),
            password: password.into(),
        })
        .await
        .map(|r| r.into_inner())
}

fn contact_command(id: &str) -> pb::ContactCommand {
    pb::ContactCommand {
        request_id: new_id(),
        contact_id: id.into(),
        reason: "walkthrough".into(),
    }
}

#[tokio::test]
async fn a_contact_is_invited_logs_in_is_disabled_restored_revoked_and_invited_again() {
    // Arrange
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;

    // Act: invite with a custom site rule, and read the link from the mail.
    let invited = app
        .access()
        .invite_customer(app.req(
            &key,
            invite_request("C001", "bob@hardware.example", Some("York")),
        ))
        .await
        .unwrap()
        .into_inner();
    let link = app.wait_for_mail("bob@hardware.example", 1).await;
    assert!(
        link.starts_with(&format!("http://{}/invite/", app.http_addr)),
        "{link}"
    );

    // Assert: before accepting, the contact cannot log in.
    let err = login(&app, &key, "bob@hardware.example", "sunlit7meadow")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // Accepting logs the contact in at once.
    let session = accept(&app, &link, "sunlit7meadow").await.unwrap();
    assert_eq!(session.contact_id, invited.contact_id);
    assert_eq!(session.tenant_id, "acme");
    assert!(session.session_token.starts_with("ses_"));

    let session = login(&app, &key, "BOB@hardware.example", "sunlit7meadow")
        .await
        .unwrap();
    assert_eq!(session.customer_id, "C001");
    let wrong = login(&app, &key, "bob@hardware.example", "secret124")
        .await
        .unwrap_err();
    let unknown = login(&app, &key, "nobody@hardware.example", "sunlit7meadow")
        .await
        .unwrap_err();
    assert_eq!(
        (wrong.code(), wrong.message()),
        (unknown.code(), unknown.message()),
        "no enumeration"
    );

    let sites = app
        .access()
        .get_site_visibility(app.req(
            &key,
            pb::GetSiteVisibilityRequest {
                contact_id: invited.contact_id.clone(),
                min_position: session.position,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            sites.visible_sites,
            sites.order_site.as_str(),
            sites.stock_totals
        ),
        (vec!["York".to_string()], "York", false)
    );

    // Disable: logins are refused with a clear reason.
    let disabled = app
        .access()
        .disable_access(app.req(&key, contact_command(&invited.contact_id)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(disabled.contact.unwrap().status, "disabled");
    let err = login(&app, &key, "bob@hardware.example", "sunlit7meadow")
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::PermissionDenied, "disabled")
    );

    // Restore brings the same contact back, nothing lost.
    let restored = app
        .access()
        .restore_access(app.req(&key, contact_command(&invited.contact_id)))
        .await
        .unwrap()
        .into_inner();
    let contact = restored.contact.unwrap();
    assert_eq!(
        (contact.status.as_str(), contact.customer_id.as_str()),
        ("active", "C001")
    );
    let session = login(&app, &key, "bob@hardware.example", "sunlit7meadow")
        .await
        .unwrap();
    assert_eq!(session.contact_id, invited.contact_id);

    // Revoke: refused with its reason, and the email may be invited again.
    app.access()
        .revoke_access(app.req(&key, contact_command(&invited.contact_id)))
        .await
        .unwrap();
    let err = login(&app, &key, "bob@hardware.example", "sunlit7meadow")
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::PermissionDenied, "revoked")
    );
    let again = app.invite(&key, "C001", "bob@hardware.example").await;
    assert_ne!(again.contact_id, invited.contact_id);

    // The same identity already has a password: the new link asks for it.
    let link = app.wait_for_mail("bob@hardware.example", 2).await;
    let err = accept(&app, &link, "another456").await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::Unauthenticated, "existing_password_required")
    );
    let session = accept(&app, &link, "sunlit7meadow").await.unwrap();
    assert_eq!(session.contact_id, again.contact_id);

    assert!(app.verify().await.ok);
}

#[tokio::test]
async fn an_email_with_a_password_at_another_supplier_goes_straight_in_with_it() {
    let app = TestApp::spawn().await;
    let first = app.create_tenant("first").await;
    let second = app.create_tenant("second").await;
    app.create_customer(&first, "A1").await;
    app.create_customer(&second, "B1").await;
    app.invite(&first, "A1", "ann@shop.example").await;
    let link = app.wait_for_mail("ann@shop.example", 1).await;
    accept(&app, &link, "annpass1").await.unwrap();

    let invited = app.invite(&second, "B1", "ann@shop.example").await;
    let link = app.wait_for_mail("ann@shop.example", 2).await;
    // The link alone never opens a session for an identity with a password.
    let err = accept(&app, &link, "wrongpass9").await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let session = accept(&app, &link, "annpass1").await.unwrap();
    assert_eq!(
        (session.tenant_id.as_str(), session.contact_id.as_str()),
        ("second", invited.contact_id.as_str())
    );
    // One password across tenants.
    login(&app, &second, "ann@shop.example", "annpass1")
        .await
        .unwrap();
    login(&app, &first, "ann@shop.example", "annpass1")
        .await
        .unwrap();
}

#[tokio::test]
async fn health_and_reflection_answer() {
    let app = TestApp::spawn().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel.clone());
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    // Known from the start (NOT_SERVING until the first report), and
    // SERVING within moments.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: "access.v1.Access".into(),
            })
            .await
            .expect("the service's name is known to health from the start")
            .into_inner()
            .status;
        if status == serving {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never SERVING: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let body = reqwest_lite(&app.http_addr, "/healthz").await;
    assert!(body.contains("200 OK") && body.ends_with("ok\n"), "{body}");
}

/// A minimal HTTP/1.1 GET over a raw socket, to keep test dependencies lean.
async fn reqwest_lite(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn a_second_accessd_on_the_same_data_directory_fails_at_once_with_a_clear_error() {
    let app = TestApp::spawn().await;
    let output = tokio::process::Command::new(access_tests::binary("accessd"))
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&app.dir)
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in use by another process"), "{stderr}");
    // The first one is unharmed.
    assert!(app.verify().await.ok);
}
