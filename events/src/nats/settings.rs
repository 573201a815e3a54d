//! Where NATS is and how to reach it: settings, the client, and the
//! command-line arguments the binaries share.

use crate::log::LogError;
use std::path::PathBuf;
use std::time::Duration;

/// How to authenticate to NATS.
#[derive(Clone, Default)]
pub enum NatsAuth {
    /// No credentials.
    #[default]
    None,
    /// User name and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// A bearer token.
    Token(String),
    /// An NKey seed (`SU…`).
    NKeySeed(String),
    /// A `.creds` file (JWT and NKey seed).
    CredsFile(PathBuf),
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret half.
        f.write_str(match self {
            NatsAuth::None => "none",
            NatsAuth::UserPassword { .. } => "user and password",
            NatsAuth::Token(_) => "token",
            NatsAuth::NKeySeed(_) => "nkey",
            NatsAuth::CredsFile(_) => "creds file",
        })
    }
}

/// Where the log lives on NATS and how to reach it.
#[derive(Clone, Debug)]
pub struct NatsSettings {
    /// Server URLs, comma-separated (`nats://a:4222,nats://b:4222`).
    pub url: String,
    /// The JetStream stream's name.
    pub stream: String,
    /// The first subject token of every subject the log uses.
    pub prefix: String,
    /// Stream replicas when the stream is created (3 in a cluster).
    pub replicas: usize,
    /// Credentials.
    pub auth: NatsAuth,
    /// A CA file for TLS to NATS (TLS is then required).
    pub tls_ca: Option<PathBuf>,
    /// Require TLS even without a CA file of our own.
    pub require_tls: bool,
    /// How long one request to NATS may take before the command fails with
    /// `UNAVAILABLE` instead of hanging.
    pub timeout: Duration,
    /// The server's de-duplication window for message ids.
    pub duplicate_window: Duration,
    /// The name this client shows in the server's connection list.
    pub client_name: String,
}

impl NatsSettings {
    /// Settings for `url` with the defaults: stream `ACCESS`, prefix `access`,
    /// one replica, no credentials, 5 s timeout, 2 min duplicate window.
    pub fn new(url: impl Into<String>) -> Self {
        NatsSettings {
            url: url.into(),
            stream: "ACCESS".into(),
            prefix: "access".into(),
            replicas: 1,
            auth: NatsAuth::None,
            tls_ca: None,
            require_tls: false,
            timeout: Duration::from_secs(5),
            duplicate_window: Duration::from_secs(120),
            client_name: "access".into(),
        }
    }
}

/// Connects to NATS with the settings' credentials, TLS and timeouts.
pub async fn connect_client(s: &NatsSettings) -> Result<async_nats::Client, LogError> {
    let servers = s
        .url
        .split(',')
        .map(|u| u.trim().parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LogError::Storage(format!("the NATS URL {:?}: {e}", s.url)))?;
    let mut opts = match &s.auth {
        NatsAuth::CredsFile(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| LogError::Storage(format!("reading {}: {e}", path.display())))?,
        _ => async_nats::ConnectOptions::new(),
    };
    opts = match &s.auth {
        NatsAuth::UserPassword { user, password } => {
            opts.user_and_password(user.clone(), password.clone())
        }
        NatsAuth::Token(token) => opts.token(token.clone()),
        NatsAuth::NKeySeed(seed) => opts.nkey(seed.clone()),
        NatsAuth::None | NatsAuth::CredsFile(_) => opts,
    };
    if let Some(ca) = &s.tls_ca {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    if s.require_tls {
        opts = opts.require_tls(true);
    }
    opts.name(&s.client_name)
        .request_timeout(Some(s.timeout))
        // A connection that stalls without closing (a partition, a hung
        // node) is found within a few seconds rather than NATS's two minutes.
        .ping_interval(Duration::from_secs(2))
        .connection_timeout(s.timeout)
        // Reconnect for ever, backing off up to 1 s between tries: a node
        // back from a restart is used within a second.
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100 * 2u64.saturating_pow(attempts.min(6) as u32)).min(1_000))
        })
        .connect(servers.as_slice())
        .await
        .map_err(|e| LogError::Storage(format!("connecting to NATS at {}: {e}", s.url)))
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
    #[arg(long, env = "ACCESS_NATS_TIMEOUT", default_value = "5s", value_parser = crate::cli::parse_duration)]
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
