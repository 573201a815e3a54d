//! What a tenant, or one stricter customer, requires at every sign-in: a
//! contact without such a factor enrols one inside the sign-in (no session
//! before it), sessions that fall short of a policy raised since end, an
//! app's code does not stand where a passkey is required, and a password
//! alone never adds a factor beside one the contact has. In a browser: a
//! tenant that requires passkeys, and a contact who adds one on the way to
//! the portal.

use crate::factors::{bob, enrol, login, pyotp, second, sessions};
use crate::oidc_flow::{PASSWORD, Provider};
use access_proto::v1 as pb;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use access_tests::browser::Browser;
use access_tests::relying_party::RelyingParty;
use access_tests::{TestApp, new_id};
use tonic::Code;
use tonic_types::StatusExt;

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// Sets the policy of the tenant (`customer` empty) or of one customer.
async fn require(
    app: &TestApp,
    key: &str,
    customer: &str,
    require: pb::SecondFactorRequirement,
) -> Result<(), tonic::Status> {
    TenantAdminClient::new(app.channel.clone())
        .set_second_factor_policy(app.req(
            key,
            pb::SetSecondFactorPolicyRequest {
                request_id: new_id(),
                customer_id: customer.into(),
                require: require.into(),
            },
        ))
        .await
        .map(|_| ())
}

async fn check_session(
    app: &TestApp,
    key: &str,
    session: &str,
) -> Result<pb::CheckAccessReply, tonic::Status> {
    app.access()
        .check_access(app.req(
            key,
            pb::CheckAccessRequest {
                session_token: session.into(),
                action: pb::Action::PlaceOrder.into(),
                ..Default::default()
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_raised_policy_ends_short_sessions_and_the_next_sign_in_enrols_before_any_session() {
    // A host name: passkeys are offered, so a policy may require them.
    let app = TestApp::spawn_with(&["--public-base-url", "http://localhost:8080"]).await;
    let (key, old_session) = bob(&app).await;
    check_session(&app, &key, &old_session)
        .await
        .expect("a password was enough");

    // Who may set it, and with what.
    let auditor = app
        .create_key(&key, pb::Role::Auditor, "audit", "")
        .await
        .api_key;
    let refused = require(
        &app,
        &auditor,
        "",
        pb::SecondFactorRequirement::AnySecondFactor,
    )
    .await
    .expect_err("an auditor only reads");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let unnamed = require(&app, &key, "", pb::SecondFactorRequirement::Unspecified)
        .await
        .expect_err("a requirement is named");
    assert_eq!(unnamed.code(), Code::InvalidArgument);
    require(&app, &key, "", pb::SecondFactorRequirement::AnySecondFactor)
        .await
        .expect("set");
    let tenant = TenantAdminClient::new(app.channel.clone())
        .get_tenant(app.req(&key, pb::GetTenantRequest::default()))
        .await
        .expect("the tenant")
        .into_inner();
    assert_eq!(
        tenant.second_factor,
        pb::SecondFactorRequirement::AnySecondFactor as i32
    );

    // The session of a password alone ends at once.
    let ended = check_session(&app, &key, &old_session)
        .await
        .expect_err("the session falls short now");
    assert_eq!(ended.code(), Code::Unauthenticated);

    // The password leads to enrolment, not to a session.
    let asked = login(&app, &key, "bob@acme.example", PASSWORD).await;
    assert!(asked.session_token.is_empty() && asked.contact_id.is_empty());
    assert_eq!(asked.second_factor_enrolment, "any");
    let challenge = asked.second_factor_challenge;
    let started = sessions(&app)
        .begin_totp_enrolment(app.req(
            &key,
            pb::BeginTotpEnrolmentRequest {
                session_token: String::new(),
                second_factor_challenge: challenge.clone(),
            },
        ))
        .await
        .expect("enrolment with the challenge")
        .into_inner();
    let confirmed = sessions(&app)
        .confirm_totp_enrolment(app.req(
            &key,
            pb::ConfirmTotpEnrolmentRequest {
                request_id: new_id(),
                session_token: String::new(),
                enrolment_token: started.enrolment_token,
                code: pyotp(&started.secret, 0),
                second_factor_challenge: challenge.clone(),
            },
        ))
        .await
        .expect("confirmed")
        .into_inner();
    assert_eq!(confirmed.recovery_codes.len(), 10);
    let session = confirmed.session.expect("the sign-in's session");
    let checked = check_session(&app, &key, &session.session_token)
        .await
        .expect("the new session meets the policy");
    assert_eq!(checked.amr, ["pwd", "otp", "mfa"]);

    // The challenge that enrolled the app adds nothing more (it is good for
    // five minutes, and checked against the stream).
    let second_try = sessions(&app)
        .begin_totp_enrolment(app.req(
            &key,
            pb::BeginTotpEnrolmentRequest {
                session_token: String::new(),
                second_factor_challenge: challenge.clone(),
            },
        ))
        .await
        .expect("begun")
        .into_inner();
    let refused = sessions(&app)
        .confirm_totp_enrolment(app.req(
            &key,
            pb::ConfirmTotpEnrolmentRequest {
                request_id: new_id(),
                session_token: String::new(),
                enrolment_token: second_try.enrolment_token,
                code: pyotp(&second_try.secret, 0),
                second_factor_challenge: challenge.clone(),
            },
        ))
        .await
        .expect_err("one factor per enrolling challenge");
    assert_eq!(refused.code(), Code::Unauthenticated);

    // With a factor now, a new challenge enrols nothing more.
    let again = login(&app, &key, "bob@acme.example", PASSWORD).await;
    assert_eq!(again.second_factor_enrolment, "");
    let beside = sessions(&app)
        .begin_totp_enrolment(app.req(
            &key,
            pb::BeginTotpEnrolmentRequest {
                session_token: String::new(),
                second_factor_challenge: again.second_factor_challenge.clone(),
            },
        ))
        .await
        .expect_err("a password alone adds no factor beside one");
    assert_eq!(beside.code(), Code::Unauthenticated);
    second(
        &app,
        &key,
        &again.second_factor_challenge,
        &pyotp(&started.secret, 30),
    )
    .await
    .expect("the app's code is a second factor");

    // One stricter customer: a passkey. The app's codes no longer stand,
    // and are not spent; the contact must add a passkey.
    require(&app, &key, "C1", pb::SecondFactorRequirement::Passkey)
        .await
        .expect("set for C1");
    let customer = app
        .access()
        .get_customer(app.req(
            &key,
            pb::GetCustomerRequest {
                customer_id: "C1".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("the customer")
        .into_inner();
    assert_eq!(
        customer.second_factor,
        pb::SecondFactorRequirement::Passkey as i32
    );
    let ended = check_session(&app, &key, &session.session_token)
        .await
        .expect_err("an app's code falls short of a passkey");
    assert_eq!(ended.code(), Code::Unauthenticated);
    // The password alone adds no passkey beside the app: the app's code
    // comes first, and then the sign-in asks for a passkey to be added.
    let asked = login(&app, &key, "bob@acme.example", PASSWORD).await;
    assert_eq!(asked.second_factor_enrolment, "", "the app is asked for");
    let alone = sessions(&app)
        .begin_passkey_registration(app.req(
            &key,
            pb::BeginPasskeyRegistrationRequest {
                session_token: String::new(),
                second_factor_challenge: asked.second_factor_challenge.clone(),
            },
        ))
        .await
        .expect_err("a password alone adds no passkey");
    assert_eq!(alone.code(), Code::Unauthenticated);
    // A recovery code, so that the steps below do not wait for a new step.
    let stepped = second(
        &app,
        &key,
        &asked.second_factor_challenge,
        &confirmed.recovery_codes[0],
    )
    .await
    .expect("the code is taken");
    assert!(
        stepped.session_token.is_empty(),
        "no session before a passkey"
    );
    assert_eq!(stepped.second_factor_enrolment, "passkey");
    let no_app = sessions(&app)
        .begin_totp_enrolment(app.req(
            &key,
            pb::BeginTotpEnrolmentRequest {
                session_token: String::new(),
                second_factor_challenge: stepped.second_factor_challenge.clone(),
            },
        ))
        .await
        .expect_err("an app is not a passkey");
    assert_eq!(reason(&no_app), "second_factor_required");
    sessions(&app)
        .begin_passkey_registration(app.req(
            &key,
            pb::BeginPasskeyRegistrationRequest {
                session_token: String::new(),
                second_factor_challenge: stepped.second_factor_challenge,
            },
        ))
        .await
        .expect("after the code, a passkey may be added");

    // Lowered again for the customer: the app's code is enough.
    require(&app, &key, "C1", pb::SecondFactorRequirement::Password)
        .await
        .expect("lowered");
    let asked = login(&app, &key, "bob@acme.example", PASSWORD).await;
    assert_eq!(asked.second_factor_enrolment, "");
    let in_again = second(
        &app,
        &key,
        &asked.second_factor_challenge,
        &confirmed.recovery_codes[1],
    )
    .await
    .expect("in with the code");
    assert!(!in_again.session_token.is_empty());
}

#[tokio::test]
async fn a_contact_with_an_app_enrolled_before_a_policy_is_asked_for_it_as_before() {
    let app = TestApp::spawn().await;
    let (key, session) = bob(&app).await;
    let (secret, _) = enrol(&app, &key, &session).await;
    let nowhere = require(&app, &key, "", pb::SecondFactorRequirement::Passkey)
        .await
        .expect_err("no passkey can be made at an IP address");
    assert_eq!(nowhere.code(), Code::FailedPrecondition);
    require(&app, &key, "", pb::SecondFactorRequirement::AnySecondFactor)
        .await
        .expect("set");
    let asked = login(&app, &key, "bob@acme.example", PASSWORD).await;
    assert_eq!(asked.second_factor_enrolment, "", "the app meets it");
    second(
        &app,
        &key,
        &asked.second_factor_challenge,
        &pyotp(&secret, 30),
    )
    .await
    .expect("in");
}

#[tokio::test]
async fn in_a_browser_a_tenant_requires_passkeys_and_a_contact_adds_one_on_the_way_to_the_portal() {
    let p = Provider::start_on_localhost().await;
    require(&p.app, &p.key, "", pb::SecondFactorRequirement::Passkey)
        .await
        .expect("set");
    let portal = RelyingParty::start(&p.issuer, &p.client_id, &p.secret).await;
    let b = Browser::start(true).await;
    b.add_authenticator().await;
    b.client
        .goto(&format!("{}/login", portal.url))
        .await
        .expect("the portal");
    b.text_with("Sign in to Web shop").await;
    b.type_into("login", &p.email).await;
    b.type_into("current", PASSWORD).await;
    b.submit().await;
    let asked = b.text_with("asks for a passkey").await;
    assert!(!asked.contains("Authenticator app"), "{asked}");
    b.screenshot("policy-enrol-passkey").await;
    b.type_into("name", "office PC").await;
    b.press_passkey().await;
    let result = b.text_with(&p.contact_id).await;
    assert!(
        result.contains("\"swk\"") && result.contains("\"pwd\""),
        "{result}"
    );
    // The next sign-in: the passkey alone.
    b.client
        .goto(&format!("{}/.well-known/openid-configuration", p.issuer))
        .await
        .expect("the provider");
    b.client.delete_all_cookies().await.expect("cleared");
    b.client
        .goto(&format!("{}/login", portal.url))
        .await
        .expect("the portal");
    b.text_with("Sign in with a passkey").await;
    b.press_passkey().await;
    b.text_with(&p.contact_id).await;
}

#[tokio::test]
async fn accessctl_sets_the_policy_and_removes_one_factor() {
    let app = TestApp::spawn_with(&["--public-base-url", "http://localhost:8080"]).await;
    let (key, _) = bob(&app).await;
    let contact_id = login(&app, &key, "bob@acme.example", PASSWORD)
        .await
        .contact_id;
    let run = |args: &[&str]| {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        let out = app.accessctl(&key, &args);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, said, err) = run(&["second-factor-policy", "--require", "any"]);
    assert!(ok && said.contains("any second factor"), "{said}{err}");
    let (ok, said, _) = run(&["tenant-show"]);
    assert!(
        ok && said.contains("sign-ins require: any second factor"),
        "{said}"
    );
    let (ok, _, err) = run(&["second-factor-policy", "--require", "sms"]);
    assert!(!ok && err.contains("sms"), "{err}");
    let (ok, said, err) = run(&[
        "second-factor-policy",
        "--require",
        "passkey",
        "--customer",
        "C1",
    ]);
    assert!(ok && said.contains("customer C1"), "{said}{err}");
    run(&[
        "second-factor-policy",
        "--require",
        "password",
        "--customer",
        "C1",
    ]);

    let contact = login(&app, &key, "bob@acme.example", PASSWORD).await;
    assert_eq!(contact.second_factor_enrolment, "any");
    enrol_in_sign_in(&app, &key).await;
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
    let factor = shown.second_factors[0].factor_id.clone();
    let (ok, said, err) = run(&[
        "remove-second-factor",
        "--contact",
        &shown.contact_id,
        "--factor",
        &factor,
        "--reason",
        "new phone; called back",
    ]);
    assert!(ok, "{said}{err}");
    assert!(!said.contains("second factor:"), "{said}");
    let (ok, _, err) = run(&[
        "remove-second-factor",
        "--contact",
        &shown.contact_id,
        "--factor",
        &factor,
        "--reason",
        "again",
    ]);
    assert!(!ok && err.contains("NotFound"), "{err}");
}

/// Enrols an app for bob with the tenant's policy on: through the sign-in.
async fn enrol_in_sign_in(app: &TestApp, key: &str) -> String {
    let challenge = login(app, key, "bob@acme.example", PASSWORD)
        .await
        .second_factor_challenge;
    let started = sessions(app)
        .begin_totp_enrolment(app.req(
            key,
            pb::BeginTotpEnrolmentRequest {
                session_token: String::new(),
                second_factor_challenge: challenge.clone(),
            },
        ))
        .await
        .expect("begun")
        .into_inner();
    sessions(app)
        .confirm_totp_enrolment(app.req(
            key,
            pb::ConfirmTotpEnrolmentRequest {
                request_id: new_id(),
                session_token: String::new(),
                enrolment_token: started.enrolment_token,
                code: pyotp(&started.secret, 0),
                second_factor_challenge: challenge,
            },
        ))
        .await
        .expect("confirmed");
    started.secret
}

#[tokio::test]
async fn a_client_that_asks_for_mfa_gets_a_sign_in_that_gave_a_second_factor() {
    use access_tests::signin::{Agent, attribute, origin_of};
    let p = Provider::start().await;
    let url = format!(
        "{}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=s1&nonce=n1&acr_values=mfa",
        p.issuer,
        p.client_id,
        crate::oidc_flow::REDIRECT
    );
    let origin = origin_of(&url);
    let mut browser = Agent::default();
    let page = browser.get(&url).await;
    let asked = browser
        .submit(
            &origin,
            &page,
            &[("login", &p.email), ("current", PASSWORD)],
        )
        .await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(
        asked.body.contains("more than a password"),
        "{}",
        asked.body
    );
    let start = asked.body.find("id=\"secret\">").expect("a key") + "id=\"secret\">".len();
    let secret = asked.body[start..].split('<').next().expect("its text");
    let challenge = crate::factors::hidden(&asked.body, "challenge");
    let token = crate::factors::hidden(&asked.body, "enrolment_token");
    let done = browser
        .submit(
            &origin,
            &asked,
            &[
                ("challenge", &challenge),
                ("enrolment_token", &token),
                ("code", &pyotp(secret, 0)),
            ],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body.matches("<li><code>").count(), 10, "{}", done.body);
    let at = done.body.find("id=\"continue\"").expect("the way on");
    let next = attribute(&done.body[at..], "href").expect("a link");
    let on = browser.get(&format!("{origin}{next}")).await;
    assert_eq!(on.status, 303, "{}", on.body);
    let to = on.location.expect("to the client");
    assert!(
        to.starts_with(crate::oidc_flow::REDIRECT) && to.contains("code="),
        "{to}"
    );
    // The provider session gave a second factor: the next request that asks
    // for one goes straight through.
    let again = browser.get(&url).await;
    assert_eq!(again.status, 303, "{}", again.body);
}
