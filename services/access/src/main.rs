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
    /// Runs the service (embedded mode: the log, read models and mailer in this process).
    Serve(ServeConfig),
}

#[tokio::main]
async fn main() -> ExitCode {
    let Cli { command } = Cli::parse();
    match command {
        Command::Serve(config) => {
            telemetry::init(&config.log_format);
            match serve(config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("accessd: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let app = Application::build(&config).await?;
    // One stable stdout line for people and scripts; the key itself is never printed.
    println!(
        "accessd: operator key in {}",
        app.operator_key_path().display()
    );
    println!(
        "accessd: listening grpc={} http={}",
        app.grpc_addr()?,
        app.http_addr()?
    );
    app.run_until_stopped(shutdown_signal()).await
}
