//! The process's surroundings: one tracing subscriber (text on a terminal,
//! JSON lines otherwise, filtered by `RUST_LOG`; by default our own crates
//! at `info` and dependencies only at `warn`) and the signals that stop it.
//! Shared by `accessd` and `mailerd`, with the command-line settings they
//! share in [`cli`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// What is logged without `RUST_LOG`: a storage engine's `INFO` lines (the
/// paths it opens, say) are its own business, not an operator's.
const DEFAULT_FILTER: &str = "warn,accessd=info,mailerd=info,accessctl=info,\
                              access_service=info,access_mailer=info,access_log=info";

/// Installs the subscriber; `format` is `auto`, `text` or `json`.
pub fn init(format: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let json = match format {
        "json" => true,
        "text" => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (in tests) keeps the first subscriber.
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
