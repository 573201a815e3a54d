//! The provider's rows against the real `accessd`: the token endpoint
//! redeeming authorization codes (each one durable append and two
//! signatures) and introspection (a signature check and two read-model
//! lookups), each against an empty axum handler answering a body of the
//! same size, 64 callers over HTTP/1.1 keep-alive on loopback.

use crate::grpc_rows::EmptyServer;
use crate::measure::{Row, Run, Target, drive, drive_each};
use access_proto::v1 as pb;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use access_tests::signin::{Agent, query_param};
use access_tests::{TestApp, new_id};
use std::sync::Arc;
use std::time::Duration;

const PASSWORD: &str = "sunlit7meadow";
const REDIRECT: &str = "http://127.0.0.1/callback";

/// A tenant with a contact signed in to a confidential client.
struct Provider {
    app: TestApp,
    issuer: String,
    client_id: String,
    secret: String,
    session: String,
}

async fn provider() -> anyhow::Result<Provider> {
    // Behind a proxy, as in production: each browser has its own address,
    // and silent sign-ins are limited per address.
    let app = TestApp::spawn_with(&["--trusted-proxies", "127.0.0.1/32"]).await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    app.invite(&key, "C1", "ann@c1.example").await;
    let link = app.wait_for_mail("ann@c1.example", 1).await;
    app.accept(&link, PASSWORD).await;
    let client = TenantAdminClient::new(app.channel.clone())
        .register_oidc_client(app.req(
            &key,
            pb::RegisterOidcClientRequest {
                request_id: new_id(),
                kind: pb::OidcClientKind::Confidential.into(),
                settings: Some(pb::OidcClientSettings {
                    name: "Web shop".into(),
                    redirect_uris: vec![REDIRECT.into()],
                    scopes: vec!["openid".into(), "email".into(), "profile".into()],
                    access_token_ttl_seconds: 600,
                    refresh_token_ttl_seconds: 86_400,
                    ..Default::default()
                }),
            },
        ))
        .await?
        .into_inner();
    app.settled_head().await;
    let issuer = format!("http://{}/t/acme", app.http_addr);
    let mut agent = Agent::default();
    let first = authorize_url(&issuer, &client.client_id, false);
    agent.sign_in(&first, "ann@c1.example", PASSWORD).await;
    let session = agent
        .cookie("op_session")
        .ok_or_else(|| anyhow::anyhow!("no provider session"))?;
    Ok(Provider {
        app,
        issuer,
        client_id: client.client_id,
        secret: client.client_secret,
        session,
    })
}

/// An authorization request; `silent`: without a page (`prompt=none`).
fn authorize_url(issuer: &str, client_id: &str, silent: bool) -> String {
    format!(
        "{issuer}/authorize?response_type=code&client_id={client_id}&scope=openid%20email&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback{}",
        if silent { "&prompt=none" } else { "" }
    )
}

/// `count` fresh codes, through the provider session (no password).
async fn codes(p: &Provider, http: &reqwest::Client, count: usize) -> anyhow::Result<Vec<String>> {
    let url = Arc::new(authorize_url(&p.issuer, &p.client_id, true));
    let cookie = Arc::new(format!("op_session={}", p.session));
    let got = Arc::new(std::sync::Mutex::new(Vec::with_capacity(count)));
    let (url_c, cookie_c, got_c, http) = (url.clone(), cookie.clone(), got.clone(), http.clone());
    drive_each(16, (0..count).collect(), move |n: usize| {
        let (url, cookie, got, http) =
            (url_c.clone(), cookie_c.clone(), got_c.clone(), http.clone());
        // A browser of its own for each code (10.x.y.z).
        let address = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
        async move {
            let answer = http
                .get(url.as_str())
                .header("cookie", cookie.as_str())
                .header("x-forwarded-for", address)
                .send()
                .await?;
            let to = answer
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let code = query_param(to, "code").ok_or_else(|| anyhow::anyhow!("no code in {to}"))?;
            got.lock().unwrap_or_else(|e| e.into_inner()).push(code);
            Ok(())
        }
    })
    .await;
    let codes = std::mem::take(&mut *got.lock().unwrap_or_else(|e| e.into_inner()));
    anyhow::ensure!(
        codes.len() == count,
        "only {} codes of {count}",
        codes.len()
    );
    Ok(codes)
}

/// POSTs `form` to `url`; fails unless the answer is 200.
async fn post(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> anyhow::Result<String> {
    let answer = http.post(url).form(form).send().await?;
    anyhow::ensure!(answer.status() == 200, "{url}: {}", answer.status());
    Ok(answer.text().await?)
}

/// Redeems every code of `batch` at `url`, 64 at a time.
async fn exchanges(
    http: &reqwest::Client,
    url: &Arc<String>,
    creds: &Arc<(String, String)>,
    batch: Vec<String>,
) -> Run {
    let (url, creds, http) = (url.clone(), creds.clone(), http.clone());
    drive_each(64, batch, move |code: String| {
        let (url, creds, http) = (url.clone(), creds.clone(), http.clone());
        async move {
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("client_id", creds.0.as_str()),
                ("client_secret", creds.1.as_str()),
            ];
            post(&http, &url, &form).await.map(|_| ())
        }
    })
    .await
}

/// The token endpoint's code exchange and introspection, with `codes`
/// codes a run.
pub async fn rows(
    empty: &EmptyServer,
    runs: usize,
    length: Duration,
    codes_per_run: usize,
) -> anyhow::Result<Vec<Row>> {
    let p = provider().await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()?;
    let token_url = Arc::new(format!("{}/token", p.issuer));
    let empty_token = Arc::new(format!("{}/token", empty.http));
    let creds = Arc::new((p.client_id.clone(), p.secret.clone()));
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    let mut access_token = String::new();
    for _ in 0..runs {
        // Codes live a minute: each run makes its own, right before.
        let batch = codes(&p, &http, codes_per_run).await?;
        ours.push(exchanges(&http, &token_url, &creds, batch.clone()).await);
        base.push(exchanges(&http, &empty_token, &creds, batch).await);
        if access_token.is_empty() {
            let code = codes(&p, &http, 1).await?.pop().unwrap_or_default();
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("client_id", p.client_id.as_str()),
                ("client_secret", p.secret.as_str()),
            ];
            let answer: serde_json::Value =
                serde_json::from_str(&post(&http, &token_url, &form).await?)?;
            access_token = answer["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
        }
    }
    let exchange = Row {
        ours: "token endpoint: authorization code → tokens over HTTP, 64 concurrent callers".into(),
        baseline: "an empty axum handler answering the same size, same client".into(),
        unit: "codes/s",
        ours_runs: ours,
        base_runs: base,
        target: Target::RateAtLeast(0.05),
        note: format!(
            "{codes_per_run} codes a run; each is one durable append and two Ed25519 signatures"
        ),
    };
    let introspect_url = Arc::new(format!("{}/introspect", p.issuer));
    let empty_introspect = Arc::new(format!("{}/introspect", empty.http));
    let token = Arc::new(access_token);
    let (mut ours, mut base): (Vec<Run>, Vec<Run>) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        for (url, into) in [(&introspect_url, &mut ours), (&empty_introspect, &mut base)] {
            let (url, token, creds, http) =
                (url.clone(), token.clone(), creds.clone(), http.clone());
            into.push(
                drive(64, length, move |_, _| {
                    let (url, token, creds, http) =
                        (url.clone(), token.clone(), creds.clone(), http.clone());
                    async move {
                        let form = [
                            ("token", token.as_str()),
                            ("client_id", creds.0.as_str()),
                            ("client_secret", creds.1.as_str()),
                        ];
                        let body = post(&http, &url, &form).await?;
                        anyhow::ensure!(body.contains("\"active\":true"), "inactive: {body}");
                        Ok(())
                    }
                })
                .await,
            );
        }
    }
    let introspection = Row {
        ours: "introspection of an access token over HTTP, 64 concurrent callers".into(),
        baseline: "an empty axum handler answering the same size, same client".into(),
        unit: "calls/s",
        ours_runs: ours,
        base_runs: base,
        target: Target::RateAtLeast(0.3),
        note: "signature, grant and contact checked on every call".into(),
    };
    drop(p.app);
    Ok(vec![exchange, introspection])
}
