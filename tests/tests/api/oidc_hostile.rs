//! Hostile requests to the provider's endpoints, with and without a valid
//! client: malformed, oversized, duplicated, wrongly typed and forged input
//! of every field each endpoint reads. None gets a server error, none
//! appends anything, and the provider still signs a contact in afterwards.

use crate::oidc_flow::{PASSWORD, Provider, REDIRECT};
use crate::oidc_refusals::{authorize_url, exchange, token};
use access_tests::signin::{Agent, query_param};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// Tokens shaped like ours but forged: right prefixes, wrong MACs, other
/// generations, none algorithms, huge and broken JWTs.
fn forged_tokens(p: &Provider) -> Vec<String> {
    let fake_grant = "0123456789abcdef0123456789abcdef";
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt","kid":"x"}"#);
    let claims = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"iss":"{}","sub":"x","grant":"{fake_grant}","exp":9999999999}}"#,
        p.issuer
    ));
    vec![
        String::new(),
        "occ_".into(),
        format!("occ_{fake_grant}_{}", "A".repeat(43)),
        format!("ort_{fake_grant}_1_{}", "A".repeat(43)),
        format!("ort_{fake_grant}_99999999999_{}", "A".repeat(43)),
        format!("ort_{fake_grant}_-1_x"),
        format!("ort_../../etc_1_x"),
        format!("{header}.{claims}."),
        format!("{header}.{claims}.{}", "A".repeat(86)),
        "a.b.c.d".into(),
        "%00%ff".into(),
        "x".repeat(9_000),
        "é".repeat(100),
    ]
}

#[tokio::test]
async fn the_provider_answers_hostile_requests_without_a_server_error_and_changes_nothing() {
    let p = Provider::start().await;
    let before = p.app.settled_head().await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let base = format!("http://{}", p.app.http_addr);
    let ok = |answer: &reqwest::Response, what: &str| {
        assert!(
            !answer.status().is_server_error(),
            "{what}: {}",
            answer.status()
        );
    };
    let mut bodies: Vec<String> = vec![
        String::new(),
        "grant_type=authorization_code&grant_type=refresh_token".into(),
        "a=b&&&===&%%%".into(),
        "grant_type=%FF%FE&code=%00".into(),
        format!(
            "grant_type=refresh_token&refresh_token={}",
            "r".repeat(15_000)
        ),
        format!("client_id={}&client_secret=x", "c".repeat(5_000)),
        "client_id=%00&client_secret=%00&token=%00".into(),
    ];
    for forged in forged_tokens(&p) {
        let enc = forged.replace('%', "%25").replace('&', "%26");
        bodies.push(format!(
            "grant_type=authorization_code&code={enc}&redirect_uri={REDIRECT}&client_id={}&client_secret={}",
            p.client_id, p.secret
        ));
        bodies.push(format!(
            "grant_type=refresh_token&refresh_token={enc}&client_id={}&client_secret={}",
            p.client_id, p.secret
        ));
        bodies.push(format!(
            "token={enc}&client_id={}&client_secret={}",
            p.client_id, p.secret
        ));
    }
    let basics = [
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", p.client_id, p.secret))
        ),
        "Basic !!!notbase64".into(),
        format!("Basic {}", STANDARD.encode([0xff, 0xfe, b':', 0x00])),
        format!("Basic {}", STANDARD.encode("no-colon")),
        "Bearer x".into(),
    ];
    for path in ["token", "introspect", "revoke"] {
        let url = format!("{base}/t/acme/{path}");
        for body in &bodies {
            for content_type in ["application/x-www-form-urlencoded", "application/json"] {
                let answer = http
                    .post(&url)
                    .header("content-type", content_type)
                    .body(body.clone())
                    .send()
                    .await
                    .expect("answer");
                let shown: String = body.chars().take(50).collect();
                ok(&answer, &format!("{path} {content_type} {shown:?}"));
            }
        }
        for basic in &basics {
            let answer = http
                .post(&url)
                .header("authorization", basic)
                .form(&[("grant_type", "refresh_token"), ("token", "x")])
                .send()
                .await
                .expect("answer");
            ok(&answer, &format!("{path} with {basic}"));
        }
        // Too large to read: refused unread (or the connection closed first).
        if let Ok(answer) = http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={}", "y".repeat(100_000)))
            .send()
            .await
        {
            assert_eq!(answer.status().as_u16(), 413, "{path}");
        }
        let other_tenant = http
            .post(format!("{base}/t/..%2Fetc/{path}"))
            .form(&[("token", "x")])
            .send()
            .await
            .expect("answer");
        assert_eq!(other_tenant.status().as_u16(), 404, "{path}");
    }
    for forged in forged_tokens(&p) {
        let answer = http
            .get(format!("{base}/t/acme/userinfo"))
            .header("authorization", format!("Bearer {forged}"))
            .send()
            .await;
        // A header value the client will not send is no request at all.
        if let Ok(answer) = answer {
            ok(&answer, "userinfo");
            assert_eq!(answer.status().as_u16(), 401);
        }
    }
    for query in [
        String::new(),
        "response_type=code".into(),
        format!(
            "client_id={}&redirect_uri=%FF&response_type=code",
            p.client_id
        ),
        format!(
            "client_id={}&redirect_uri={REDIRECT}&response_type=code&scope=openid&state={}",
            p.client_id,
            "s".repeat(5000)
        ),
        format!(
            "client_id={}&redirect_uri={REDIRECT}&response_type=code&scope=openid&nonce={}",
            p.client_id,
            "n".repeat(300)
        ),
        format!(
            "client_id={}&redirect_uri={REDIRECT}&response_type=code&scope=openid&max_age=-5",
            p.client_id
        ),
        format!(
            "client_id={}&redirect_uri={REDIRECT}&response_type=code&scope=openid&prompt=none%20login",
            p.client_id
        ),
        format!(
            "client_id={}&redirect_uri={REDIRECT}&response_type=code&scope=openid&code_challenge=%00&code_challenge_method=S256",
            p.client_id
        ),
        "%%%&&&===".into(),
    ] {
        for path in ["authorize", "logout"] {
            let answer = http
                .get(format!("{base}/t/acme/{path}?{query}"))
                .send()
                .await
                .expect("answer");
            let shown: String = query.chars().take(60).collect();
            ok(&answer, &format!("{path}?{shown}"));
            if let Some(to) = answer
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
            {
                assert!(
                    query_param(to, "code").is_none(),
                    "no code for {query}: {to}"
                );
            }
        }
    }
    assert_eq!(
        p.app.head().await,
        before,
        "a hostile request appended events"
    );

    // And the provider still works.
    let back = Agent::default()
        .sign_in(&authorize_url(&p, &p.client_id, &[]), &p.email, PASSWORD)
        .await;
    let code = query_param(&back, "code").expect("a code");
    let (status, _) = token(&p, (&p.client_id, &p.secret), &exchange(&code, "")).await;
    assert_eq!(status, 200);
}
