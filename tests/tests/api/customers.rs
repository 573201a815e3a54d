//! The tenant-side ERP story: customer records and statuses, blacklisting,
//! document visibility, and site defaults that contacts follow.

use access_proto::v1 as pb;
use access_tests::{TestApp, customer, invite_request, new_id, token_of};
use tonic::Code;
use tonic_types::StatusExt;

async fn check(
    app: &TestApp,
    key: &str,
    contact: &str,
    action: pb::Action,
    kind: pb::DocumentKind,
    site: &str,
) -> pb::CheckAccessReply {
    app.access()
        .check_access(app.req(
            key,
            pb::CheckAccessRequest {
                contact_id: contact.into(),
                session_token: String::new(),
                action: action as i32,
                document_kind: kind as i32,
                site: site.into(),
                min_position: app.head().await,
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn active_contact(app: &TestApp, key: &str, customer_id: &str, email: &str) -> String {
    let invited = app.invite(key, customer_id, email).await;
    let link = app.wait_for_mail(email, 1).await;
    app.sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(&link),
            password: "sunlit7meadow".into(),
        })
        .await
        .unwrap();
    invited.contact_id
}

async fn login(app: &TestApp, key: &str, email: &str) -> Result<pb::Session, tonic::Status> {
    app.sessions()
        .login(app.req(
            key,
            pb::LoginRequest {
                request_id: new_id(),
                login: email.into(),
                password: "sunlit7meadow".into(),
                client_address: String::new(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn a_blacklisted_customer_can_look_but_not_order_unless_the_tenant_blocks_logins_too() {
    // Arrange
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    let mut record = customer("C1", Some("anna"));
    record.short_name = "BOBS".into();
    record.billing = Some(pb::BillingDetails {
        email: "accounts@bob.example".into(),
        address: "1 High St".into(),
        tax_id: "GB123".into(),
    });
    app.create_customer_with(&key, record.clone()).await;
    let contact = active_contact(&app, &key, "C1", "bob@bob.example").await;
    assert!(
        check(
            &app,
            &key,
            &contact,
            pb::Action::PlaceOrder,
            pb::DocumentKind::Unspecified,
            ""
        )
        .await
        .allowed
    );

    // Act
    let blacklisted = app
        .access()
        .set_customer_status(app.req(
            &key,
            pb::SetCustomerStatusRequest {
                request_id: new_id(),
                customer_id: "C1".into(),
                status: pb::CustomerStatus::Blacklisted as i32,
                reason: "unpaid".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();

    // Assert: the record is kept, orders are refused with the reason, logins still work.
    let c = blacklisted.customer.unwrap();
    assert_eq!(c.status, pb::CustomerStatus::Blacklisted as i32);
    assert_eq!(c.record.unwrap().billing.unwrap().tax_id, "GB123");
    let refused = check(
        &app,
        &key,
        &contact,
        pb::Action::PlaceOrder,
        pb::DocumentKind::Unspecified,
        "",
    )
    .await;
    assert_eq!(
        (refused.allowed, refused.reason.as_str()),
        (false, "customer_blacklisted")
    );
    login(&app, &key, "bob@bob.example").await.unwrap();

    // The tenant blocks logins of such customers too.
    access_proto::v1::tenant_admin_client::TenantAdminClient::new(app.channel.clone())
        .update_tenant_settings(app.req(
            &key,
            pb::UpdateTenantSettingsRequest {
                request_id: new_id(),
                sites: vec!["Leeds".into(), "York".into()],
                default_order_site: "Leeds".into(),
                default_site: String::new(),
                inactive_customers_may_log_in: false,
            },
        ))
        .await
        .unwrap();
    let err = login(&app, &key, "bob@bob.example").await.unwrap_err();
    let reason = err
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default();
    assert_eq!(
        (err.code(), reason.as_str()),
        (Code::PermissionDenied, "customer_blacklisted")
    );

    // Reinstated, everything works again.
    app.access()
        .set_customer_status(app.req(
            &key,
            pb::SetCustomerStatusRequest {
                request_id: new_id(),
                customer_id: "C1".into(),
                status: pb::CustomerStatus::Active as i32,
                reason: "paid".into(),
            },
        ))
        .await
        .unwrap();
    assert!(
        check(
            &app,
            &key,
            &contact,
            pb::Action::PlaceOrder,
            pb::DocumentKind::Unspecified,
            ""
        )
        .await
        .allowed
    );
    login(&app, &key, "bob@bob.example").await.unwrap();
}

#[tokio::test]
async fn documents_sites_and_defaults_are_answered_per_contact() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    let follower = active_contact(&app, &key, "C1", "f@c1.example").await;
    let york_only = app
        .access()
        .invite_customer(app.req(&key, invite_request("C1", "y@c1.example", Some("York"))))
        .await
        .unwrap()
        .into_inner()
        .contact_id;

    // Documents: all kinds until chosen; payments and reports never.
    let kind = |k| check(&app, &key, &follower, pb::Action::ViewDocument, k, "");
    assert!(kind(pb::DocumentKind::CreditNote).await.allowed);
    assert_eq!(
        kind(pb::DocumentKind::Payment).await.reason,
        "document_kind_not_viewable"
    );
    app.access()
        .set_document_visibility(app.req(
            &key,
            pb::SetDocumentVisibilityRequest {
                request_id: new_id(),
                customer_id: "C1".into(),
                kinds: vec![pb::DocumentKind::SalesInvoice as i32],
            },
        ))
        .await
        .unwrap();
    assert!(kind(pb::DocumentKind::SalesInvoice).await.allowed);
    assert_eq!(
        kind(pb::DocumentKind::CreditNote).await.reason,
        "document_not_visible"
    );
    let err = app
        .access()
        .set_document_visibility(app.req(
            &key,
            pb::SetDocumentVisibilityRequest {
                request_id: new_id(),
                customer_id: "C1".into(),
                kinds: vec![pb::DocumentKind::Report as i32],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Sites: the follower of the tenant default sees all sites, until the default changes.
    let site = |contact: &str, s: &str| {
        let contact = contact.to_owned();
        let s = s.to_owned();
        let app = &app;
        let key = key.clone();
        async move {
            check(
                app,
                &key,
                &contact,
                pb::Action::ViewSite,
                pb::DocumentKind::Unspecified,
                &s,
            )
            .await
        }
    };
    assert!(site(&follower, "York").await.allowed);
    assert_eq!(site(&york_only, "Leeds").await.reason, "invitation_pending");
    access_proto::v1::tenant_admin_client::TenantAdminClient::new(app.channel.clone())
        .update_tenant_settings(app.req(
            &key,
            pb::UpdateTenantSettingsRequest {
                request_id: new_id(),
                sites: vec!["Leeds".into(), "York".into(), "Hull".into()],
                default_order_site: "Leeds".into(),
                default_site: "Hull".into(),
                inactive_customers_may_log_in: true,
            },
        ))
        .await
        .unwrap();
    let reply = site(&follower, "York").await;
    assert_eq!(
        (
            reply.allowed,
            reply.reason.as_str(),
            reply.order_site.as_str()
        ),
        (false, "site_not_visible", "Hull")
    );
    assert!(site(&follower, "Hull").await.allowed);
}
