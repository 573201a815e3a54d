//! `access-bench`: every hot path of the service measured against a baseline
//! taken in the same run on the same machine; prints one table and writes it
//! to `BENCHMARKS.md`. `just bench` runs it; `just bench --quick` in about
//! six minutes on two cores.
#![forbid(unsafe_code)]

mod audit_rows;
mod empty;
mod events_rows;
mod footprint_rows;
mod grpc_rows;
mod import_rows;
mod inprocess_rows;
mod log_rows;
mod mail_rows;
mod measure;
mod memory_rows;
mod nats_rows;
mod oidc_rows;
mod seed;

use clap::{Parser, Subcommand};
use measure::Row;
use std::time::Duration;

// The allocator `accessd` uses, so that the in-process rows and the empty
// server (this binary too) are measured as the service runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The benchmark harness of the customer portal access service.
#[derive(Parser)]
#[command(name = "access-bench", version, about)]
struct Cli {
    /// Small sizes and short runs (about six minutes on two cores), for everyday use.
    #[arg(long)]
    quick: bool,
    /// Where to write the table.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: std::path::PathBuf,
    /// Runs of each row (min / median / max are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Only these groups (comma-separated): log, grpc, login, oidc, nats,
    /// cluster, catch-up, audit, events, mail, workers, memory, import.
    #[arg(long)]
    only: Option<String>,
    /// Invitations seeded for the replica catch-up (about three events each).
    #[arg(long)]
    catch_up_invites: Option<usize>,
    /// Events in the log the point-in-time (audit) row answers on.
    #[arg(long)]
    audit_events: Option<usize>,
    /// Contacts seeded for the gRPC rows, the footprint and the rebuild
    /// (about three and a half events each; 1,000,000 gives the sizing
    /// figures).
    #[arg(long)]
    contacts: Option<usize>,
    /// Where to leave a copy of the seeded data directory (a stopped
    /// `accessd`'s), for looking into afterwards; by default it is removed.
    #[arg(long)]
    keep_data: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the empty baseline handlers (started by the harness itself).
    EmptyServer {
        /// Where to listen.
        #[arg(long)]
        addr: std::net::SocketAddr,
    },
}

/// Sizes of one harness run.
struct Plan {
    length: Duration,
    codes: usize,
    tenants: usize,
    contacts: usize,
    mails: usize,
    catch_up_invites: usize,
    audit_events: usize,
    feed_invites: usize,
    imports: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::EmptyServer { addr }) = cli.command {
        return empty::serve(addr).await;
    }
    let plan = if cli.quick {
        Plan {
            length: Duration::from_millis(1500),
            codes: 1_000,
            tenants: 10,
            contacts: 3_000,
            mails: 500,
            catch_up_invites: 2_000,
            audit_events: 100_000,
            feed_invites: 1_000,
            imports: 10_000,
        }
    } else {
        Plan {
            length: Duration::from_secs(5),
            codes: 10_000,
            tenants: 1_000,
            contacts: 100_000,
            mails: 10_000,
            catch_up_invites: 100_000,
            audit_events: 1_000_000,
            feed_invites: 10_000,
            imports: 100_000,
        }
    };
    let plan = Plan {
        catch_up_invites: cli.catch_up_invites.unwrap_or(plan.catch_up_invites),
        audit_events: cli.audit_events.unwrap_or(plan.audit_events),
        contacts: cli.contacts.unwrap_or(plan.contacts),
        ..plan
    };
    let runs = cli.runs.max(1);
    let wanted = |group: &str| {
        cli.only
            .as_deref()
            .is_none_or(|o| o.split(',').any(|g| g.trim() == group))
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let step = |name: &str| eprintln!("bench: {name}");

    if wanted("log") {
        step("event-log append, 64 appenders");
        rows.push(log_rows::group_commit(runs, plan.length).await?);
        step("projection lag");
        rows.push(log_rows::projection_lag(runs, plan.length).await?);
    }
    if wanted("grpc") {
        step(&format!("seeding {} contacts", plan.contacts));
        let seeded = grpc_rows::seed(plan.tenants, plan.contacts).await?;
        let empty = grpc_rows::EmptyServer::start().await?;
        step("CheckAccess");
        rows.push(grpc_rows::check_access(&seeded, &empty, runs, plan.length).await);
        step("InviteCustomer, 1 caller");
        rows.push(grpc_rows::invite(&seeded, &empty, 1, runs, plan.length).await?);
        step("InviteCustomer, 64 callers");
        rows.push(grpc_rows::invite(&seeded, &empty, 64, runs, plan.length).await?);
        step("footprint and restart");
        let (lines, dir, contacts, _keep) =
            footprint_rows::footprint(seeded, cli.keep_data.as_deref()).await?;
        notes.extend(lines);
        step("in-process lookups");
        rows.push(grpc_rows::lookups(&dir, &contacts, runs)?);
        step("rebuild");
        rows.push(grpc_rows::rebuild(&dir, runs).await?);
        step("CheckAccess in-process");
        let (row, _service) = inprocess_rows::check_access(&dir, &contacts, runs).await?;
        rows.push(row);
    }
    if wanted("login") {
        step("Login");
        rows.push(grpc_rows::login(runs, plan.length).await?);
    }
    if wanted("memory") {
        step("memory around a burst of logins");
        notes.push(memory_rows::login_burst().await?);
    }
    if wanted("oidc") {
        step("OpenID Connect token endpoint and introspection");
        let empty = grpc_rows::EmptyServer::start().await?;
        rows.extend(oidc_rows::rows(&empty, runs, plan.length, plan.codes).await?);
    }
    if wanted("nats") {
        step("JetStream appends");
        rows.extend(nats_rows::appends(runs, plan.length).await?);
    }
    if wanted("cluster") {
        step("invitations on a three-node cluster");
        rows.push(nats_rows::cluster_invites(runs, plan.length).await?);
    }
    if wanted("catch-up") {
        step("replica catch-up");
        let (row, line) = nats_rows::catch_up(plan.catch_up_invites).await?;
        rows.push(row);
        notes.push(line);
    }
    if wanted("audit") {
        step("point-in-time answer");
        let (row, line) = audit_rows::access_at(plan.audit_events, runs).await?;
        rows.push(row);
        notes.push(line);
    }
    if wanted("events") {
        step("public event feed");
        rows.extend(events_rows::subscribers(plan.feed_invites, runs).await?);
    }
    if wanted("mail") {
        step("mailer");
        rows.push(mail_rows::mailer(plan.mails).await?);
    }

    if wanted("import") {
        step(&format!("import of {} logins", plan.imports));
        let (row, line) = import_rows::import(plan.imports, runs).await?;
        rows.push(row);
        notes.push(line);
    }
    if wanted("workers") {
        step("mailerd workers");
        rows.extend(mail_rows::workers(plan.mails.min(2_000)).await?);
    }

    let report = render(&rows, &notes)?;
    println!("{report}");
    std::fs::write(&cli.out, report)?;
    eprintln!("bench: written to {}", cli.out.display());
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024 / 1024);
    format!("{cpu}, {cores} cores, {mem} GiB")
}

fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn render(rows: &[Row], notes: &[String]) -> anyhow::Result<String> {
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut out = String::new();
    out.push_str("# Benchmarks\n\n");
    let flags: String = std::env::args().skip(1).map(|a| format!(" {a}")).collect();
    out.push_str(&format!(
        "Written by `access-bench{flags}` on {date}, commit `{}`, on {}. \
         Each row pairs our path with a baseline measured in the same run on the \
         same machine; rates are median (min–max) over the runs.\n\n",
        commit(),
        machine()
    ));
    out.push_str("| our path | baseline | ours | baseline's | ratio | target | | notes |\n");
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for row in rows {
        out.push_str(&row.markdown());
        out.push('\n');
    }
    out.push_str("\n## Sizes, memory, disk, start-up\n\n");
    for n in notes {
        out.push_str(n);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(include_str!("../COMPARISON.md"));
    Ok(out)
}
