//! The Inzant story: "has website access" switched off and on with nothing
//! lost, and access details changed and saved, sending the email that fits
//! (an invitation to a contact who never logged in, a reset to one who did).

use access_proto::v1 as pb;
use access_tests::{TestApp, new_id, token_of};
use tonic::Code;

async fn update(
    app: &TestApp,
    key: &str,
    contact: &str,
    email: &str,
    username: &str,
    send: bool,
) -> Result<pb::UpdateContactReply, tonic::Status> {
    let request = pb::UpdateContactRequest {
        request_id: new_id(),
        contact_id: contact.into(),
        email: email.into(),
        username: username.into(),
        send_access_email: send,
    };
    app.access()
        .update_contact(app.req(key, request))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn website_access_toggles_and_changed_details_send_the_fitting_email() {
    // Arrange: one contact who logged in, one who never accepted.
    let app = TestApp::spawn().await;
    let key = app.create_tenant("inzant").await;
    app.create_customer(&key, "ACC100").await;
    let active = app
        .invite(&key, "ACC100", "ann@acc100.example")
        .await
        .contact_id;
    let link = app.wait_for_mail("ann@acc100.example", 1).await;
    app.sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(&link),
            password: "sunlit7meadow".into(),
        })
        .await
        .unwrap();
    let login = |name: &str, password: &str| {
        let request = app.req(
            &key,
            pb::LoginRequest {
                request_id: new_id(),
                login: name.into(),
                password: password.into(),
                client_address: String::new(),
            },
        );
        let mut sessions = app.sessions();
        async move { sessions.login(request).await }
    };
    login("ann@acc100.example", "sunlit7meadow").await.unwrap();
    let pending = app
        .invite(&key, "ACC100", "ben@acc100.example")
        .await
        .contact_id;
    app.wait_for_mail("ben@acc100.example", 1).await;

    // The tenant tells contacts when their access is switched off.
    access_proto::v1::tenant_admin_client::TenantAdminClient::new(app.channel.clone())
        .set_notification_policy(app.req(
            &key,
            pb::SetNotificationPolicyRequest {
                request_id: new_id(),
                notify_access_disabled: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap();

    // Website access off and on: nothing lost.
    let cmd = || pb::ContactCommand {
        request_id: new_id(),
        contact_id: active.clone(),
        reason: "website access off".into(),
    };
    app.access()
        .disable_access(app.req(&key, cmd()))
        .await
        .unwrap();
    assert_eq!(
        login("ann@acc100.example", "sunlit7meadow")
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    // The contact is told access is disabled.
    app.wait_for_outbox("ann@acc100.example", "is disabled")
        .await;
    app.access()
        .restore_access(app.req(&key, cmd()))
        .await
        .unwrap();
    login("ann@acc100.example", "sunlit7meadow").await.unwrap();

    // A username (the account number) added and saved: a reset, since she logged in before.
    let reply = update(&app, &key, &active, "ann@acc100.example", "ACC100", true)
        .await
        .unwrap();
    assert_eq!(reply.email_sent, "password_reset");
    assert_eq!(reply.contact.unwrap().username, "ACC100");
    login("acc100", "sunlit7meadow").await.unwrap();
    app.wait_for_link("ann@acc100.example", "/reset/", 1).await;

    // A corrected address for the contact who never accepted: the invitation goes there.
    let reply = update(&app, &key, &pending, "ben.smith@acc100.example", "", false)
        .await
        .unwrap();
    assert_eq!(reply.email_sent, "invitation_resent");
    let link = app.wait_for_mail("ben.smith@acc100.example", 1).await;
    app.sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(&link),
            password: "benpass1".into(),
        })
        .await
        .unwrap();
    login("ben.smith@acc100.example", "benpass1").await.unwrap();
    assert!(
        login("ben@acc100.example", "benpass1").await.is_err(),
        "the old address no longer logs in"
    );

    // A username taken by someone else is refused, and nothing changes.
    let head = app.settled_head().await;
    let err = update(
        &app,
        &key,
        &pending,
        "ben.smith@acc100.example",
        "ACC100",
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(app.head().await, head);
}
