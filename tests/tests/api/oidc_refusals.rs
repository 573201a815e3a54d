//! What the provider refuses, as the OAuth 2.0 security BCP asks: requests
//! it must not redirect, codes that work once for one client and redirect,
//! PKCE, client authentication; and access changes that reach a portal at
//! once. Driven over plain HTTP, so every status and error code shows.

use crate::oidc_flow::{PASSWORD, Provider, REDIRECT, register};
use access_proto::v1 as pb;
use access_tests::new_id;
use access_tests::signin::{Agent, query_param};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A PKCE verifier and its S256 challenge.
fn pkce() -> (String, String) {
    use sha2_free::s256;
    let verifier = format!("{}{}", new_id(), new_id()).replace('-', "");
    let challenge = s256(&verifier);
    (verifier, challenge)
}

mod sha2_free {
    //! S256 through the provider's own discovery of nothing: the test
    //! computes it with `openidconnect`'s PKCE type from a known verifier.
    pub fn s256(verifier: &str) -> String {
        let v = openidconnect::PkceCodeVerifier::new(verifier.to_owned());
        openidconnect::PkceCodeChallenge::from_code_verifier_sha256(&v)
            .as_str()
            .to_owned()
    }
}

pub(crate) fn authorize_url(p: &Provider, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email"),
        ("state", "s-123"),
        ("nonce", "n-456"),
    ];
    for (k, v) in extra {
        params.retain(|(name, _)| name != k);
        if !v.is_empty() {
            params.push((k, v));
        }
    }
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect();
    format!("{}/authorize?{}", p.issuer, query.join("&"))
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// POSTs a token request; returns the status and the JSON answer.
pub(crate) async fn token(
    p: &Provider,
    client: (&str, &str),
    form: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    form.push(("client_id", client.0));
    if !client.1.is_empty() {
        form.push(("client_secret", client.1));
    }
    post(&format!("{}/token", p.issuer), &form).await
}

pub(crate) async fn post(url: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let answer = reqwest::Client::new()
        .post(url)
        .form(form)
        .send()
        .await
        .expect("an answer");
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

/// Signs the contact in with a fresh agent and returns the code.
async fn code_for(p: &Provider, client_id: &str, extra: &[(&str, &str)]) -> String {
    let back = Agent::default()
        .sign_in(&authorize_url(p, client_id, extra), &p.email, PASSWORD)
        .await;
    query_param(&back, "code").unwrap_or_else(|| panic!("a code in {back}"))
}

pub(crate) fn exchange<'a>(code: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if !verifier.is_empty() {
        form.push(("code_verifier", verifier));
    }
    form
}

#[tokio::test]
async fn requests_that_cannot_be_trusted_are_shown_not_redirected() {
    let p = Provider::start().await;
    let mut agent = Agent::default();
    for (extra, why) in [
        (vec![("client_id", "nobody")], "unknown client"),
        (
            vec![("redirect_uri", "https://evil.example/cb")],
            "unregistered redirect",
        ),
        (
            vec![("redirect_uri", "http://127.0.0.1/callback/x")],
            "another path",
        ),
        (vec![("redirect_uri", "")], "no redirect"),
    ] {
        let answer = agent.get(&authorize_url(&p, &p.client_id, &extra)).await;
        assert_eq!(
            (answer.status, answer.location.is_none()),
            (400, true),
            "{why}"
        );
    }
    let twice = format!("{}&state=again", authorize_url(&p, &p.client_id, &[]));
    assert_eq!(agent.get(&twice).await.status, 400, "a parameter twice");

    // Anything else goes back to the client as an error, with state and iss.
    let (public_id, _) = register(&p.app, &p.key, pb::OidcClientKind::Public).await;
    p.app.settled_head().await;
    for (client, extra, error) in [
        (
            &p.client_id,
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (&p.client_id, vec![("scope", "email")], "invalid_scope"),
        (
            &p.client_id,
            vec![("scope", "openid admin")],
            "invalid_scope",
        ),
        (
            &p.client_id,
            vec![
                ("code_challenge", "x".repeat(43).as_str()),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (&public_id, vec![], "invalid_request"),
        (
            &p.client_id,
            vec![("request", "eyJ")],
            "request_not_supported",
        ),
        (&p.client_id, vec![("prompt", "none")], "login_required"),
    ] {
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, *v)).collect();
        let answer = agent.get(&authorize_url(&p, client, &extra)).await;
        let to = answer.location.unwrap_or_default();
        assert_eq!(answer.status, 303, "{error}: {}", answer.body);
        assert!(to.starts_with(REDIRECT), "{to}");
        assert_eq!(query_param(&to, "error").as_deref(), Some(error), "{to}");
        assert_eq!(query_param(&to, "state").as_deref(), Some("s-123"));
        assert_eq!(query_param(&to, "iss").as_deref(), Some(p.issuer.as_str()));
        assert!(query_param(&to, "code").is_none());
    }
}

#[tokio::test]
async fn a_code_works_once_for_its_client_its_redirect_and_its_verifier() {
    let p = Provider::start().await;
    let ours = (p.client_id.as_str(), p.secret.as_str());
    let (other_id, other_secret) = register(&p.app, &p.key, pb::OidcClientKind::Confidential).await;
    // Another tenant with a client of its own.
    let other_key = p.app.create_tenant("globex").await;
    let (foreign_id, foreign_secret) =
        register(&p.app, &other_key, pb::OidcClientKind::Confidential).await;
    p.app.settled_head().await;

    let (verifier, challenge) = pkce();
    let pkce_params = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let code = code_for(&p, &p.client_id, &pkce_params).await;
    let invalid = |answer: (u16, serde_json::Value), why: &str| {
        assert_eq!(answer.0, 400, "{why}: {}", answer.1);
        assert_eq!(answer.1["error"], "invalid_grant", "{why}: {}", answer.1);
    };
    // Refusals that leave the code usable: wrong redirect, verifier, client.
    let mut wrong_redirect = exchange(&code, &verifier);
    wrong_redirect[2].1 = "http://127.0.0.1/other";
    invalid(token(&p, ours, &wrong_redirect).await, "another redirect");
    invalid(token(&p, ours, &exchange(&code, "")).await, "no verifier");
    let wrong_verifier = format!("{verifier}x");
    invalid(
        token(&p, ours, &exchange(&code, &wrong_verifier)).await,
        "another verifier",
    );
    invalid(
        token(&p, (&other_id, &other_secret), &exchange(&code, &verifier)).await,
        "another client of the tenant",
    );
    let foreign = post(
        &p.issuer.replace("/t/acme", "/t/globex/token"),
        &[
            &exchange(&code, &verifier)[..],
            &[
                ("client_id", &foreign_id),
                ("client_secret", &foreign_secret),
            ],
        ]
        .concat(),
    )
    .await;
    invalid(foreign, "another tenant's client");
    let (status, body) = token(&p, (&p.client_id, "ocs_wrong"), &exchange(&code, &verifier)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    // The right request works, once.
    let (status, first) = token(&p, ours, &exchange(&code, &verifier)).await;
    assert_eq!(status, 200, "{first}");
    let refresh = first["refresh_token"].as_str().expect("a refresh token");
    let access = first["access_token"].as_str().expect("an access token");
    invalid(
        token(&p, ours, &exchange(&code, &verifier)).await,
        "a replayed code",
    );

    // The replay ended the grant: what the first exchange gave stops working.
    invalid(
        token(
            &p,
            ours,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await,
        "the first exchange's refresh token",
    );
    let (_, introspected) = post(
        &format!("{}/introspect", p.issuer),
        &[
            ("token", access),
            ("client_id", ours.0),
            ("client_secret", ours.1),
        ],
    )
    .await;
    assert_eq!(introspected["active"], false, "{introspected}");

    // Garbage of every shape is refused before anything is read.
    for code in [
        "",
        "occ_",
        "occ_x_y",
        &"A".repeat(5000),
        &code.replace("occ_", "ort_"),
    ] {
        let answer = token(&p, ours, &exchange(code, &verifier)).await;
        assert_eq!(answer.1["error"], "invalid_grant", "{code}: {}", answer.1);
    }
    let unsupported = token(&p, ours, &[("grant_type", "password")]).await;
    assert_eq!(unsupported.1["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn access_changes_reach_the_portal_at_once() {
    let p = Provider::start().await;
    let ours = (p.client_id.as_str(), p.secret.as_str());
    let code = code_for(&p, &p.client_id, &[]).await;
    let (status, tokens) = token(&p, ours, &exchange(&code, "")).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let access = tokens["access_token"].as_str().expect("access").to_owned();

    p.app
        .access()
        .disable_access(p.app.req(
            &p.key,
            pb::ContactCommand {
                request_id: new_id(),
                contact_id: p.contact_id.clone(),
                reason: "left the company".into(),
            },
        ))
        .await
        .expect("disabled");
    p.app.settled_head().await;

    // Introspection and userinfo say inactive; refresh fails and ends the grant.
    let (_, introspected) = post(
        &format!("{}/introspect", p.issuer),
        &[
            ("token", &access),
            ("client_id", ours.0),
            ("client_secret", ours.1),
        ],
    )
    .await;
    assert_eq!(introspected["active"], false, "{introspected}");
    let userinfo = reqwest::Client::new()
        .get(format!("{}/userinfo", p.issuer))
        .bearer_auth(&access)
        .send()
        .await
        .expect("an answer");
    assert_eq!(userinfo.status().as_u16(), 401);
    let refused = token(
        &p,
        ours,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(refused.1["error"], "invalid_grant", "{}", refused.1);

    // Signing in again shows why not, and issues no code.
    let mut agent = Agent::default();
    let page = agent.get(&authorize_url(&p, &p.client_id, &[])).await;
    let origin = access_tests::signin::origin_of(&p.issuer);
    let answer = agent
        .submit(
            &origin,
            &page,
            &[("login", &p.email), ("current", PASSWORD)],
        )
        .await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(
        answer.body.contains("You cannot sign in"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn a_provider_session_signs_in_again_and_prompt_and_max_age_are_honoured() {
    let p = Provider::start().await;
    let mut agent = Agent::default();
    let first = agent
        .sign_in(&authorize_url(&p, &p.client_id, &[]), &p.email, PASSWORD)
        .await;
    assert!(query_param(&first, "code").is_some());

    // The same browser: straight back with a code, no page.
    let again = agent
        .get(&authorize_url(&p, &p.client_id, &[("prompt", "none")]))
        .await;
    let to = again.location.unwrap_or_default();
    assert!(query_param(&to, "code").is_some(), "{to}");
    // Unless the client asks for the password again, or a fresher sign-in.
    for extra in [("prompt", "login"), ("max_age", "0")] {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let page = agent.get(&authorize_url(&p, &p.client_id, &[extra])).await;
        assert_eq!(page.status, 200, "{extra:?}: a form");
        assert!(page.body.contains("name=\"current\""), "{extra:?}");
    }
    // A wrong password re-shows the form and gives no code.
    let page = agent
        .get(&authorize_url(&p, &p.client_id, &[("prompt", "login")]))
        .await;
    let origin = access_tests::signin::origin_of(&p.issuer);
    let wrong = agent
        .submit(
            &origin,
            &page,
            &[("login", &p.email), ("current", "not-it-at-all")],
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.location.is_none());
}

#[tokio::test]
async fn a_temporary_password_is_changed_on_the_way_back_to_the_portal() {
    let p = Provider::start().await;
    p.app
        .access()
        .add_portal_user(p.app.req(
            &p.key,
            pb::AddPortalUserRequest {
                request_id: new_id(),
                customer_id: "C1".into(),
                username: "ACME001".into(),
                email: String::new(),
                site_rule: None,
                management_password: "Temporary4now".into(),
                staff_password: "Temporary4staff".into(),
            },
        ))
        .await
        .expect("logins");
    p.app.settled_head().await;
    let mut agent = Agent::default();
    let origin = access_tests::signin::origin_of(&p.issuer);
    let page = agent.get(&authorize_url(&p, &p.client_id, &[])).await;
    let to_change = agent
        .submit(
            &origin,
            &page,
            &[("login", "ACME001S"), ("current", "Temporary4staff")],
        )
        .await;
    let change_url = to_change.location.expect("to the change page");
    assert!(change_url.starts_with("/change-password"), "{change_url}");
    let change = agent.get(&format!("{origin}{change_url}")).await;
    let back = agent
        .submit(
            &origin,
            &change,
            &[
                ("login", "ACME001S"),
                ("current", "Temporary4staff"),
                ("password", "harbour9lantern"),
            ],
        )
        .await;
    let resume = back.location.expect("back to the sign-in");
    assert!(resume.starts_with("/t/acme/authorize?"), "{resume}");
    let done = agent.get(&format!("{origin}{resume}")).await;
    let to = done.location.unwrap_or_default();
    assert!(
        to.starts_with(REDIRECT) && query_param(&to, "code").is_some(),
        "{to}"
    );
    let code = query_param(&to, "code").unwrap_or_default();
    let (status, tokens) = token(&p, (&p.client_id, &p.secret), &exchange(&code, "")).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = payload(tokens["id_token"].as_str().unwrap_or_default());
    assert_eq!(claims["login_kind"], "staff", "{claims}");
}

fn payload(jwt: &str) -> serde_json::Value {
    let middle = jwt.split('.').nth(1).unwrap_or_default();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(middle).unwrap_or_default()).unwrap_or_default()
}

#[tokio::test]
async fn the_customers_status_the_tenants_rules_and_approval_are_honoured() {
    use access_proto::v1::tenant_admin_client::TenantAdminClient;
    let p = Provider::start().await;
    let ours = (p.client_id.as_str(), p.secret.as_str());
    let code = code_for(&p, &p.client_id, &[]).await;
    let (_, tokens) = token(&p, ours, &exchange(&code, "")).await;

    // Blacklisted, while such contacts may still look: in, but not to order.
    p.app
        .access()
        .set_customer_status(p.app.req(
            &p.key,
            pb::SetCustomerStatusRequest {
                request_id: new_id(),
                customer_id: "C1".into(),
                status: pb::CustomerStatus::Blacklisted.into(),
                reason: "unpaid invoices".into(),
            },
        ))
        .await
        .expect("blacklisted");
    p.app.settled_head().await;
    let code = code_for(&p, &p.client_id, &[]).await;
    let (status, looking) = token(&p, ours, &exchange(&code, "")).await;
    assert_eq!(status, 200, "{looking}");
    let claims = payload(looking["id_token"].as_str().unwrap_or_default());
    assert_eq!(
        (
            claims["customer_status"].as_str(),
            claims["may_order"].as_bool()
        ),
        (Some("blacklisted"), Some(false)),
        "{claims}"
    );

    // The tenant shuts such contacts out: their sign-ins end at once.
    let mut admin = TenantAdminClient::new(p.app.channel.clone());
    admin
        .update_tenant_settings(p.app.req(
            &p.key,
            pb::UpdateTenantSettingsRequest {
                request_id: new_id(),
                sites: vec!["Leeds".into(), "York".into()],
                default_order_site: "Leeds".into(),
                default_site: String::new(),
                inactive_customers_may_log_in: false,
            },
        ))
        .await
        .expect("settings");
    p.app.settled_head().await;
    for answer in [&tokens, &looking] {
        let refresh = answer["refresh_token"].as_str().unwrap_or_default();
        let (status, _) = token(
            &p,
            ours,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
        assert_eq!(status, 400, "refresh refused");
    }
    let mut agent = Agent::default();
    let page = agent.get(&authorize_url(&p, &p.client_id, &[])).await;
    let origin = access_tests::signin::origin_of(&p.issuer);
    let refused = agent
        .submit(
            &origin,
            &page,
            &[("login", &p.email), ("current", PASSWORD)],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.location.is_none());

    // Registrations that wait for approval wait at the sign-in page too.
    admin
        .set_username_administrators(p.app.req(
            &p.key,
            pb::SetUsernameAdministratorsRequest {
                request_id: new_id(),
                emails: vec!["admin@acme.example".into()],
            },
        ))
        .await
        .expect("administrators");
    admin
        .set_approval_policy(p.app.req(
            &p.key,
            pb::SetApprovalPolicyRequest {
                request_id: new_id(),
                approval_required: true,
            },
        ))
        .await
        .expect("approval");
    p.app.create_customer(&p.key, "C2").await;
    p.app.invite(&p.key, "C2", "cat@c2.example").await;
    let link = p.app.wait_for_mail("cat@c2.example", 1).await;
    p.app.accept(&link, PASSWORD).await;
    p.app.settled_head().await;
    let mut agent = Agent::default();
    let page = agent.get(&authorize_url(&p, &p.client_id, &[])).await;
    let waiting = agent
        .submit(
            &origin,
            &page,
            &[("login", "cat@c2.example"), ("current", PASSWORD)],
        )
        .await;
    assert_eq!(waiting.status, 403, "{}", waiting.body);
    assert!(
        waiting.body.contains("Waiting for approval"),
        "{}",
        waiting.body
    );
}
