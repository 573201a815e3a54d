//! Passkeys in headless Chromium with WebDriver's virtual authenticators:
//! registered on the security page, a sign-in of their own through an
//! OpenID Connect portal (Authlib), refused when user verification fails,
//! a second one, and one removed by staff. Over gRPC: what a caller that
//! sends garbage, a stale or foreign token, or the wrong passkey gets.

use crate::oidc_flow::{PASSWORD, Provider};
use access_proto::v1 as pb;
use access_proto::v1::sessions_client::SessionsClient;
use access_tests::browser::Browser;
use access_tests::relying_party::RelyingParty;
use access_tests::{TestApp, new_id};
use tonic::Code;

/// Signs in at the portal with the password; the page then names the
/// contact.
async fn password_signin(b: &Browser, portal: &RelyingParty, p: &Provider) {
    b.client
        .goto(&format!("{}/login", portal.url))
        .await
        .expect("the portal");
    b.text_with("Sign in to Web shop").await;
    b.type_into("login", &p.email).await;
    b.type_into("current", PASSWORD).await;
    b.submit().await;
}

/// Adds a passkey named `name` on the security page; the page then says
/// `said`.
async fn register(b: &Browser, p: &Provider, name: &str, said: &str) {
    b.client
        .goto(&format!("{}/security", p.issuer))
        .await
        .expect("the security page");
    b.text_with("Add a passkey").await;
    b.type_into("name", name).await;
    b.press_passkey().await;
    b.text_with(said).await;
}

/// Starts a sign-in at the portal afresh (no provider session) and
/// presses the passkey button.
async fn passkey_signin(b: &Browser, portal: &RelyingParty, p: &Provider) {
    // Cookies go by the page's host: the provider's are cleared on its own.
    b.client
        .goto(&format!("{}/.well-known/openid-configuration", p.issuer))
        .await
        .expect("the provider");
    b.client
        .delete_all_cookies()
        .await
        .expect("cookies cleared");
    b.client
        .goto(&format!("{}/login", portal.url))
        .await
        .expect("the portal");
    b.text_with("Sign in with a passkey").await;
    b.press_passkey().await;
}

/// The contact's factors as staff see them.
async fn factors(p: &Provider) -> Vec<pb::SecondFactor> {
    p.app
        .access()
        .get_contact(p.app.req(
            &p.key,
            pb::GetContactRequest {
                contact_id: p.contact_id.clone(),
                min_position: 0,
            },
        ))
        .await
        .expect("the contact")
        .into_inner()
        .second_factors
}

#[tokio::test]
async fn in_a_browser_passkeys_are_added_sign_in_alone_need_user_verification_and_go_when_staff_remove_one()
 {
    let p = Provider::start_on_localhost().await;
    let portal = RelyingParty::start(&p.issuer, &p.client_id, &p.secret).await;
    let b = Browser::start(true).await;
    let laptop = b.add_authenticator().await;
    password_signin(&b, &portal, &p).await;
    b.text_with(&p.contact_id).await;
    register(&b, &p, "work laptop", "The passkey was added").await;
    b.screenshot("passkey-added").await;
    let held = b.credentials(&laptop).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["isResidentCredential"], true, "discoverable");
    assert!(
        p.app
            .wait_for_outbox(&p.email, "A passkey named")
            .await
            .contains("work laptop")
    );

    // The session of the password alone ended with the first factor; the
    // passkey alone signs in: no login name, no password.
    passkey_signin(&b, &portal, &p).await;
    let result = b.text_with(&p.contact_id).await;
    assert!(
        result.contains("\"mfa\"") && result.contains("\"user\""),
        "amr: {result}"
    );
    assert!(
        !result.contains("\"pwd\""),
        "no password was given: {result}"
    );
    b.screenshot("passkey-signed-in").await;

    // A second device: the laptop's authenticator is gone, a phone's is
    // there. Its registration is not refused for the laptop's credential.
    b.remove_authenticator(&laptop).await;
    let phone = b.add_authenticator().await;
    register(&b, &p, "phone", "The passkey was added").await;
    let page = b.text().await;
    assert!(
        page.contains("work laptop") && page.contains("phone"),
        "{page}"
    );
    let listed = factors(&p).await;
    assert_eq!(
        listed
            .iter()
            .map(|f| (f.kind.as_str(), f.name.as_str()))
            .collect::<Vec<_>>(),
        [("passkey", "work laptop"), ("passkey", "phone")]
    );
    passkey_signin(&b, &portal, &p).await;
    b.text_with(&p.contact_id).await;

    // User verification fails (a wrong fingerprint): nobody is let in.
    b.set_user_verified(&phone, false).await;
    passkey_signin(&b, &portal, &p).await;
    let refused = b.text_with("did not answer").await;
    assert!(!refused.contains(&p.contact_id), "{refused}");
    b.set_user_verified(&phone, true).await;

    // Staff remove the phone's passkey after a call: it signs in no more,
    // the laptop's stays, the contact is told.
    let phone_id = listed
        .iter()
        .find(|f| f.name == "phone")
        .map(|f| f.factor_id.clone())
        .expect("the phone's factor");
    let remove = |reason: &str, factor_id: &str| pb::RemoveSecondFactorRequest {
        request_id: new_id(),
        contact_id: p.contact_id.clone(),
        factor_id: factor_id.into(),
        reason: reason.into(),
    };
    let unexplained = p
        .app
        .access()
        .remove_second_factor(p.app.req(&p.key, remove(" ", &phone_id)))
        .await
        .expect_err("a reason is required");
    assert_eq!(unexplained.code(), Code::InvalidArgument);
    let unknown = p
        .app
        .access()
        .remove_second_factor(p.app.req(
            &p.key,
            remove("called back", &uuid::Uuid::now_v7().simple().to_string()),
        ))
        .await
        .expect_err("no such factor");
    assert_eq!(unknown.code(), Code::NotFound);
    p.app
        .access()
        .remove_second_factor(
            p.app
                .req(&p.key, remove("phone stolen; called back", &phone_id)),
        )
        .await
        .expect("removed");
    let told = p
        .app
        .wait_for_outbox(&p.email, "was removed from your login")
        .await;
    assert!(told.contains("phone stolen"), "{told}");
    let left = factors(&p).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].name, "work laptop");
    passkey_signin(&b, &portal, &p).await;
    let refused = b.text_with("was not accepted").await;
    assert!(!refused.contains(&p.contact_id), "{refused}");
    b.screenshot("passkey-removed-refused").await;

    // The history tells each step in words.
    let mut history = access_proto::v1::audit_client::AuditClient::new(p.app.channel.clone())
        .replay_history(p.app.req(&p.key, pb::ReplayHistoryRequest::default()))
        .await
        .expect("the history")
        .into_inner();
    let mut said = Vec::new();
    while let Some(e) = history.message().await.expect("an event") {
        said.push(e.summary);
    }
    for needle in [
        "registered passkey \"work laptop\"",
        "registered passkey \"phone\"",
        "in with a passkey",
        "removed a passkey",
    ] {
        assert!(
            said.iter().any(|s| s.contains(needle)),
            "{needle}: {said:#?}"
        );
    }

    // An erasure takes the passkeys with the person: the credentials are
    // unreadable in the history.
    let laptop_key = held[0]["credentialId"]
        .as_str()
        .expect("its id")
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_");
    assert!(
        payloads(&p).await.iter().any(|j| j.contains(&laptop_key)),
        "the credential is in the history before"
    );
    p.app
        .operator()
        .forget_identity(p.app.req(
            &p.app.operator_key,
            pb::ForgetIdentityRequest {
                request_id: new_id(),
                email: p.email.clone(),
                identity_id: String::new(),
                reason: "art. 17".into(),
            },
        ))
        .await
        .expect("forgotten");
    let after = payloads(&p).await;
    assert!(after.iter().all(|j| !j.contains(&laptop_key)), "{after:#?}");
    assert!(after.iter().any(|j| j.contains("[erased]")));
}

/// The payloads of the tenant's history, as JSON.
async fn payloads(p: &Provider) -> Vec<String> {
    let mut history = access_proto::v1::audit_client::AuditClient::new(p.app.channel.clone())
        .replay_history(p.app.req(&p.key, pb::ReplayHistoryRequest::default()))
        .await
        .expect("the history")
        .into_inner();
    let mut all = Vec::new();
    while let Some(e) = history.message().await.expect("an event") {
        all.push(e.payload_json);
    }
    all
}

#[tokio::test]
async fn passkeys_refuse_garbage_stale_and_foreign_ceremonies_and_need_a_host_name() {
    // Public at an IP address: no relying party can be named.
    let bare = TestApp::spawn().await;
    let key = bare.create_tenant("acme").await;
    let off = SessionsClient::new(bare.channel.clone())
        .begin_passkey_login(bare.req(&key, pb::BeginPasskeyLoginRequest::default()))
        .await
        .expect_err("no passkeys at an IP address");
    assert_eq!(off.code(), Code::FailedPrecondition);
    assert!(off.message().contains("host"), "{}", off.message());

    let p = Provider::start_on_localhost().await;
    let mut sessions = SessionsClient::new(p.app.channel.clone());
    let begun = sessions
        .begin_passkey_login(p.app.req(&p.key, pb::BeginPasskeyLoginRequest::default()))
        .await
        .expect("a ceremony")
        .into_inner();
    let options: serde_json::Value =
        serde_json::from_str(&begun.options_json).expect("options in JSON");
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert!(
        !begun.options_json.contains("null"),
        "the browser's parser refuses nulls: {}",
        begun.options_json
    );
    let finish = |token: &str, credential: &str| pb::FinishPasskeyLoginRequest {
        ceremony_token: token.into(),
        credential_json: credential.into(),
        client_address: "203.0.113.9".into(),
    };
    let garbage = sessions
        .finish_passkey_login(
            p.app
                .req(&p.key, finish(&begun.ceremony_token, "{not json")),
        )
        .await
        .expect_err("garbage");
    assert_eq!(garbage.code(), Code::InvalidArgument);
    // A well-formed answer naming a contact's handle but signed by nobody.
    let handle = base64_url(
        &uuid::Uuid::parse_str(&p.contact_id)
            .expect("a uuid")
            .into_bytes(),
    );
    let forged = serde_json::json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key",
        "response": {
            "clientDataJSON": "e30", "authenticatorData": "AAAA",
            "signature": "AAAA", "userHandle": handle,
        },
    })
    .to_string();
    let refused = sessions
        .finish_passkey_login(p.app.req(&p.key, finish(&begun.ceremony_token, &forged)))
        .await
        .expect_err("forged");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let tampered = format!("{}A", begun.ceremony_token);
    let stale = sessions
        .finish_passkey_login(p.app.req(&p.key, finish(&tampered, &forged)))
        .await
        .expect_err("tampered");
    assert_eq!(stale.code(), Code::Unauthenticated);
    // Another tenant's portal cannot finish this tenant's ceremony.
    let other = p.app.create_tenant("globex").await;
    let foreign = sessions
        .finish_passkey_login(p.app.req(&other, finish(&begun.ceremony_token, &forged)))
        .await
        .expect_err("foreign");
    assert_eq!(foreign.code(), Code::Unauthenticated);
    // A registration needs a session, and a name.
    let no_session = sessions
        .begin_passkey_registration(p.app.req(
            &p.key,
            pb::BeginPasskeyRegistrationRequest {
                session_token: "ses_nothing".into(),
                second_factor_challenge: String::new(),
            },
        ))
        .await
        .expect_err("no session");
    assert_eq!(no_session.code(), Code::Unauthenticated);
    let session = sessions
        .login(p.app.req(
            &p.key,
            pb::LoginRequest {
                request_id: new_id(),
                login: p.email.clone(),
                password: PASSWORD.into(),
                client_address: "203.0.113.9".into(),
            },
        ))
        .await
        .expect("a session")
        .into_inner()
        .session_token;
    let begun = sessions
        .begin_passkey_registration(p.app.req(
            &p.key,
            pb::BeginPasskeyRegistrationRequest {
                session_token: session.clone(),
                second_factor_challenge: String::new(),
            },
        ))
        .await
        .expect("a registration")
        .into_inner();
    let options: serde_json::Value = serde_json::from_str(&begun.options_json).expect("JSON");
    let selection = &options["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required", "{options}");
    assert_eq!(selection["userVerification"], "required", "{options}");
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
    let bad = sessions
        .finish_passkey_registration(p.app.req(
            &p.key,
            pb::FinishPasskeyRegistrationRequest {
                request_id: new_id(),
                session_token: session,
                ceremony_token: begun.ceremony_token,
                credential_json: forged,
                name: "x".into(),
                second_factor_challenge: String::new(),
            },
        ))
        .await
        .expect_err("not a registration");
    assert_eq!(bad.code(), Code::InvalidArgument, "{}", bad.message());
    assert!(factors(&p).await.is_empty(), "nothing was recorded");
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
