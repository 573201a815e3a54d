//! Configuration of `accessd serve`: flags, with the same settings readable
//! from `ACCESS_*` environment variables. Secrets (the SMTP URL with its
//! password) come from the environment or a file, never from a flag.

use crate::secrets::HashCost;
use anyhow::Context;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of the `serve` command.
#[derive(Clone, Debug, Args)]
pub struct ServeConfig {
    /// Where the log, read models, mailer state, keys and outbox live.
    #[arg(long, env = "ACCESS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Address of the gRPC server (port 0 picks a free one).
    #[arg(long, env = "ACCESS_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,
    /// Address of the HTTP server (liveness at /healthz).
    #[arg(long, env = "ACCESS_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// Base of the links in emails; defaults to http://<http-addr>.
    #[arg(long, env = "ACCESS_PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,
    /// How long invitation links live (e.g. 24h, 30m, 90s).
    #[arg(long, env = "ACCESS_LINK_TTL", default_value = "24h", value_parser = parse_duration)]
    pub link_ttl: Duration,
    /// How long sessions live.
    #[arg(long, env = "ACCESS_SESSION_TTL", default_value = "12h", value_parser = parse_duration)]
    pub session_ttl: Duration,
    /// argon2id memory cost in KiB (OWASP: 19456).
    #[arg(long, env = "ACCESS_ARGON2_MEMORY_KIB", default_value_t = 19_456)]
    pub argon2_memory_kib: u32,
    /// argon2id iterations (OWASP: 2).
    #[arg(long, env = "ACCESS_ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,
    /// argon2id lanes (OWASP: 1).
    #[arg(long, env = "ACCESS_ARGON2_PARALLELISM", default_value_t = 1)]
    pub argon2_parallelism: u32,
    /// Sender of every email.
    #[arg(
        long,
        env = "ACCESS_MAIL_FROM",
        default_value = "Customer portal <no-reply@localhost>"
    )]
    pub mail_from: String,
    /// A file holding the SMTP URL (`smtp://user:pass@host:587?tls=required`);
    /// or set ACCESS_SMTP_URL. Without either, mail goes to <data-dir>/outbox.
    #[arg(long, env = "ACCESS_SMTP_URL_FILE")]
    pub smtp_url_file: Option<PathBuf>,
    /// Attempts to deliver one mail before giving up on temporary SMTP failures.
    #[arg(long, env = "ACCESS_MAIL_MAX_ATTEMPTS", default_value_t = 8)]
    pub mail_max_attempts: u32,
    /// The wait after a mail's first temporary failure; it doubles each time (with jitter).
    #[arg(long, env = "ACCESS_MAIL_RETRY_BASE", default_value = "1s", value_parser = parse_duration)]
    pub mail_retry_base: Duration,
    /// The longest wait between two attempts of one mail.
    #[arg(long, env = "ACCESS_MAIL_RETRY_CAP", default_value = "5m", value_parser = parse_duration)]
    pub mail_retry_cap: Duration,
    /// At most this many mails a second per tenant (0: no limit), so a bulk
    /// invitation is paced for the relay instead of refused by it.
    #[arg(long, env = "ACCESS_MAIL_RATE", default_value_t = 0.0)]
    pub mail_rate: f64,
    /// Log format: auto (text on a terminal, JSON otherwise), text or json.
    #[arg(long, env = "ACCESS_LOG_FORMAT", default_value = "auto")]
    pub log_format: String,
}

impl ServeConfig {
    /// The argon2id cost.
    pub fn hash_cost(&self) -> HashCost {
        HashCost {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
        }
    }

    /// The SMTP URL, from ACCESS_SMTP_URL or the file named by --smtp-url-file.
    pub fn smtp_url(&self) -> anyhow::Result<Option<String>> {
        if let Ok(url) = std::env::var("ACCESS_SMTP_URL")
            && !url.trim().is_empty()
        {
            return Ok(Some(url.trim().to_owned()));
        }
        match &self.smtp_url_file {
            Some(path) => Ok(Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading the SMTP URL from {}", path.display()))?
                    .trim()
                    .to_owned(),
            )),
            None => Ok(None),
        }
    }
}

/// Parses `90s`, `30m`, `24h`, `7d` or `1500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 30m, 24h or 7d"))?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        "d" => n * 86_400_000,
        _ => return Err(format!("{s:?}: use a unit of ms, s, m, h or d")),
    };
    if ms == 0 {
        return Err("a duration must be more than zero".into());
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert!(parse_duration("24").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("h").is_err());
    }
}
