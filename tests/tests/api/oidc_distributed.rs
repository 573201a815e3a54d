//! Sign-in across replicas: a code issued by one `accessd` is redeemed at
//! another, once; presented again at the first, it is refused and the grant
//! it gave ends there too, because the grant's stream is in the shared log.

use crate::oidc_flow::{REDIRECT, portal_settings};
use crate::oidc_refusals::{exchange, post};
use access_proto::v1 as pb;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use access_tests::nats::Nats;
use access_tests::signin::{Agent, query_param};
use access_tests::{TestApp, new_id};

const PASSWORD: &str = "harbour9lantern";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_from_one_replica_works_once_at_any_replica() {
    let nats = Nats::cluster().await;
    let keys = tempfile::tempdir().expect("a key directory");
    let urls = nats.urls();
    // Replicas behind one address: one issuer.
    let args = [
        "--nats-url",
        &urls,
        "--nats-replicas",
        "3",
        "--key-dir",
        keys.path().to_str().expect("a UTF-8 path"),
        "--public-base-url",
        "https://portal-login.acme.example",
    ];
    let a = TestApp::spawn_with(&args).await;
    let b = TestApp::spawn_with(&args).await;
    let key = a.create_tenant("acme").await;
    a.create_customer(&key, "C1").await;
    a.access()
        .add_portal_user(a.req(
            &key,
            pb::AddPortalUserRequest {
                request_id: new_id(),
                customer_id: "C1".into(),
                username: "ACME001".into(),
                email: String::new(),
                site_rule: None,
                management_password: "Temporary4now".into(),
                staff_password: String::new(),
            },
        ))
        .await
        .expect("logins");
    let session = a
        .sessions()
        .login(a.req(
            &key,
            pb::LoginRequest {
                request_id: new_id(),
                login: "ACME001".into(),
                password: "Temporary4now".into(),
                client_address: String::new(),
            },
        ))
        .await
        .expect("a session")
        .into_inner();
    a.sessions()
        .change_password(a.req(
            &key,
            pb::ChangePasswordRequest {
                request_id: new_id(),
                session_token: session.session_token,
                current_password: "Temporary4now".into(),
                new_password: PASSWORD.into(),
            },
        ))
        .await
        .expect("a password of their own");
    let client = TenantAdminClient::new(a.channel.clone())
        .register_oidc_client(a.req(
            &key,
            pb::RegisterOidcClientRequest {
                request_id: new_id(),
                kind: pb::OidcClientKind::Confidential.into(),
                settings: Some(portal_settings("")),
            },
        ))
        .await
        .expect("registered")
        .into_inner();
    b.settled_head().await;

    // Signed in at replica a …
    let authorize = format!(
        "http://{}/t/acme/authorize?response_type=code&client_id={}&scope=openid&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback",
        a.http_addr, client.client_id
    );
    let back = Agent::default()
        .sign_in(&authorize, "ACME001", PASSWORD)
        .await;
    assert!(back.starts_with(REDIRECT), "{back}");
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some("https://portal-login.acme.example/t/acme")
    );
    let code = query_param(&back, "code").expect("a code");
    let creds = [
        ("client_id", client.client_id.as_str()),
        ("client_secret", client.client_secret.as_str()),
    ];
    let token_at = |app: &TestApp| format!("http://{}/t/acme/token", app.http_addr);

    // … redeemed at replica b, once.
    let (status, tokens) = post(&token_at(&b), &[&exchange(&code, "")[..], &creds].concat()).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, replay) = post(&token_at(&a), &[&exchange(&code, "")[..], &creds].concat()).await;
    assert_eq!(
        (status, replay["error"].as_str()),
        (400, Some("invalid_grant")),
        "{replay}"
    );

    // The replay ended the grant everywhere: b's refresh token is dead at both.
    let refresh = tokens["refresh_token"].as_str().unwrap_or_default();
    for app in [&a, &b] {
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
        let (status, _) = post(&token_at(app), &[&form[..], &creds].concat()).await;
        assert_eq!(status, 400);
    }
    a.settled_head().await;
    b.settled_head().await;
    let (_, introspected) = post(
        &format!("http://{}/t/acme/introspect", a.http_addr),
        &[
            &[("token", tokens["access_token"].as_str().unwrap_or_default())][..],
            &creds,
        ]
        .concat(),
    )
    .await;
    assert_eq!(introspected["active"], false, "{introspected}");
    assert!(a.verify().await.ok);
}
