//! Second factors: an authenticator app enrolled from a session and asked
//! for at every login, its codes computed by an independent implementation
//! (Python's pyotp); recovery codes; the same gate as passwords for wrong
//! codes; a reset link that does not get past it; the pages' sign-in.

use crate::oidc_flow::{PASSWORD, Provider, REDIRECT};
use access_proto::v1 as pb;
use access_proto::v1::sessions_client::SessionsClient;
use access_tests::signin::{Agent, origin_of, query_param};
use access_tests::{TestApp, new_id};
use tonic::Code;

/// The code pyotp computes for `secret`, `offset_s` seconds from now.
pub(crate) fn pyotp(secret: &str, offset_s: i64) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import pyotp, sys, time; print(pyotp.TOTP(sys.argv[1]).at(int(time.time()) + int(sys.argv[2])))",
            secret,
            &offset_s.to_string(),
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub(crate) fn sessions(app: &TestApp) -> SessionsClient<tonic::transport::Channel> {
    SessionsClient::new(app.channel.clone())
}

/// A `Login` of `email` with `password`, from a test address.
pub(crate) async fn try_login(
    app: &TestApp,
    key: &str,
    email: &str,
    password: &str,
) -> Result<pb::Session, tonic::Status> {
    sessions(app)
        .login(app.req(
            key,
            pb::LoginRequest {
                request_id: new_id(),
                login: email.into(),
                password: password.into(),
                client_address: "203.0.113.7".into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

pub(crate) async fn login(app: &TestApp, key: &str, email: &str, password: &str) -> pb::Session {
    try_login(app, key, email, password)
        .await
        .expect("the password is right")
}

pub(crate) async fn second(
    app: &TestApp,
    key: &str,
    challenge: &str,
    code: &str,
) -> Result<pb::Session, tonic::Status> {
    sessions(app)
        .complete_second_factor(app.req(
            key,
            pb::CompleteSecondFactorRequest {
                challenge: challenge.into(),
                code: code.into(),
                client_address: "203.0.113.7".into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Enrols an app for the contact of `session`: its secret and recovery codes.
pub(crate) async fn enrol(app: &TestApp, key: &str, session: &str) -> (String, Vec<String>) {
    let (secret, codes, _) = enrol_with_code(app, key, session).await;
    (secret, codes)
}

/// Enrols an app for the contact of `session`: its secret, recovery codes
/// and the code that confirmed it.
async fn enrol_with_code(app: &TestApp, key: &str, session: &str) -> (String, Vec<String>, String) {
    let started = sessions(app)
        .begin_totp_enrolment(app.req(
            key,
            pb::BeginTotpEnrolmentRequest {
                session_token: session.into(),
                second_factor_challenge: String::new(),
            },
        ))
        .await
        .expect("begun")
        .into_inner();
    assert!(
        started.otpauth_uri.starts_with("otpauth://totp/")
            && started
                .otpauth_uri
                .contains(&format!("secret={}", started.secret)),
        "{}",
        started.otpauth_uri
    );
    let confirm = |code: String| pb::ConfirmTotpEnrolmentRequest {
        request_id: new_id(),
        session_token: session.into(),
        enrolment_token: started.enrolment_token.clone(),
        code,
        second_factor_challenge: String::new(),
    };
    let wrong = sessions(app)
        .confirm_totp_enrolment(app.req(key, confirm(pyotp(&started.secret, 300))))
        .await
        .expect_err("not the current code");
    assert_eq!(wrong.code(), Code::InvalidArgument);
    let code = pyotp(&started.secret, 0);
    let confirmed = sessions(app)
        .confirm_totp_enrolment(app.req(key, confirm(code.clone())))
        .await
        .expect("confirmed")
        .into_inner();
    assert_eq!(confirmed.recovery_codes.len(), 10);
    (started.secret, confirmed.recovery_codes, code)
}

pub(crate) async fn bob(app: &TestApp) -> (String, String) {
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    app.invite(&key, "C1", "bob@acme.example").await;
    let link = app.wait_for_mail("bob@acme.example", 1).await;
    let session = app.accept(&link, PASSWORD).await;
    (key, session.session_token)
}

#[tokio::test]
async fn an_enrolled_app_is_asked_for_at_every_login_and_each_code_works_once() {
    let app = TestApp::spawn().await;
    let (key, session) = bob(&app).await;
    let (secret, recovery, confirming) = enrol_with_code(&app, &key, &session).await;

    let first = login(&app, &key, "bob@acme.example", PASSWORD).await;
    assert!(first.session_token.is_empty(), "no session before the code");
    assert!(first.second_factor_challenge.starts_with("sfc_"));
    assert!(
        first.contact_id.is_empty() && first.email.is_empty(),
        "a password alone names nobody: {first:?}"
    );
    // The session from before the app was added ends with it.
    let old = app
        .access()
        .check_access(app.req(
            &key,
            pb::CheckAccessRequest {
                session_token: session.clone(),
                action: pb::Action::PlaceOrder as i32,
                ..Default::default()
            },
        ))
        .await
        .expect_err("signed out by the enrolment");
    assert_eq!(old.code(), Code::Unauthenticated);
    // The code that confirmed the enrolment is spent.
    let spent = second(&app, &key, &first.second_factor_challenge, &confirming)
        .await
        .expect_err("used at enrolment");
    assert_eq!(spent.code(), Code::Unauthenticated);
    let next = pyotp(&secret, 30);
    let signed_in = second(&app, &key, &first.second_factor_challenge, &next)
        .await
        .expect("the next code");
    assert!(signed_in.session_token.starts_with("ses_"));
    let again = second(&app, &key, &first.second_factor_challenge, &next)
        .await
        .expect_err("a code works once");
    assert_eq!(again.code(), Code::Unauthenticated);

    // A recovery code, typed loosely, works once.
    let loose = recovery[3].to_lowercase().replace('-', " ");
    let by_recovery = second(&app, &key, &first.second_factor_challenge, &loose)
        .await
        .expect("a recovery code");
    assert!(!by_recovery.session_token.is_empty());
    let twice = second(&app, &key, &first.second_factor_challenge, &recovery[3])
        .await
        .expect_err("spent");
    assert_eq!(twice.code(), Code::Unauthenticated);
    let forged = second(&app, &key, "sfc_forged.nothing", &recovery[4])
        .await
        .expect_err("not a challenge");
    assert_eq!(forged.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn wrong_codes_pass_the_password_gate_sequential_and_concurrent() {
    let app = TestApp::spawn_with(&["--lockout-delay-after", "100"]).await;
    let (key, session) = bob(&app).await;
    let (secret, _) = enrol(&app, &key, &session).await;
    let challenge = login(&app, &key, "bob@acme.example", PASSWORD)
        .await
        .second_factor_challenge;
    let tries = (0..40).map(|i| {
        let (app, key, challenge) = (&app, &key, &challenge);
        async move { second(app, key, challenge, &format!("{:06}", 100_000 + i)).await }
    });
    let outcomes = futures::future::join_all(tries).await;
    let wrong = outcomes
        .iter()
        .filter(|o| o.as_ref().is_err_and(|s| s.code() == Code::Unauthenticated))
        .count();
    let throttled = outcomes
        .iter()
        .filter(|o| {
            o.as_ref()
                .is_err_and(|s| s.code() == Code::ResourceExhausted)
        })
        .count();
    assert_eq!((wrong, throttled), (5, 35), "five tries, as for passwords");
    app.settled_head().await;
    // Locked: the right code is refused too, and so is the password.
    let right = second(&app, &key, &challenge, &pyotp(&secret, 30))
        .await
        .expect_err("locked");
    assert_eq!(right.code(), Code::ResourceExhausted);
    let password = try_login(&app, &key, "bob@acme.example", PASSWORD)
        .await
        .expect_err("locked");
    assert_eq!(password.code(), Code::ResourceExhausted);
}

#[tokio::test]
async fn a_reset_link_sets_the_password_but_the_session_still_needs_the_code() {
    let app = TestApp::spawn().await;
    let (key, session) = bob(&app).await;
    let (secret, _) = enrol(&app, &key, &session).await;
    sessions(&app)
        .request_password_reset(app.req(
            &key,
            pb::RequestPasswordResetRequest {
                request_id: new_id(),
                login: "bob@acme.example".into(),
            },
        ))
        .await
        .expect("asked");
    let link = app.wait_for_link("bob@acme.example", "/reset/", 1).await;
    let token = access_tests::token_of(&link);
    let reset = sessions(&app)
        .reset_password(tonic::Request::new(pb::ResetPasswordRequest {
            request_id: new_id(),
            token,
            new_password: "quiet5harbour".into(),
        }))
        .await
        .expect("the password is set")
        .into_inner();
    assert!(
        reset.session_token.is_empty(),
        "the link proves the mailbox only"
    );
    let session = second(
        &app,
        &key,
        &reset.second_factor_challenge,
        &pyotp(&secret, 30),
    )
    .await
    .expect("with the code");
    assert!(!session.session_token.is_empty());
}

#[tokio::test]
async fn the_sign_in_page_asks_for_the_code_after_the_password() {
    let p = Provider::start().await;
    let session = login(&p.app, &p.key, &p.email, PASSWORD)
        .await
        .session_token;
    let (secret, _) = enrol(&p.app, &p.key, &session).await;
    let url = format!(
        "{}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=s1&nonce=n1",
        p.issuer, p.client_id, REDIRECT
    );
    let mut browser = Agent::default();
    let page = browser.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let origin = origin_of(&url);
    let asked = browser
        .submit(
            &origin,
            &page,
            &[("login", &p.email), ("current", PASSWORD)],
        )
        .await;
    assert_eq!(
        asked.status, 200,
        "a second step, not a redirect: {}",
        asked.body
    );
    assert!(asked.body.contains("name=\"code\""), "{}", asked.body);
    let challenge = access_tests::signin::attribute(
        &asked.body[asked
            .body
            .find("name=\"challenge\"")
            .expect("the challenge")..],
        "value",
    )
    .expect("its value");
    let wrong = browser
        .submit(
            &origin,
            &asked,
            &[("challenge", &challenge), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    let done = browser
        .submit(
            &origin,
            &wrong,
            &[("challenge", &challenge), ("code", &pyotp(&secret, 30))],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let back = done.location.expect("to the client");
    let code = query_param(&back, "code").expect("a code");
    assert!(back.starts_with(REDIRECT), "{back}");
    // The ID token says how the contact authenticated.
    let tokens: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/token", p.issuer))
        .basic_auth(&p.client_id, Some(&p.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .expect("the token endpoint")
        .text()
        .await
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .expect("JSON");
    let id = crate::oidc_flow::payload(tokens["id_token"].as_str().expect("an ID token"));
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]), "{id}");
    assert_eq!(id["acr"], "mfa", "{id}");
}

#[tokio::test]
async fn check_access_by_session_says_how_the_contact_authenticated() {
    let app = TestApp::spawn().await;
    let (key, session) = bob(&app).await;
    let check = |session: String, contact: String| pb::CheckAccessRequest {
        contact_id: contact,
        session_token: session,
        action: pb::Action::PlaceOrder as i32,
        ..Default::default()
    };
    let by_password = app
        .access()
        .check_access(app.req(&key, check(session.clone(), String::new())))
        .await
        .expect("checked")
        .into_inner();
    assert_eq!(by_password.amr, ["pwd"]);
    assert_eq!(by_password.acr, "password");
    let (secret, _) = enrol(&app, &key, &session).await;
    let challenge = login(&app, &key, "bob@acme.example", PASSWORD)
        .await
        .second_factor_challenge;
    let two = second(&app, &key, &challenge, &pyotp(&secret, 30))
        .await
        .expect("signed in");
    let by_two = app
        .access()
        .check_access(app.req(&key, check(two.session_token.clone(), String::new())))
        .await
        .expect("checked")
        .into_inner();
    assert_eq!(by_two.amr, ["pwd", "otp", "mfa"]);
    assert_eq!(by_two.acr, "mfa");
    let by_id = app
        .access()
        .check_access(app.req(&key, check(String::new(), two.contact_id.clone())))
        .await
        .expect("checked")
        .into_inner();
    assert!(
        by_id.amr.is_empty() && by_id.acr.is_empty(),
        "no session, no method"
    );
}

#[tokio::test]
async fn staff_see_and_reset_a_lost_factor_and_the_contact_is_told_each_time() {
    let app = TestApp::spawn().await;
    let (key, session) = bob(&app).await;
    let contact_id = login(&app, &key, "bob@acme.example", PASSWORD)
        .await
        .contact_id;
    let (secret, _) = enrol(&app, &key, &session).await;
    let added = app
        .wait_for_outbox("bob@acme.example", "authenticator app was added")
        .await;
    // A session signed in with the factor (perhaps by whoever holds the
    // lost phone) ends when staff remove it.
    let challenge = login(&app, &key, "bob@acme.example", PASSWORD)
        .await
        .second_factor_challenge;
    let two = second(&app, &key, &challenge, &pyotp(&secret, 30))
        .await
        .expect("signed in with the app");
    let check = |session: &str| pb::CheckAccessRequest {
        session_token: session.to_owned(),
        action: pb::Action::PlaceOrder as i32,
        ..Default::default()
    };
    app.access()
        .check_access(app.req(&key, check(&two.session_token)))
        .await
        .expect("the session stands while the factor does");
    assert!(added.contains("contact"), "{added}");
    let shown = app
        .access()
        .get_contact(app.req(
            &key,
            pb::GetContactRequest {
                contact_id: contact_id.clone(),
                min_position: 0,
            },
        ))
        .await
        .expect("the contact")
        .into_inner();
    assert_eq!(shown.second_factors.len(), 1);
    assert_eq!(shown.second_factors[0].kind, "totp");
    let reset = |reason: &str| pb::ContactCommand {
        request_id: new_id(),
        contact_id: contact_id.clone(),
        reason: reason.into(),
    };
    let unexplained = app
        .access()
        .reset_second_factors(app.req(&key, reset("")))
        .await
        .expect_err("a reason is required");
    assert_eq!(unexplained.code(), Code::InvalidArgument);
    let auditor = app
        .create_key(&key, pb::Role::Auditor, "audit", "")
        .await
        .api_key;
    let refused = app
        .access()
        .reset_second_factors(app.req(&auditor, reset("called back")))
        .await
        .expect_err("an auditor only reads");
    assert_eq!(refused.code(), Code::PermissionDenied);
    app.access()
        .reset_second_factors(app.req(&key, reset("lost phone; called back on the number on file")))
        .await
        .expect("reset");
    let removed = app.wait_for_outbox("bob@acme.example", "was removed").await;
    assert!(removed.contains("lost phone"), "{removed}");
    let ended = app
        .access()
        .check_access(app.req(&key, check(&two.session_token)))
        .await
        .expect_err("a session from before the removal ends");
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    let plain = login(&app, &key, "bob@acme.example", PASSWORD).await;
    assert!(!plain.session_token.is_empty(), "the password alone again");
    assert!(plain.second_factor_challenge.is_empty());
    app.access()
        .check_access(app.req(&key, check(&plain.session_token)))
        .await
        .expect("a sign-in after the removal stands");
}

#[tokio::test]
async fn an_erasure_takes_the_factor_with_the_person_and_the_history_never_shows_a_secret() {
    let app = TestApp::spawn().await;
    let (key, session) = bob(&app).await;
    let (secret, _) = enrol(&app, &key, &session).await;
    let mut history = access_proto::v1::audit_client::AuditClient::new(app.channel.clone())
        .replay_history(app.req(&key, pb::ReplayHistoryRequest::default()))
        .await
        .expect("the history")
        .into_inner();
    let mut enrolled = None;
    while let Some(e) = history.message().await.expect("an event") {
        assert!(!e.payload_json.contains(&secret), "{}", e.payload_json);
        if e.event_type == "TotpAdded" {
            enrolled = Some(e);
        }
    }
    let enrolled = enrolled.expect("the enrolment is in the history");
    assert!(
        enrolled.summary.contains("authenticator app"),
        "{}",
        enrolled.summary
    );
    let identity = app
        .operator()
        .forget_identity(app.req(
            &app.operator_key,
            pb::ForgetIdentityRequest {
                request_id: new_id(),
                email: "bob@acme.example".into(),
                identity_id: String::new(),
                reason: "art. 17".into(),
            },
        ))
        .await;
    identity.expect("forgotten");
    let gone = try_login(&app, &key, "bob@acme.example", PASSWORD)
        .await
        .expect_err("no such login any more");
    assert_eq!(gone.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn a_signed_in_contact_adds_an_app_on_the_security_page_from_its_qr_code_and_key() {
    let p = Provider::start().await;
    let url = format!(
        "{}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=s1&nonce=n1",
        p.issuer, p.client_id, REDIRECT
    );
    let mut browser = Agent::default();
    browser.sign_in(&url, &p.email, PASSWORD).await;
    let origin = origin_of(&url);
    let security = format!("{origin}/t/acme/security");
    let page = browser.get(&security).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<svg"), "a QR code: {}", page.body);
    let start = page.body.find("id=\"secret\">").expect("the key") + "id=\"secret\">".len();
    let secret = page.body[start..]
        .split('<')
        .next()
        .expect("its text")
        .to_owned();
    let wrong = browser
        .submit(
            &origin,
            &page,
            &[
                ("code", "000000"),
                ("enrolment_token", &hidden(&page.body, "enrolment_token")),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    // A wrong code shows a new key: the first is of no use now.
    let start = wrong.body.find("id=\"secret\">").expect("a key") + "id=\"secret\">".len();
    let secret_again = wrong.body[start..]
        .split('<')
        .next()
        .expect("its text")
        .to_owned();
    assert_ne!(secret_again, secret);
    let token = hidden(&wrong.body, "enrolment_token");
    let done = browser
        .submit(
            &origin,
            &wrong,
            &[
                ("code", &pyotp(&secret_again, 0)),
                ("enrolment_token", &token),
            ],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body.matches("<li><code>").count(), 10, "{}", done.body);
    // From now on the sign-in asks for the app's code.
    let mut other = Agent::default();
    let page = other.get(&url).await;
    let asked = other
        .submit(
            &origin,
            &page,
            &[("login", &p.email), ("current", PASSWORD)],
        )
        .await;
    assert!(asked.body.contains("name=\"code\""), "{}", asked.body);
    let again = browser.get(&security).await;
    assert!(
        !again.body.contains("<svg"),
        "one app per login: {}",
        again.body
    );
}

/// The value of the hidden input `name` of a page.
pub(crate) fn hidden(html: &str, name: &str) -> String {
    let at = html.find(&format!("name=\"{name}\"")).expect("the field");
    access_tests::signin::attribute(&html[at..], "value").expect("its value")
}

#[tokio::test]
async fn in_a_browser_a_contact_adds_an_app_and_then_signs_in_to_a_portal_with_its_code() {
    use access_tests::browser::Browser;
    use access_tests::relying_party::RelyingParty;
    use fantoccini::Locator;
    let p = Provider::start().await;
    let portal = RelyingParty::start(&p.issuer, &p.client_id, &p.secret).await;
    let b = Browser::start(true).await;
    b.client
        .goto(&format!("{}/login", portal.url))
        .await
        .expect("the portal");
    b.text_with("Sign in to Web shop").await;
    b.type_into("login", &p.email).await;
    b.type_into("current", PASSWORD).await;
    b.submit().await;
    b.text_with(&p.contact_id).await;
    // The security page, in the same browser and provider session.
    b.client
        .goto(&format!("{}/security", p.issuer))
        .await
        .expect("the security page");
    b.text_with("Scan this code").await;
    let secret = b
        .client
        .find(Locator::Id("secret"))
        .await
        .expect("the key")
        .text()
        .await
        .expect("its text");
    b.screenshot("totp-enrol").await;
    b.type_into("code", &pyotp(&secret, 0)).await;
    b.submit().await;
    b.text_with("recovery codes").await;
    b.screenshot("totp-recovery-codes").await;
    // Another browser: the password, then the app's code, then the portal.
    let fresh = Browser::start(true).await;
    fresh
        .client
        .goto(&format!("{}/login", portal.url))
        .await
        .expect("the portal");
    fresh.text_with("Sign in to Web shop").await;
    fresh.type_into("login", &p.email).await;
    fresh.type_into("current", PASSWORD).await;
    fresh.submit().await;
    fresh.text_with("authenticator app").await;
    fresh.type_into("code", &pyotp(&secret, 30)).await;
    fresh.submit().await;
    fresh.text_with(&p.contact_id).await;
    fresh.screenshot("totp-signed-in").await;
}
