//! The mail settings on the command line and in the environment, shared by
//! `accessd` (which runs the mailer in-process in embedded mode) and `mailerd`.

use crate::Transport;
use crate::delivery::{DeliveryReporter, RetryPolicy};
use crate::worker::MailerConfig;
use access_runtime::cli::parse_duration;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How mail is sent.
#[derive(Clone, Debug, clap::Args)]
pub struct MailArgs {
    /// Sender of every email.
    #[arg(
        long,
        env = "ACCESS_MAIL_FROM",
        default_value = "Customer portal <no-reply@localhost>"
    )]
    pub mail_from: String,
    /// A file holding the SMTP URL (`smtp://user:pass@host:587?tls=required`);
    /// or set ACCESS_SMTP_URL. Without either, mail goes to <data-dir>/outbox.
    #[arg(long, env = "ACCESS_SMTP_URL_FILE")]
    pub smtp_url_file: Option<PathBuf>,
    /// Allow plain SMTP (no TLS) to a host other than this machine: only on a
    /// network you trust (a compose file's private network, say).
    #[arg(long, env = "ACCESS_SMTP_INSECURE_PLAINTEXT")]
    pub smtp_insecure_plaintext: bool,
    /// Attempts to deliver one mail before giving up on temporary SMTP failures.
    #[arg(long, env = "ACCESS_MAIL_MAX_ATTEMPTS", default_value_t = 8)]
    pub mail_max_attempts: u32,
    /// The wait after a mail's first temporary failure; it doubles each time (with jitter).
    #[arg(long, env = "ACCESS_MAIL_RETRY_BASE", default_value = "1s", value_parser = parse_duration)]
    pub mail_retry_base: Duration,
    /// The longest wait between two attempts of one mail.
    #[arg(long, env = "ACCESS_MAIL_RETRY_CAP", default_value = "5m", value_parser = parse_duration)]
    pub mail_retry_cap: Duration,
    /// At most this many mails a second per tenant (0: no limit), so a bulk
    /// invitation is paced for the relay instead of refused by it.
    #[arg(long, env = "ACCESS_MAIL_RATE", default_value_t = 0.0)]
    pub mail_rate: f64,
}

impl MailArgs {
    /// The SMTP URL, from ACCESS_SMTP_URL or the file named by --smtp-url-file.
    pub fn smtp_url(&self) -> anyhow::Result<Option<String>> {
        if let Ok(url) = std::env::var("ACCESS_SMTP_URL")
            && !url.trim().is_empty()
        {
            return Ok(Some(url.trim().to_owned()));
        }
        match &self.smtp_url_file {
            Some(path) => Ok(Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading the SMTP URL from {}", path.display()))?
                    .trim()
                    .to_owned(),
            )),
            None => Ok(None),
        }
    }

    /// The mailer's settings: state in `state_dir`, mail to SMTP if a URL is
    /// set, else `.eml` files in `outbox`.
    pub fn mailer_config(
        &self,
        state_dir: &Path,
        outbox: &Path,
        public_base_url: &str,
        reporter: Option<Arc<dyn DeliveryReporter>>,
    ) -> anyhow::Result<MailerConfig> {
        let transport = match self.smtp_url()? {
            Some(url) => Transport::smtp(&url, self.smtp_insecure_plaintext)?,
            None => Transport::Outbox(outbox.to_path_buf()),
        };
        Ok(MailerConfig {
            state_dir: state_dir.to_path_buf(),
            public_base_url: public_base_url.to_owned(),
            from: self
                .mail_from
                .parse()
                .context("--mail-from is not a valid mailbox")?,
            transport,
            per_tenant_rate: (self.mail_rate > 0.0).then_some(self.mail_rate),
            reporter,
            retry: RetryPolicy {
                max_attempts: self.mail_max_attempts.max(1),
                base: self.mail_retry_base,
                cap: self.mail_retry_cap,
            },
        })
    }
}
