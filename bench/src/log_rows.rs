//! Rows measured in-process on the embedded log: group commit against raw
//! `fdatasync`, and how far the read models trail the log.

use crate::measure::{Row, Run, Target, drive, drive_blocking};
use access_catalogue::catalogue::{
    CustomerCreated, CustomerEvent, CustomerRecord, CustomerStatus, Event,
};
use access_catalogue::envelope::{Aggregate, StreamId};
use access_log::conformance;
use access_log::file_log::FileLog;
use access_log::log::{AppendRequest, EventLog, NewEvent, StreamAppend};
use access_service::projections::{ReadModels, run_projector};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Raw `write` + `fdatasync` of `per_sync` records of `bytes` each, in a file
/// under `dir`: the disk's own limit for durable appends.
pub fn fsync_loop(dir: &Path, bytes: usize, per_sync: usize, length: Duration) -> Run {
    let path = dir.join(format!("raw-{}", uuid::Uuid::new_v4()));
    let file = match std::fs::File::create(&path) {
        Ok(f) => Arc::new(std::sync::Mutex::new(f)),
        Err(e) => {
            eprintln!("bench: {}: {e}", path.display());
            return Run::default();
        }
    };
    let record = vec![0x5a_u8; bytes * per_sync];
    let run = drive_blocking(1, length, move |_| {
        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
        if f.write_all(&record).and_then(|()| f.sync_data()).is_err() {
            return 0;
        }
        per_sync as u64
    });
    let _ = std::fs::remove_file(path);
    run
}

/// The encoded size of a typical one-event append.
pub fn envelope_bytes() -> usize {
    let r = conformance::request("size", &conformance::stream("size"), 0, 1);
    let s = &r.streams[0];
    r.seal(&s.stream, &s.events[0], 1, [0; 32], 1)
        .map(|e| e.encode().len())
        .unwrap_or(300)
}

/// A real event the read models take: a new customer of tenant `bench`.
fn customer_created(id: &str) -> AppendRequest {
    let (event_type, schema_version, payload) =
        Event::Customer(CustomerEvent::CustomerCreated(CustomerCreated {
            record: CustomerRecord {
                customer_id: id.to_owned(),
                name: format!("Customer {id}"),
                ..Default::default()
            },
            status: CustomerStatus::Active,
        }))
        .encode();
    let stream = StreamId::new(Aggregate::Customer, "bench", id).expect("a valid stream id");
    AppendRequest {
        request_id: format!("bench/{id}"),
        fingerprint: [1; 32],
        tenant: Some("bench".into()),
        actor: access_catalogue::Actor::Operator,
        correlation_id: uuid::Uuid::new_v4(),
        causation_id: None,
        occurred_at_ms: 1_790_000_000_000,
        streams: vec![StreamAppend {
            stream,
            expected_version: 0,
            events: vec![NewEvent {
                event_id: uuid::Uuid::now_v7(),
                event_type: event_type.to_owned(),
                schema_version,
                payload,
            }],
        }],
        reply: Vec::new(),
    }
}

/// Event-log append in-process with 64 concurrent appenders, against raw
/// `write` + `fdatasync` with 64 records per sync.
pub async fn group_commit(runs: usize, length: Duration) -> anyhow::Result<Row> {
    let dir = tempfile::tempdir_in(".")?;
    let bytes = envelope_bytes();
    let mut ours = Vec::new();
    let mut base = Vec::new();
    let mut groups = (0u64, 0u64);
    for run in 0..runs {
        let log = Arc::new(FileLog::open(&dir.path().join(format!("log{run}")))?);
        let counter = Arc::new(AtomicU64::new(0));
        let stats_of = log.clone();
        ours.push(
            drive(64, length, move |_, _| {
                let log = log.clone();
                let n = counter.fetch_add(1, Ordering::Relaxed);
                async move {
                    log.append(customer_created(&format!("c{n}")))
                        .await
                        .map(|_| ())
                        .map_err(Into::into)
                }
            })
            .await,
        );
        groups.0 += stats_of.stats().commits.load(Ordering::Relaxed);
        groups.1 += stats_of.stats().appends.load(Ordering::Relaxed);
        let d = dir.path().to_path_buf();
        base.push(tokio::task::spawn_blocking(move || fsync_loop(&d, bytes, 64, length)).await?);
    }
    Ok(Row {
        ours: "event-log append in-process, 64 appenders (embedded)".into(),
        baseline: "raw `write` + `fdatasync`, 64 records per sync".into(),
        unit: "events/s",
        ours_runs: ours,
        base_runs: base,
        target: Target::RateAtLeast(0.5),
        note: format!(
            "{bytes}-byte records; {:.1} appends per group commit",
            groups.1 as f64 / groups.0.max(1) as f64
        ),
    })
}

/// Command → visible in the read models, against the append's own latency:
/// one appender, the real projector and read models.
pub async fn projection_lag(runs: usize, length: Duration) -> anyhow::Result<Row> {
    let dir = tempfile::tempdir_in(".")?;
    let mut ours = Vec::new();
    let mut base = Vec::new();
    for run in 0..runs {
        let log: Arc<dyn EventLog> =
            Arc::new(FileLog::open(&dir.path().join(format!("log{run}")))?);
        let models = Arc::new(ReadModels::open(&dir.path().join(format!("models{run}")))?);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let vault = access_log::vault::CachedVault::new(Arc::new(
            access_log::file_vault::FileVault::open(&dir.path().join(format!("vault{run}")))?,
        ));
        let projector = tokio::spawn(run_projector(
            models.clone(),
            log.clone(),
            vault,
            Default::default(),
            stopped,
        ));
        let deadline = Instant::now() + length;
        let mut appends = Vec::new();
        let mut lags = Vec::new();
        let started = Instant::now();
        let mut n = 0;
        while Instant::now() < deadline {
            let t = Instant::now();
            let committed = log.append(customer_created(&format!("c{n}"))).await?;
            let acked = Instant::now();
            models
                .wait_for(committed.last_position, Duration::from_secs(5))
                .await
                .map_err(|b| anyhow::anyhow!("{b}"))?;
            appends.push(acked - t);
            lags.push(acked.elapsed());
            n += 1;
        }
        let rate = n as f64 / started.elapsed().as_secs_f64();
        ours.push(Run {
            rate,
            p99: crate::measure::quantile(&mut lags, 0.99),
        });
        base.push(Run {
            rate,
            p99: crate::measure::quantile(&mut appends, 0.99),
        });
        let _ = stop.send(true);
        let _ = projector.await;
    }
    Ok(Row {
        ours: "command → visible in the read model (lag after the ack)".into(),
        baseline: "the append's latency (to the durable ack)".into(),
        unit: "cmds/s",
        ours_runs: ours,
        base_runs: base,
        target: Target::P99AtMost(2.0),
        note: "one appender; rates are the shared loop's".into(),
    })
}
