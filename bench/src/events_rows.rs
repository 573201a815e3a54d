//! The public event feed: events per second delivered to one and to a
//! hundred subscribers of `Events.Subscribe`, against a bare read-and-decode
//! of the same log.

use crate::grpc_rows::bare_read;
use crate::measure::{Row, Run, Target};
use crate::seed::{self, spread};
use access_log::file_log::FileLog;
use access_proto::v1 as pb;
use access_proto::v1::events_client::EventsClient;
use access_tests::TestApp;
use std::time::{Duration, Instant};

/// Subscribers of the second row.
const MANY: usize = 100;

/// Reads `count` events of the tenant from the start, on a stream of its own.
async fn read_all(app: &TestApp, key: &str, count: usize) -> anyhow::Result<()> {
    let mut stream = EventsClient::new(app.channel.clone())
        .subscribe(app.req(key, pb::SubscribeRequest::default()))
        .await?
        .into_inner();
    for _ in 0..count {
        anyhow::ensure!(stream.message().await?.is_some(), "the feed ended early");
    }
    Ok(())
}

/// How many public events the tenant has: all that come before a second
/// of silence.
async fn count(app: &TestApp, key: &str) -> anyhow::Result<usize> {
    let mut stream = EventsClient::new(app.channel.clone())
        .subscribe(app.req(key, pb::SubscribeRequest::default()))
        .await?
        .into_inner();
    let mut n = 0;
    while let Ok(next) = tokio::time::timeout(Duration::from_secs(1), stream.message()).await {
        anyhow::ensure!(next?.is_some(), "the feed ended");
        n += 1;
    }
    Ok(n)
}

/// Seeds `invites` invitations (and their customers, ten invitations each)
/// in the embedded mode, then times the feed and the bare read.
pub async fn subscribers(invites: usize, runs: usize) -> anyhow::Result<Vec<Row>> {
    let mut app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    // A key of their own for each subscriber: a key holds a few streams only.
    let mut keys = Vec::with_capacity(MANY);
    for i in 0..MANY {
        let name = format!("bench subscriber {i}");
        keys.push(
            app.create_key(&admin, pb::Role::Subscriber, &name, "")
                .await
                .api_key,
        );
    }
    let key = keys[0].clone();
    let (app_ref, admin_ref) = (&app, admin.as_str());
    spread(invites.div_ceil(10), 64, |c| {
        seed::create_customer(app_ref, admin_ref, c)
    })
    .await?;
    spread(invites, 64, |i| async move {
        seed::invite(app_ref, admin_ref, i, &format!("p{i}@shop.example")).await
    })
    .await?;
    app.settled_head().await;
    let n = count(&app, &key).await?;
    let (mut one, mut many) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        read_all(&app, &key, n).await?;
        one.push(Run {
            rate: n as f64 / started.elapsed().as_secs_f64(),
            p99: Duration::ZERO,
        });
        let started = Instant::now();
        futures::future::try_join_all(keys.iter().map(|k| read_all(&app, k, n))).await?;
        many.push(Run {
            rate: (MANY * n) as f64 / started.elapsed().as_secs_f64(),
            p99: Duration::ZERO,
        });
    }
    app.terminate_within(Duration::from_secs(60)).await?;
    let log = FileLog::open(&app.dir.join("log"))?;
    let mut bare = Vec::new();
    let mut stored = 0;
    for _ in 0..runs {
        let (read, run) = bare_read(&log).await?;
        stored = read;
        bare.push(run);
    }
    let note = format!(
        "{n} public events of one tenant from {stored} stored events ({invites} invitations); \
         embedded mode; each subscriber reads from the start; no target: reported"
    );
    let baseline = "bare read-and-decode of the same log (stored events)".to_owned();
    Ok(vec![
        Row {
            ours: "`Events.Subscribe`, one subscriber, public events from the start".into(),
            baseline: baseline.clone(),
            unit: "events/s",
            ours_runs: one,
            base_runs: bare.clone(),
            target: Target::Reported,
            note: note.clone(),
        },
        Row {
            ours: format!("`Events.Subscribe`, {MANY} subscribers at once (all events delivered)"),
            baseline,
            unit: "events/s",
            ours_runs: many,
            base_runs: bare,
            target: Target::Reported,
            note,
        },
    ])
}
