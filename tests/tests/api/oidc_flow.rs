//! Signing a portal in with OpenID Connect, through an independent client
//! library (the `openidconnect` crate): discovery, the sign-in page, the
//! code with PKCE, tokens the library verifies, userinfo, refresh with
//! rotation and reuse detection, introspection and revocation.

use access_proto::v1 as pb;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use access_tests::signin::{Agent, query_param};
use access_tests::{TestApp, new_id};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreResponseType, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    IntrospectionUrl, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl,
    RevocationUrl, Scope, TokenIntrospectionResponse, TokenResponse,
};

/// The contact's password.
pub const PASSWORD: &str = "sunlit7meadow";
/// Where the test portal receives its codes (loopback: any port matches).
pub const REDIRECT: &str = "http://127.0.0.1/callback";

/// A tenant with one invited contact who set a password, and a client.
pub struct Provider {
    /// The service.
    pub app: TestApp,
    /// The tenant's admin key.
    pub key: String,
    /// The issuer.
    pub issuer: String,
    /// The contact's email.
    pub email: String,
    /// The contact's id.
    pub contact_id: String,
    /// The client.
    pub client_id: String,
    /// Its secret (empty for a public client).
    pub secret: String,
}

/// The settings of the test portal, told of sign-outs at `backchannel`.
pub fn portal_settings(backchannel: &str) -> pb::OidcClientSettings {
    pb::OidcClientSettings {
        name: "Web shop".into(),
        redirect_uris: vec![REDIRECT.into()],
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        access_token_ttl_seconds: 300,
        refresh_token_ttl_seconds: 86_400,
        backchannel_logout_uri: backchannel.into(),
        post_logout_redirect_uris: vec![format!("{REDIRECT}/signed-out")],
        token_signing_alg: String::new(),
        initiate_login_uri: String::new(),
    }
}

/// Registers a client of `kind` for the tenant of `key`.
pub async fn register(app: &TestApp, key: &str, kind: pb::OidcClientKind) -> (String, String) {
    let reply = TenantAdminClient::new(app.channel.clone())
        .register_oidc_client(app.req(
            key,
            pb::RegisterOidcClientRequest {
                request_id: new_id(),
                kind: kind.into(),
                settings: Some(portal_settings("")),
            },
        ))
        .await
        .expect("registered")
        .into_inner();
    (reply.client_id, reply.client_secret)
}

/// Tells the client `client_id` of sign-outs at `backchannel`.
pub async fn tell_of_sign_outs(app: &TestApp, key: &str, client_id: &str, backchannel: &str) {
    update_client(app, key, client_id, portal_settings(backchannel)).await;
}

/// Replaces the settings of the client `client_id`.
pub async fn update_client(
    app: &TestApp,
    key: &str,
    client_id: &str,
    settings: pb::OidcClientSettings,
) {
    TenantAdminClient::new(app.channel.clone())
        .update_oidc_client(app.req(
            key,
            pb::UpdateOidcClientRequest {
                request_id: new_id(),
                client_id: client_id.into(),
                settings: Some(settings),
            },
        ))
        .await
        .expect("updated");
}

impl Provider {
    /// A fresh service with tenant `acme`, customer C1, contact
    /// ann@c1.example and a confidential client.
    pub async fn start() -> Provider {
        let app = TestApp::spawn().await;
        let issuer = format!("http://{}/t/acme", app.http_addr);
        Self::on(app, issuer).await
    }

    /// The same, its pages public at `http://localhost:<port>` (a host
    /// name: what a passkey's relying party must be).
    pub async fn start_on_localhost() -> Provider {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let (http, public) = (
            format!("127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
        );
        let app = TestApp::spawn_with(&["--http-addr", &http, "--public-base-url", &public]).await;
        Self::on(app, format!("{public}/t/acme")).await
    }

    async fn on(app: TestApp, issuer: String) -> Provider {
        let key = app.create_tenant("acme").await;
        app.create_customer(&key, "C1").await;
        let invited = app.invite(&key, "C1", "ann@c1.example").await;
        let link = app.wait_for_mail("ann@c1.example", 1).await;
        app.accept(&link, PASSWORD).await;
        let (client_id, secret) = register(&app, &key, pb::OidcClientKind::Confidential).await;
        app.settled_head().await;
        Provider {
            app,
            key,
            issuer,
            email: "ann@c1.example".into(),
            contact_id: invited.contact_id,
            client_id,
            secret,
        }
    }

    /// The HTTP client the library uses: it follows no redirect.
    pub fn http() -> openidconnect::reqwest::Client {
        openidconnect::reqwest::Client::builder()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client")
    }
}

/// The claims of a JWT, unverified: for the checks beyond the library's.
pub fn payload(jwt: &str) -> serde_json::Value {
    let middle = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(middle).expect("base64url")).expect("JSON")
}

#[tokio::test]
async fn a_portal_signs_a_contact_in_with_a_standard_client_library() {
    let p = Provider::start().await;
    let http = Provider::http();
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(p.issuer.clone()).expect("issuer"),
        &http,
    )
    .await
    .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(p.client_id.clone()),
        Some(ClientSecret::new(p.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).expect("redirect"))
    .set_revocation_url(RevocationUrl::new(format!("{}/revoke", p.issuer)).expect("url"))
    .set_introspection_url(IntrospectionUrl::new(format!("{}/introspect", p.issuer)).expect("url"));

    // The browser: to the sign-in page, the password, back with a code.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let mut browser = Agent::default();
    let back = browser.sign_in(url.as_str(), &p.email, PASSWORD).await;
    assert!(back.starts_with(REDIRECT), "{back}");
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some(state.secret().as_str())
    );
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(p.issuer.as_str()),
        "RFC 9207"
    );
    let code = query_param(&back, "code").expect("a code");

    // The portal's backend: the code for tokens, the ID token verified.
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("a token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("tokens");
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EdDsa]);
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("a genuine ID token");
    assert_eq!(claims.subject().as_str(), p.contact_id);
    assert_eq!(claims.email().map(|e| e.as_str()), Some("ann@c1.example"));
    let ours = payload(&id_token.to_string());
    assert_eq!(ours["tenant"], "acme");
    assert_eq!(ours["customer_id"], "C1");
    assert_eq!(ours["login_kind"], "management");
    assert_eq!(ours["site_rule"], "tenant_default");
    assert_eq!(ours["may_order"], true);
    assert!(
        ours["document_kinds"]
            .as_array()
            .is_some_and(|k| k.len() == 5),
        "{ours}"
    );
    assert!(
        ours["auth_time"].as_i64().is_some() && ours["sid"].as_str().is_some(),
        "{ours}"
    );

    // Userinfo with the access token.
    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .expect("a userinfo endpoint")
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), p.contact_id);
    assert_eq!(info.email().map(|e| e.as_str()), Some("ann@c1.example"));
    let introspected = client
        .introspect(tokens.access_token())
        .request_async(&http)
        .await
        .expect("introspection");
    assert!(introspected.active());

    // Refresh: a new refresh token replaces the old one.
    let first_refresh = tokens.refresh_token().expect("a refresh token").clone();
    let refreshed = client
        .exchange_refresh_token(&first_refresh)
        .expect("a token endpoint")
        .request_async(&http)
        .await
        .expect("refreshed");
    let second_refresh = refreshed
        .refresh_token()
        .expect("a new refresh token")
        .clone();
    assert_ne!(second_refresh.secret(), first_refresh.secret());
    let refreshed_id = refreshed.id_token().expect("an ID token");
    let refreshed_claims = refreshed_id
        .claims(&id_verifier, |_: Option<&Nonce>| Ok(()))
        .expect("a genuine refreshed ID token");
    assert_eq!(refreshed_claims.subject().as_str(), p.contact_id);

    // The replaced token presented again: refused, and the whole grant ends,
    // so the thief's and the portal's tokens both stop working.
    let reused = client
        .exchange_refresh_token(&first_refresh)
        .expect("a token endpoint")
        .request_async(&http)
        .await;
    assert!(
        format!("{reused:?}").contains("invalid_grant"),
        "{reused:?}"
    );
    let after = client
        .exchange_refresh_token(&second_refresh)
        .expect("a token endpoint")
        .request_async(&http)
        .await;
    assert!(after.is_err(), "the grant ended");
    let dead = client
        .introspect(refreshed.access_token())
        .request_async(&http)
        .await
        .expect("introspection");
    assert!(!dead.active(), "its access tokens are inactive");
    let rejected = client
        .user_info(refreshed.access_token().clone(), None)
        .expect("a userinfo endpoint")
        .request_async(&http)
        .await
        .map(|_: CoreUserInfoClaims| ());
    assert!(rejected.is_err(), "userinfo refuses them");

    // The history says who signed in where.
    let history = p.app.accessctl(
        &p.key,
        &[
            "audit".as_ref(),
            "replay".as_ref(),
            "--contact".as_ref(),
            p.contact_id.as_ref(),
        ],
    );
    let words = String::from_utf8_lossy(&history.stdout);
    assert!(words.contains("signed in to 'Web shop'"), "{words}");
    assert!(
        words.contains("a replaced refresh token was presented again"),
        "{words}"
    );

    // A tampered ID token does not verify.
    let text = id_token.to_string();
    let mut parts: Vec<String> = text.split('.').map(str::to_owned).collect();
    let mut changed = payload(&text);
    changed["sub"] = "someone-else".into();
    parts[1] = URL_SAFE_NO_PAD.encode(changed.to_string());
    let forged: openidconnect::core::CoreIdToken = parts.join(".").parse().expect("a JWT shape");
    assert!(
        forged.claims(&id_verifier, &nonce).is_err(),
        "tampering shows"
    );
    let _ = AccessToken::new(String::new());
}

#[tokio::test]
async fn a_client_that_needs_es256_gets_es256_tokens() {
    let p = Provider::start().await;
    let mut settings = portal_settings("");
    settings.token_signing_alg = "ES256".into();
    let registered = TenantAdminClient::new(p.app.channel.clone())
        .register_oidc_client(p.app.req(
            &p.key,
            pb::RegisterOidcClientRequest {
                request_id: new_id(),
                kind: pb::OidcClientKind::Confidential.into(),
                settings: Some(settings),
            },
        ))
        .await
        .expect("registered")
        .into_inner();
    p.app.settled_head().await;
    let http = Provider::http();
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(p.issuer.clone()).expect("issuer"),
        &http,
    )
    .await
    .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(registered.client_id.clone()),
        Some(ClientSecret::new(registered.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).expect("redirect"));
    let (url, _state, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .url();
    let back = Agent::default()
        .sign_in(url.as_str(), &p.email, PASSWORD)
        .await;
    let code = query_param(&back, "code").expect("a code");
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("a token endpoint")
        .request_async(&http)
        .await
        .expect("tokens");
    let id_token = tokens.id_token().expect("an ID token");
    let es256_only = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims = id_token
        .claims(&es256_only, &nonce)
        .expect("an ES256 ID token");
    assert_eq!(claims.subject().as_str(), p.contact_id);
    let header = id_token.to_string();
    let header = header.split('.').next().unwrap_or_default();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON");
    assert_eq!(header["alg"], "ES256");
    // The EdDSA client's verifier would not take it.
    let eddsa_only = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EdDsa]);
    assert!(id_token.claims(&eddsa_only, &nonce).is_err());
}
