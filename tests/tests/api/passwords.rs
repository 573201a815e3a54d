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
