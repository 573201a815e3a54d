//! Where mail goes: `.eml` files in an outbox folder (the embedded default),
//! or an SMTP server through lettre.

use anyhow::Context;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::io::Write;
use std::path::PathBuf;

/// Why a mail was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again later: a 4xx reply, a refused or broken connection, a timeout.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// Will never work as it is: a 5xx reply (unknown mailbox, rejected content).
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// A configured mail transport.
#[derive(Clone, Debug)]
pub enum Transport {
    /// Writes each mail as `<outbox>/<id>.eml`.
    Outbox(PathBuf),
    /// Hands each mail to an SMTP server.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Transport {
    /// An SMTP transport from a URL such as `smtp://user:pass@host:587?tls=required`,
    /// `smtps://host:465` or `smtp://127.0.0.1:2525` (plain: loopback only,
    /// unless `allow_plain_remote` says the network is trusted).
    pub fn smtp(url: &str, allow_plain_remote: bool) -> anyhow::Result<Self> {
        if !allow_plain_remote && is_plain(url) && !is_loopback(url) {
            anyhow::bail!(
                "the SMTP URL would send passwords and mail unencrypted to another host: \
                 use smtps:// or ?tls=required (plain SMTP is for loopback only)"
            );
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .context("the SMTP URL is not valid")?
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        Ok(Transport::Smtp(transport))
    }

    /// Delivers one mail under a stable id. Writing the same id to the outbox
    /// twice leaves one file, so a replay after a crash cannot duplicate it.
    pub async fn deliver(&self, id: &str, message: &Message) -> Result<(), DeliveryError> {
        match self {
            Transport::Outbox(dir) => {
                let dir = dir.clone();
                let bytes = message.formatted();
                let id = id.to_owned();
                tokio::task::spawn_blocking(move || write_eml(&dir, &id, &bytes))
                    .await
                    .map_err(|e| DeliveryError::Transient(e.to_string()))?
                    .map_err(|e| DeliveryError::Transient(format!("{e:#}")))
            }
            Transport::Smtp(smtp) => match smtp.send(message.clone()).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() => Err(DeliveryError::Permanent(e.to_string())),
                Err(e) => Err(DeliveryError::Transient(e.to_string())),
            },
        }
    }
}

/// Writes the mail to a temporary file, syncs it, and renames it into place.
fn write_eml(dir: &std::path::Path, id: &str, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".{id}.tmp"));
    let path = dir.join(format!("{id}.eml"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Whether the URL asks for no TLS at all (or only if offered).
fn is_plain(url: &str) -> bool {
    let secure = url.starts_with("smtps://") || url.contains("tls=required");
    !secure
}

/// Whether the URL's host is this machine.
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        rest.split([':', '/', '?']).next().unwrap_or_default()
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    // lettre's connection pool needs a runtime to be dropped in.
    #[tokio::test]
    async fn plain_smtp_is_for_loopback_unless_the_network_is_declared_trusted() {
        assert!(Transport::smtp("smtp://127.0.0.1:2525", false).is_ok());
        assert!(Transport::smtp("smtp://u:p@[::1]:2525", false).is_ok());
        assert!(Transport::smtp("smtp://localhost:25", false).is_ok());
        assert!(Transport::smtp("smtp://u:p@relay.example:587?tls=required", false).is_ok());
        assert!(Transport::smtp("smtps://relay.example:465", false).is_ok());
        assert!(Transport::smtp("smtp://relay.example:25", false).is_err());
        assert!(Transport::smtp("smtp://u:p@10.0.0.5:25?tls=opportunistic", false).is_err());
        assert!(Transport::smtp("smtp://mailpit:1025", true).is_ok());
    }
}
