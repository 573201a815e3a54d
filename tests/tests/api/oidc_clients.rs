//! OpenID Connect clients as tenant configuration: registered with a secret
//! shown once (and again to a retry), redirect URIs checked as the OAuth
//! security BCP asks, secrets rotated, settings replaced, clients removed,
//! all of it admin-only and in the history.

use access_proto::v1 as pb;
use access_proto::v1::audit_client::AuditClient;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use access_tests::{TestApp, new_id};
use tonic::Code;
use tonic_types::StatusExt;

fn settings(uris: &[&str]) -> pb::OidcClientSettings {
    pb::OidcClientSettings {
        name: "Web shop".into(),
        redirect_uris: uris.iter().map(|u| (*u).to_owned()).collect(),
        scopes: vec!["openid".into(), "email".into(), "offline_access".into()],
        access_token_ttl_seconds: 300,
        refresh_token_ttl_seconds: 30 * 86_400,
    }
}

fn register(kind: pb::OidcClientKind, uris: &[&str]) -> pb::RegisterOidcClientRequest {
    pb::RegisterOidcClientRequest {
        request_id: new_id(),
        kind: kind.into(),
        settings: Some(settings(uris)),
    }
}

async fn clients(app: &TestApp, key: &str) -> Vec<pb::OidcClient> {
    TenantAdminClient::new(app.channel.clone())
        .list_oidc_clients(app.req(key, pb::ListOidcClientsRequest { min_position: 0 }))
        .await
        .expect("the list")
        .into_inner()
        .clients
}

#[tokio::test]
async fn a_client_is_registered_rotated_changed_and_removed_by_an_admin() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    let mut admin = TenantAdminClient::new(app.channel.clone());

    // Registered: the secret is shown, and shown again to a retry only.
    let request = register(
        pb::OidcClientKind::Confidential,
        &["https://shop.acme.example/callback"],
    );
    let first = admin
        .register_oidc_client(app.req(&key, request.clone()))
        .await
        .expect("registered")
        .into_inner();
    assert!(first.client_secret.starts_with("ocs_"), "{first:?}");
    let retry = admin
        .register_oidc_client(app.req(&key, request))
        .await
        .expect("the retry")
        .into_inner();
    assert_eq!(
        (&retry.client_id, &retry.client_secret),
        (&first.client_id, &first.client_secret)
    );
    let listed = clients(&app, &key).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].client_id, first.client_id);
    assert_eq!(listed[0].secret_generation, 1);
    let shown = format!("{listed:?}");
    assert!(!shown.contains(&first.client_secret), "no secret is listed");

    // A new secret replaces the old one.
    let rotated = admin
        .rotate_oidc_client_secret(app.req(
            &key,
            pb::RotateOidcClientSecretRequest {
                request_id: new_id(),
                client_id: first.client_id.clone(),
            },
        ))
        .await
        .expect("rotated")
        .into_inner();
    assert!(rotated.client_secret.starts_with("ocs_"));
    assert_ne!(rotated.client_secret, first.client_secret);
    assert_eq!(clients(&app, &key).await[0].secret_generation, 2);

    // Settings are replaced as a whole; the same settings change nothing.
    let update = |uris: &[&str]| pb::UpdateOidcClientRequest {
        request_id: new_id(),
        client_id: first.client_id.clone(),
        settings: Some(settings(uris)),
    };
    let changed = admin
        .update_oidc_client(app.req(&key, update(&["https://shop.acme.example/cb2"])))
        .await
        .expect("changed")
        .into_inner();
    let client = changed.client.expect("the client");
    assert_eq!(
        client.settings.expect("settings").redirect_uris,
        ["https://shop.acme.example/cb2"]
    );
    let same = admin
        .update_oidc_client(app.req(&key, update(&["https://shop.acme.example/cb2"])))
        .await
        .expect_err("unchanged");
    assert_eq!(
        same.get_details_error_info().map(|i| i.reason).as_deref(),
        Some("unchanged")
    );

    // Removed: gone from the list, and a second removal says so.
    let remove = || pb::RemoveOidcClientRequest {
        request_id: new_id(),
        client_id: first.client_id.clone(),
        reason: "the shop moved".into(),
    };
    admin
        .remove_oidc_client(app.req(&key, remove()))
        .await
        .expect("removed");
    assert!(clients(&app, &key).await.is_empty());
    let again = admin
        .remove_oidc_client(app.req(&key, remove()))
        .await
        .expect_err("removed already");
    assert_eq!(
        again.get_details_error_info().map(|i| i.reason).as_deref(),
        Some("already_deleted")
    );

    // The history tells it in words, with no secret.
    let mut stream = AuditClient::new(app.channel.clone())
        .replay_history(app.req(
            &key,
            pb::ReplayHistoryRequest {
                ..Default::default()
            },
        ))
        .await
        .expect("the history")
        .into_inner();
    let mut lines = Vec::new();
    while let Some(e) = stream.message().await.expect("an event") {
        lines.push(format!("{} {}", e.summary, e.payload_json));
    }
    let text = lines.join("\n");
    assert!(
        text.contains("registered the confidential sign-in client 'Web shop'"),
        "{text}"
    );
    assert!(
        text.contains("gave the sign-in client 'Web shop'"),
        "{text}"
    );
    assert!(
        text.contains("removed the sign-in client 'Web shop'"),
        "{text}"
    );
    assert!(!text.contains(&first.client_secret) && !text.contains(&rotated.client_secret));
}

#[tokio::test]
async fn unsafe_redirects_and_settings_are_refused_field_by_field_and_nothing_is_registered() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    let mut admin = TenantAdminClient::new(app.channel.clone());
    let before = app.settled_head().await;
    let mut request = register(
        pb::OidcClientKind::Confidential,
        &[
            "http://shop.acme.example/callback",
            "https://shop.acme.example/cb#token",
            "https://user@evil.example/cb",
        ],
    );
    if let Some(s) = request.settings.as_mut() {
        s.scopes = vec!["email".into(), "admin".into()];
        s.access_token_ttl_seconds = 86_400;
    }
    let refused = admin
        .register_oidc_client(app.req(&key, request))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let fields: Vec<String> = refused
        .get_details_bad_request()
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    for field in [
        "redirect_uris[0]",
        "redirect_uris[1]",
        "redirect_uris[2]",
        "scopes[1]",
        "scopes",
        "access_token_ttl",
    ] {
        assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
    }
    let unknown_kind = pb::RegisterOidcClientRequest {
        kind: 0,
        ..register(pb::OidcClientKind::Public, &["https://a.example/cb"])
    };
    let refused = admin
        .register_oidc_client(app.req(&key, unknown_kind))
        .await
        .expect_err("no kind");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(app.settled_head().await, before, "nothing was written");
    assert!(clients(&app, &key).await.is_empty());
}

#[tokio::test]
async fn a_public_client_has_no_secret_and_only_admins_manage_clients() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    let mut admin = TenantAdminClient::new(app.channel.clone());
    let public = admin
        .register_oidc_client(app.req(
            &key,
            register(pb::OidcClientKind::Public, &["http://127.0.0.1:8765/cb"]),
        ))
        .await
        .expect("registered")
        .into_inner();
    assert!(public.client_secret.is_empty());
    let rotate = pb::RotateOidcClientSecretRequest {
        request_id: new_id(),
        client_id: public.client_id.clone(),
    };
    let refused = admin
        .rotate_oidc_client_secret(app.req(&key, rotate))
        .await
        .expect_err("no secret to rotate");
    assert_eq!(refused.code(), Code::InvalidArgument);

    let service = app
        .create_key(&key, pb::Role::Service, "erp", "")
        .await
        .api_key;
    let denied = admin
        .register_oidc_client(app.req(
            &service,
            register(pb::OidcClientKind::Public, &["https://a.example/cb"]),
        ))
        .await
        .expect_err("admins only");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let denied = admin
        .list_oidc_clients(app.req(&service, pb::ListOidcClientsRequest::default()))
        .await
        .expect_err("admins only");
    assert_eq!(denied.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn accessctl_registers_and_lists_clients() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    let run = |args: &[&str]| {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        let out = app.accessctl(&key, &args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let added = run(&[
        "oidc",
        "client",
        "add",
        "--name",
        "Web shop",
        "--redirect",
        "https://shop.acme.example/callback",
        "--scope",
        "openid",
        "--scope",
        "email",
    ]);
    assert!(
        added.contains("client secret (shown once): ocs_"),
        "{added}"
    );
    let id = added
        .lines()
        .find_map(|l| l.strip_prefix("client id: "))
        .expect("the id")
        .to_owned();
    let listed = run(&["oidc", "client", "list"]);
    assert!(
        listed.contains(&id) && listed.contains("Web shop"),
        "{listed}"
    );
    assert!(listed.contains("redirect: https://shop.acme.example/callback"));
    assert!(!listed.contains("ocs_"), "no secret is listed: {listed}");
}
