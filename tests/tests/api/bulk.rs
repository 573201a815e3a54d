//! The Crik-IT bulk invitation: customers without a login, filtered; each
//! invited at its own address; blanks and failures reported, never dropped;
//! the access status report and billing count.

use access_proto::v1 as pb;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use access_tests::{TestApp, customer, new_id, token_of};
use futures::StreamExt;
use std::time::Instant;
use tonic::Code;

fn record(id: &str, kind: &str, rep: &str, email: &str) -> pb::CustomerRecord {
    let mut r = customer(id, Some(rep));
    r.customer_type = kind.into();
    r.contact = Some(pb::ContactDetails {
        email: email.into(),
        ..Default::default()
    });
    r
}

async fn admins(app: &TestApp, key: &str) {
    TenantAdminClient::new(app.channel.clone())
        .set_username_administrators(app.req(
            key,
            pb::SetUsernameAdministratorsRequest {
                request_id: new_id(),
                emails: vec!["admin@crik.example".into()],
            },
        ))
        .await
        .unwrap();
}

fn filter(kind: &str) -> Option<pb::CustomerFilter> {
    Some(pb::CustomerFilter {
        customer_type: kind.into(),
        ..Default::default()
    })
}

#[tokio::test]
async fn bulk_invitations_invite_the_valid_and_report_the_rest() {
    // Arrange
    let app = TestApp::spawn().await;
    let key = app.create_tenant("crik").await;
    for r in [
        record("A1", "retail", "anna", "accounts@a1.example"),
        record("A2", "retail", "anna", ""),
        record("B1", "trade", "bert", "accounts@b1.example"),
        record("B2", "retail", "bert", "accounts@b2.example"),
    ] {
        app.create_customer_with(&key, r).await;
    }
    app.invite(&key, "B2", "someone@b2.example").await;
    let mut access = app.access();
    let all_retail = pb::BulkInviteRequest {
        request_id: new_id(),
        message: "Our new portal is live".into(),
        site_rule: None,
        targets: vec![],
        all_matching: true,
        filter: filter("retail"),
    };
    let err = access
        .bulk_invite(app.req(&key, all_retail.clone()))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "username administrators come first"
    );
    admins(&app, &key).await;

    // The list offers only customers without a login, filterable.
    let without = access
        .list_customers_without_login(app.req(
            &key,
            pb::ListCustomersRequest {
                filter: filter("retail"),
                page_size: 0,
                page_token: String::new(),
                min_position: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = without
        .customers
        .iter()
        .map(|c| c.record.clone().unwrap().customer_id)
        .collect();
    assert_eq!(ids, vec!["A1", "A2"]);

    // Act: select all filtered.
    let reply = access
        .bulk_invite(app.req(&key, all_retail.clone()))
        .await
        .unwrap()
        .into_inner();

    // Assert
    let invited: Vec<_> = reply
        .invited
        .iter()
        .map(|i| (i.customer_id.as_str(), i.email.as_str()))
        .collect();
    assert_eq!(invited, vec![("A1", "accounts@a1.example")]);
    let skipped: Vec<_> = reply
        .skipped
        .iter()
        .map(|s| (s.customer_id.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(skipped, vec![("A2", "no_email")]);
    let again = access
        .bulk_invite(app.req(&key, all_retail))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.invited, reply.invited,
        "a retried bulk answers from the first results"
    );
    app.wait_for_mail("accounts@a1.example", 1).await;

    // Selected customers, each at its own address; problems reported one by one.
    let target = |id: &str, email: &str| pb::BulkInviteTarget {
        customer_id: id.into(),
        email: email.into(),
    };
    let chosen = pb::BulkInviteRequest {
        request_id: new_id(),
        message: "Welcome".into(),
        site_rule: None,
        targets: vec![
            target("B1", "buyer@b1.example"),
            target("NOPE", "x@nope.example"),
            target("B2", "other@b2.example"),
            target("A2", ""),
            target("A2", "not-an-email"),
        ],
        all_matching: false,
        filter: None,
    };
    let reply = access
        .bulk_invite(app.req(&key, chosen))
        .await
        .unwrap()
        .into_inner();
    let invited: Vec<_> = reply
        .invited
        .iter()
        .map(|i| (i.customer_id.as_str(), i.email.as_str()))
        .collect();
    assert_eq!(
        invited,
        vec![("B1", "buyer@b1.example")],
        "the invitation address may differ from the accounting one"
    );
    let mut skipped: Vec<_> = reply
        .skipped
        .iter()
        .map(|s| (s.customer_id.as_str(), s.reason.as_str()))
        .collect();
    skipped.sort();
    assert_eq!(
        skipped,
        vec![
            ("A2", "invalid_email"),
            ("A2", "no_email"),
            ("B2", "already_has_login"),
            ("NOPE", "not_found")
        ]
    );

    // The access status report and the billing count.
    let report = access
        .list_access(app.req(
            &key,
            pb::ListAccessRequest {
                filter: None,
                status: String::new(),
                page_size: 2,
                page_token: String::new(),
                min_position: reply.position,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        report
            .rows
            .iter()
            .map(|r| r.customer_id.as_str())
            .collect::<Vec<_>>(),
        vec!["A1", "A2"]
    );
    assert_eq!(report.rows[1].status, "no_login");
    let next = access
        .list_access(app.req(
            &key,
            pb::ListAccessRequest {
                filter: None,
                status: String::new(),
                page_size: 2,
                page_token: report.next_page_token,
                min_position: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        next.rows
            .iter()
            .map(|r| (r.customer_id.as_str(), r.status.as_str()))
            .collect::<Vec<_>>(),
        vec![("B1", "invited"), ("B2", "invited")]
    );
    assert!(next.next_page_token.is_empty());

    let link = app.wait_for_mail("buyer@b1.example", 1).await;
    app.sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(&link),
            password: "sunlit7meadow".into(),
        })
        .await
        .unwrap();
    let billing = access
        .billable_users(app.req(
            &key,
            pb::BillableUsersRequest {
                min_position: app.head().await,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (billing.billable_users, billing.active, billing.invited),
        (1, 1, 2)
    );
}

/// Ten thousand customers invited in one call; prints the time taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_customers_are_invited_in_one_bulk_call() {
    const N: usize = 10_000;
    let app = TestApp::spawn().await;
    let key = app.create_tenant("big").await;
    admins(&app, &key).await;
    let started = Instant::now();
    let creates = futures::stream::iter((0..N).map(|i| {
        let mut access = app.access();
        let request = app.req(
            &key,
            pb::CreateCustomerRequest {
                request_id: new_id(),
                customer: Some(record(
                    &format!("C{i:05}"),
                    "retail",
                    "anna",
                    &format!("buyer{i}@c.example"),
                )),
            },
        );
        async move { access.create_customer(request).await.map(|_| ()) }
    }))
    .buffer_unordered(64)
    .collect::<Vec<_>>()
    .await;
    assert!(creates.iter().all(Result::is_ok));
    let created = started.elapsed();

    let started = Instant::now();
    let reply = app
        .access()
        .bulk_invite(app.req(
            &key,
            pb::BulkInviteRequest {
                request_id: new_id(),
                message: "Welcome".into(),
                site_rule: None,
                targets: vec![],
                all_matching: true,
                filter: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let invited = started.elapsed();
    assert_eq!(reply.invited.len(), N);
    assert!(reply.skipped.is_empty());
    let started = Instant::now();
    while app.outbox_count() < N && started.elapsed() < std::time::Duration::from_secs(300) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mailed = started.elapsed();
    assert_eq!(app.outbox_count(), N, "every invitation mailed once");
    eprintln!(
        "bulk: {N} customers created in {created:.2?}, invited in {invited:.2?} ({:.0}/s), all mailed {mailed:.2?} later; accessd peak RSS {} KiB",
        N as f64 / invited.as_secs_f64(),
        app.peak_rss_kib().unwrap_or(0)
    );
    assert!(app.verify().await.ok);
}
