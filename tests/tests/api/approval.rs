//! The Crik-IT approval story: username administrators are told of each
//! registration; the contact cannot log in until approved; approval mails the
//! contact; a rejected registration frees the email.

use access_proto::v1 as pb;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use access_tests::{TestApp, new_id, token_of};
use tonic::Code;
use tonic_types::StatusExt;

async fn login(app: &TestApp, key: &str) -> Result<tonic::Response<pb::Session>, tonic::Status> {
    let request = pb::LoginRequest {
        request_id: new_id(),
        login: "eve@c1.example".into(),
        password: "sunlit7meadow".into(),
        client_address: String::new(),
    };
    app.sessions().login(app.req(key, request)).await
}

#[tokio::test]
async fn registrations_wait_for_approval_and_rejection_frees_the_email() {
    // Arrange
    let app = TestApp::spawn().await;
    let key = app.create_tenant("crik").await;
    app.create_customer(&key, "C1").await;
    let mut admin = TenantAdminClient::new(app.channel.clone());
    let policy = |required| pb::SetApprovalPolicyRequest {
        request_id: new_id(),
        approval_required: required,
    };
    let err = admin
        .set_approval_policy(app.req(&key, policy(true)))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "administrators come first"
    );
    admin
        .set_username_administrators(app.req(
            &key,
            pb::SetUsernameAdministratorsRequest {
                request_id: new_id(),
                emails: vec!["admin@crik.example".into()],
            },
        ))
        .await
        .unwrap();
    let tenant = admin
        .set_approval_policy(app.req(&key, policy(true)))
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert!(tenant.approval_required);
    assert_eq!(tenant.username_administrators, vec!["admin@crik.example"]);

    // Act: a contact registers.
    let invited = app.invite(&key, "C1", "eve@c1.example").await;
    let link = app.wait_for_mail("eve@c1.example", 1).await;
    let session = app
        .sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(&link),
            password: "sunlit7meadow".into(),
        })
        .await
        .unwrap()
        .into_inner();

    // Assert: no session yet; the administrators are told; logins wait.
    assert!(session.pending_approval);
    assert!(session.session_token.is_empty());
    app.wait_for_outbox("admin@crik.example", "awaiting approval")
        .await;
    let err = login(&app, &key).await.unwrap_err();
    let reason = err
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default();
    assert_eq!(
        (err.code(), reason.as_str()),
        (Code::PermissionDenied, "pending_approval")
    );

    let cmd = |id: &str| pb::ContactCommand {
        request_id: new_id(),
        contact_id: id.into(),
        reason: String::new(),
    };
    let approved = app
        .access()
        .approve_user(app.req(&key, cmd(&invited.contact_id)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(approved.contact.unwrap().status, "active");
    app.wait_for_outbox("eve@c1.example", "is approved").await;
    login(&app, &key).await.unwrap();
    assert_eq!(
        app.access()
            .approve_user(app.req(&key, cmd(&invited.contact_id)))
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );

    // A second registration is rejected: the login is gone and the email free.
    let other = app.invite(&key, "C1", "mal@c1.example").await;
    let link = app.wait_for_mail("mal@c1.example", 1).await;
    app.sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(&link),
            password: "sunlit7meadow".into(),
        })
        .await
        .unwrap();
    let rejected = app
        .access()
        .reject_user(app.req(&key, cmd(&other.contact_id)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.contact.unwrap().status, "revoked");
    app.invite(&key, "C1", "mal@c1.example").await;
}
