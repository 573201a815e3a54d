//! `CheckAccess` as a library call: the service built in this process on a
//! seeded data directory, its `App` asked directly, no transport between.

use crate::measure::{Row, Run, Target, quantile};
use access_service::app::App;
use access_service::config::ServeConfig;
use access_service::domain::access::Action;
use access_service::domain::policy::{Role, Staff};
use access_service::domain::values::TenantId;
use access_service::startup::Application;
use clap::Parser;
use std::collections::HashMap;
use std::time::Instant;

/// The service's own flags, to build its settings as `accessd` would.
#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    serve: ServeConfig,
}

/// One check as the gRPC method makes it, by a portal's key.
async fn check(app: &App, tenant: &TenantId, id: &str) -> anyhow::Result<bool> {
    let staff = Staff {
        role: Role::Service,
        rep_id: None,
    };
    let answer = app
        .check_access(tenant, &staff, id, &Action::PlaceOrder, 0)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(answer.decision.allowed)
}

/// `samples` checks of contacts spread over all of them: the run and its p50.
async fn checks(
    app: &App,
    tenants: &[TenantId],
    contacts: &[(usize, String)],
    samples: usize,
) -> anyhow::Result<(Run, std::time::Duration)> {
    let mut lat = Vec::with_capacity(samples);
    let started = Instant::now();
    for i in 0..samples {
        let (t, id) = &contacts[(i * 7919) % contacts.len()];
        let s = Instant::now();
        std::hint::black_box(check(app, &tenants[*t], id).await?);
        lat.push(s.elapsed());
    }
    let rate = samples as f64 / started.elapsed().as_secs_f64();
    let p50 = quantile(&mut lat, 0.5);
    let p99 = quantile(&mut lat, 0.99);
    Ok((Run { rate, p99 }, p50))
}

/// `App::check_access` on the stopped service's data directory, against a
/// `HashMap` lookup of the same key count. Keeps the service running (its
/// log stays locked), so it is the group's last row.
pub async fn check_access(
    dir: &std::path::Path,
    contacts: &[(usize, String)],
    runs: usize,
) -> anyhow::Result<(Row, Application)> {
    let data_dir = dir.to_string_lossy().into_owned();
    let flags = Flags::try_parse_from([
        "accessd",
        "--data-dir",
        &data_dir,
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ])?;
    let service = Application::build(&flags.serve).await?;
    let app = service.app().clone();
    app.wait_for(app.head())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let tenants: Vec<TenantId> = (0..=contacts.iter().map(|c| c.0).max().unwrap_or(0))
        .map(|t| TenantId::parse(&format!("t{t:04}")))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!(e))?;
    let map: HashMap<String, String> = contacts
        .iter()
        .map(|(t, id)| (format!("t{t:04}/{id}"), id.clone()))
        .collect();
    let samples = 200_000.min(contacts.len() * 20);
    // A start checks the whole log in the background (a minute at a
    // million contacts, on one of the two cores): measured once while it
    // runs, for the note, and then settled, for the row.
    let (during, during_p50) = checks(&app, &tenants, contacts, samples).await?;
    let checking = Instant::now();
    service.whole_log_checked().await;
    let waited = checking.elapsed();
    let (mut ours, mut base, mut p50s) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (run, p50) = checks(&app, &tenants, contacts, samples).await?;
        ours.push(run);
        p50s.push(p50);
        base.push(crate::grpc_rows::map_lookups(&map, contacts, samples));
    }
    let p50 = quantile(&mut p50s, 0.5);
    let micros = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    let row = Row {
        ours: "`CheckAccess` in-process (`App::check_access`, no transport)".into(),
        baseline: "a `HashMap` lookup, same key count".into(),
        unit: "checks/s",
        ours_runs: ours,
        base_runs: base,
        target: Target::P99UnderMicros(5.0),
        note: format!(
            "{} contacts; p50 {:.2} µs; after the start's background check of the whole log \
             ({:.0} s more); during it: p50 {:.2} µs, p99 {:.2} µs",
            contacts.len(),
            micros(p50),
            waited.as_secs_f64(),
            micros(during_p50),
            micros(during.p99),
        ),
    };
    Ok((row, service))
}
