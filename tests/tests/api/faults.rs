//! Faults in the distributed mode: NATS nodes, the stream leader, the whole
//! of NATS and an `accessd` replica fail and come back; no acknowledged
//! command is lost, and commands fail fast with UNAVAILABLE rather than hang.

use access_proto::v1 as pb;
use access_tests::nats::Nats;
use access_tests::{TestApp, customer, new_id};
use std::time::Duration;
use tonic::Code;

/// Replica flags for `nats`, with keys in `keys`.
fn replica_args(nats: &Nats, keys: &std::path::Path) -> Vec<String> {
    vec![
        "--nats-url".into(),
        nats.urls(),
        "--nats-replicas".into(),
        "3".into(),
        "--key-dir".into(),
        keys.display().to_string(),
        "--nats-timeout".into(),
        "2s".into(),
    ]
}

async fn replica(args: &[String]) -> TestApp {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    TestApp::spawn_with(&args).await
}

/// Creates customer `id`, retrying with the same request id, as a caller
/// should, while the log is unavailable or the outcome unknown; returns the
/// position it was acknowledged at.
async fn create_acknowledged(app: &TestApp, key: &str, id: &str) -> u64 {
    let request_id = new_id();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(10),
            app.access().create_customer(app.req(
                key,
                pb::CreateCustomerRequest {
                    request_id: request_id.clone(),
                    customer: Some(customer(id, None)),
                },
            )),
        )
        .await;
        match attempt {
            Ok(Ok(reply)) => return reply.into_inner().position,
            Ok(Err(s)) if matches!(s.code(), Code::Unavailable | Code::Aborted) => {}
            Ok(Err(s)) => panic!("creating {id}: {s:?}"),
            Err(_) => panic!("creating {id} hung for 10 s instead of failing"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} not acknowledged within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every customer in `ids` is known to `app` once it has caught up to `position`.
async fn all_present(app: &TestApp, key: &str, ids: &[String], position: u64) {
    for id in ids {
        app.access()
            .get_customer(app.req(
                key,
                pb::GetCustomerRequest {
                    customer_id: id.clone(),
                    min_position: position,
                },
            ))
            .await
            .unwrap_or_else(|s| panic!("acknowledged customer {id} is missing: {s:?}"));
    }
}

/// Runs `count` acknowledged creations alternating between the replicas,
/// calling `fault` after a third of them; returns the ids and the highest
/// acknowledged position.
async fn load_with_fault<F>(
    replicas: [&TestApp; 2],
    key: &str,
    count: usize,
    fault: F,
) -> (Vec<String>, u64)
where
    F: std::future::Future<Output = ()>,
{
    let mut fault = Some(fault);
    let mut ids = Vec::new();
    let mut top = 0;
    for i in 0..count {
        if i == count / 3
            && let Some(f) = fault.take()
        {
            // The fault runs alongside the rest of the load.
            let load_rest = async {
                let mut acked = Vec::new();
                for j in i..count {
                    let id = format!("C{j:04}");
                    let p = create_acknowledged(replicas[j % 2], key, &id).await;
                    acked.push((id, p));
                }
                acked
            };
            let (acked, ()) = tokio::join!(load_rest, f);
            for (id, p) in acked {
                ids.push(id);
                top = top.max(p);
            }
            break;
        }
        let id = format!("C{i:04}");
        top = top.max(create_acknowledged(replicas[i % 2], key, &id).await);
        ids.push(id);
    }
    (ids, top)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_node_killed_and_restarted_under_load_loses_no_acknowledged_command() {
    let mut nats = Nats::cluster().await;
    let keys = tempfile::tempdir().unwrap();
    let args = replica_args(&nats, keys.path());
    let a = replica(&args).await;
    let b = replica(&args).await;
    let key = a.create_tenant("acme").await;

    let node = &mut nats.nodes[0];
    let (ids, top) = load_with_fault([&a, &b], &key, 90, async {
        node.kill().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        node.start().await;
    })
    .await;

    all_present(&a, &key, &ids, top).await;
    all_present(&b, &key, &ids, top).await;
    assert!(a.verify().await.ok);
}

/// The name of the server leading the log's stream.
async fn stream_leader(nats: &Nats) -> String {
    let servers: Vec<async_nats::ServerAddr> = nats
        .nodes
        .iter()
        .map(|n| n.url().parse().expect("a server address"))
        .collect();
    let client = async_nats::connect(servers.as_slice())
        .await
        .expect("a NATS client");
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("ACCESS").await.expect("the stream");
    let info = stream.info().await.expect("stream info");
    info.cluster
        .clone()
        .and_then(|c| c.leader)
        .expect("a clustered stream has a leader")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_leader_killed_under_load_loses_no_acknowledged_command() {
    let mut nats = Nats::cluster().await;
    let keys = tempfile::tempdir().unwrap();
    let args = replica_args(&nats, keys.path());
    let a = replica(&args).await;
    let b = replica(&args).await;
    let key = a.create_tenant("acme").await;
    let leader = stream_leader(&nats).await;
    let index: usize = leader
        .trim_start_matches('n')
        .parse()
        .expect("servers are named n0, n1, n2");

    let node = &mut nats.nodes[index];
    let (ids, top) = load_with_fault([&a, &b], &key, 90, async {
        node.kill().await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        node.start().await;
    })
    .await;

    all_present(&a, &key, &ids, top).await;
    all_present(&b, &key, &ids, top).await;
    assert!(b.verify().await.ok);
    assert_ne!(stream_leader(&nats).await, "", "a leader again");
}

async fn health(app: &TestApp) -> i32 {
    let mut client = tonic_health::pb::health_client::HealthClient::new(app.channel.clone());
    client
        .check(tonic_health::pb::HealthCheckRequest {
            service: "access.v1.Access".into(),
        })
        .await
        .map(|r| r.into_inner().status)
        .unwrap_or(-1)
}

/// Whether the health status reaches `status` within 4 s.
async fn health_becomes(app: &TestApp, status: i32) -> bool {
    for _ in 0..40 {
        if health(app).await == status {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_unreachable_for_ten_seconds_fails_fast_then_recovers() {
    // Arrange
    let mut nats = Nats::single().await;
    let keys = tempfile::tempdir().unwrap();
    let mut args = replica_args(&nats, keys.path());
    args[3] = "1".into();
    let app = replica(&args).await;
    let key = app.create_tenant("acme").await;
    let before = create_acknowledged(&app, &key, "BEFORE").await;
    const SERVING: i32 = 1;
    const NOT_SERVING: i32 = 2;
    assert_eq!(health(&app).await, SERVING);

    // Act: NATS goes away.
    nats.nodes[0].kill().await;
    let started = std::time::Instant::now();
    let refused = app
        .access()
        .create_customer(app.req(
            &key,
            pb::CreateCustomerRequest {
                request_id: new_id(),
                customer: Some(customer("DURING", None)),
            },
        ))
        .await
        .expect_err("no log, no command");

    // Assert: a clear, quick refusal; health says so; reads still work.
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        health_becomes(&app, NOT_SERVING).await,
        "health turns NOT_SERVING while NATS is away"
    );
    all_present(&app, &key, &["BEFORE".into()], before).await;

    // Act: ten seconds later NATS is back.
    tokio::time::sleep(Duration::from_secs(10)).await;
    nats.nodes[0].start().await;
    nats.wait_healthy(Duration::from_secs(20)).await.unwrap();
    let after = create_acknowledged(&app, &key, "AFTER").await;

    // Assert
    assert!(health_becomes(&app, SERVING).await, "SERVING again");
    all_present(&app, &key, &["BEFORE".into(), "AFTER".into()], after).await;
    assert!(app.verify().await.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_with_sigkill_catches_up_after_its_restart() {
    let nats = Nats::cluster().await;
    let keys = tempfile::tempdir().unwrap();
    let args = replica_args(&nats, keys.path());
    let a = replica(&args).await;
    let mut b = replica(&args).await;
    let key = a.create_tenant("acme").await;
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(format!("A{i}"));
        create_acknowledged(&b, &key, &ids[i]).await;
    }

    b.kill9().await;
    let mut top = 0;
    for i in 0..10 {
        ids.push(format!("B{i}"));
        top = create_acknowledged(&a, &key, &ids[10 + i]).await;
    }
    let b = b.start_again().await;

    all_present(&b, &key, &ids, top).await;
    assert_eq!(b.settled_head().await, a.settled_head().await);
}
