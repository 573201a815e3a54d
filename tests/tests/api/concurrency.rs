//! What must be unique is enforced through the log: concurrent invitations of
//! one email end with exactly one winner.

use access_tests::{TestApp, invite_request};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invitations_of_one_email_have_exactly_one_winner() {
    // Arrange
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    app.create_customer(&key, "C002").await;

    // Act: sixteen callers invite the same person at once, for two customers.
    let calls: Vec<_> = (0..16)
        .map(|i| {
            let mut access = app.access();
            let customer = if i % 2 == 0 { "C001" } else { "C002" };
            let request = app.req(&key, invite_request(customer, "dana@shop.example", None));
            tokio::spawn(async move { access.invite_customer(request).await })
        })
        .collect();
    let mut winners = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => winners += 1,
            Err(status) => assert_eq!(status.code(), Code::AlreadyExists, "{status:?}"),
        }
    }

    // Assert
    assert_eq!(winners, 1);
    app.wait_for_mail("dana@shop.example", 1).await;
    app.settled_head().await;
    assert_eq!(app.mails_to("dana@shop.example").len(), 1);
    assert!(app.verify().await.ok);
}
