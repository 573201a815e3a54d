//! Where mail goes: `.eml` files in an outbox folder (the embedded default),
//! or an SMTP server through lettre's SMTP client.
//!
//! The SMTP side keeps its connections open (one per mail in hand at once:
//! a distributed worker sends several side by side) and sends each message's content
//! and its closing dot in a single write. lettre's own transport writes them
//! separately, and with the server delaying its ACK of the content, Nagle's
//! algorithm then holds the dot back for some 40 ms per message (measured at
//! about 23 messages a second on loopback, whatever the machine).

use anyhow::Context;
use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
    Smtp(Arc<Smtp>),
}

/// How the connection to the SMTP server is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Security {
    /// No TLS (loopback, or a network declared trusted).
    Plain,
    /// STARTTLS if the server offers it.
    Opportunistic,
    /// STARTTLS, or no mail.
    StartTls,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

/// An SMTP server and the connections kept open to it.
pub struct Smtp {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    timeout: Duration,
    /// Connections at rest. As many are opened as mails are sent at once,
    /// which the caller bounds.
    idle: std::sync::Mutex<Vec<AsyncSmtpConnection>>,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

/// `%xx` escapes of a URL's user and password.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Smtp {
    /// Reads `smtp[s]://[user:password@]host[:port][?tls=required|opportunistic]`.
    fn parse(url: &str) -> anyhow::Result<Smtp> {
        let (scheme, rest) = url
            .split_once("://")
            .context("the SMTP URL needs a scheme: smtp:// or smtps://")?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let rest = rest.trim_end_matches('/');
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let tls = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("tls="))
            .unwrap_or("");
        let security = match (scheme, tls) {
            ("smtps", _) => Security::Implicit,
            ("smtp", "required") => Security::StartTls,
            ("smtp", "opportunistic") => Security::Opportunistic,
            ("smtp", "") => Security::Plain,
            ("smtp", other) => anyhow::bail!("tls={other}: use required or opportunistic"),
            (other, _) => anyhow::bail!("{other}:// is not an SMTP URL: use smtp:// or smtps://"),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, p) = v6
                .split_once(']')
                .context("an unclosed [ in the SMTP host")?;
            (h.to_owned(), p.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (hostport.to_owned(), None),
            }
        };
        anyhow::ensure!(!host.is_empty(), "the SMTP URL has no host");
        let port = match port {
            Some(p) => p.parse().context("the SMTP port is not a number")?,
            None if security == Security::Implicit => 465,
            None if security == Security::StartTls => 587,
            None => 25,
        };
        let credentials = userinfo.map(|u| {
            let (user, password) = u.split_once(':').unwrap_or((u, ""));
            Credentials::new(percent_decode(user), percent_decode(password))
        });
        Ok(Smtp {
            host,
            port,
            security,
            credentials,
            timeout: Duration::from_secs(30),
            idle: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn tls(&self) -> Result<TlsParameters, lettre::transport::smtp::Error> {
        TlsParameters::new(self.host.clone())
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, lettre::transport::smtp::Error> {
        let hello = ClientId::default();
        let implicit = match self.security {
            Security::Implicit => Some(self.tls()?),
            _ => None,
        };
        let mut c = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &hello,
            implicit,
            None,
        )
        .await?;
        let starttls = match self.security {
            Security::StartTls => true,
            Security::Opportunistic => c.can_starttls(),
            Security::Plain | Security::Implicit => false,
        };
        if starttls {
            c.starttls(self.tls()?, &hello).await?;
        }
        if let Some(credentials) = &self.credentials {
            c.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await?;
        }
        Ok(c)
    }

    /// Sends one message on a kept connection (opening one when none is at
    /// rest, and a new one if the kept one turns out to be closed before
    /// anything was sent on it). Every wait is bounded; a connection that
    /// failed is dropped, never reused.
    async fn send(&self, message: &Message) -> Result<(), DeliveryError> {
        let old = loop {
            let kept = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match kept {
                Some(c) if c.has_broken() => continue,
                kept => break kept,
            }
        };
        let reused = old.is_some();
        let mut outcome = self.attempt(old, message).await;
        if reused && matches!(outcome, Err(Failure::Stale)) {
            outcome = self.attempt(None, message).await;
        }
        match outcome {
            Ok(c) => {
                self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(c);
                Ok(())
            }
            Err(f) => Err(f.into_delivery()),
        }
    }

    async fn attempt(
        &self,
        connection: Option<AsyncSmtpConnection>,
        message: &Message,
    ) -> Result<AsyncSmtpConnection, Failure> {
        let mut c = match connection {
            Some(c) => c,
            None => match tokio::time::timeout(self.timeout, self.connect()).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(Failure::Connect(e.to_string())),
                Err(_) => return Err(Failure::Connect("timed out".into())),
            },
        };
        match tokio::time::timeout(self.timeout, send_on(&mut c, message)).await {
            Ok(Ok(())) => Ok(c),
            Ok(Err(Sending {
                at_start: true,
                error,
            })) if !error.is_permanent() && (!error.is_transient() || is_421(&error)) => {
                Err(Failure::Stale)
            }
            Ok(Err(Sending { error, .. })) => Err(Failure::Smtp(error)),
            Err(_) => Err(Failure::TimedOut),
        }
    }
}

/// A reply of 421: the server is closing the connection.
fn is_421(e: &lettre::transport::smtp::Error) -> bool {
    e.status().is_some_and(|code| code.to_string() == "421")
}

/// Why one send failed.
enum Failure {
    /// No connection could be set up (refused, TLS, authentication, a bad
    /// greeting): the relay's or the configuration's problem, never the mail's.
    Connect(String),
    /// A kept connection had been closed before the mail started.
    Stale,
    /// What the server said to the mail, or how the connection broke.
    Smtp(lettre::transport::smtp::Error),
    /// No answer within the timeout.
    TimedOut,
}

impl Failure {
    fn into_delivery(self) -> DeliveryError {
        match self {
            Failure::Smtp(e) if e.is_permanent() => DeliveryError::Permanent(e.to_string()),
            Failure::Smtp(e) => DeliveryError::Transient(e.to_string()),
            Failure::Connect(e) => {
                DeliveryError::Transient(format!("connecting to the SMTP server: {e}"))
            }
            Failure::Stale => DeliveryError::Transient("the SMTP connection closed".into()),
            Failure::TimedOut => {
                DeliveryError::Transient("the SMTP server did not answer in time".into())
            }
        }
    }
}

/// A failed send: the error, and whether it came at the first command (so
/// nothing of the mail had reached the server).
struct Sending {
    at_start: bool,
    error: lettre::transport::smtp::Error,
}

/// The message's content dot-stuffed and closed with its dot: one write.
struct Content<'a>(&'a str);

impl std::fmt::Display for Content<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, line) in self.0.split("\r\n").enumerate() {
            if i > 0 {
                f.write_str("\r\n")?;
            }
            if line.starts_with('.') {
                f.write_str(".")?;
            }
            f.write_str(line)?;
        }
        f.write_str("\r\n.\r\n")
    }
}

async fn send_on(c: &mut AsyncSmtpConnection, message: &Message) -> Result<(), Sending> {
    let later = |error| Sending {
        at_start: false,
        error,
    };
    let envelope = message.envelope();
    let bytes = message.formatted();
    let ascii = bytes.is_ascii()
        && envelope.to().iter().all(|a| a.to_string().is_ascii())
        && envelope.from().is_none_or(|a| a.to_string().is_ascii());
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) if ascii => text.to_owned(),
        // 8BITMIME and SMTPUTF8 need the client's own negotiation.
        _ => {
            c.send(envelope, &bytes).await.map_err(later)?;
            return Ok(());
        }
    };
    c.command(Mail::new(envelope.from().cloned(), vec![]))
        .await
        .map_err(|error| Sending {
            at_start: true,
            error,
        })?;
    for to in envelope.to() {
        c.command(Rcpt::new(to.clone(), vec![]))
            .await
            .map_err(later)?;
    }
    c.command(Data).await.map_err(later)?;
    c.command(Content(&text)).await.map_err(later)?;
    Ok(())
}

impl Transport {
    /// An SMTP transport from a URL such as `smtp://user:pass@host:587?tls=required`,
    /// `smtps://host:465` or `smtp://127.0.0.1:2525` (plain: loopback only,
    /// unless `allow_plain_remote` says the network is trusted).
    pub fn smtp(url: &str, allow_plain_remote: bool) -> anyhow::Result<Self> {
        let smtp = Smtp::parse(url).context("the SMTP URL is not valid")?;
        let plain = matches!(smtp.security, Security::Plain | Security::Opportunistic);
        if !allow_plain_remote && plain && !is_loopback(&smtp.host) {
            anyhow::bail!(
                "the SMTP URL would send passwords and mail unencrypted to another host: \
                 use smtps:// or ?tls=required (plain SMTP is for loopback only)"
            );
        }
        Ok(Transport::Smtp(Arc::new(smtp)))
    }

    /// Delivers one mail under a stable id. Writing the same id to the outbox
    /// twice leaves one file, so a replay after a crash cannot duplicate it.
    /// With `sync` false an outbox file is not synced here: its id comes back
    /// for [`Transport::sync_outbox`], which syncs a batch of them at once.
    pub async fn deliver(
        &self,
        id: &str,
        message: &Message,
        sync: bool,
    ) -> Result<Option<String>, DeliveryError> {
        match self {
            Transport::Outbox(dir) => {
                let dir = dir.clone();
                let bytes = message.formatted();
                let owned = id.to_owned();
                tokio::task::spawn_blocking(move || write_eml(&dir, &owned, &bytes, sync))
                    .await
                    .map_err(|e| DeliveryError::Transient(e.to_string()))?
                    .map_err(|e| DeliveryError::Transient(format!("{e:#}")))?;
                Ok((!sync).then(|| id.to_owned()))
            }
            Transport::Smtp(smtp) => smtp.send(message).await.map(|()| None),
        }
    }

    /// Syncs the outbox files written unsynced under `ids`, and the outbox
    /// directory, once for all of them.
    pub async fn sync_outbox(&self, ids: &[String]) -> anyhow::Result<()> {
        let Transport::Outbox(dir) = self else {
            return Ok(());
        };
        if ids.is_empty() {
            return Ok(());
        }
        let dir = dir.clone();
        let paths: Vec<_> = ids.iter().map(|id| dir.join(format!("{id}.eml"))).collect();
        tokio::task::spawn_blocking(move || sync_files(&dir, &paths)).await?
    }
}

/// Syncs `paths` side by side (the file system folds syncs that wait
/// together into one journal commit), then `dir`.
fn sync_files(dir: &std::path::Path, paths: &[std::path::PathBuf]) -> anyhow::Result<()> {
    const AT_ONCE: usize = 8;
    let per_thread = paths.len().div_ceil(AT_ONCE).max(1);
    std::thread::scope(|scope| {
        let syncs: Vec<_> = paths
            .chunks(per_thread)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk.iter().try_for_each(|p| {
                        std::fs::File::open(p)
                            .and_then(|f| f.sync_data())
                            .with_context(|| format!("syncing {}", p.display()))
                    })
                })
            })
            .collect();
        syncs.into_iter().try_for_each(|s| {
            s.join()
                .map_err(|_| anyhow::anyhow!("a sync of the outbox panicked"))?
        })
    })?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Writes the mail to a temporary file and renames it into place; with
/// `sync`, syncs the file before and the directory after.
fn write_eml(dir: &std::path::Path, id: &str, bytes: &[u8], sync: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".{id}.tmp"));
    let path = dir.join(format!("{id}.eml"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    if sync {
        file.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    if sync {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Whether `host` is this machine.
fn is_loopback(host: &str) -> bool {
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
        assert!(Transport::smtp("http://relay.example", true).is_err());
        assert!(Transport::smtp("smtp://relay.example?tls=maybe", true).is_err());
    }

    #[test]
    fn smtp_urls_name_host_port_security_and_credentials() {
        let s = Smtp::parse("smtp://us%40r:p%3Ass@relay.example?tls=required").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.security),
            ("relay.example", 587, Security::StartTls)
        );
        assert!(s.credentials.is_some());
        let s = Smtp::parse("smtps://[::1]").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.security),
            ("::1", 465, Security::Implicit)
        );
        let s = Smtp::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!((s.port, s.security), (2525, Security::Plain));
        assert!(format!("{s:?}").contains("127.0.0.1"));
        let s = Smtp::parse("smtp://user:secret@host:25").unwrap();
        assert!(!format!("{s:?}").contains("secret"));
    }

    #[test]
    fn content_is_dot_stuffed_and_closed_in_one_piece() {
        assert_eq!(
            Content(".a\r\nb\r\n..c").to_string(),
            "..a\r\nb\r\n...c\r\n.\r\n"
        );
    }
}
