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
    /// Where this process keeps its index of the log (a cache it rebuilds
    /// from the log when missing); a temporary directory when unset.
    pub index_dir: Option<PathBuf>,
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
            index_dir: None,
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
