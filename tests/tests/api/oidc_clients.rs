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
        ..Default::default()
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

/// The tenant's published keys, from its JWKS.
async fn jwks(app: &TestApp, tenant: &str) -> (u16, serde_json::Value) {
    let answer = reqwest::get(format!("http://{}/t/{tenant}/jwks.json", app.http_addr))
        .await
        .expect("an answer");
    let status = answer.status().as_u16();
    if status == 200 {
        let header = |name: &str| answer.headers().get(name).and_then(|v| v.to_str().ok());
        assert_eq!(header("content-type"), Some("application/jwk-set+json"));
        assert_eq!(header("access-control-allow-origin"), Some("*"));
    }
    let text = answer.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or_default())
}

fn kids(set: &serde_json::Value) -> Vec<String> {
    set["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k["kid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_first_client_makes_the_signing_key_and_a_rotation_keeps_the_old_one_published() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    // The JWKS is read from the read models, which take no position.
    app.settled_head().await;
    let mut admin = TenantAdminClient::new(app.channel.clone());
    let (status, empty) = jwks(&app, "acme").await;
    assert_eq!((status, kids(&empty).len()), (200, 0), "{empty}");
    assert_eq!(jwks(&app, "nobody").await.0, 404);
    assert_eq!(jwks(&app, "..%2F..").await.0, 404);

    // The first client registered makes the tenant's first keys, one per
    // algorithm; the second client does not make more.
    for uri in ["https://a.example/cb", "https://b.example/cb"] {
        admin
            .register_oidc_client(app.req(&key, register(pb::OidcClientKind::Public, &[uri])))
            .await
            .expect("registered");
    }
    app.settled_head().await;
    let (_, first) = jwks(&app, "acme").await;
    let first_kids = kids(&first);
    assert_eq!(first_kids.len(), 2, "{first}");
    let of = |alg: &str| {
        first["keys"]
            .as_array()
            .and_then(|keys| keys.iter().find(|k| k["alg"] == alg).cloned())
            .unwrap_or_default()
    };
    let decoded = |v: &serde_json::Value| {
        base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            v.as_str().unwrap_or_default(),
        )
        .expect("base64url")
    };
    let ed = of("EdDSA");
    assert_eq!(
        (ed["kty"].as_str(), ed["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    assert_eq!(decoded(&ed["x"]).len(), 32, "an Ed25519 public key");
    let ec = of("ES256");
    assert_eq!(
        (ec["kty"].as_str(), ec["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    assert_eq!(
        (decoded(&ec["x"]).len(), decoded(&ec["y"]).len()),
        (32, 32),
        "a P-256 point"
    );

    // A rotation: the new key signs, the old one stays published.
    let rotated = admin
        .rotate_signing_key(app.req(
            &key,
            pb::RotateSigningKeyRequest {
                request_id: new_id(),
            },
        ))
        .await
        .expect("rotated")
        .into_inner();
    app.settled_head().await;
    let (_, after) = jwks(&app, "acme").await;
    let after_kids = kids(&after);
    assert_eq!(after_kids.len(), 4, "{after}");
    assert!(first_kids.iter().all(|k| after_kids.contains(k)));
    assert_eq!(rotated.key_ids.len(), 2);
    assert!(rotated.key_ids.iter().all(|k| after_kids.contains(k)));
    assert_eq!(rotated.key_id, rotated.key_ids[0]);
    assert!(
        !after.to_string().contains("\"d\""),
        "no private part: {after}"
    );

    // Another tenant's keys are its own.
    let other = app.create_tenant("other").await;
    admin
        .register_oidc_client(app.req(
            &other,
            register(pb::OidcClientKind::Public, &["https://c.example/cb"]),
        ))
        .await
        .expect("registered");
    app.settled_head().await;
    let (_, theirs) = jwks(&app, "other").await;
    assert_eq!(kids(&theirs).len(), 2);
    assert!(kids(&theirs).iter().all(|k| !after_kids.contains(k)));
}
