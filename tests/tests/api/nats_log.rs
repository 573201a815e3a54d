//! The JetStream backend against the same conformance checks as the embedded
//! log, on a real `nats-server`.

use access_log::conformance;
use access_log::log::EventLog;
use access_log::nats::{JetStreamLog, NatsSettings};
use access_tests::nats::Nats;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_log_meets_the_conformance_suite() {
    let nats = Nats::single().await;
    let counter = AtomicUsize::new(0);
    conformance::run_all(|| {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let mut settings = NatsSettings::new(nats.urls());
        settings.stream = format!("CONFORMANCE{n}");
        settings.prefix = format!("conformance{n}");
        async move {
            Arc::new(JetStreamLog::open(&settings).await.expect("the log opens"))
                as Arc<dyn EventLog>
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_replicas_making_one_persons_key_all_get_the_same_key() {
    use access_log::nats::KvVault;
    use access_log::vault::Vault;
    let nats = Nats::cluster().await;
    let mut vaults = Vec::new();
    for _ in 0..2 {
        let urls: Vec<async_nats::ServerAddr> = nats
            .urls()
            .split(',')
            .map(|u| u.parse().expect("url"))
            .collect();
        let client = async_nats::connect(urls).await.expect("connects");
        let js = async_nats::jetstream::new(client);
        vaults.push(Arc::new(
            KvVault::open(&js, "VAULTTEST", 3).await.expect("opens"),
        ));
    }
    for round in 0..5 {
        let key_ref = format!("person{round}");
        let tries: Vec<_> = (0..8)
            .map(|i| {
                let vault = vaults[i % 2].clone();
                let key_ref = key_ref.clone();
                tokio::spawn(async move { vault.get_or_create(&key_ref).await })
            })
            .collect();
        let mut keys = Vec::new();
        for t in tries {
            keys.push(t.await.expect("task").expect("a key"));
        }
        assert!(keys.windows(2).all(|w| w[0] == w[1]), "one key per person");
        let read = vaults[1].get(&key_ref).await.expect("read");
        assert_eq!(read, Some(keys[0]));
        vaults[0].destroy(&key_ref).await.expect("destroy");
        assert_eq!(vaults[1].get(&key_ref).await.expect("read"), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_read_in_bulk_are_every_key_not_destroyed() {
    use access_log::nats::KvVault;
    use access_log::vault::{CachedVault, Vault};
    let nats = Nats::single().await;
    let client = async_nats::connect(nats.urls()).await.expect("connects");
    let js = async_nats::jetstream::new(client);
    let vault = Arc::new(KvVault::open(&js, "BULKKEYS", 1).await.expect("opens"));
    // More than one read's worth, some destroyed.
    let mut made = std::collections::BTreeMap::new();
    for i in 0..2500 {
        let key_ref = format!("p{i}");
        made.insert(
            key_ref.clone(),
            vault.get_or_create(&key_ref).await.expect("made"),
        );
        if i % 100 == 7 {
            vault.destroy(&key_ref).await.expect("destroyed");
            made.remove(&key_ref);
        }
    }
    let read: std::collections::BTreeMap<_, _> = vault
        .bulk(usize::MAX)
        .await
        .expect("read")
        .into_iter()
        .collect();
    assert_eq!(read, made);
    assert_eq!(vault.bulk(10).await.expect("read").len(), 10);
    let cached = CachedVault::new(vault.clone());
    assert_eq!(cached.warm().await.expect("warmed"), made.len());
    // A key destroyed since is no longer answered from the cache.
    cached.destroy("p0").await.expect("destroyed");
    assert_eq!(cached.get("p0").await.expect("read"), None);
    assert_eq!(
        cached.get("p1").await.expect("read"),
        made.get("p1").copied()
    );
}

/// A log on `nats`'s stream `name`, its index in `index` if given.
async fn open(nats: &Nats, name: &str, index: Option<&std::path::Path>) -> Arc<JetStreamLog> {
    let mut settings = NatsSettings::new(nats.urls());
    settings.stream = name.to_uppercase();
    settings.prefix = name.to_lowercase();
    settings.index_dir = index.map(std::path::Path::to_path_buf);
    Arc::new(JetStreamLog::open(&settings).await.expect("the log opens"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_racing_on_one_tenant_store_each_request_once_and_every_stream_whole() {
    use access_log::log::AppendError;
    let nats = Nats::single().await;
    let logs = [
        open(&nats, "race", None).await,
        open(&nats, "race", None).await,
    ];
    // 16 streams, each appended to 6 times; every append is sent to both
    // replicas at once under one request id.
    let mut tasks = Vec::new();
    for s in 0..16 {
        let logs = logs.clone();
        tasks.push(tokio::spawn(async move {
            let stream = conformance::stream(&format!("s{s}"));
            let mut version = 0;
            let mut stored = Vec::new();
            while version < 6 {
                let id = format!("s{s}v{version}");
                let r = conformance::request(&id, &stream, version, 2);
                let (a, b) = tokio::join!(logs[0].append(r.clone()), logs[1].append(r));
                let mut won = None;
                for result in [a, b] {
                    match result {
                        Ok(c) => {
                            if let Some((first, last)) = won {
                                assert_eq!(
                                    (c.first_position, c.last_position),
                                    (first, last),
                                    "one request, one place"
                                );
                            }
                            won = Some((c.first_position, c.last_position));
                        }
                        Err(AppendError::Conflict { .. } | AppendError::Unavailable(_)) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                // The request is now stored exactly once, whoever won.
                let record = logs[(s + version as usize) % 2]
                    .request(&id)
                    .await
                    .expect("read")
                    .expect("stored");
                if let Some(place) = won {
                    assert_eq!((record.first_position, record.last_position), place);
                }
                stored.push(record.first_position);
                version += 2;
            }
            stored
        }));
    }
    let mut positions = Vec::new();
    for t in tasks {
        positions.extend(t.await.expect("task"));
    }
    let n = positions.len();
    positions.sort_unstable();
    positions.dedup();
    assert_eq!(positions.len(), n, "no two commands share a place");
    for log in &logs {
        for s in 0..16 {
            let events = log
                .read_stream(&conformance::stream(&format!("s{s}")))
                .await
                .expect("read");
            let versions: Vec<u64> = events.iter().map(|e| e.stream_version).collect();
            assert_eq!(versions, (1..=6).collect::<Vec<_>>(), "stream s{s}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_spanning_scopes_and_larger_than_a_message_are_stored_whole() {
    use access_catalogue::envelope::{Aggregate, GLOBAL_TENANT, StreamId};
    use access_log::log::StreamAppend;
    let nats = Nats::single().await;
    let log = open(&nats, "spans", None).await;
    let identity = StreamId::new(Aggregate::Identity, GLOBAL_TENANT, "i1").expect("id");
    let contact = conformance::stream("c1");
    // A tenant's contact and a global identity in one command.
    let mut r = conformance::request("both", &contact, 0, 2);
    r.streams.push(StreamAppend {
        stream: identity.clone(),
        ..conformance::request("x", &identity, 0, 3).streams[0].clone()
    });
    let both = log.append(r.clone()).await.expect("stored");
    assert!(both.last_position - both.first_position >= 4);
    assert!(log.append(r).await.expect("again").duplicate);
    // The operator's command on a tenant: its record goes elsewhere.
    let mut operator = conformance::request("op", &contact, 2, 1);
    operator.tenant = None;
    log.append(operator.clone()).await.expect("stored");
    assert!(log.append(operator).await.expect("again").duplicate);
    // More bytes than one message takes: several messages, all or none.
    let mut big = conformance::request("big", &contact, 3, 8);
    for e in &mut big.streams[0].events {
        e.payload = vec![7; 200 * 1024];
    }
    let stored = log.append(big).await.expect("stored");
    assert_eq!(log.read_stream(&contact).await.expect("read").len(), 11);
    assert_eq!(log.read_stream(&identity).await.expect("read").len(), 3);
    let mut all = Vec::new();
    loop {
        let from = all
            .last()
            .map_or(1, |e: &access_catalogue::Envelope| e.position + 1);
        let batch = log.read_from(from, 1000).await.expect("read");
        if batch.is_empty() {
            break;
        }
        all.extend(batch);
    }
    assert_eq!(all.len(), 14);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(all.last().map(|e| e.position), Some(stored.last_position));
    assert_eq!(log.latest().await.expect("head"), stored.last_position);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_survives_a_restart_and_starts_again_for_a_stream_made_anew() {
    let nats = Nats::single().await;
    let dir = tempfile::tempdir().expect("dir");
    let s = conformance::stream("a");
    {
        let log = open(&nats, "kept", Some(dir.path())).await;
        log.append(conformance::request("r1", &s, 0, 3))
            .await
            .expect("stored");
    }
    let log = open(&nats, "kept", Some(dir.path())).await;
    assert_eq!(log.read_stream(&s).await.expect("read").len(), 3);
    assert!(
        log.append(conformance::request("r1", &s, 0, 3))
            .await
            .expect("answered")
            .duplicate
    );
    drop(log);
    // The stream deleted and made again under its name: nothing of the
    // old one may be served.
    let client = access_log::nats::connect_client(&NatsSettings::new(nats.urls()))
        .await
        .expect("connects");
    async_nats::jetstream::new(client)
        .delete_stream("KEPT")
        .await
        .expect("deleted");
    let log = open(&nats, "kept", Some(dir.path())).await;
    assert!(log.read_stream(&s).await.expect("read").is_empty());
    assert!(
        !log.append(conformance::request("r1", &s, 0, 1))
            .await
            .expect("stored")
            .duplicate
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_message_stops_the_index_and_every_read_names_it() {
    use access_log::log::LogError;
    let nats = Nats::single().await;
    let log = open(&nats, "broken", None).await;
    let s = conformance::stream("a");
    log.append(conformance::request("r1", &s, 0, 1))
        .await
        .expect("stored");
    // A frame whose event claims to follow the stream's first one but was
    // altered after sealing, written past the service.
    let mut envelope = log.read_stream(&s).await.expect("read")[0].clone();
    envelope.stream_version = 2;
    envelope.prev_hash = envelope.hash;
    envelope.position = 0;
    let mut frame = vec![1u8];
    frame.extend(
        postcard::to_stdvec(&(vec![envelope.encode()], Vec::<u8>::new())).expect("encodes"),
    );
    let client = access_log::nats::connect_client(&NatsSettings::new(nats.urls()))
        .await
        .expect("connects");
    async_nats::jetstream::new(client)
        .publish("broken.t.conformance", frame.into())
        .await
        .expect("sent")
        .await
        .expect("stored");
    // The head moves past the index, which refuses the message.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let _ = log.latest().await;
        match log.read_stream(&s).await {
            Err(LogError::Damaged(d)) => {
                assert!(d.to_string().contains("message 2"), "{d}");
                break;
            }
            other => assert!(
                std::time::Instant::now() < deadline,
                "still served: {other:?}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        log.append(conformance::request("r2", &s, 1, 1))
            .await
            .is_err(),
        "nothing is written onto damage"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_in_the_earlier_layout_is_refused_with_what_to_do() {
    let nats = Nats::single().await;
    let client = access_log::nats::connect_client(&NatsSettings::new(nats.urls()))
        .await
        .expect("connects");
    async_nats::jetstream::new(client)
        .create_stream(async_nats::jetstream::stream::Config {
            name: "OLD".into(),
            subjects: vec!["old.ev.>".into(), "old.req.>".into()],
            allow_atomic_publish: true,
            ..Default::default()
        })
        .await
        .expect("made");
    let mut settings = NatsSettings::new(nats.urls());
    settings.stream = "OLD".into();
    settings.prefix = "old".into();
    let refused = JetStreamLog::open(&settings).await.expect_err("refused");
    assert!(refused.to_string().contains("earlier layout"), "{refused}");
    assert!(refused.to_string().contains("restore"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_decided_differently_on_two_replicas_is_stored_once() {
    // A retry that decides again (a fresh contact id, say) touches other
    // streams than the first attempt: only the request id can tell them
    // apart, and it must, however close the two attempts are.
    let nats = Nats::single().await;
    let logs = [
        open(&nats, "twice", None).await,
        open(&nats, "twice", None).await,
    ];
    for round in 0..40 {
        let id = format!("r{round}");
        let a = conformance::request(&id, &conformance::stream(&format!("a{round}")), 0, 1);
        let b = conformance::request(&id, &conformance::stream(&format!("b{round}")), 0, 1);
        let (a, b) = tokio::join!(logs[0].append(a), logs[1].append(b));
        let (a, b) = (a.expect("answered"), b.expect("answered"));
        assert!(a.duplicate != b.duplicate, "round {round}: {a:?} {b:?}");
        assert_eq!(a.first_position, b.first_position, "round {round}");
        let stored = [format!("a{round}"), format!("b{round}")]
            .iter()
            .map(|s| conformance::stream(s))
            .collect::<Vec<_>>();
        let mut events = 0;
        for s in &stored {
            events += logs[round % 2].read_stream(s).await.expect("read").len();
        }
        assert_eq!(events, 1, "round {round}: one attempt's events only");
    }
}
