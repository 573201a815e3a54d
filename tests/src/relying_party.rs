//! A relying party built on Authlib (Python), in its own process: the
//! independent client a browser signs in through (`tests/oidc/rp.py`).

use anyhow::Context;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running relying party.
pub struct RelyingParty {
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    _child: Child,
}

impl RelyingParty {
    /// Starts one for `client_id` (with `secret`, empty for a public client)
    /// of the provider `issuer`.
    pub async fn start(issuer: &str, client_id: &str, secret: &str) -> RelyingParty {
        Self::try_start(issuer, client_id, secret).await.expect(
            "the Authlib relying party starts (is authlib installed? scripts/test.sh installs it)",
        )
    }

    async fn try_start(
        issuer: &str,
        client_id: &str,
        secret: &str,
    ) -> anyhow::Result<RelyingParty> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc/rp.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .args([
                "--issuer",
                issuer,
                "--client-id",
                client_id,
                "--client-secret",
                secret,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the relying party")?;
        let stdout = child.stdout.take().context("its stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(port) = line.strip_prefix("listening ") {
                    return Ok::<_, anyhow::Error>(port.trim().to_owned());
                }
            }
            anyhow::bail!("the relying party exited")
        })
        .await
        .context("the relying party did not start within 30 s")??;
        Ok(RelyingParty {
            url: format!("http://127.0.0.1:{port}"),
            _child: child,
        })
    }
}
