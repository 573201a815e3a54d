//! Sign-in codes against the clock: a code past its minute is refused and
//! stays refused, which only a clock the test moves can show.

use super::*;
use crate::app::{AuthorizationRequest, Prompt, SignedIn};
use crate::domain::oidc_grants::CODE_TTL_MS;
use crate::projections::OidcClientRow;
use access_catalogue::catalogue::{OidcClientKind, OidcClientSettings};

fn client() -> OidcClientRow {
    OidcClientRow {
        client_id: "portal".into(),
        kind: OidcClientKind::Confidential,
        settings: OidcClientSettings {
            name: "Web shop".into(),
            redirect_uris: vec!["https://shop.example/cb".into()],
            scopes: vec!["openid".into()],
            access_token_ttl_s: 300,
            refresh_token_ttl_s: 3600,
            backchannel_logout_uri: None,
            post_logout_redirect_uris: Vec::new(),
            token_signing_alg: "EdDSA".into(),
            initiate_login_uri: None,
        },
        secret_sha256: None,
        secret_generation: 1,
    }
}

/// An app whose tenant `acme` has its signing keys, in its read models.
async fn with_signing_keys() -> Fixture {
    let models = Arc::new(ReadModels::temporary().expect("read models"));
    let kept = Arc::new(std::sync::Mutex::new(None));
    let keep = kept.clone();
    let f = fixture(
        move |log| {
            *keep.lock().expect("unpoisoned") = Some(log.clone());
            log
        },
        models.clone(),
    );
    f.app
        .create_tenant(&context("r-1", Some("acme")), create_tenant("acme"))
        .await
        .expect("the tenant");
    let tenant = TenantId::trusted("acme");
    let admin = Staff {
        role: Role::Admin,
        rep_id: None,
    };
    let cmd = RotateSigningKeyCommand {
        tenant: tenant.clone(),
        by: admin,
        keys: f.app.new_signing_keys(&tenant).expect("keys"),
    };
    f.app
        .execute(&context("r-2", Some("acme")), &cmd)
        .await
        .expect("keys added");
    // The read models, fed as the projector would.
    let log = kept.lock().expect("unpoisoned").clone().expect("the log");
    let events = log.read_from(1, 100).await.expect("the events");
    let dir = tempfile::tempdir().expect("a directory");
    let vault = FileVault::open(&dir.path().join("vault")).expect("a vault");
    models.apply(&events, &vault).await.expect("applied");
    f
}

#[tokio::test]
async fn a_code_past_its_minute_is_refused_as_expired() {
    let f = with_signing_keys().await;
    let request = AuthorizationRequest {
        tenant: TenantId::trusted("acme"),
        client: client(),
        redirect_uri: "https://shop.example/cb".into(),
        state: None,
        scopes: vec!["openid".into()],
        nonce: None,
        code_challenge: None,
        prompt: Prompt::Default,
        max_age_s: None,
        login_hint: String::new(),
        wants_mfa: false,
    };
    let who = SignedIn {
        contact_id: GeneratedId::generate().to_string(),
        auth_time_ms: f.app.now_ms(),
        session_id: "s".into(),
        client_address: "192.0.2.1".into(),
        amr: vec!["pwd".into()],
    };
    let url = f.app.issue_code(&request, &who).await.expect("a code");
    let code = url::Url::parse(&url)
        .expect("a URL")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code in the redirect");

    f.clock.advance(CODE_TTL_MS);
    for _ in 0..2 {
        let refused = f
            .app
            .exchange_code(
                &request.tenant,
                &request.client,
                &code,
                &request.redirect_uri,
                None,
            )
            .await
            .expect_err("expired");
        assert_eq!(refused.error, "invalid_grant");
        assert!(refused.description.contains("expired"), "{refused:?}");
    }
}
