//! Password resets: staff send the right email (invitation, welcome or
//! reset); "forgot password" answers the same whether or not the login
//! exists; a reset link works once and sets the identity's password.

use access_proto::v1 as pb;
use access_tests::{TestApp, new_id, token_of};
use tonic::Code;
use tonic_types::StatusExt;

async fn login(
    app: &TestApp,
    key: &str,
    name: &str,
    password: &str,
) -> Result<pb::Session, tonic::Status> {
    app.sessions()
        .login(app.req(
            key,
            pb::LoginRequest {
                request_id: new_id(),
                login: name.into(),
                password: password.into(),
                client_address: String::new(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn forgot(app: &TestApp, key: &str, name: &str) -> String {
    app.sessions()
        .request_password_reset(app.req(
            key,
            pb::RequestPasswordResetRequest {
                request_id: new_id(),
                login: name.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .message
}

async fn reset(app: &TestApp, link: &str, password: &str) -> Result<pb::Session, tonic::Status> {
    app.sessions()
        .reset_password(pb::ResetPasswordRequest {
            request_id: new_id(),
            token: token_of(link),
            new_password: password.into(),
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn forgot_password_mails_a_single_use_link_and_says_the_same_for_unknown_logins() {
    // Arrange: an active contact who has logged in.
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    app.invite(&key, "C1", "bob@bob.example").await;
    let link = app.wait_for_mail("bob@bob.example", 1).await;
    app.sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(&link),
            password: "sunlit7meadow".into(),
        })
        .await
        .unwrap();
    login(&app, &key, "bob@bob.example", "sunlit7meadow")
        .await
        .unwrap();

    // Act
    let known = forgot(&app, &key, "bob@bob.example").await;
    let link = app.wait_for_link("bob@bob.example", "/reset/", 1).await;
    // Asking again at once sends nothing more (one link a minute per login).
    assert_eq!(forgot(&app, &key, "bob@bob.example").await, known);
    let head = app.settled_head().await;
    assert_eq!(app.links_to("bob@bob.example", "/reset/").len(), 1);
    let unknown = forgot(&app, &key, "nobody@bob.example").await;

    // Assert: the same words; a link only for the real login.
    assert_eq!(known, unknown);
    assert_eq!(
        app.settled_head().await,
        head,
        "nothing is written for an unknown login"
    );
    assert!(app.links_to("nobody@bob.example", "/reset/").is_empty());

    // The old password still works until the link is used.
    login(&app, &key, "bob@bob.example", "sunlit7meadow")
        .await
        .unwrap();
    let err = reset(&app, &link, "weak").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let session = reset(&app, &link, "brandnew7").await.unwrap();
    assert!(!session.must_change_password);
    assert!(
        login(&app, &key, "bob@bob.example", "sunlit7meadow")
            .await
            .is_err()
    );
    login(&app, &key, "bob@bob.example", "brandnew7")
        .await
        .unwrap();
    let err = reset(&app, &link, "another88").await.unwrap_err();
    let reason = err
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default();
    assert_eq!(
        (err.code(), reason.as_str()),
        (Code::FailedPrecondition, "link_used")
    );
    // An invitation token is not a reset token.
    let invitation = app.mails_to("bob@bob.example")[0].1.clone();
    assert_eq!(
        reset(&app, &invitation, "another88")
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn staff_send_the_invitation_again_a_welcome_or_a_reset_as_fits_the_contact() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    let send = |contact: String| {
        let app = &app;
        let key = key.clone();
        async move {
            app.access()
                .send_password_reset(app.req(
                    &key,
                    pb::SendPasswordResetRequest {
                        request_id: new_id(),
                        contact_id: contact,
                    },
                ))
                .await
                .map(|r| r.into_inner().email)
        }
    };

    // Never accepted: the invitation again, with a new link.
    let invited = app.invite(&key, "C1", "new@c1.example").await;
    app.wait_for_mail("new@c1.example", 1).await;
    assert_eq!(
        send(invited.contact_id.clone()).await.unwrap(),
        "invitation_resent"
    );
    app.wait_for_mail("new@c1.example", 2).await;

    // Created by staff and never logged in: a welcome that sets the password.
    let pair = app
        .access()
        .add_portal_user(app.req(
            &key,
            pb::AddPortalUserRequest {
                request_id: new_id(),
                customer_id: "C1".into(),
                username: "C1MGR".into(),
                email: "mgr@c1.example".into(),
                site_rule: None,
                management_password: String::new(),
                staff_password: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        send(pair.management_contact_id.clone()).await.unwrap(),
        "welcome"
    );
    let link = app.wait_for_link("mgr@c1.example", "/reset/", 1).await;
    reset(&app, &link, "mgrpass1").await.unwrap();
    let session = login(&app, &key, "C1MGR", "mgrpass1").await.unwrap();
    assert!(
        !session.must_change_password,
        "the emailed link replaced the temporary password"
    );

    // Logged in before: a password reset.
    assert_eq!(
        send(pair.management_contact_id.clone()).await.unwrap(),
        "password_reset"
    );
    // The staff login has no email: no link, a clear refusal.
    let err = send(pair.staff_contact_id.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn accepting_an_invitation_over_grpc_is_the_first_login() {
    // Arrange: a contact who accepted over gRPC, which opens a session, and
    // never logged in otherwise.
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    let invited = app.invite(&key, "C1", "ann@c1.example").await;
    let link = app.wait_for_mail("ann@c1.example", 1).await;
    let session = app.accept(&link, "sunlit7meadow").await;
    assert!(!session.session_token.is_empty());

    // Act
    let sent = app
        .access()
        .send_password_reset(app.req(
            &key,
            pb::SendPasswordResetRequest {
                request_id: new_id(),
                contact_id: invited.contact_id,
            },
        ))
        .await
        .unwrap()
        .into_inner();

    // Assert: a reset, not a welcome asking to set a password she set.
    assert_eq!(sent.email, "password_reset");
}
