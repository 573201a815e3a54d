//! A contact signs in to portals built on Authlib (Python), in headless
//! Chromium: the portal's own login link, the provider's sign-in page, and
//! back to the portal, which redeemed the code and verified the ID token,
//! userinfo, refresh and reuse detection with its own libraries.

use crate::oidc_flow::{PASSWORD, Provider, register};
use access_proto::v1 as pb;
use access_tests::browser::Browser;
use access_tests::relying_party::RelyingParty;
use fantoccini::Locator;

/// What the portal showed after the sign-in, as JSON.
async fn result(b: &Browser) -> serde_json::Value {
    let text = b.text_with("{").await;
    assert!(!text.contains("Error"), "{text}");
    let shown = b
        .client
        .find(Locator::Id("result"))
        .await
        .unwrap_or_else(|_| panic!("a result: {text}"))
        .text()
        .await
        .expect("its text");
    serde_json::from_str(&shown).unwrap_or_else(|e| panic!("{e}: {shown}"))
}

#[tokio::test]
async fn contacts_sign_in_to_authlib_portals_in_a_browser() {
    let p = Provider::start().await;
    let (public_id, _) = register(&p.app, &p.key, pb::OidcClientKind::Public).await;
    p.app.settled_head().await;
    let confidential = RelyingParty::start(&p.issuer, &p.client_id, &p.secret).await;
    let public = RelyingParty::start(&p.issuer, &public_id, "").await;

    // A confidential portal, JavaScript on: the sign-in page asks once.
    let b = Browser::start(true).await;
    b.client
        .goto(&format!("{}/login", confidential.url))
        .await
        .expect("the portal");
    b.text_with("Sign in to Web shop").await;
    b.type_into("login", &p.email).await;
    b.type_into("current", PASSWORD).await;
    b.submit().await;
    let shown = result(&b).await;
    assert_eq!(shown["sub"], p.contact_id.as_str(), "{shown}");
    assert_eq!(shown["email"], "ann@c1.example", "{shown}");
    assert_eq!(shown["tenant"], "acme", "{shown}");
    assert_eq!(shown["userinfo_sub"], p.contact_id.as_str(), "{shown}");
    assert_eq!(shown["refreshed"], true, "{shown}");
    assert_eq!(
        (
            shown["reuse_status"].as_u64(),
            shown["reuse_error"].as_str()
        ),
        (Some(400), Some("invalid_grant")),
        "{shown}"
    );

    // A public portal (PKCE, no secret) in the same browser: the provider
    // session lets the contact through without the password.
    b.client
        .goto(&format!("{}/login", public.url))
        .await
        .expect("the portal");
    let again = result(&b).await;
    assert_eq!(again["sub"], p.contact_id.as_str(), "{again}");
    assert_eq!(again["sid"], shown["sid"], "one provider session: {again}");
    b.screenshot("oidc-signed-in").await;

    // prompt=none in a browser without a session: the portal hears why.
    let fresh = Browser::start(false).await;
    fresh
        .client
        .goto(&format!("{}/login?prompt=none", public.url))
        .await
        .expect("the portal");
    let none = result(&fresh).await;
    assert_eq!(none["error"], "login_required", "{none}");
}
