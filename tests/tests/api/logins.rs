//! Logins created by staff (the Crik-IT and ERP stories): a management and a
//! staff login per customer, temporary passwords that must be changed first,
//! and staff logins that never see costs or balances.

use access_proto::v1 as pb;
use access_tests::{TestApp, new_id};
use tonic::Code;

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

async fn can(
    app: &TestApp,
    key: &str,
    session: &pb::Session,
    action: pb::Action,
) -> pb::CheckAccessReply {
    app.access()
        .check_access(app.req(
            key,
            pb::CheckAccessRequest {
                contact_id: String::new(),
                session_token: session.session_token.clone(),
                action: action as i32,
                document_kind: 0,
                site: String::new(),
                min_position: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner()
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
async fn add_portal_user_creates_a_management_and_a_staff_login_that_must_change_their_passwords() {
    // Arrange
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    let request = pb::AddPortalUserRequest {
        request_id: new_id(),
        customer_id: "C001".into(),
        username: "ACME001".into(),
        email: "boss@bob.example".into(),
        site_rule: None,
        management_password: String::new(),
        staff_password: String::new(),
    };

    // Act
    let added = app
        .access()
        .add_portal_user(app.req(&key, request.clone()))
        .await
        .unwrap()
        .into_inner();
    let retried = app
        .access()
        .add_portal_user(app.req(&key, request))
        .await
        .unwrap()
        .into_inner();

    // Assert: two logins, generated passwords shown, and a retry shows the same.
    assert_eq!(
        (
            added.management_username.as_str(),
            added.staff_username.as_str()
        ),
        ("ACME001", "ACME001S")
    );
    assert_eq!(retried, added);
    assert_eq!(added.management_temporary_password.len(), 12);

    // The contact is told by email that a temporary password was set, never what it is.
    let notice = app.wait_for_outbox("boss@bob.example", "").await;
    assert!(notice.contains("temporary password"), "{notice}");
    assert!(!notice.contains(&added.management_temporary_password));

    // The temporary password logs in only into "must change password".
    let session = login(&app, &key, "ACME001", &added.management_temporary_password)
        .await
        .unwrap();
    assert!(session.must_change_password);
    let refused = can(&app, &key, &session, pb::Action::PlaceOrder).await;
    assert_eq!(
        (refused.allowed, refused.reason.as_str()),
        (false, "password_change_required")
    );
    let err = change(&app, &key, &session, "wrong-one1", "newpass7meadow")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = change(
        &app,
        &key,
        &session,
        &added.management_temporary_password,
        "short",
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let session = change(
        &app,
        &key,
        &session,
        &added.management_temporary_password,
        "newpass7meadow",
    )
    .await
    .unwrap();
    assert!(!session.must_change_password);
    assert!(
        can(&app, &key, &session, pb::Action::PlaceOrder)
            .await
            .allowed
    );
    assert!(
        can(&app, &key, &session, pb::Action::ViewCosts)
            .await
            .allowed
    );
    // Either name works; the old temporary password does not.
    login(&app, &key, "boss@bob.example", "newpass7meadow")
        .await
        .unwrap();
    assert!(
        login(&app, &key, "ACME001", &added.management_temporary_password)
            .await
            .is_err()
    );

    // The staff login orders but never sees costs or balances.
    let staff = login(&app, &key, "acme001s", &added.staff_temporary_password)
        .await
        .unwrap();
    let staff = change(
        &app,
        &key,
        &staff,
        &added.staff_temporary_password,
        "staffpass2",
    )
    .await
    .unwrap();
    assert!(
        can(&app, &key, &staff, pb::Action::PlaceOrder)
            .await
            .allowed
    );
    for action in [pb::Action::ViewCosts, pb::Action::ViewBalance] {
        let reply = can(&app, &key, &staff, action).await;
        assert_eq!(
            (reply.allowed, reply.reason.as_str()),
            (false, "staff_login")
        );
    }
    let contact = app
        .access()
        .get_contact(app.req(
            &key,
            pb::GetContactRequest {
                contact_id: added.staff_contact_id.clone(),
                min_position: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            contact.kind.as_str(),
            contact.has_logged_in,
            contact.email.as_str()
        ),
        ("staff", true, "")
    );

    // A username is unique per tenant, whatever its case.
    let again = pb::AddPortalUserRequest {
        request_id: new_id(),
        customer_id: "C001".into(),
        username: "acme001".into(),
        email: String::new(),
        site_rule: None,
        management_password: String::new(),
        staff_password: String::new(),
    };
    let err = app
        .access()
        .add_portal_user(app.req(&key, again))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn staff_give_a_temporary_password_generated_or_typed() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    let added = app
        .access()
        .add_portal_user(app.req(
            &key,
            pb::AddPortalUserRequest {
                request_id: new_id(),
                customer_id: "C001".into(),
                username: "BOB".into(),
                email: String::new(),
                site_rule: None,
                management_password: "Typed123".into(),
                staff_password: "Typed456".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        added.management_temporary_password.is_empty(),
        "typed passwords are never echoed"
    );
    let session = login(&app, &key, "BOB", "Typed123").await.unwrap();
    assert!(session.must_change_password);
    change(&app, &key, &session, "Typed123", "mine4567")
        .await
        .unwrap();

    // The contact forgot it: staff set a new temporary one.
    let mut access = app.access();
    let weak = pb::SetTemporaryPasswordRequest {
        request_id: new_id(),
        contact_id: added.management_contact_id.clone(),
        password: "abc".into(),
    };
    let before = app.settled_head().await;
    assert_eq!(
        access
            .set_temporary_password(app.req(&key, weak))
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    assert_eq!(app.head().await, before);
    let generated = access
        .set_temporary_password(app.req(
            &key,
            pb::SetTemporaryPasswordRequest {
                request_id: new_id(),
                contact_id: added.management_contact_id.clone(),
                password: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .temporary_password;
    assert!(login(&app, &key, "BOB", "mine4567").await.is_err());
    let session = login(&app, &key, "BOB", &generated).await.unwrap();
    assert!(session.must_change_password);
}

#[tokio::test]
async fn a_tenant_that_chose_it_mails_generated_temporary_passwords_and_never_typed_ones() {
    // Arrange: a tenant that opted in to mailing temporary passwords.
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    access_proto::v1::tenant_admin_client::TenantAdminClient::new(app.channel.clone())
        .set_notification_policy(app.req(
            &key,
            pb::SetNotificationPolicyRequest {
                request_id: new_id(),
                notify_access_disabled: false,
                email_temporary_password: true,
            },
        ))
        .await
        .unwrap();
    let typed = pb::AddPortalUserRequest {
        request_id: new_id(),
        customer_id: "C001".into(),
        username: "TYPED01".into(),
        email: "typed@bob.example".into(),
        site_rule: None,
        management_password: "quill42river".into(),
        staff_password: "pebble93cove".into(),
    };
    let generated = pb::AddPortalUserRequest {
        request_id: new_id(),
        username: "GEN01".into(),
        email: "gen@bob.example".into(),
        management_password: String::new(),
        staff_password: String::new(),
        ..typed.clone()
    };

    // Act
    app.access()
        .add_portal_user(app.req(&key, typed))
        .await
        .unwrap();
    let added = app
        .access()
        .add_portal_user(app.req(&key, generated))
        .await
        .unwrap()
        .into_inner();

    // Assert: the generated password is in its notice, and it works; the
    // typed one is in no email.
    let notice = app.wait_for_outbox("gen@bob.example", "").await;
    assert!(
        notice.contains(&added.management_temporary_password),
        "{notice}"
    );
    let session = login(&app, &key, "GEN01", &added.management_temporary_password)
        .await
        .unwrap();
    assert!(session.must_change_password);
    let typed_notice = app.wait_for_outbox("typed@bob.example", "").await;
    assert!(
        typed_notice.contains("never sent by email"),
        "{typed_notice}"
    );
    assert!(!typed_notice.contains("quill42river"));
}
