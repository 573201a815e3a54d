//! What the command lines of `accessd`, `mailerd` and `accessctl` share:
//! durations, and where NATS is and how to reach it.

use access_log::nats::{NatsAuth, NatsSettings};
use std::path::PathBuf;
use std::time::Duration;

/// Parses `90s`, `30m`, `24h`, `7d`, `1500ms` or `1h 30m` (humantime's
/// forms); never zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration like 90s, 30m, 24h or 7d: {e}"))?;
    if d.is_zero() {
        return Err("a duration must be more than zero".into());
    }
    Ok(d)
}

/// The command-line and environment settings of the distributed mode, shared
/// by `accessd` and `mailerd`. Secrets come from files or the environment,
/// never from flags (flags show in `ps`).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct NatsArgs {
    /// NATS server URLs, comma-separated; set it to run on JetStream instead of
    /// the embedded log.
    #[arg(long, env = "ACCESS_NATS_URL")]
    pub nats_url: Option<String>,
    /// The JetStream stream holding the log.
    #[arg(long, env = "ACCESS_NATS_STREAM", default_value = "ACCESS")]
    pub nats_stream: String,
    /// The first token of the log's subjects.
    #[arg(long, env = "ACCESS_NATS_PREFIX", default_value = "access")]
    pub nats_prefix: String,
    /// Replicas of the stream when this process creates it (3 in a cluster).
    #[arg(long, env = "ACCESS_NATS_REPLICAS", default_value_t = 1)]
    pub nats_replicas: usize,
    /// NATS user; the password comes from ACCESS_NATS_PASSWORD or --nats-password-file.
    #[arg(long, env = "ACCESS_NATS_USER")]
    pub nats_user: Option<String>,
    /// A file holding the NATS password.
    #[arg(long, env = "ACCESS_NATS_PASSWORD_FILE")]
    pub nats_password_file: Option<PathBuf>,
    /// A file holding a NATS token (or set ACCESS_NATS_TOKEN).
    #[arg(long, env = "ACCESS_NATS_TOKEN_FILE")]
    pub nats_token_file: Option<PathBuf>,
    /// A file holding an NKey seed.
    #[arg(long, env = "ACCESS_NATS_NKEY_FILE")]
    pub nats_nkey_file: Option<PathBuf>,
    /// A NATS `.creds` file (JWT and seed).
    #[arg(long, env = "ACCESS_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// A CA certificate for TLS to NATS (implies --nats-tls).
    #[arg(long, env = "ACCESS_NATS_CA")]
    pub nats_ca: Option<PathBuf>,
    /// Require TLS to NATS.
    #[arg(long, env = "ACCESS_NATS_TLS")]
    pub nats_tls: bool,
    /// How long one request to NATS may take before a command fails with UNAVAILABLE.
    #[arg(long, env = "ACCESS_NATS_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub nats_timeout: Duration,
}

fn secret_from(file: &Option<PathBuf>, env: &str, what: &str) -> Result<Option<String>, String> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the {what} from {}: {e}", path.display()))?;
        return Ok(Some(text.trim().to_owned()));
    }
    Ok(std::env::var(env).ok().filter(|v| !v.is_empty()))
}

impl NatsArgs {
    /// The settings to connect with, when a URL is set; `client_name` is what
    /// the server lists the connection as.
    pub fn settings(&self, client_name: &str) -> Result<Option<NatsSettings>, String> {
        let Some(url) = &self.nats_url else {
            return Ok(None);
        };
        let mut s = NatsSettings::new(url.clone());
        s.stream = self.nats_stream.clone();
        s.prefix = self.nats_prefix.clone();
        s.replicas = self.nats_replicas.max(1);
        s.tls_ca = self.nats_ca.clone();
        s.require_tls = self.nats_tls;
        s.timeout = self.nats_timeout;
        s.client_name = client_name.to_owned();
        s.auth = if let Some(creds) = &self.nats_creds {
            NatsAuth::CredsFile(creds.clone())
        } else if let Some(user) = &self.nats_user {
            let password = secret_from(
                &self.nats_password_file,
                "ACCESS_NATS_PASSWORD",
                "NATS password",
            )?
            .ok_or("--nats-user needs ACCESS_NATS_PASSWORD or --nats-password-file")?;
            NatsAuth::UserPassword {
                user: user.clone(),
                password,
            }
        } else if let Some(token) =
            secret_from(&self.nats_token_file, "ACCESS_NATS_TOKEN", "NATS token")?
        {
            NatsAuth::Token(token)
        } else if let Some(seed) =
            secret_from(&self.nats_nkey_file, "ACCESS_NATS_NKEY", "NKey seed")?
        {
            NatsAuth::NKeySeed(seed)
        } else {
            NatsAuth::None
        };
        Ok(Some(s))
    }
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
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(
            parse_duration("1h 30m").unwrap(),
            Duration::from_secs(5_400)
        );
        // Too large for any clock: refused, never a panic or a wrapped value.
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("999999999999999999d").is_err());
    }
}
