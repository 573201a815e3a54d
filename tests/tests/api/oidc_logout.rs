//! Signing out of the provider (RP-initiated logout): with an ID token of
//! the browser's own session it happens at once and goes back to the
//! client's registered URI; otherwise the contact is asked. Either way the
//! session's sign-ins end, everywhere.

use crate::oidc_flow::{PASSWORD, Provider, REDIRECT};
use crate::oidc_refusals::{authorize_url, exchange, post, token};
use access_tests::signin::{Agent, origin_of, query_param};

/// Signs in with `agent` and returns the token answer.
async fn signed_in(p: &Provider, agent: &mut Agent) -> serde_json::Value {
    let back = agent
        .sign_in(&authorize_url(p, &p.client_id, &[]), &p.email, PASSWORD)
        .await;
    let code = query_param(&back, "code").expect("a code");
    let (status, tokens) = token(p, (&p.client_id, &p.secret), &exchange(&code, "")).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

async fn refreshes(p: &Provider, tokens: &serde_json::Value) -> bool {
    let refresh = tokens["refresh_token"].as_str().unwrap_or_default();
    let (status, _) = token(
        p,
        (&p.client_id, &p.secret),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    status == 200
}

fn logout_url(p: &Provider, id_token: &str) -> String {
    let after = format!("{REDIRECT}/signed-out");
    let query: Vec<(&str, &str)> = vec![
        ("id_token_hint", id_token),
        ("post_logout_redirect_uri", &after),
        ("state", "bye-1"),
    ];
    let encoded = query
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace(':', "%3A").replace('/', "%2F")))
        .collect::<Vec<_>>()
        .join("&");
    format!("{}/logout?{encoded}", p.issuer)
}

#[tokio::test]
async fn an_id_token_of_the_browsers_session_signs_out_at_once() {
    let p = Provider::start().await;
    let mut agent = Agent::default();
    let tokens = signed_in(&p, &mut agent).await;
    let id_token = tokens["id_token"].as_str().expect("an ID token").to_owned();

    let answer = agent.get(&logout_url(&p, &id_token)).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let to = answer.location.unwrap_or_default();
    assert!(to.starts_with(&format!("{REDIRECT}/signed-out")), "{to}");
    assert_eq!(query_param(&to, "state").as_deref(), Some("bye-1"));

    // The session's sign-in ended; the browser has no session any more.
    p.app.settled_head().await;
    assert!(!refreshes(&p, &tokens).await, "the refresh token is dead");
    let (_, introspected) = post(
        &format!("{}/introspect", p.issuer),
        &[
            ("token", tokens["access_token"].as_str().unwrap_or_default()),
            ("client_id", &p.client_id),
            ("client_secret", &p.secret),
        ],
    )
    .await;
    assert_eq!(introspected["active"], false);
    let again = agent.get(&authorize_url(&p, &p.client_id, &[])).await;
    assert_eq!(again.status, 200, "the sign-in page again");
}

#[tokio::test]
async fn without_the_sessions_own_id_token_the_contact_is_asked() {
    let p = Provider::start().await;
    let mut agent = Agent::default();
    let tokens = signed_in(&p, &mut agent).await;
    // Another browser's token, or none: a page asks, and nothing ends yet.
    let mut other = Agent::default();
    let other_tokens = signed_in(&p, &mut other).await;
    let foreign = other_tokens["id_token"].as_str().unwrap_or_default();
    for url in [logout_url(&p, foreign), format!("{}/logout", p.issuer)] {
        let page = agent.get(&url).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("Sign out?"), "{}", page.body);
    }
    assert!(
        refreshes(&p, &tokens).await,
        "nothing ended without consent"
    );

    // The contact confirms: signed out, and only their session's sign-ins end.
    let page = agent.get(&format!("{}/logout", p.issuer)).await;
    let done = agent.submit(&origin_of(&p.issuer), &page, &[]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("You are signed out"), "{}", done.body);
    p.app.settled_head().await;
    let after = agent.get(&authorize_url(&p, &p.client_id, &[])).await;
    assert_eq!(after.status, 200, "asked for the password again");
    assert!(
        refreshes(&p, &other_tokens).await,
        "the other browser's sign-in stands"
    );
    // A forged confirmation does nothing.
    let forged = agent
        .post(&format!("{}/logout", p.issuer), &[("csrf", "forged")])
        .await;
    assert_eq!(forged.status, 403);
}

/// Asks `client` to revoke `token` (RFC 7009); the status.
async fn revoke(p: &Provider, client: (&str, &str), token: &str) -> u16 {
    let (status, _) = post(
        &format!("{}/revoke", p.issuer),
        &[
            ("token", token),
            ("client_id", client.0),
            ("client_secret", client.1),
        ],
    )
    .await;
    status
}

#[tokio::test]
async fn a_client_revokes_its_sign_in_with_either_token_and_no_one_elses() {
    let p = Provider::start().await;
    let ours = (p.client_id.as_str(), p.secret.as_str());
    let (other_id, other_secret) = crate::oidc_flow::register(
        &p.app,
        &p.key,
        access_proto::v1::OidcClientKind::Confidential,
    )
    .await;
    p.app.settled_head().await;

    // By refresh token.
    let first = signed_in(&p, &mut Agent::default()).await;
    assert_eq!(
        revoke(
            &p,
            ours,
            first["refresh_token"].as_str().unwrap_or_default()
        )
        .await,
        200
    );
    assert!(!refreshes(&p, &first).await, "revoked");

    // By access token, and not by another client.
    let second = signed_in(&p, &mut Agent::default()).await;
    let access = second["access_token"].as_str().unwrap_or_default();
    assert_eq!(revoke(&p, (&other_id, &other_secret), access).await, 200);
    let refresh = second["refresh_token"].as_str().unwrap_or_default();
    let (status, rotated) = token(
        &p,
        ours,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(status, 200, "another client cannot revoke it: {rotated}");
    assert_eq!(revoke(&p, ours, access).await, 200);
    assert!(
        !refreshes(&p, &rotated).await,
        "revoked by its access token"
    );

    // Whatever the token, the same answer; a wrong secret is refused.
    for junk in ["", "nothing", "ort_0123456789abcdef0123456789abcdef_1_x"] {
        assert_eq!(revoke(&p, ours, junk).await, 200, "{junk}");
    }
    assert_eq!(revoke(&p, (ours.0, "ocs_wrong"), "x").await, 401);

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
    assert!(words.contains("the client revoked it"), "{words}");
    assert!(words.contains("from 127.0.0.1"), "{words}");
}

#[tokio::test]
async fn a_password_reset_ends_the_sign_ins_made_before_it() {
    use access_proto::v1 as pb;
    let p = Provider::start().await;
    let before = signed_in(&p, &mut Agent::default()).await;
    p.app
        .sessions()
        .request_password_reset(p.app.req(
            &p.key,
            pb::RequestPasswordResetRequest {
                request_id: access_tests::new_id(),
                login: p.email.clone(),
            },
        ))
        .await
        .expect("asked");
    let link = p.app.wait_for_link(&p.email, "/reset/", 1).await;
    p.app
        .sessions()
        .reset_password(pb::ResetPasswordRequest {
            request_id: access_tests::new_id(),
            token: access_tests::token_of(&link),
            new_password: "harbour9lantern".into(),
        })
        .await
        .expect("reset");
    p.app.settled_head().await;
    // The sign-out worker ends the earlier sign-in shortly after, and says why.
    let mut words = String::new();
    for _ in 0..50 {
        let history = p.app.accessctl(
            &p.key,
            &[
                "audit".as_ref(),
                "replay".as_ref(),
                "--contact".as_ref(),
                p.contact_id.as_ref(),
            ],
        );
        words = String::from_utf8_lossy(&history.stdout).into_owned();
        if words.contains("the contact's password changed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(words.contains("the contact's password changed"), "{words}");
    p.app.settled_head().await;
    assert!(
        !refreshes(&p, &before).await,
        "the sign-in from before the reset ended"
    );
    // A sign-in with the new password stands.
    let back = Agent::default()
        .sign_in(
            &authorize_url(&p, &p.client_id, &[]),
            &p.email,
            "harbour9lantern",
        )
        .await;
    let code = query_param(&back, "code").expect("a code");
    let (status, after) = token(&p, (&p.client_id, &p.secret), &exchange(&code, "")).await;
    assert_eq!(status, 200, "{after}");
    p.app.settled_head().await;
    assert!(refreshes(&p, &after).await, "the new sign-in stands");
}

#[tokio::test]
async fn a_client_that_refuses_its_logout_token_is_recorded_as_given_up() {
    use access_proto::v1 as pb;
    let p = Provider::start().await;
    // A portal that answers 404 where the logout token goes.
    let rp =
        access_tests::relying_party::RelyingParty::start(&p.issuer, &p.client_id, &p.secret).await;
    let refusing = format!("{}/nowhere", rp.url);
    crate::oidc_flow::tell_of_sign_outs(&p.app, &p.key, &p.client_id, &refusing).await;
    p.app.settled_head().await;
    signed_in(&p, &mut Agent::default()).await;
    p.app
        .access()
        .disable_access(p.app.req(
            &p.key,
            pb::ContactCommand {
                request_id: access_tests::new_id(),
                contact_id: p.contact_id.clone(),
                reason: "left".into(),
            },
        ))
        .await
        .expect("disabled");
    let mut words = String::new();
    for _ in 0..100 {
        let history = p.app.accessctl(
            &p.key,
            &[
                "audit".as_ref(),
                "replay".as_ref(),
                "--contact".as_ref(),
                p.contact_id.as_ref(),
            ],
        );
        words = String::from_utf8_lossy(&history.stdout).into_owned();
        if words.contains("gave up telling") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(words.contains("gave up telling 'Web shop'"), "{words}");
    assert!(words.contains("refused the logout token (404"), "{words}");
}
