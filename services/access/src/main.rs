//! `accessd`: the customer portal access service.
#![forbid(unsafe_code)]

use access_service::config::ServeConfig;
use access_service::startup::{Application, shutdown_signal};
use access_service::telemetry;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// The customer portal access service.
#[derive(Parser)]
#[command(name = "accessd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the service (embedded mode: the log, read models and mailer in
    /// this process; with --nats-url, one replica on NATS JetStream).
    Serve(Box<ServeConfig>),
    /// Creates the deployment's keys (`server.key`, `operator.key`, mode 0600)
    /// in a directory if they are not there yet, for replicas and mailer
    /// workers to share; existing keys are never replaced.
    Keys {
        /// Where to create them.
        #[arg(long, env = "ACCESS_KEY_DIR")]
        key_dir: std::path::PathBuf,
        /// Make a new current server key; links and sessions made with the
        /// previous ones keep working. Restart replicas and mailers after.
        #[arg(long)]
        rotate: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let Cli { command } = Cli::parse();
    match command {
        Command::Serve(config) => {
            telemetry::init(&config.log_format);
            match serve(*config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("accessd: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Keys { key_dir, rotate } => match keys(&key_dir, rotate) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("accessd: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn keys(dir: &std::path::Path, rotate: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let secrets = access_service::secrets::DataDirSecrets::load_or_create(dir)?;
    if rotate {
        let id = access_service::secrets::DataDirSecrets::rotate(dir)?;
        println!(
            "accessd: new server key {id} in {} (key {} and older still verify)",
            dir.display(),
            secrets.server_key.id()
        );
        return Ok(());
    }
    println!(
        "accessd: keys in {} (operator key in {})",
        dir.display(),
        secrets.operator_key_path.display()
    );
    Ok(())
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let app = Application::build(&config).await?;
    // One stable stdout line for people and scripts; the key itself is never printed.
    println!(
        "accessd: operator key in {}",
        app.operator_key_path().display()
    );
    let metrics = app
        .metrics_addr()?
        .map(|a| format!(" metrics={a}"))
        .unwrap_or_default();
    println!(
        "accessd: listening grpc={} http={}{metrics}",
        app.grpc_addr()?,
        app.http_addr()?
    );
    app.run_until_stopped(shutdown_signal()).await
}
