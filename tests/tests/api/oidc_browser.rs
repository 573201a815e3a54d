//! A contact signs in to portals built on Authlib (Python), in headless
//! Chromium: the portal's own login link, the provider's sign-in page, and
//! back to the portal, which redeemed the code and verified the ID token,
//! userinfo, refresh and reuse detection with its own libraries.

use crate::oidc_flow::{
    PASSWORD, Provider, portal_settings, register, tell_of_sign_outs, update_client,
};
use access_proto::v1 as pb;
use access_tests::browser::Browser;
use access_tests::new_id;
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

/// The logout tokens the portal received and verified.
async fn logouts(b: &Browser, rp: &RelyingParty, count: usize) -> Vec<serde_json::Value> {
    for _ in 0..100 {
        b.client
            .goto(&format!("{}/logouts", rp.url))
            .await
            .expect("the portal");
        // The list may be empty yet ("[]"): read it as it is, then again.
        let shown = b
            .client
            .find(Locator::Id("result"))
            .await
            .expect("the list")
            .text()
            .await
            .expect("its text");
        let list: Vec<serde_json::Value> = serde_json::from_str(&shown).unwrap_or_default();
        if list.len() >= count {
            return list;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the portal was not told of {count} sign-outs");
}

#[tokio::test]
async fn a_portal_is_told_when_a_contact_loses_access() {
    let p = Provider::start().await;
    let rp = RelyingParty::start(&p.issuer, &p.client_id, &p.secret).await;
    tell_of_sign_outs(
        &p.app,
        &p.key,
        &p.client_id,
        &format!("{}/backchannel", rp.url),
    )
    .await;
    p.app.settled_head().await;

    let b = Browser::start(true).await;
    b.client
        .goto(&format!("{}/login", rp.url))
        .await
        .expect("the portal");
    b.type_into("login", &p.email).await;
    b.type_into("current", PASSWORD).await;
    b.submit().await;
    let signed_in = result(&b).await;
    assert_eq!(signed_in["sub"], p.contact_id.as_str(), "{signed_in}");
    // The portal's own reuse test ended that sign-in: it was told of it.
    let told = logouts(&b, &rp, 1).await;
    assert_eq!(told[0]["sub"], p.contact_id.as_str(), "{told:?}");

    // A second sign-in, kept live, then staff disable the contact.
    b.client
        .goto(&format!("{}/login?prompt=none&keep=1", rp.url))
        .await
        .expect("the portal");
    let again = result(&b).await;
    assert_eq!(again["sub"], p.contact_id.as_str(), "{again}");
    let before = logouts(&b, &rp, 1).await.len();
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
    let told = logouts(&b, &rp, before + 1).await;
    let last = told.last().cloned().unwrap_or_default();
    assert_eq!(last["sub"], p.contact_id.as_str(), "{last}");
    assert_eq!(last["sid"], signed_in["sid"], "{last}");
    assert_eq!(last["iss"], p.issuer.as_str(), "{last}");

    // The history says so.
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
    assert!(
        words.contains("the contact may no longer sign in"),
        "{words}"
    );
    assert!(
        words.contains("told 'Web shop' (") && words.contains("that the sign-in ended"),
        "{words}"
    );
}

#[tokio::test]
async fn an_invitation_ends_signed_in_at_the_portal_with_a_standard_code() {
    let p = Provider::start().await;
    let rp = RelyingParty::start(&p.issuer, &p.client_id, &p.secret).await;
    let mut settings = portal_settings("");
    settings.initiate_login_uri = format!("{}/login", rp.url);
    update_client(&p.app, &p.key, &p.client_id, settings).await;
    p.app.invite(&p.key, "C1", "ben@c1.example").await;
    let link = p.app.wait_for_mail("ben@c1.example", 1).await;

    // The invitation's page, a password, and the portal's own sign-in,
    // which the provider session completes without asking again.
    let b = Browser::start(true).await;
    b.client.goto(&link).await.expect("the invitation");
    b.type_into("password", "harbour9lantern").await;
    b.submit().await;
    let shown = result(&b).await;
    assert_eq!(shown["email"], "ben@c1.example", "{shown}");
    assert_eq!(shown["tenant"], "acme", "{shown}");
    assert_eq!(shown["refreshed"], true, "{shown}");
}
