//! A retried command with the same request id appends nothing and gets the
//! same answer, also after a restart; another payload under it is refused.

use access_proto::v1 as pb;
use access_tests::{TestApp, invite_request, new_id};
use tonic::Code;

#[tokio::test]
async fn a_retried_command_is_answered_from_its_first_result_even_after_a_restart() {
    // Arrange
    let app = TestApp::spawn().await;
    let tenant = pb::CreateTenantRequest {
        request_id: new_id(),
        tenant_id: "acme".into(),
        name: "Acme".into(),
        sites: vec!["Leeds".into()],
        default_order_site: "Leeds".into(),
    };
    let created = app
        .operator()
        .create_tenant(app.req(&app.operator_key, tenant.clone()))
        .await
        .unwrap()
        .into_inner();
    let key = created.admin_api_key.clone();
    app.create_customer(&key, "C001").await;
    let invite = invite_request("C001", "bob@hardware.example", None);

    // Act
    let first = app
        .access()
        .invite_customer(app.req(&key, invite.clone()))
        .await
        .unwrap()
        .into_inner();
    let head = app.settled_head().await;
    let retry = app
        .access()
        .invite_customer(app.req(&key, invite.clone()))
        .await
        .unwrap()
        .into_inner();

    // Assert
    assert_eq!(retry, first);
    assert_eq!(app.head().await, head, "a retry appends nothing");
    let mut changed = invite.clone();
    changed.email = "carol@hardware.example".into();
    let err = app
        .access()
        .invite_customer(app.req(&key, changed))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("request id"), "{}", err.message());

    // After a restart the log still remembers, and the mail went out once.
    let app = app.restart().await;
    let retry = app
        .access()
        .invite_customer(app.req(&key, invite))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry, first);
    let again = app
        .operator()
        .create_tenant(app.req(&app.operator_key, tenant))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again, created,
        "a lost CreateTenant reply can be fetched again, key included"
    );
    assert_eq!(app.head().await, head);
    app.wait_for_mail("bob@hardware.example", 1).await;
    assert_eq!(app.mails_to("bob@hardware.example").len(), 1);
}
