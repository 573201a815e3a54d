//! Staff roles behind API keys: in-house staff manage any customer's logins, a
//! sales rep only their own customers', auditors only read; revoked keys fail.

use access_proto::v1 as pb;
use access_tests::{TestApp, customer, invite_request, new_id};
use tonic::Code;
use tonic_types::StatusExt;

async fn key(app: &TestApp, admin: &str, role: pb::Role, rep: &str) -> pb::CreateApiKeyReply {
    let request = pb::CreateApiKeyRequest {
        request_id: new_id(),
        role: role as i32,
        name: format!("{role:?} key"),
        rep_id: rep.into(),
    };
    access_proto::v1::tenant_admin_client::TenantAdminClient::new(app.channel.clone())
        .create_api_key(app.req(admin, request))
        .await
        .unwrap()
        .into_inner()
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

#[tokio::test]
async fn a_rep_manages_only_their_own_customers_and_auditors_only_read() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    let anna = key(&app, &admin, pb::Role::Rep, "anna").await.api_key;
    let in_house = key(&app, &admin, pb::Role::InHouse, "").await.api_key;
    let auditor = key(&app, &admin, pb::Role::Auditor, "").await.api_key;
    app.create_customer_with(&in_house, customer("ANNA1", Some("anna")))
        .await;
    app.create_customer_with(&in_house, customer("BERT1", Some("bert")))
        .await;
    let mut access = app.access();

    // Act / Assert: anna invites for her customer, not for bert's.
    let invited = access
        .invite_customer(app.req(&anna, invite_request("ANNA1", "a@anna.example", None)))
        .await
        .unwrap()
        .into_inner();
    let head = app.settled_head().await;
    let err = access
        .invite_customer(app.req(&anna, invite_request("BERT1", "b@bert.example", None)))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::PermissionDenied, "not_assigned_rep")
    );
    let err = access
        .create_customer(app.req(
            &anna,
            pb::CreateCustomerRequest {
                request_id: new_id(),
                customer: Some(customer("NEW1", Some("anna"))),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::PermissionDenied, "role")
    );
    assert_eq!(app.head().await, head, "refusals change nothing");

    // In-house staff manage any customer's logins.
    access
        .invite_customer(app.req(&in_house, invite_request("BERT1", "b@bert.example", None)))
        .await
        .unwrap();

    // The auditor reads but never changes.
    let seen = access
        .get_contact(app.req(
            &auditor,
            pb::GetContactRequest {
                contact_id: invited.contact_id.clone(),
                min_position: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.email, "a@anna.example");
    let cmd = pb::ContactCommand {
        request_id: new_id(),
        contact_id: invited.contact_id.clone(),
        reason: String::new(),
    };
    let err = access
        .disable_access(app.req(&auditor, cmd))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = access
        .get_customer(app.req(
            &anna,
            pb::GetCustomerRequest {
                customer_id: "BERT1".into(),
                min_position: 0,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "not_assigned_rep");
}

#[tokio::test]
async fn a_revoked_key_fails_at_once_and_only_admins_manage_keys() {
    let app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    let service = key(&app, &admin, pb::Role::Service, "").await;
    app.create_customer(&service.api_key, "C1").await;

    let mut tenant_admin =
        access_proto::v1::tenant_admin_client::TenantAdminClient::new(app.channel.clone());
    let err = tenant_admin
        .create_api_key(app.req(
            &service.api_key,
            pb::CreateApiKeyRequest {
                request_id: new_id(),
                role: pb::Role::Admin as i32,
                name: "escalation".into(),
                rep_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    tenant_admin
        .revoke_api_key(app.req(
            &admin,
            pb::RevokeApiKeyRequest {
                request_id: new_id(),
                key_id: service.key_id.clone(),
            },
        ))
        .await
        .unwrap();
    let err = app
        .access()
        .get_customer(app.req(
            &service.api_key,
            pb::GetCustomerRequest {
                customer_id: "C1".into(),
                min_position: 0,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("revoked"));
}

#[tokio::test]
async fn a_request_id_of_another_tenant_or_caller_never_replays_its_answer() {
    let app = TestApp::spawn().await;
    let a = app.create_tenant("tenant-a").await;
    let b = app.create_tenant("tenant-b").await;
    let b_auditor = key(&app, &b, pb::Role::Auditor, "").await.api_key;
    let mut admin =
        access_proto::v1::tenant_admin_client::TenantAdminClient::new(app.channel.clone());
    let request = pb::CreateApiKeyRequest {
        request_id: "create-ops-key".into(),
        role: pb::Role::Admin as i32,
        name: "ops".into(),
        rep_id: String::new(),
    };
    let a_key = admin
        .create_api_key(app.req(&a, request.clone()))
        .await
        .unwrap()
        .into_inner();

    // Another tenant's auditor sending the same request is judged on its own.
    let err = admin
        .create_api_key(app.req(&b_auditor, request.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Another tenant's admin gets a key of its own tenant, not tenant A's.
    let b_key = admin
        .create_api_key(app.req(&b, request))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(b_key.api_key, a_key.api_key);
    let err = app
        .access()
        .get_customer(app.req(
            &b_key.api_key,
            pb::GetCustomerRequest {
                customer_id: "X".into(),
                min_position: 0,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "the new key acts in tenant B");
}

#[tokio::test]
async fn resending_an_invitation_of_a_login_created_by_staff_is_a_clear_refusal() {
    let app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    app.create_customer(&admin, "C1").await;
    let pair = app
        .access()
        .add_portal_user(app.req(
            &admin,
            pb::AddPortalUserRequest {
                request_id: new_id(),
                customer_id: "C1".into(),
                username: "C1".into(),
                email: String::new(),
                site_rule: None,
                management_password: String::new(),
                staff_password: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let err = app
        .access()
        .resend_invitation(app.req(
            &admin,
            pb::ResendInvitationRequest {
                request_id: new_id(),
                contact_id: pair.management_contact_id,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "no_invitation")
    );
    assert!(
        app.verify().await.ok,
        "the service is up and the log intact"
    );
}

#[tokio::test]
async fn a_rotated_key_fails_at_once_and_its_successor_keeps_role_and_holder() {
    let app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    app.create_customer_with(&admin, customer("C001", Some("R1")))
        .await;
    let rep = key(&app, &admin, pb::Role::Rep, "R1").await;
    let mut tenant_admin =
        access_proto::v1::tenant_admin_client::TenantAdminClient::new(app.channel.clone());
    let rotated = tenant_admin
        .rotate_api_key(app.req(
            &admin,
            pb::RotateApiKeyRequest {
                request_id: new_id(),
                key_id: rep.key_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(rotated.key_id, rep.key_id);
    assert_ne!(rotated.api_key, rep.api_key);

    let old = app
        .access()
        .invite_customer(app.req(&rep.api_key, invite_request("C001", "a@x.example", None)))
        .await
        .unwrap_err();
    assert_eq!(old.code(), Code::Unauthenticated);
    app.access()
        .invite_customer(app.req(
            &rotated.api_key,
            invite_request("C001", "a@x.example", None),
        ))
        .await
        .expect("the new key acts as the old one did");

    let listed = tenant_admin
        .list_api_keys(app.req(&admin, pb::ListApiKeysRequest { min_position: 0 }))
        .await
        .unwrap()
        .into_inner()
        .keys;
    let old_row = listed.iter().find(|k| k.key_id == rep.key_id).unwrap();
    let new_row = listed.iter().find(|k| k.key_id == rotated.key_id).unwrap();
    assert!(old_row.revoked && !new_row.revoked);
    assert_eq!(
        (
            new_row.role.as_str(),
            new_row.name.as_str(),
            new_row.rep_id.as_str()
        ),
        ("rep", old_row.name.as_str(), "R1")
    );
    let again = tenant_admin
        .rotate_api_key(app.req(
            &admin,
            pb::RotateApiKeyRequest {
                request_id: new_id(),
                key_id: rep.key_id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&again), "already_revoked");
    let by_rep = tenant_admin
        .list_api_keys(app.req(&rotated.api_key, pb::ListApiKeysRequest { min_position: 0 }))
        .await
        .unwrap_err();
    assert_eq!(by_rep.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn each_refused_key_says_why_in_its_reason() {
    let app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    let rep = key(&app, &admin, pb::Role::InHouse, "").await;
    let status = |key: &str| app.req(key, pb::GetLogStatusRequest {});
    let tenant_call = |key: &str| app.req(key, pb::ListApiKeysRequest::default());

    let mut no_key = tonic::Request::new(pb::GetLogStatusRequest {});
    no_key.metadata_mut().remove("authorization");
    let missing = app.operator().get_log_status(no_key).await.unwrap_err();
    let invalid = app
        .operator()
        .get_log_status(status("not-a-key"))
        .await
        .unwrap_err();
    let tenant_key_on_operator = app
        .operator()
        .get_log_status(status(&rep.api_key))
        .await
        .unwrap_err();
    let operator_key_in_tenant =
        access_proto::v1::tenant_admin_client::TenantAdminClient::new(app.channel.clone())
            .list_api_keys(tenant_call(&app.operator_key))
            .await
            .unwrap_err();
    access_proto::v1::tenant_admin_client::TenantAdminClient::new(app.channel.clone())
        .revoke_api_key(app.req(
            &admin,
            pb::RevokeApiKeyRequest {
                request_id: new_id(),
                key_id: rep.key_id.clone(),
            },
        ))
        .await
        .unwrap();
    let revoked =
        access_proto::v1::tenant_admin_client::TenantAdminClient::new(app.channel.clone())
            .list_api_keys(tenant_call(&rep.api_key))
            .await
            .unwrap_err();

    let seen: Vec<(Code, String)> = [
        missing,
        invalid,
        tenant_key_on_operator,
        operator_key_in_tenant,
        revoked,
    ]
    .iter()
    .map(|s| (s.code(), reason(s)))
    .collect();
    assert_eq!(
        seen,
        [
            (Code::Unauthenticated, "api_key_required".to_owned()),
            (Code::Unauthenticated, "api_key_invalid".to_owned()),
            (Code::PermissionDenied, "operator_key_required".to_owned()),
            (Code::PermissionDenied, "tenant_key_required".to_owned()),
            (Code::Unauthenticated, "api_key_revoked".to_owned()),
        ]
    );
}
