//! Configuration of `accessd serve`: flags, with the same settings readable
//! from `ACCESS_*` environment variables. Secrets (the SMTP URL with its
//! password) come from the environment or a file, never from a flag.

use crate::domain::lockout::LockoutPolicy;
use crate::secrets::HashCost;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of the `serve` command.
#[derive(Clone, Debug, Args)]
pub struct ServeConfig {
    /// A TOML file of settings (keys are these flags' names); the
    /// environment and flags override it.
    #[arg(long, env = "ACCESS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the log, read models, mailer state, keys and outbox live.
    #[arg(long, env = "ACCESS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Address of the gRPC server (port 0 picks a free one).
    #[arg(long, env = "ACCESS_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,
    /// Address of the HTTP server (liveness at /healthz).
    #[arg(long, env = "ACCESS_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// Address of the Prometheus endpoint (`/metrics`); off unless set. Bind
    /// it to loopback or a private network: it is not authenticated.
    #[arg(long, env = "ACCESS_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Base of the links in emails; defaults to http://<http-addr>.
    #[arg(long, env = "ACCESS_PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,
    /// How long a command may take in all before it answers UNAVAILABLE
    /// (retry with the same request id): one deadline over every round trip
    /// to the log and the key vault, not one each.
    #[arg(long, env = "ACCESS_COMMAND_DEADLINE", default_value = "10s", value_parser = parse_duration)]
    pub command_deadline: Duration,
    /// How far the read models may trail the log before health says
    /// NOT_SERVING: by now they must have reached the head the log had this
    /// long ago.
    #[arg(long, env = "ACCESS_MAX_READ_LAG", default_value = "10s", value_parser = parse_duration)]
    pub max_read_lag: Duration,
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
    /// After SIGTERM, how long requests in flight may take to finish.
    #[arg(long, env = "ACCESS_DRAIN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// How often a signed checkpoint of the log is written to the service's
    /// log (for log shipping to carry off the host).
    #[arg(long, env = "ACCESS_CHECKPOINT_INTERVAL", default_value = "1h", value_parser = parse_duration)]
    pub checkpoint_interval: Duration,
    /// The longest wait between two tries at a webhook delivery.
    #[arg(long, env = "ACCESS_WEBHOOK_MAX_BACKOFF", default_value = "5m", value_parser = parse_duration)]
    pub webhook_max_backoff: Duration,
    /// How long a webhook's deliveries may fail before they are given up
    /// (the webhook then waits, undelivered events kept, to be resumed).
    #[arg(long, env = "ACCESS_WEBHOOK_GIVE_UP_AFTER", default_value = "3d", value_parser = parse_duration)]
    pub webhook_give_up_after: Duration,
    /// Let webhooks post to loopback and private network addresses (a
    /// receiver on this machine or inside the operator's network). Off,
    /// such addresses are refused when a webhook is added and whenever its
    /// name resolves to one.
    #[arg(long, env = "ACCESS_WEBHOOK_PRIVATE_ADDRESSES")]
    pub webhook_private_addresses: bool,
    /// Wrong passwords for one login inside the window that lock it (1 to 200).
    #[arg(long, env = "ACCESS_LOCKOUT_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub lockout_attempts: u32,
    /// How far back failed logins count.
    #[arg(long, env = "ACCESS_LOCKOUT_WINDOW", default_value = "15m", value_parser = parse_duration)]
    pub lockout_window: Duration,
    /// How long a lock lasts (staff may lift it sooner).
    #[arg(long, env = "ACCESS_LOCKOUT_DURATION", default_value = "15m", value_parser = parse_duration)]
    pub lockout_duration: Duration,
    /// Failures after which each further try waits 1 s, 2 s, 4 s…
    #[arg(long, env = "ACCESS_LOCKOUT_DELAY_AFTER", default_value_t = 3)]
    pub lockout_delay_after: u32,
    /// Wrong passwords from one client address (over all its logins) that lock
    /// the address for the lockout duration (1 to 200). IPv6 addresses count
    /// per /64, the block one subscriber is given.
    #[arg(long, env = "ACCESS_ADDRESS_LOCKOUT_ATTEMPTS", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub address_lockout_attempts: u32,
    /// Reverse proxies in front of the pages (comma-separated addresses or
    /// CIDR blocks): only from these are `Forwarded` and `X-Forwarded-For`
    /// believed for the client's address. Empty: the peer's address counts.
    #[arg(long, env = "ACCESS_TRUSTED_PROXIES", default_value = "", value_parser = crate::proxies::parse_list)]
    pub trusted_proxies: crate::proxies::TrustedProxies,
    /// TLS for the gRPC and HTTP servers.
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
    /// How mail is sent.
    #[command(flatten)]
    pub mail: access_mailer::MailArgs,
    /// The distributed mode's event log on NATS JetStream.
    #[command(flatten)]
    pub nats: access_runtime::cli::NatsArgs,
    /// Where `server.key` and `operator.key` live (default: the data directory).
    /// Every replica of one deployment needs the same keys.
    #[arg(long, env = "ACCESS_KEY_DIR")]
    pub key_dir: Option<PathBuf>,
    /// Whether this process sends mail: `auto` does in embedded mode and leaves
    /// it to `mailerd` on NATS; `in-process` or `off` decide outright.
    #[arg(long, env = "ACCESS_MAILER", default_value = "auto", value_parser = ["auto", "in-process", "off"])]
    pub mailer: String,
    /// Log format: auto (text on a terminal, JSON otherwise), text or json.
    #[arg(long, env = "ACCESS_LOG_FORMAT", default_value = "auto")]
    pub log_format: String,
}

impl ServeConfig {
    /// The lockout rules for one login, and for one client address.
    pub fn lockout(&self) -> (LockoutPolicy, LockoutPolicy) {
        let account = LockoutPolicy {
            attempts: self.lockout_attempts,
            window: self.lockout_window,
            lock: self.lockout_duration,
            delay_after: self.lockout_delay_after,
            delay_base: Duration::from_secs(1),
        };
        // An office behind one address shares it: no delays, only the lock.
        let address = LockoutPolicy {
            attempts: self.address_lockout_attempts,
            delay_after: self.address_lockout_attempts,
            ..account
        };
        (account, address)
    }

    /// The argon2id cost.
    pub fn hash_cost(&self) -> HashCost {
        HashCost {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
        }
    }
}

pub use access_runtime::cli::parse_duration;
