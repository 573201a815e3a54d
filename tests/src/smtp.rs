//! A real SMTP server for tests: aiosmtpd in its own Python process on a free
//! port, writing what it accepts to files and refusing as scripted.

use anyhow::Context;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running SMTP server and the folder of what it accepted.
pub struct SmtpServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    _child: Child,
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl SmtpServer {
    /// Starts a server that answers 451 to the first `fail_first` messages
    /// and 550 to any recipient containing `bounce` (when not empty).
    pub async fn start(fail_first: u32, bounce: &str) -> SmtpServer {
        Self::try_start(fail_first, bounce).await.expect(
            "the SMTP test server starts (is aiosmtpd installed? scripts/test.sh installs it)",
        )
    }

    /// A free port to start a server on later (for "the server was down" tests).
    pub fn reserve_port() -> u16 {
        free_port().expect("a free port")
    }

    /// Starts a server on a given port.
    pub async fn start_on(port: u16) -> SmtpServer {
        Self::try_start_on(port, 0, "")
            .await
            .expect("the SMTP test server starts")
    }

    async fn try_start(fail_first: u32, bounce: &str) -> anyhow::Result<SmtpServer> {
        Self::try_start_on(free_port()?, fail_first, bounce).await
    }

    async fn try_start_on(port: u16, fail_first: u32, bounce: &str) -> anyhow::Result<SmtpServer> {
        let dir = tempfile::tempdir()?;
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("smtp/server.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .args([
                "--port",
                &port.to_string(),
                "--fail-first",
                &fail_first.to_string(),
                "--bounce",
                bounce,
            ])
            .arg("--out")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting python3")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await? {
                if line.starts_with("ready") {
                    return Ok::<_, anyhow::Error>(());
                }
            }
            anyhow::bail!("the SMTP server exited before it was ready")
        })
        .await
        .context("the SMTP server did not start within 20 s")??;
        Ok(SmtpServer {
            port,
            dir,
            _child: child,
        })
    }

    /// The URL accessd sends to (plain SMTP, loopback).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message accepted so far, oldest first, as text.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// How many messages were accepted so far (without reading them).
    pub fn count(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Every attempt so far (accepted or refused), as its recipients.
    pub fn attempts(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("attempts.log"))
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Waits until at least `n` messages were accepted; returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        for _ in 0..600 {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "the SMTP server did not accept {n} messages within 15 s (it has {})",
            self.messages().len()
        );
    }
}
