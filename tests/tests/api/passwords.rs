//! Password rules beyond the seeds' floor: common passwords and passwords
//! made of the login's own names are refused everywhere a password is
//! chosen; a tenant can raise the length and ask for mixed case and a symbol.

use access_proto::v1 as pb;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use access_tests::{TestApp, invite_request, new_id, token_of};
use tonic::Code;
use tonic_types::StatusExt;

fn violation(status: &tonic::Status) -> (String, String) {
    status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.into_iter().next())
        .map(|v| (v.field, v.description))
        .unwrap_or_default()
}

async fn accept(app: &TestApp, link: &str, password: &str) -> Result<pb::Session, tonic::Status> {
    app.sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(link),
            password: password.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn change(
    app: &TestApp,
    key: &str,
    session: &pb::Session,
    current: &str,
    new: &str,
) -> Result<pb::Session, tonic::Status> {
    app.sessions()
        .change_password(app.req(
            key,
            pb::ChangePasswordRequest {
                request_id: new_id(),
                session_token: session.session_token.clone(),
                current_password: current.into(),
                new_password: new.into(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn common_passwords_and_the_logins_own_names_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    app.access()
        .invite_customer(app.req(
            &key,
            invite_request("C001", "robert.smith@hardware.example", None),
        ))
        .await
        .expect("invite");
    let link = app.wait_for_mail("robert.smith@hardware.example", 1).await;
    let head = app.settled_head().await;

    for (password, words) in [
        ("Password1", "most common"),
        ("qwerty123", "most common"),
        ("robert.smith2024", "email or username"),
    ] {
        let refused = accept(&app, &link, password).await.expect_err(password);
        assert_eq!(refused.code(), Code::InvalidArgument, "{password}");
        let (field, description) = violation(&refused);
        assert_eq!(field, "password");
        assert!(description.contains(words), "{password}: {description}");
    }
    assert_eq!(app.settled_head().await, head, "a refusal writes nothing");

    let session = accept(&app, &link, "sunlit7meadow")
        .await
        .expect("the link still works");
    let refused = change(&app, &key, &session, "sunlit7meadow", "abc123")
        .await
        .expect_err("common");
    assert_eq!(violation(&refused).0, "new_password");
}

#[tokio::test]
async fn a_tenant_raises_the_rules_and_every_form_can_show_them() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    let mut admin = TenantAdminClient::new(app.channel.clone());

    let too_low = admin
        .set_password_policy(app.req(
            &key,
            pb::SetPasswordPolicyRequest {
                request_id: new_id(),
                min_length: 5,
                require_mixed_case: false,
                require_symbol: false,
            },
        ))
        .await
        .expect_err("below the floor");
    assert_eq!(too_low.code(), Code::InvalidArgument);
    assert_eq!(violation(&too_low).0, "min_length");

    let tenant = admin
        .set_password_policy(app.req(
            &key,
            pb::SetPasswordPolicyRequest {
                request_id: new_id(),
                min_length: 12,
                require_mixed_case: true,
                require_symbol: true,
            },
        ))
        .await
        .expect("raised")
        .into_inner()
        .tenant
        .expect("tenant");
    let policy = tenant.password_policy.expect("policy");
    assert_eq!(
        (
            policy.min_length,
            policy.require_mixed_case,
            policy.require_symbol
        ),
        (12, true, true)
    );
    assert_eq!(policy.rules[0], "at least 12 characters");
    assert!(policy.rules.iter().any(|r| r.contains("most common")));

    app.access()
        .invite_customer(app.req(&key, invite_request("C001", "ann@shop.example", None)))
        .await
        .expect("invite");
    let link = app.wait_for_mail("ann@shop.example", 1).await;
    for (password, words) in [
        ("sunlit7mead", "12"),
        ("sunlit7meadow", "upper-case"),
        ("Sunlit7meadow", "symbol"),
    ] {
        let refused = accept(&app, &link, password).await.expect_err(password);
        assert!(
            violation(&refused).1.contains(words),
            "{password}: {refused:?}"
        );
    }
    accept(&app, &link, "Sunlit7meadow!")
        .await
        .expect("meets every rule");
}

/// Each hashing thread fills the same memory for every hash: a burst of
/// logins leaves the process no bigger than one hash did. (Allocated per
/// hash, the blocks stayed in the allocator's arenas: 500 passwords set at
/// the default cost left 450 MiB resident.)
#[tokio::test]
async fn a_burst_of_logins_leaves_resident_memory_where_one_login_did() {
    let app =
        TestApp::spawn_with(&["--argon2-memory-kib", "19456", "--argon2-iterations", "1"]).await;
    let key = app.create_tenant("acme").await;
    let login = |i: usize| {
        let mut sessions = app.sessions();
        let request = app.req(
            &key,
            pb::LoginRequest {
                request_id: new_id(),
                login: format!("nobody{i}@shop.example"),
                password: "not this one".into(),
                client_address: format!("10.1.{}.{}", i / 200, i % 200),
            },
        );
        async move { sessions.login(request).await.map(|_| ()) }
    };
    // Every hashing thread has hashed once.
    futures::future::join_all((0..8).map(login)).await;
    let before = app.rss_kib().expect("resident memory");
    let answers = futures::future::join_all((8..408).map(login)).await;
    assert!(
        answers
            .iter()
            .all(|a| a.as_ref().err().map(|s| s.code()) == Some(Code::Unauthenticated)),
        "every try is a plain wrong password"
    );
    let after = app.rss_kib().expect("resident memory");
    eprintln!("resident memory before the burst {before} KiB, after {after} KiB");
    assert!(
        after <= before + 24 * 1024,
        "400 logins at 19 MiB a hash grew the process from {before} KiB to {after} KiB"
    );
}
