//! Helpers for black-box tests: start the real `accessd` on free ports in its
//! own data directory, talk to it over gRPC, read what it mailed.
#![forbid(unsafe_code)]

pub mod browser;
mod calls;
pub mod deployment;
mod mailerd;
pub mod nats;
pub mod proxy;
pub mod relying_party;
pub mod signin;
pub mod smtp;

pub use mailerd::Mailerd;

use access_proto::v1 as pb;
use access_proto::v1::access_client::AccessClient;
use access_proto::v1::operator_client::OperatorClient;
use access_proto::v1::sessions_client::SessionsClient;
use anyhow::Context;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::Request;
use tonic::transport::Channel;

/// The path of a binary built by this workspace.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // A test: target/<profile>/deps/<test> → target/<profile>/<name>;
    // a binary such as the benchmark harness: target/<profile>/<bin>.
    let beside = exe.parent().expect("target directory");
    let path = match beside.parent() {
        Some(profile) if beside.ends_with("deps") => profile.join(name),
        _ => beside.join(name),
    };
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// Every event frame of a stopped data directory's log file, with where it
/// starts: for tests that damage the file as an attacker would.
pub fn stored_events(dir: &std::path::Path) -> Vec<(u64, access_catalogue::Envelope)> {
    use access_log::file_log::frames::{EVENT, Frames};
    let file = std::fs::File::open(dir.join("log").join("events")).expect("the log file");
    let len = file.metadata().expect("size").len();
    let mut reader = Frames::new(&file, 0, len, 1 << 16);
    let mut out = Vec::new();
    while let Some(frame) = reader.next_frame().expect("whole frames") {
        if frame.kind == EVENT {
            let e = access_catalogue::Envelope::decode(frame.body).expect("envelope");
            out.push((frame.offset, e));
        }
    }
    out
}

/// `accessd` exited instead of listening.
#[derive(Debug)]
pub struct Refused {
    /// Its exit code.
    pub code: Option<i32>,
    /// The end of its log.
    pub log: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "accessd exited ({:?}) before listening; the end of its log:\n{}",
            self.code, self.log
        )
    }
}

impl std::error::Error for Refused {}

/// A running `accessd` with its data directory.
pub struct TestApp {
    /// The data directory (kept across restarts).
    pub dir: PathBuf,
    /// Extra flags it was started with.
    pub args: Vec<String>,
    /// Extra environment it was started with.
    pub env: Vec<(String, String)>,
    /// Its gRPC address.
    pub grpc_addr: String,
    /// Its HTTP address.
    pub http_addr: String,
    /// Its metrics address, when started with `--metrics-addr`.
    pub metrics_addr: Option<String>,
    /// A channel to its gRPC server.
    pub channel: Channel,
    /// The operator key from the data directory.
    pub operator_key: String,
    child: Child,
    _root: Option<tempfile::TempDir>,
}

impl TestApp {
    /// Starts `accessd` in a fresh temporary data directory.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    /// Starts `accessd` on an existing data directory (a restored one, say).
    pub async fn open_dir(dir: PathBuf) -> TestApp {
        Self::start(dir, Vec::new(), Vec::new(), Duration::from_secs(30))
            .await
            .expect("accessd starts")
    }

    /// Starts `accessd` on an existing data directory, or says how it refused.
    pub async fn try_open_dir(dir: PathBuf) -> Result<TestApp, Refused> {
        Self::start(dir, Vec::new(), Vec::new(), Duration::from_secs(30))
            .await
            .map_err(|e| match e.downcast::<Refused>() {
                Ok(refused) => refused,
                Err(other) => Refused {
                    code: None,
                    log: format!("{other:#}"),
                },
            })
    }

    /// Takes over `old`'s temporary directory (this one was started on it),
    /// so it lives as long as the new process.
    pub fn adopt(mut self, mut old: TestApp) -> TestApp {
        self._root = old._root.take();
        self
    }

    /// Starts `accessd` in a fresh temporary data directory with extra flags.
    pub async fn spawn_with(args: &[&str]) -> TestApp {
        Self::spawn_with_env(args, &[]).await
    }

    /// Starts `accessd` with extra flags in a fresh temporary data
    /// directory, or says why it did not start.
    pub async fn try_spawn_with(args: &[&str]) -> anyhow::Result<TestApp> {
        let root = tempfile::tempdir()?;
        let dir = root.path().join("data");
        let mut app = Self::start(
            dir,
            args.iter().map(|s| s.to_string()).collect(),
            Vec::new(),
            Duration::from_secs(30),
        )
        .await?;
        app._root = Some(root);
        Ok(app)
    }

    /// Starts `accessd` with extra flags and environment variables.
    pub async fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> TestApp {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("data");
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut app = Self::start(
            dir,
            args.iter().map(|s| s.to_string()).collect(),
            env,
            Duration::from_secs(30),
        )
        .await
        .expect("accessd starts");
        app._root = Some(root);
        app
    }

    async fn start(
        dir: PathBuf,
        args: Vec<String>,
        env: Vec<(String, String)>,
        limit: Duration,
    ) -> anyhow::Result<TestApp> {
        std::fs::create_dir_all(&dir)?;
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.with_extension("log"))?;
        let mut child = Command::new(binary("accessd"))
            .arg("serve")
            .arg("--data-dir")
            .arg(&dir)
            .args(["--grpc-addr", "127.0.0.1:0"])
            // A caller that names the HTTP address (for a public address
            // on a known port) keeps it.
            .args(if args.iter().any(|a| a == "--http-addr") {
                &[][..]
            } else {
                &["--http-addr", "127.0.0.1:0"][..]
            })
            // Cheap hashing keeps the suite fast (production uses OWASP's
            // 19 MiB), unless the caller sets the cost itself.
            .args(if args.iter().any(|a| a.starts_with("--argon2")) {
                &[][..]
            } else {
                &["--argon2-memory-kib", "256", "--argon2-iterations", "1"][..]
            })
            .args(["--log-format", "json"])
            .args(&args)
            .env_remove("ACCESS_SMTP_URL")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .context("starting accessd")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let listening = tokio::time::timeout(limit, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.strip_prefix("accessd: listening ") {
                    let mut grpc = String::new();
                    let mut http = String::new();
                    let mut metrics = None;
                    for part in rest.split_whitespace() {
                        if let Some(a) = part.strip_prefix("grpc=") {
                            grpc = a.to_owned();
                        }
                        if let Some(a) = part.strip_prefix("http=") {
                            http = a.to_owned();
                        }
                        if let Some(a) = part.strip_prefix("metrics=") {
                            metrics = Some(a.to_owned());
                        }
                    }
                    return Ok::<_, anyhow::Error>(Some((grpc, http, metrics)));
                }
            }
            Ok(None)
        })
        .await
        .context("accessd did not start within 30 s")??;
        let Some((grpc_addr, http_addr, metrics_addr)) = listening else {
            // It exited: say how, with the end of its log.
            let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
            let log = std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(8).collect();
            return Err(Refused {
                code: status.ok().and_then(|s| s.ok()).and_then(|s| s.code()),
                log: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            }
            .into());
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        // Lazy: a server started with TLS is reached by the test's own channel.
        let channel = Channel::from_shared(format!("http://{grpc_addr}"))?.connect_lazy();
        let key_dir = args
            .iter()
            .position(|a| a == "--key-dir")
            .and_then(|i| args.get(i + 1))
            .map_or(dir.clone(), PathBuf::from);
        let operator_key = std::fs::read_to_string(key_dir.join("operator.key"))?
            .trim()
            .to_owned();
        Ok(TestApp {
            dir,
            args,
            env,
            grpc_addr,
            http_addr,
            metrics_addr,
            channel,
            operator_key,
            child,
            _root: None,
        })
    }

    /// The last `n` lines this instance logged (for failure messages).
    pub fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.dir.with_extension("log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(n).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Stops with SIGTERM, waits, and starts again on the same data directory.
    pub async fn restart(mut self) -> TestApp {
        self.terminate().await;
        self.start_again().await
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub async fn terminate(&mut self) {
        if let Err(e) = self.terminate_within(Duration::from_secs(20)).await {
            panic!("{e:#}");
        }
    }

    /// Sends SIGTERM and waits up to `limit` for a clean exit.
    pub async fn terminate_within(&mut self, limit: Duration) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .map_err(|_| anyhow::anyhow!("accessd did not stop within {limit:?} of SIGTERM"))??;
        anyhow::ensure!(
            status.success(),
            "accessd exited with {status} after SIGTERM"
        );
        Ok(())
    }

    /// Kills the process with SIGKILL: no chance to flush or say goodbye.
    pub async fn kill9(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Starts a new process on the same directory and flags (after a stop or kill).
    pub async fn start_again(self) -> TestApp {
        self.start_again_within(Duration::from_secs(30))
            .await
            .expect("accessd restarts")
    }

    /// As [`TestApp::start_again`], waiting up to `limit` for it to listen.
    pub async fn start_again_within(mut self, limit: Duration) -> anyhow::Result<TestApp> {
        let root = self._root.take();
        let started =
            Self::start(self.dir.clone(), self.args.clone(), self.env.clone(), limit).await;
        let mut app =
            started.map_err(|e| e.context(format!("its last lines:\n{}", self.log_tail(25))))?;
        app._root = root;
        Ok(app)
    }

    /// Runs `accessctl` against this instance with `key` and `args`.
    pub fn accessctl(&self, key: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
        std::process::Command::new(binary("accessctl"))
            .args(["--addr", &format!("http://{}", self.grpc_addr)])
            .args(args)
            .env("ACCESS_KEY", key)
            .output()
            .expect("accessctl runs")
    }

    /// A request carrying `key`.
    pub fn req<T>(&self, key: &str, message: T) -> Request<T> {
        let mut r = Request::new(message);
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {key}").parse().expect("header value"),
        );
        r
    }

    /// The operator client.
    pub fn operator(&self) -> OperatorClient<Channel> {
        OperatorClient::new(self.channel.clone())
    }

    /// The access client.
    pub fn access(&self) -> AccessClient<Channel> {
        AccessClient::new(self.channel.clone())
    }

    /// The sessions client.
    pub fn sessions(&self) -> SessionsClient<Channel> {
        SessionsClient::new(self.channel.clone())
    }

    /// The log's head position.
    pub async fn head(&self) -> u64 {
        self.log_status().await.head_position
    }

    /// The log's head once nothing in the service has more to do: the read
    /// models and the mailer have reached it, no delivery outcome waits to be
    /// recorded (the mailer records them on its own, a moment after each
    /// command), and no call left work running (a failed login being
    /// recorded, a reset request queued). Up to 30 s.
    pub async fn settled_head(&self) -> u64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.log_status().await;
            let mail_done = !s.sends_mail
                || (s.mailer_position >= s.head_position && s.mail_outcomes_pending == 0);
            if s.read_model_position >= s.head_position
                && mail_done
                && s.background_pending == 0
                && self.head().await == s.head_position
            {
                return s.head_position;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the service did not settle within 30 s: {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The log's status as this replica sees it.
    pub async fn log_status(&self) -> pb::GetLogStatusReply {
        self.operator()
            .get_log_status(self.req(&self.operator_key, pb::GetLogStatusRequest {}))
            .await
            .expect("log status")
            .into_inner()
    }

    /// Verifies the log's chains.
    pub async fn verify(&self) -> pb::VerifyLogReply {
        self.operator()
            .verify_log(self.req(&self.operator_key, pb::VerifyLogRequest {}))
            .await
            .expect("verify")
            .into_inner()
    }
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS:`, `VmHWM:`), on Linux.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A customer record named after its id, with an optional sales rep.
pub fn customer(id: &str, sales_rep: Option<&str>) -> pb::CustomerRecord {
    pb::CustomerRecord {
        customer_id: id.into(),
        name: format!("Customer {id}"),
        sales_rep: sales_rep.unwrap_or_default().into(),
        ..Default::default()
    }
}

/// An invitation request with an optional one-site rule.
pub fn invite_request(
    customer: &str,
    email: &str,
    site: Option<&str>,
) -> pb::InviteCustomerRequest {
    use pb::site_rule::Rule;
    pb::InviteCustomerRequest {
        request_id: new_id(),
        customer_id: customer.into(),
        email: email.into(),
        message: "Welcome to our ordering portal".into(),
        site_rule: site.map(|s| pb::SiteRule {
            rule: Some(Rule::OneSite(pb::OneSite { site: s.into() })),
        }),
    }
}

/// The token at the end of an invitation link.
pub fn token_of(link: &str) -> String {
    link.rsplit('/').next().unwrap_or_default().to_owned()
}

/// The first `http…/invite/…` URL in a mail.
pub fn link_in(text: &str) -> Option<String> {
    link_with(text, "/invite/")
}

/// The first `http…<marker>…` URL in a mail.
pub fn link_with(text: &str, marker: &str) -> Option<String> {
    let at = text.find(marker)?;
    let start = text[..at].rfind("http")?;
    let end = text[at..]
        .find(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .map_or(text.len(), |i| at + i);
    Some(text[start..end].to_owned())
}

/// A fresh request id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
