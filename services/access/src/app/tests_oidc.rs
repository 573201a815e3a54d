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

#[tokio::test]
async fn a_code_past_its_minute_is_refused_as_expired() {
    let models = Arc::new(ReadModels::temporary().expect("read models"));
    let f = fixture(|log| log, models);
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
    };
    let who = SignedIn {
        contact_id: GeneratedId::generate().to_string(),
        auth_time_ms: f.app.now_ms(),
        session_id: "s".into(),
        client_address: "192.0.2.1".into(),
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
