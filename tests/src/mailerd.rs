//! A `mailerd` worker process for the distributed tests.

use crate::{TestApp, binary};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `mailerd` worker of the distributed mode.
pub struct Mailerd {
    child: Child,
    /// Its state directory.
    pub state_dir: tempfile::TempDir,
    args: Vec<String>,
    smtp_url: String,
}

impl Mailerd {
    /// Starts a worker for `app`'s deployment on `nats_url`, sending through
    /// `smtp_url`, with extra flags.
    pub async fn start(app: &TestApp, nats_url: &str, smtp_url: &str, args: &[&str]) -> Mailerd {
        Self::start_for(&[app], &app.dir, nats_url, smtp_url, args).await
    }

    /// Starts a worker that reports through any of `replicas`, with the
    /// deployment's keys in `key_dir`.
    pub async fn start_for(
        replicas: &[&TestApp],
        key_dir: &std::path::Path,
        nats_url: &str,
        smtp_url: &str,
        args: &[&str],
    ) -> Mailerd {
        let state_dir = tempfile::tempdir().expect("a state directory");
        let urls: Vec<String> = replicas
            .iter()
            .map(|r| format!("http://{}", r.grpc_addr))
            .collect();
        let mut command_args: Vec<String> = vec![
            "--key-dir".into(),
            key_dir.display().to_string(),
            "--service-url".into(),
            urls.join(","),
            "--public-base-url".into(),
            format!("http://{}", replicas[0].http_addr),
            "--nats-url".into(),
            nats_url.into(),
            "--log-format".into(),
            "json".into(),
        ];
        command_args.extend(args.iter().map(|a| a.to_string()));
        let child = Self::spawn(state_dir.path(), &command_args, smtp_url).await;
        Mailerd {
            child,
            state_dir,
            args: command_args,
            smtp_url: smtp_url.to_owned(),
        }
    }

    /// Starts it again on the same state directory (after a kill).
    pub async fn restart(&mut self) {
        self.child = Self::spawn(self.state_dir.path(), &self.args, &self.smtp_url).await;
    }

    async fn spawn(state_dir: &std::path::Path, args: &[String], smtp_url: &str) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(state_dir.join("mailerd.log"))
            .expect("a log file");
        let mut child = Command::new(binary("mailerd"))
            .arg("--state-dir")
            .arg(state_dir)
            .args(args)
            .env("ACCESS_SMTP_URL", smtp_url)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("mailerd starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("mailerd: working") {
                    return true;
                }
            }
            false
        })
        .await;
        let log = std::fs::read_to_string(state_dir.join("mailerd.log")).unwrap_or_default();
        assert!(matches!(ready, Ok(true)), "mailerd did not start:\n{log}");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        child
    }

    /// Kills it with SIGKILL.
    pub async fn kill9(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
