//! Bad input gets a clear gRPC error and changes nothing: the log's head is
//! the same before and after every refused call.

use access_proto::v1 as pb;
use access_tests::{TestApp, invite_request, new_id, token_of};
use std::time::Duration;
use tonic::Code;
use tonic_types::StatusExt;

/// Asserts a refusal with `code`, naming `field` if given, and that nothing was appended.
async fn refused<T: std::fmt::Debug>(
    app: &TestApp,
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
    code: Code,
    field: Option<&str>,
) -> tonic::Status {
    let before = app.settled_head().await;
    let status = call.await.expect_err("the call must be refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(!status.message().is_empty());
    if let Some(field) = field {
        let violations = status
            .get_details_bad_request()
            .expect("field violations")
            .field_violations;
        assert!(
            violations.iter().any(|v| v.field == field),
            "{violations:?} lacks {field}"
        );
    }
    assert_eq!(app.head().await, before, "a refused call appended events");
    status
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

fn accept_request(link: &str, password: &str) -> pb::AcceptInvitationRequest {
    pb::AcceptInvitationRequest {
        request_id: new_id(),
        token: token_of(link),
        password: password.into(),
    }
}

#[tokio::test]
async fn invitations_with_bad_input_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    let mut access = app.access();

    let mut r = invite_request("C001", "not-an-email", None);
    refused(
        &app,
        access.invite_customer(app.req(&key, r.clone())),
        Code::InvalidArgument,
        Some("email"),
    )
    .await;
    r.email = String::new();
    refused(
        &app,
        access.invite_customer(app.req(&key, r)),
        Code::InvalidArgument,
        Some("email"),
    )
    .await;

    let mut r = invite_request("C001", "bob@hardware.example", None);
    r.message = "   \n ".into();
    refused(
        &app,
        access.invite_customer(app.req(&key, r)),
        Code::InvalidArgument,
        Some("message"),
    )
    .await;

    let mut r = invite_request("", "", None);
    r.message = String::new();
    let status = refused(
        &app,
        access.invite_customer(app.req(&key, r)),
        Code::InvalidArgument,
        Some("customer_id"),
    )
    .await;
    assert_eq!(
        status
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .len(),
        3,
        "every problem at once"
    );

    let r = invite_request("NOPE", "bob@hardware.example", None);
    refused(
        &app,
        access.invite_customer(app.req(&key, r)),
        Code::NotFound,
        None,
    )
    .await;

    let r = invite_request("C001", "bob@hardware.example", Some("Hull"));
    refused(
        &app,
        access.invite_customer(app.req(&key, r)),
        Code::InvalidArgument,
        Some("site_rule.one_site.site"),
    )
    .await;

    app.invite(&key, "C001", "bob@hardware.example").await;
    let r = invite_request("C001", "Bob@Hardware.example", None);
    refused(
        &app,
        access.invite_customer(app.req(&key, r)),
        Code::AlreadyExists,
        None,
    )
    .await;

    let mut r = invite_request("C001", "carol@hardware.example", None);
    r.request_id = String::new();
    refused(
        &app,
        access.invite_customer(app.req(&key, r)),
        Code::InvalidArgument,
        Some("request_id"),
    )
    .await;
}

#[tokio::test]
async fn weak_passwords_used_links_and_replaced_links_are_refused() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    let invited = app.invite(&key, "C001", "bob@hardware.example").await;
    let first_link = app.wait_for_mail("bob@hardware.example", 1).await;
    let mut sessions = app.sessions();

    for (password, why) in [
        ("abc12", "at least 6"),
        ("abcdefgh", "digit"),
        ("12345678", "letter"),
    ] {
        let status = refused(
            &app,
            sessions.accept_invitation(accept_request(&first_link, password)),
            Code::InvalidArgument,
            Some("password"),
        )
        .await;
        assert!(status.message().contains(why), "{}", status.message());
    }
    refused(
        &app,
        sessions.accept_invitation(accept_request("http://x/invite/forged", "sunlit7meadow")),
        Code::InvalidArgument,
        Some("token"),
    )
    .await;

    // A resend kills the old link.
    app.access()
        .resend_invitation(app.req(
            &key,
            pb::ResendInvitationRequest {
                request_id: new_id(),
                contact_id: invited.contact_id.clone(),
            },
        ))
        .await
        .unwrap();
    let new_link = app.wait_for_mail("bob@hardware.example", 2).await;
    assert_ne!(new_link, first_link);
    let status = refused(
        &app,
        sessions.accept_invitation(accept_request(&first_link, "sunlit7meadow")),
        Code::FailedPrecondition,
        None,
    )
    .await;
    assert_eq!(reason(&status), "link_superseded");

    // The new link works once.
    sessions
        .accept_invitation(accept_request(&new_link, "sunlit7meadow"))
        .await
        .unwrap();
    let status = refused(
        &app,
        sessions.accept_invitation(accept_request(&new_link, "sunlit7meadow")),
        Code::FailedPrecondition,
        None,
    )
    .await;
    assert_eq!(reason(&status), "link_used");
}

#[tokio::test]
async fn an_expired_link_is_refused() {
    let app = TestApp::spawn_with(&["--link-ttl", "1s"]).await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    app.invite(&key, "C001", "bob@hardware.example").await;
    let link = app.wait_for_mail("bob@hardware.example", 1).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let status = refused(
        &app,
        app.sessions()
            .accept_invitation(accept_request(&link, "sunlit7meadow")),
        Code::FailedPrecondition,
        None,
    )
    .await;
    assert_eq!(reason(&status), "link_expired");
    assert!(status.message().contains("expired"));
    // Staff see it among the expired invitations, to resend.
    let report = app
        .access()
        .list_access(app.req(
            &key,
            pb::ListAccessRequest {
                filter: None,
                status: "invitation_expired".into(),
                page_size: 0,
                page_token: String::new(),
                min_position: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.rows.len(), 1);
    assert_eq!(report.rows[0].email, "bob@hardware.example");
}

#[tokio::test]
async fn keys_are_checked_and_tenants_cannot_see_each_other() {
    let app = TestApp::spawn().await;
    let a = app.create_tenant("tenant-a").await;
    let b = app.create_tenant("tenant-b").await;
    app.create_customer(&b, "B001").await;
    let b_contact = app.invite(&b, "B001", "bea@b.example").await.contact_id;
    let mut access = app.access();
    let customer = || pb::CreateCustomerRequest {
        request_id: new_id(),
        customer: Some(access_tests::customer("X", None)),
    };

    // Missing, malformed and wrong keys.
    refused(
        &app,
        access.create_customer(tonic::Request::new(customer())),
        Code::Unauthenticated,
        None,
    )
    .await;
    refused(
        &app,
        access.create_customer(app.req("nonsense", customer())),
        Code::Unauthenticated,
        None,
    )
    .await;
    let last = if a.ends_with('x') { 'y' } else { 'x' };
    let forged = format!("{}{last}", &a[..a.len() - 1]);
    refused(
        &app,
        access.create_customer(app.req(&forged, customer())),
        Code::Unauthenticated,
        None,
    )
    .await;
    // The operator key does not act inside a tenant; a tenant key cannot create tenants.
    refused(
        &app,
        access.create_customer(app.req(&app.operator_key, customer())),
        Code::PermissionDenied,
        None,
    )
    .await;
    let tenant = pb::CreateTenantRequest {
        request_id: new_id(),
        tenant_id: "evil".into(),
        name: "Evil".into(),
        sites: vec!["X".into()],
        default_order_site: "X".into(),
    };
    refused(
        &app,
        app.operator().create_tenant(app.req(&a, tenant)),
        Code::PermissionDenied,
        None,
    )
    .await;

    // Tenant A's key on tenant B's customer and contact: as if they did not exist.
    let r = invite_request("B001", "eve@a.example", None);
    refused(
        &app,
        access.invite_customer(app.req(&a, r)),
        Code::NotFound,
        None,
    )
    .await;
    let cmd = pb::ContactCommand {
        request_id: new_id(),
        contact_id: b_contact.clone(),
        reason: String::new(),
    };
    refused(
        &app,
        access.disable_access(app.req(&a, cmd)),
        Code::NotFound,
        None,
    )
    .await;
    refused(
        &app,
        access.get_contact(app.req(
            &a,
            pb::GetContactRequest {
                contact_id: b_contact.clone(),
                min_position: 0,
            },
        )),
        Code::NotFound,
        None,
    )
    .await;
    refused(
        &app,
        access.get_site_visibility(app.req(
            &a,
            pb::GetSiteVisibilityRequest {
                contact_id: b_contact,
                min_position: 0,
            },
        )),
        Code::NotFound,
        None,
    )
    .await;
}
