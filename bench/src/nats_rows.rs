//! Rows on a real `nats-server` with `sync_interval: always`: durable appends
//! against bare JetStream publishes, and a fresh replica catching up.

use crate::measure::{Row, Run, Target, drive};
use crate::seed::{self, spread};
use access_log::conformance;
use access_log::log::EventLog;
use access_log::nats::{JetStreamLog, NatsSettings};
use access_tests::nats::Nats;
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Durable append through the JetStream backend against async-nats's own
/// publish-with-ack of the same bytes to a stream with the same settings,
/// with one caller and with 64.
pub async fn appends(runs: usize, length: Duration) -> anyhow::Result<Vec<Row>> {
    let nats = Nats::single().await;
    let mut rows = Vec::new();
    for callers in [1usize, 64] {
        let (mut ours, mut base) = (Vec::new(), Vec::new());
        let bytes = crate::log_rows::envelope_bytes();
        for run in 0..runs {
            let mut settings = NatsSettings::new(nats.urls());
            settings.stream = format!("OURS{callers}x{run}");
            settings.prefix = format!("ours{callers}x{run}");
            let log = Arc::new(JetStreamLog::open(&settings).await?);
            let counter = Arc::new(AtomicU64::new(0));
            ours.push(
                drive(callers, length, move |_, _| {
                    let log = log.clone();
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    async move {
                        let s = conformance::stream(&format!("s{n}"));
                        log.append(conformance::request(&format!("r{n}"), &s, 0, 1))
                            .await?;
                        Ok(())
                    }
                })
                .await,
            );
            let client = access_log::nats::connect_client(&NatsSettings::new(nats.urls())).await?;
            let js = async_nats::jetstream::new(client);
            let name = format!("BARE{callers}x{run}");
            js.create_stream(async_nats::jetstream::stream::Config {
                name: name.clone(),
                subjects: vec![format!("bare{callers}x{run}.>")],
                storage: async_nats::jetstream::stream::StorageType::File,
                allow_atomic_publish: true,
                allow_direct: true,
                ..Default::default()
            })
            .await?;
            let payload = Bytes::from(vec![0x5a_u8; bytes]);
            let counter = Arc::new(AtomicU64::new(0));
            base.push(
                drive(callers, length, move |_, _| {
                    let js = js.clone();
                    let payload = payload.clone();
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let subject = format!("bare{callers}x{run}.s{n}");
                    async move {
                        js.publish(subject, payload).await?.await?;
                        Ok(())
                    }
                })
                .await,
            );
        }
        rows.push(Row {
            ours: format!(
                "durable append, distributed (JetStream, `sync_interval: always`), {}",
                if callers == 1 {
                    "sequential"
                } else {
                    "64 in flight"
                }
            ),
            baseline: "async-nats publish-with-ack of the same bytes, same stream settings".into(),
            unit: "appends/s",
            ours_runs: ours,
            base_runs: base,
            target: Target::RateAtLeast(0.8),
            note: format!(
                "{bytes}-byte events; each command one message on its tenant's subject, \
                 expecting the subject's last sequence; a tenant's concurrent commands share one"
            ),
        });
    }
    Ok(rows)
}

/// A fresh replica catching up from the stream: seeds `events` events through
/// one replica, then times a second, empty one until it answers at the head;
/// against a bare read-and-decode of the same stream.
pub async fn catch_up(invites: usize) -> anyhow::Result<(Row, String)> {
    let nats = Nats::single().await;
    let keys = tempfile::tempdir_in(".")?;
    let args = [
        "--nats-url".to_string(),
        nats.urls(),
        "--key-dir".into(),
        keys.path().display().to_string(),
    ];
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = access_tests::TestApp::spawn_with(&args_ref).await;
    let key = a.create_tenant("acme").await;
    let customers = invites.div_ceil(10);
    let seeding = Instant::now();
    let (a_ref, key_ref) = (&a, key.as_str());
    spread(customers, 64, |c| seed::create_customer(a_ref, key_ref, c)).await?;
    spread(invites, 64, |i| async move {
        seed::invite(a_ref, key_ref, i, &format!("p{i}@shop.example")).await
    })
    .await?;
    let seeded = seeding.elapsed();
    let head = a.settled_head().await;

    let started = Instant::now();
    let b = access_tests::TestApp::spawn_with(&args_ref).await;
    let listening = started.elapsed();
    loop {
        let caught_up = b
            .access()
            .get_customer(b.req(
                &key,
                access_proto::v1::GetCustomerRequest {
                    customer_id: seed::customer_id(customers - 1),
                    min_position: head,
                },
            ))
            .await;
        if caught_up.is_ok() {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "no catch-up in 30 min"
        );
    }
    let took = started.elapsed();
    let mut settings = NatsSettings::new(nats.urls());
    settings.replicas = 1;
    let log = JetStreamLog::open(&settings).await?;
    let bare = Instant::now();
    let mut n = 0u64;
    let mut from = 1;
    loop {
        let batch = log.read_from(from, 256).await?;
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        for e in &batch {
            std::hint::black_box(access_catalogue::catalogue::Event::decode(e).ok());
            n += 1;
        }
    }
    let bare = bare.elapsed();
    let seeded_line = format!(
        "- Distributed seeding: {customers} customers and {invites} invitations ({n} events) through one replica, 64 callers, in {:.1} s ({:.0} commands/s with `sync_interval: always`).",
        seeded.as_secs_f64(),
        (customers + invites) as f64 / seeded.as_secs_f64()
    );
    Ok((
        Row {
            ours: "a fresh replica catching up from JetStream (start to serving at the head)"
                .into(),
            baseline: "bare read-and-decode of the same stream (batched direct gets)".into(),
            unit: "events/s",
            ours_runs: vec![Run {
                rate: n as f64 / took.as_secs_f64(),
                p99: Duration::ZERO,
            }],
            base_runs: vec![Run {
                rate: n as f64 / bare.as_secs_f64(),
                p99: Duration::ZERO,
            }],
            target: Target::RateAtLeast(0.5),
            note: format!(
                "{n} events; one run, the replica's start included: it listened after {} ms, and reached the head {} ms later ({:.0} events/s from then)",
                listening.as_millis(),
                (took - listening).as_millis(),
                n as f64 / (took - listening).as_secs_f64()
            ),
        },
        seeded_line,
    ))
}

/// Invitations per second through two replicas on a three-node cluster
/// (stream R3), 32 clients spread over both, against async-nats
/// publish-with-ack of messages of the same size to an R3 stream of the
/// same settings, at the same concurrency.
pub async fn cluster_invites(runs: usize, length: Duration) -> anyhow::Result<Row> {
    const CLIENTS: usize = 32;
    const CUSTOMERS: usize = 100;
    let nats = Nats::cluster().await;
    let keys = tempfile::tempdir_in(".")?;
    let args = [
        "--nats-url".to_string(),
        nats.urls(),
        "--nats-replicas".into(),
        "3".into(),
        "--key-dir".into(),
        keys.path().display().to_string(),
    ];
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = access_tests::TestApp::spawn_with(&args_ref).await;
    let b = access_tests::TestApp::spawn_with(&args_ref).await;
    let key = a.create_tenant("acme").await;
    let (a_ref, key_ref) = (&a, key.as_str());
    spread(CUSTOMERS, 16, |c| seed::create_customer(a_ref, key_ref, c)).await?;
    // The second replica knows the key and the customers before it is asked.
    let head = a.settled_head().await;
    let caught_up = Instant::now();
    while b
        .access()
        .get_customer(b.req(
            &key,
            access_proto::v1::GetCustomerRequest {
                customer_id: seed::customer_id(CUSTOMERS - 1),
                min_position: head,
            },
        ))
        .await
        .is_err()
    {
        anyhow::ensure!(
            caught_up.elapsed() < Duration::from_secs(60),
            "the second replica did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let apps = Arc::new([a, b]);
    let next = Arc::new(AtomicU64::new(0));
    let mut ours = Vec::new();
    for _ in 0..runs {
        let (apps, key, next) = (apps.clone(), key.clone(), next.clone());
        ours.push(
            drive(CLIENTS, length, move |caller, _| {
                let (apps, key) = (apps.clone(), key.clone());
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                async move {
                    let app = &apps[caller % 2];
                    let email = format!("r3-{i}@shop.example");
                    seed::invite(app, &key, i % (CUSTOMERS * 10), &email).await?;
                    Ok(())
                }
            })
            .await,
        );
    }
    // The size of what one invitation stores: its message.
    let client = access_log::nats::connect_client(&NatsSettings::new(nats.urls())).await?;
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("ACCESS").await?;
    let last = stream.info().await?.state.last_sequence;
    // The last message holds one invitation or several stored together.
    let message = stream.direct_get(last).await?;
    let events: usize = message
        .headers
        .get("Access-Events")
        .and_then(|v| v.as_str().parse().ok())
        .unwrap_or(3)
        .max(1);
    let size = message.payload.len() * 3 / events;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "BARER3".into(),
        subjects: vec!["barer3.>".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        num_replicas: 3,
        allow_atomic_publish: true,
        allow_direct: true,
        ..Default::default()
    })
    .await?;
    let payload = Bytes::from(vec![0x5a_u8; size]);
    let mut base = Vec::new();
    for _ in 0..runs {
        let (js, payload) = (js.clone(), payload.clone());
        base.push(
            drive(CLIENTS, length, move |caller, n| {
                let (js, payload) = (js.clone(), payload.clone());
                async move {
                    js.publish(format!("barer3.t{}.{n}", caller % 8), payload)
                        .await?
                        .await?;
                    Ok(())
                }
            })
            .await,
        );
    }
    Ok(Row {
        ours: "InviteCustomer through two replicas on a three-node cluster (R3), 32 clients".into(),
        baseline: "async-nats publish-with-ack of messages of the same size to an R3 stream, 32 publishers".into(),
        unit: "invitations/s",
        ours_runs: ours,
        base_runs: base,
        target: Target::RateAtLeast(0.5),
        note: format!(
            "one tenant; an invitation stores ~{size} bytes (3 events); \
             each replica's commands of one tenant share messages"
        ),
    })
}
