//! The distributed mode: `accessd` replicas on one JetStream log in a real
//! three-node NATS cluster.

use access_proto::v1 as pb;
use access_tests::nats::Nats;
use access_tests::{TestApp, invite_request};
use tonic::Code;

/// Two replicas sharing one key directory, on `nats`.
async fn two_replicas(nats: &Nats, keys: &std::path::Path) -> (TestApp, TestApp) {
    let urls = nats.urls();
    let keys = keys.to_str().expect("a UTF-8 path");
    let args = [
        "--nats-url",
        &urls,
        "--nats-replicas",
        "3",
        "--key-dir",
        keys,
    ];
    let a = TestApp::spawn_with(&args).await;
    let b = TestApp::spawn_with(&args).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_replica_is_read_on_the_other() {
    // Arrange
    let nats = Nats::cluster().await;
    let keys = tempfile::tempdir().unwrap();
    let (a, b) = two_replicas(&nats, keys.path()).await;
    let key = a.create_tenant("acme").await;
    a.create_customer(&key, "C001").await;

    // Act
    let invited = a
        .access()
        .invite_customer(a.req(&key, invite_request("C001", "ann@shop.example", None)))
        .await
        .expect("invite on replica a")
        .into_inner();
    let contact = b
        .access()
        .get_contact(b.req(
            &key,
            pb::GetContactRequest {
                contact_id: invited.contact_id.clone(),
                min_position: invited.position,
            },
        ))
        .await
        .expect("the contact, read on replica b")
        .into_inner();

    // Assert
    assert_eq!(contact.email, "ann@shop.example");
    assert_eq!(contact.customer_id, "C001");
    assert!(b.verify().await.ok);
    assert_eq!(a.head().await, b.settled_head().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_commands_on_two_replicas_have_exactly_one_winner() {
    // Arrange
    let nats = Nats::cluster().await;
    let keys = tempfile::tempdir().unwrap();
    let (a, b) = two_replicas(&nats, keys.path()).await;
    let key = a.create_tenant("acme").await;
    a.create_customer(&key, "C001").await;
    a.create_customer(&key, "C002").await;

    // Act: each replica is asked, at once, to invite the same email.
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let app = if i % 2 == 0 { &a } else { &b };
            let customer = if i % 4 < 2 { "C001" } else { "C002" };
            let mut access = app.access();
            let request = app.req(&key, invite_request(customer, "dana@shop.example", None));
            tokio::spawn(async move { access.invite_customer(request).await })
        })
        .collect();
    let mut winners = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => winners += 1,
            Err(status) => assert!(
                matches!(status.code(), Code::AlreadyExists | Code::Aborted),
                "{status:?}\n{}\n{}",
                a.log_tail(10),
                b.log_tail(10)
            ),
        }
    }

    // Assert
    assert_eq!(winners, 1);
    assert!(a.verify().await.ok);
}
