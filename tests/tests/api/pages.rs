//! The pages a contact sees, in a real headless Chromium: the link from the
//! real email, the rules, a weak password refused, a good one accepted, the
//! hand-off into the portal with a one-time code the portal exchanges over
//! gRPC; forgot and reset; an expired link renewed; the cross-tenant
//! "continue"; all again without JavaScript. Headers and CSRF as plain HTTP.

use access_proto::v1 as pb;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use access_tests::browser::Browser;
use access_tests::{TestApp, new_id, token_of};
use fantoccini::Locator;
use std::time::Duration;

/// A portal address nothing listens on: the browser's address bar is enough.
const PORTAL: &str = "http://127.0.0.1:9/portal";

async fn brand(app: &TestApp, key: &str) {
    TenantAdminClient::new(app.channel.clone())
        .set_branding(app.req(
            key,
            pb::SetBrandingRequest {
                request_id: new_id(),
                logo_url: String::new(),
                accent_colour: "#0b6e4f".into(),
                portal_url: PORTAL.into(),
            },
        ))
        .await
        .expect("branding");
}

async fn exchange(app: &TestApp, key: &str, code: &str) -> Result<pb::Session, tonic::Status> {
    app.sessions()
        .exchange_login_code(app.req(key, pb::ExchangeLoginCodeRequest { code: code.into() }))
        .await
        .map(|r| r.into_inner())
}

fn code_in(url: &str) -> String {
    url.split("code=").nth(1).unwrap_or_default().to_owned()
}

/// Waits until the browser leaves the service for the portal.
async fn portal_url(b: &Browser) -> String {
    for _ in 0..100 {
        let url = b.client.current_url().await.expect("url").to_string();
        if url.starts_with(PORTAL) {
            return url;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never handed off to the portal");
}

async fn invitation_flow(javascript: bool, shots: &str) {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    brand(&app, &key).await;
    app.create_customer(&key, "C001").await;
    app.invite(&key, "C001", "bob@hardware.example").await;
    let link = app
        .wait_for_link("bob@hardware.example", "/invite/", 1)
        .await;

    let b = Browser::start(javascript).await;
    b.client.goto(&link).await.expect("open the link");
    let url = b.client.current_url().await.expect("url").to_string();
    assert!(
        url.ends_with("/invite"),
        "the token left the address bar: {url}"
    );
    let page = b.text().await;
    assert!(
        page.contains("acme supplies") && page.contains("bob@hardware.example"),
        "{page}"
    );
    assert!(
        page.contains("at least 6 characters"),
        "the rules are shown: {page}"
    );
    b.screenshot(&format!("{shots}-invite-desktop")).await;
    b.size(390, 844).await;
    b.screenshot(&format!("{shots}-invite-phone")).await;
    b.size(1280, 900).await;

    // A weak password is refused, with the reason tied to the field.
    b.type_into("password", "abc").await;
    b.submit().await;
    // The answer, not the page still being left.
    let page = b.text_with("There is a problem").await;
    assert!(
        page.contains("There is a problem") && page.contains("at least 6"),
        "{page}"
    );
    let invalid = b
        .client
        .find(Locator::Css("input#password[aria-invalid=true]"))
        .await;
    assert!(invalid.is_ok(), "the error is tied to its field");
    b.screenshot(&format!("{shots}-invite-weak")).await;

    // A good one hands the browser to the portal with a one-time code.
    b.type_into("password", "sunlit7meadow").await;
    b.submit().await;
    let code = code_in(&portal_url(&b).await);
    assert!(code.starts_with("lgc_"), "{code}");
    let session = exchange(&app, &key, &code)
        .await
        .expect("the portal exchanges it");
    assert_eq!(session.email, "bob@hardware.example");
    assert!(session.session_token.starts_with("ses_"));
    let again = exchange(&app, &key, &code)
        .await
        .expect_err("a code works once");
    assert_eq!(again.code(), tonic::Code::Unauthenticated);
    let _ = b.client.close().await;
}

#[tokio::test]
async fn a_contact_sets_a_password_from_the_email_and_lands_in_the_portal() {
    invitation_flow(true, "js").await;
}

#[tokio::test]
async fn the_same_works_without_javascript() {
    invitation_flow(false, "nojs").await;
}

#[tokio::test]
async fn forgot_and_reset_hand_off_like_an_invitation() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    brand(&app, &key).await;
    app.create_customer(&key, "C001").await;
    app.invite(&key, "C001", "bob@hardware.example").await;
    let link = app
        .wait_for_link("bob@hardware.example", "/invite/", 1)
        .await;
    app.sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(&link),
            password: "sunlit7meadow".into(),
        })
        .await
        .expect("accept");

    let b = Browser::start(true).await;
    let base = format!("http://{}", app.http_addr);
    b.client
        .goto(&format!("{base}/forgot?tenant=acme"))
        .await
        .expect("forgot page");
    b.screenshot("forgot-desktop").await;
    b.type_into("login", "bob@hardware.example").await;
    b.submit().await;
    let known = b.text_with("Check your email").await;
    b.client
        .goto(&format!("{base}/forgot?tenant=acme"))
        .await
        .expect("forgot page");
    b.type_into("login", "nobody@hardware.example").await;
    b.submit().await;
    let unknown = b.text_with("Check your email").await;
    assert_eq!(
        known, unknown,
        "the same answer whether or not the login exists"
    );

    let reset = app
        .wait_for_link("bob@hardware.example", "/reset/", 1)
        .await;
    b.client.goto(&reset).await.expect("reset link");
    assert!(
        b.client
            .current_url()
            .await
            .expect("url")
            .as_str()
            .ends_with("/reset")
    );
    b.screenshot("reset-desktop").await;
    b.type_into("password", "harbour9lights").await;
    b.submit().await;
    let code = code_in(&portal_url(&b).await);
    exchange(&app, &key, &code).await.expect("exchanged");
    let _ = b.client.close().await;
}

#[tokio::test]
async fn an_expired_link_says_so_and_a_new_one_can_be_asked_for() {
    let app = TestApp::spawn_with(&["--link-ttl", "1s"]).await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    app.invite(&key, "C001", "bob@hardware.example").await;
    let link = app
        .wait_for_link("bob@hardware.example", "/invite/", 1)
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let b = Browser::start(true).await;
    b.client.goto(&link).await.expect("open");
    let page = b.text().await;
    assert!(page.contains("This link has expired"), "{page}");
    b.screenshot("expired-desktop").await;
    b.submit().await;
    b.text_with("a new link is on its way").await;
    let fresh = app
        .wait_for_link("bob@hardware.example", "/invite/", 2)
        .await;
    assert_ne!(fresh, link);
    let _ = b.client.close().await;
}

#[tokio::test]
async fn an_email_with_a_password_elsewhere_continues_with_it() {
    let app = TestApp::spawn().await;
    let first = app.create_tenant("first").await;
    let second = app.create_tenant("second").await;
    brand(&app, &second).await;
    app.create_customer(&first, "A1").await;
    app.create_customer(&second, "B1").await;
    app.invite(&first, "A1", "ann@shop.example").await;
    let link = app.wait_for_link("ann@shop.example", "/invite/", 1).await;
    app.sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(&link),
            password: "sunlit7meadow".into(),
        })
        .await
        .expect("accept at the first supplier");
    app.invite(&second, "B1", "ann@shop.example").await;
    let second_link = app.wait_for_link("ann@shop.example", "/invite/", 2).await;

    let b = Browser::start(true).await;
    b.client.goto(&second_link).await.expect("open");
    let page = b.text().await;
    assert!(page.contains("Continue with your password"), "{page}");
    assert!(
        !page.contains("at least 6 characters"),
        "no new-password rules: {page}"
    );
    b.screenshot("continue-desktop").await;
    b.type_into("password", "wrong-pass-1").await;
    b.submit().await;
    b.text_with("not the password of this email").await;
    b.type_into("password", "sunlit7meadow").await;
    b.submit().await;
    let code = code_in(&portal_url(&b).await);
    let session = exchange(&app, &second, &code).await.expect("exchanged");
    assert_eq!(session.tenant_id, "second");
    let _ = b.client.close().await;
}

#[tokio::test]
async fn invited_again_after_a_revoke_the_page_asks_for_the_earlier_password_without_naming_another_supplier()
 {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    let first = app.invite(&key, "C1", "ann@shop.example").await;
    let link = app.wait_for_link("ann@shop.example", "/invite/", 1).await;
    app.accept(&link, "sunlit7meadow").await;
    app.access()
        .revoke_access(app.req(
            &key,
            pb::ContactCommand {
                request_id: new_id(),
                contact_id: first.contact_id,
                reason: String::new(),
            },
        ))
        .await
        .expect("revoked");
    app.invite(&key, "C1", "ann@shop.example").await;
    let again = app.wait_for_link("ann@shop.example", "/invite/", 2).await;

    let http = http();
    let moved = http.get(&again).send().await.expect("the link");
    let cookie = crate::hostile_pages::cookie_named(&moved, "invite").expect("invite cookie");
    let page = http
        .get(format!("http://{}/invite", app.http_addr))
        .header("cookie", cookie)
        .send()
        .await
        .expect("the page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("already has a password"), "{page}");
    assert!(!page.contains("another supplier"), "{page}");
}

/// A client that sees redirects instead of following them.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn every_page_sends_strict_headers_and_forms_need_their_csrf_token() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    app.invite(&key, "C001", "bob@hardware.example").await;
    let link = app
        .wait_for_link("bob@hardware.example", "/invite/", 1)
        .await;
    let base = format!("http://{}", app.http_addr);
    let client = http();

    // The token moves from the address into an HttpOnly cookie at once.
    let moved = client.get(&link).send().await.expect("link");
    assert_eq!(moved.status(), 303);
    assert_eq!(moved.headers()["location"], "/invite");
    let set = moved.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(
        set.starts_with("invite=") && set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    let invite_cookie = set.split(';').next().expect("pair").to_owned();

    for path in [
        "/invite",
        "/forgot?tenant=acme",
        "/change-password?tenant=acme",
        "/nowhere",
    ] {
        let r = client
            .get(format!("{base}{path}"))
            .header("cookie", &invite_cookie)
            .send()
            .await
            .expect("page");
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().expect("csp");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert!(
            !h.contains_key("strict-transport-security"),
            "no HSTS over plain HTTP"
        );
    }

    // The portal gets the login code, so its address must be https.
    let plain = TenantAdminClient::new(app.channel.clone())
        .set_branding(app.req(
            &key,
            pb::SetBrandingRequest {
                request_id: new_id(),
                logo_url: String::new(),
                accent_colour: String::new(),
                portal_url: "http://portal.example/login".into(),
            },
        ))
        .await
        .expect_err("plain http");
    assert_eq!(plain.code(), tonic::Code::InvalidArgument);

    // A POST without the page's CSRF token, or with another browser's, changes nothing.
    let forged = client
        .post(format!("{base}/invite"))
        .header(
            "cookie",
            format!("{invite_cookie}; csrf=0123456789abcdef0123456789abcdef"),
        )
        .form(&[("password", "sunlit7meadow"), ("csrf", "forged")])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 403);
    let head = app.settled_head().await;
    let missing = client
        .post(format!("{base}/invite"))
        .header("cookie", &invite_cookie)
        .form(&[("password", "sunlit7meadow")])
        .send()
        .await
        .expect("post");
    assert_eq!(missing.status(), 403);
    assert_eq!(app.settled_head().await, head, "nothing written");

    // Many POSTs from one address are slowed down.
    let mut statuses = Vec::new();
    for _ in 0..35 {
        let r = client
            .post(format!("{base}/forgot?tenant=acme"))
            .form(&[("login", "x@y.example"), ("csrf", "x")])
            .send()
            .await
            .expect("post");
        statuses.push(r.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn a_login_with_a_temporary_password_changes_it_on_the_page_then_enters_the_portal() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    brand(&app, &key).await;
    app.create_customer(&key, "C001").await;
    app.access()
        .add_portal_user(app.req(
            &key,
            pb::AddPortalUserRequest {
                request_id: new_id(),
                customer_id: "C001".into(),
                username: "ACME001".into(),
                email: String::new(),
                site_rule: None,
                management_password: "Quill42river".into(),
                staff_password: "Pebble93cove".into(),
            },
        ))
        .await
        .expect("logins created");

    let b = Browser::start(true).await;
    b.client
        .goto(&format!(
            "http://{}/change-password?tenant=acme",
            app.http_addr
        ))
        .await
        .expect("page");
    b.screenshot("change-desktop").await;
    b.type_into("login", "ACME001").await;
    b.type_into("current", "not-it-42").await;
    b.type_into("password", "harbour9lights").await;
    b.submit().await;
    b.text_with("temporary password is wrong").await;
    b.type_into("current", "Quill42river").await;
    b.type_into("password", "harbour9lights").await;
    b.submit().await;
    let code = code_in(&portal_url(&b).await);
    let session = exchange(&app, &key, &code).await.expect("exchanged");
    assert!(
        !session.must_change_password,
        "the new password is the login's own"
    );
    let _ = b.client.close().await;
}
