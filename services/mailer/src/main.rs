//! `mailerd`: the mailer worker of the distributed mode. Any number of them
//! share the mail of one deployment; each keeps its own state directory.
#![forbid(unsafe_code)]

use access_keyring::Keyring;
use access_log::log::EventLog;
use access_log::nats::{JetStreamLog, connect_client};
use access_mailer::MailArgs;
use access_mailer::distributed::{self, SharedWork};
use access_mailer::report::GrpcReporter;
use access_runtime as telemetry;
use access_runtime::cli::NatsArgs;
use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The mailer worker of the customer portal access service (distributed mode).
#[derive(Parser, Debug)]
#[command(name = "mailerd", version, about)]
struct Cli {
    /// Where this worker writes its outbox when no SMTP server is set (it
    /// keeps no other state: what mails need is read from the log).
    #[arg(
        long,
        env = "ACCESS_MAILER_STATE_DIR",
        default_value = "./mailer-state"
    )]
    state_dir: PathBuf,
    /// Where `server.key` (for links) and `operator.key` (to report outcomes)
    /// live: the same files as every `accessd` of the deployment.
    #[arg(long, env = "ACCESS_KEY_DIR")]
    key_dir: PathBuf,
    /// The gRPC addresses of the service's replicas, comma-separated, to
    /// record delivery outcomes on contacts through whichever answers.
    #[arg(
        long,
        env = "ACCESS_SERVICE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    service_url: String,
    /// Base of the links in emails (the service's public address).
    #[arg(long, env = "ACCESS_PUBLIC_BASE_URL")]
    public_base_url: String,
    /// How mail is sent.
    #[command(flatten)]
    mail: MailArgs,
    /// The event log on NATS JetStream.
    #[command(flatten)]
    nats: NatsArgs,
    /// The shared consumer's name: one per deployment.
    #[arg(long, env = "ACCESS_MAILER_CONSUMER", default_value = "mailer")]
    consumer: String,
    /// How long a worker may go silent on a mail before another takes it
    /// over. A worker at work says so every third of it, so this is how
    /// soon a dead worker's mail moves on.
    #[arg(long, env = "ACCESS_MAIL_ACK_WAIT", default_value = "5s", value_parser = access_runtime::cli::parse_duration)]
    ack_wait: Duration,
    /// Mails this worker sends at once, each on its own SMTP connection. A
    /// worker killed mid-way leaves at most this many to be sent again (with
    /// the same Message-ID) by another.
    #[arg(long, env = "ACCESS_MAIL_IN_FLIGHT", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    in_flight: u16,
    /// Log format: auto (text on a terminal, JSON otherwise), text or json.
    #[arg(long, env = "ACCESS_LOG_FORMAT", default_value = "auto")]
    log_format: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(&cli.log_format);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailerd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn read_key_file(dir: &std::path::Path, name: &str) -> anyhow::Result<String> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = cli
        .nats
        .settings("mailerd")
        .map_err(|e| anyhow::anyhow!(e))?
        .context(
            "mailerd works on the distributed log: set --nats-url \
             (in embedded mode accessd sends mail itself)",
        )?;
    let keyring = Keyring::parse(&read_key_file(&cli.key_dir, "server.key")?)
        .map_err(|e| anyhow::anyhow!("server.key: {e}"))?;
    let operator_key = read_key_file(&cli.key_dir, "operator.key")?;
    let reporter = Arc::new(GrpcReporter::new(&cli.service_url, &operator_key)?);
    // The worker's index of the log (what a mail's facts are read from)
    // lives in its state directory, so a restart goes on from where it was.
    settings.index_dir = Some(cli.state_dir.join("log-index"));
    let client = connect_client(&settings).await?;
    let log: Arc<dyn EventLog> = Arc::new(
        JetStreamLog::with_client(client.clone(), &settings)
            .await
            .context("opening the event log on NATS")?,
    );
    std::fs::create_dir_all(&cli.state_dir)
        .with_context(|| format!("creating {}", cli.state_dir.display()))?;
    let config = cli.mail.mailer_config(
        &cli.state_dir.join("state"),
        &cli.state_dir.join("outbox"),
        &cli.public_base_url,
        Some(reporter),
    )?;
    let vault = access_log::nats::KvVault::open(
        &async_nats::jetstream::new(client.clone()),
        &settings.stream,
        settings.replicas,
    )
    .await
    .context("opening the key vault on NATS")?;
    let vault = access_log::vault::CachedVault::new(Arc::new(vault));
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        telemetry::shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    });
    println!("mailerd: working stream={}", settings.stream);
    let work = SharedWork {
        consumer: cli.consumer,
        ack_wait: cli.ack_wait,
        in_flight: usize::from(cli.in_flight),
    };
    let parts = distributed::Parts {
        config,
        keyring,
        log,
        vault,
    };
    distributed::run(parts, client, &settings, &work, stopped).await?;
    tracing::info!("stopped");
    Ok(())
}
