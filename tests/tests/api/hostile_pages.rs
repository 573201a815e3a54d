//! Hostile requests to the pages, both before the CSRF check (no token, a
//! forged one, bodies too large to read) and past it: each form is fetched as
//! a browser would, and its real token carries oversized, malformed,
//! control-character, look-alike and bad-UTF-8 values to the code behind
//! it. No answer is a server error, none appends anything, and the same
//! token then completes the flow, so the hostile values did reach it.

use crate::pages::http;
use access_proto::v1 as pb;
use access_tests::{TestApp, new_id};
use std::sync::atomic::{AtomicU32, Ordering};

#[tokio::test]
async fn the_pages_answer_hostile_requests_without_a_server_error_and_change_nothing() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    let before = app.settled_head().await;
    // A connection per request: the server closes one after refusing a body
    // unread, and a pooled client would send the next request on it.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let base = format!("http://{}", app.http_addr);
    let long = "x".repeat(20_000);
    let forms: Vec<String> = vec![
        String::new(),
        "csrf=nope&password=a&password_again=b".into(),
        format!("csrf=x&login={long}"),
        "login=%FF%FE%00&csrf=%C3%28".into(),
        "login=%E2%80%AEevil%00&password=%0D%0A".into(),
        "a=b&&&===&%%%".into(),
        format!("password={}", "p".repeat(15_000)),
    ];
    for path in [
        "/invite",
        "/invite/renew",
        "/reset",
        "/forgot",
        "/change-password",
    ] {
        // Too large to read: refused unread.
        let big = http
            .post(format!("{base}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("login={}", "y".repeat(100_000)))
            .send()
            .await;
        // 413, or the connection closed before the client finished sending
        // what the server would not read.
        match big {
            Ok(answer) => assert_eq!(answer.status().as_u16(), 413, "{path}"),
            Err(e) => assert!(e.is_request(), "{path}: {e}"),
        }
        for form in &forms {
            let answer = http
                .post(format!("{base}{path}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-forwarded-for", "1.2.3.4")
                .body(form.clone())
                .send()
                .await
                .expect("answer");
            assert!(
                !answer.status().is_server_error(),
                "{path} with {:?}: {}",
                &form[..form.len().min(40)],
                answer.status()
            );
        }
    }
    for path in [
        format!("/invite/{long}"),
        "/reset/%00%FF".to_owned(),
        "/brand/..%2F..%2Fetc%2Fpasswd.css".to_owned(),
        format!("/brand/{long}.css"),
        "/invite?token=%FF".to_owned(),
    ] {
        let answer = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("answer");
        assert!(
            !answer.status().is_server_error(),
            "{path}: {}",
            answer.status()
        );
    }
    assert_eq!(
        app.head().await,
        before,
        "a hostile page request appended events"
    );
    let alive = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("alive");
    assert!(alive.status().is_success());
}

/// The `name=value` of a `set-cookie` header named `name`.
pub(crate) fn cookie_named(answer: &reqwest::Response, name: &str) -> Option<String> {
    answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// A browser on one page's form: its cookies and the form's CSRF token.
struct Form {
    url: String,
    cookies: String,
    csrf: String,
}

/// Opens `path` with `cookies` as a browser would and reads its form.
async fn open_form(http: &reqwest::Client, base: &str, path: &str, cookies: &str) -> Form {
    let page = http
        .get(format!("{base}{path}"))
        .header("cookie", cookies)
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200, "{path}");
    let csrf_cookie = cookie_named(&page, "csrf").expect("a CSRF cookie");
    let html = page.text().await.expect("html");
    let marker = "name=\"csrf\" value=\"";
    let at = html.find(marker).expect("a CSRF field") + marker.len();
    let csrf = html[at..].split('"').next().expect("token").to_owned();
    let cookies = if cookies.is_empty() {
        csrf_cookie
    } else {
        format!("{cookies}; {csrf_cookie}")
    };
    Form {
        url: format!("{base}{path}"),
        cookies,
        csrf,
    }
}

/// Each post comes from another client address (through a trusted proxy),
/// so the pages' per-address limit does not end the walk early.
static NEXT_ADDRESS: AtomicU32 = AtomicU32::new(1);

impl Form {
    /// Posts `fields` (raw, already form-encoded) with the form's token.
    async fn post(&self, http: &reqwest::Client, fields: &str) -> reqwest::Response {
        let n = NEXT_ADDRESS.fetch_add(1, Ordering::Relaxed);
        http.post(&self.url)
            .header("cookie", &self.cookies)
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "x-forwarded-for",
                format!("10.9.{}.{}", n / 250, n % 250 + 1),
            )
            .body(format!("csrf={}&{fields}", self.csrf))
            .send()
            .await
            .expect("answer")
    }

    /// Posts every hostile value into `field` (with `others` beside it):
    /// each answer is past the CSRF check and no server error.
    async fn walk(&self, http: &reqwest::Client, field: &str, others: &str, values: &[String]) {
        for value in values {
            let answer = self.post(http, &format!("{others}{field}={value}")).await;
            let status = answer.status();
            assert!(
                !status.is_server_error() && status != 403 && status != 429,
                "{} {field}={}: {status}",
                self.url,
                &value[..value.len().min(40)]
            );
        }
    }
}

/// Form-encoded new passwords every rule refuses: empty, too short, over
/// the limits, control characters, bad UTF-8, no letter, a common one.
fn hostile_passwords() -> Vec<String> {
    vec![
        String::new(),
        "a".into(),
        "p1".repeat(700),
        "p1".repeat(7_000),
        "abc%00123".into(),
        "abc%0D%0A123".into(),
        "abc%7F123".into(),
        "%FF%FE%FDabc1".into(),
        "%C3%28abc123".into(),
        "%20%20%20%20%20%201".into(),
        "password1".into(),
    ]
}

/// Form-encoded login names no account has: the passwords' hostile values,
/// and look-alikes, direction overrides and markup.
fn hostile_logins() -> Vec<String> {
    let mut values = hostile_passwords();
    values.extend([
        "%E2%80%AEevil1%E2%80%AC".into(),
        "b%D0%BEb%40hardware.example".into(),
        "bob%40hardware.example%00".into(),
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E".into(),
        "bob%40hardware.example%0D%0ABcc%3A%20x%40y.example".into(),
    ]);
    values
}

/// Bob logs in with `password` over gRPC.
async fn login(app: &TestApp, key: &str, password: &str) {
    app.sessions()
        .login(app.req(
            key,
            pb::LoginRequest {
                request_id: new_id(),
                login: "bob@hardware.example".into(),
                password: password.into(),
                client_address: String::new(),
            },
        ))
        .await
        .expect("bob logs in");
}

/// A form's good post was answered (the page, or the hand-off to the
/// portal) and wrote its events.
async fn succeeded(answer: reqwest::Response, app: &TestApp, head: u64, what: &str) {
    assert!(
        [200, 303].contains(&answer.status().as_u16()),
        "{what}: {}",
        answer.status()
    );
    assert!(app.settled_head().await > head, "{what}: nothing written");
}

#[tokio::test]
async fn every_form_answers_hostile_values_past_its_csrf_check_and_changes_nothing() {
    let app = TestApp::spawn_with(&["--trusted-proxies", "127.0.0.1/32"]).await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    app.invite(&key, "C001", "bob@hardware.example").await;
    let link = app
        .wait_for_link("bob@hardware.example", "/invite/", 1)
        .await;
    let http = http();
    let base = format!("http://{}", app.http_addr);

    // The invitation: the link's token moves into a cookie, then the form.
    let moved = http.get(&link).send().await.expect("link");
    let invite = cookie_named(&moved, "invite").expect("invite cookie");
    let form = open_form(&http, &base, "/invite", &invite).await;
    let head = app.settled_head().await;
    form.walk(&http, "password", "", &hostile_passwords()).await;
    assert_eq!(app.settled_head().await, head, "/invite appended");
    let set = form.post(&http, "password=sunlit7meadow").await;
    succeeded(set, &app, head, "the same token sets a good password").await;

    // Forgot: unknown and malformed logins append nothing.
    let form = open_form(&http, &base, "/forgot?tenant=acme", "").await;
    let head = app.settled_head().await;
    form.walk(&http, "login", "", &hostile_logins()).await;
    assert_eq!(app.settled_head().await, head, "/forgot appended");
    let asked = form.post(&http, "login=bob%40hardware.example").await;
    assert_eq!(asked.status(), 200);
    let reset = app
        .wait_for_link("bob@hardware.example", "/reset/", 1)
        .await;

    // Reset, from the mailed link.
    let moved = http.get(&reset).send().await.expect("link");
    let cookie = cookie_named(&moved, "reset").expect("reset cookie");
    let form = open_form(&http, &base, "/reset", &cookie).await;
    let head = app.settled_head().await;
    form.walk(&http, "password", "", &hostile_passwords()).await;
    assert_eq!(app.settled_head().await, head, "/reset appended");
    let set = form.post(&http, "password=harbour9lights").await;
    succeeded(set, &app, head, "the same token resets to a good password").await;

    // Change password: hostile names and current passwords for names no
    // one has, and hostile new passwords for the right name and password
    // (after a first login, which is recorded once).
    login(&app, &key, "harbour9lights").await;
    let form = open_form(&http, &base, "/change-password?tenant=acme", "").await;
    let head = app.settled_head().await;
    let (logins, passwords) = (hostile_logins(), hostile_passwords());
    let others = "current=harbour9lights&password=tide4rock&";
    form.walk(&http, "login", others, &logins).await;
    let others = "login=nobody%40x.example&password=tide4rock&";
    form.walk(&http, "current", others, &logins).await;
    let others = "login=bob%40hardware.example&current=harbour9lights&";
    form.walk(&http, "password", others, &passwords).await;
    assert_eq!(app.settled_head().await, head, "/change-password appended");
    let changed = form
        .post(
            &http,
            "login=bob%40hardware.example&current=harbour9lights&password=tide4rock",
        )
        .await;
    succeeded(changed, &app, head, "the same token changes the password").await;
    login(&app, &key, "tide4rock").await;
}
