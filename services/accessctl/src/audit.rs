//! `accessctl audit`: history as JSON lines, access at a past moment, chain
//! verification online or of an archive, and archives.

use crate::Client;
use access_log::archive::{self, Header};
use access_log::checkpoint::{self, Checkpoint};
use access_proto::v1 as pb;
use access_proto::v1::audit_client::AuditClient;
use anyhow::Context;
use clap::Subcommand;
use std::io::Write;
use std::path::PathBuf;

/// Commands of this module (admin or auditor key; export also the operator key).
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Prints the tenant's events as JSON lines with a summary in words.
    Replay {
        /// Only this customer, its contacts and portal links.
        #[arg(long, default_value = "")]
        customer: String,
        /// Only this contact.
        #[arg(long, default_value = "")]
        contact: String,
        /// Only what this staff key (its key id) did.
        #[arg(long, default_value = "")]
        key_id: String,
        /// From this moment (RFC 3339).
        #[arg(long, default_value = "")]
        from: String,
        /// Up to this moment (RFC 3339).
        #[arg(long, default_value = "")]
        to: String,
        /// Only the summaries, one per line.
        #[arg(long)]
        summaries: bool,
    },
    /// Who of a customer could log in and order at a moment, and what they saw.
    AccessAt {
        /// The moment (RFC 3339).
        #[arg(long)]
        at: String,
        /// The customer.
        #[arg(long, default_value = "")]
        customer: String,
        /// Or one contact.
        #[arg(long, default_value = "")]
        contact: String,
    },
    /// Verifies the hash chains online, or an archive file offline; with
    /// `--checkpoint`, also that the log (or the archive) is what signed
    /// checkpoints committed to.
    Verify {
        /// An archive written by `audit export` (no server needed).
        #[arg(long)]
        archive: Option<PathBuf>,
        /// A file of checkpoint lines (`audit checkpoint`) to check against.
        /// Online this needs the operator key (the whole log is read).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// The public key (hex) the checkpoints must be signed with.
        #[arg(long)]
        trusted_key: Option<String>,
    },
    /// Prints a signed checkpoint of the whole log up to its head, to keep
    /// off the host (the public key goes to standard error).
    Checkpoint,
    /// Writes the tenant's events (the whole log with the operator key) to a
    /// self-verifying archive.
    Export {
        /// The archive file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Verifies an archive without a server, and against the checkpoints in
/// `checkpoints` when given.
pub fn verify_archive_against(
    path: &PathBuf,
    checkpoints: Option<&PathBuf>,
    trusted_key: Option<&str>,
) -> anyhow::Result<()> {
    verify_archive(path)?;
    let trusted = trusted_key
        .map(|k| {
            hex::decode(k.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .context("--trusted-key is not 32 bytes of hex")
        })
        .transpose()?;
    let open = || {
        std::fs::File::open(path)
            .map(std::io::BufReader::new)
            .with_context(|| format!("opening {}", path.display()))
    };
    // The archive's own signature, under the pinned key when one is given.
    if let Some(trusted) = &trusted {
        let report = archive::verify(open()?)?;
        Checkpoint::parse(&report.trailer.checkpoint)
            .and_then(|c| c.verify_signature(Some(trusted)))
            .context("the archive is not signed with the trusted key")?;
    }
    let Some(checkpoints) = checkpoints else {
        return Ok(());
    };
    let open = || {
        std::fs::File::open(path)
            .map(std::io::BufReader::new)
            .with_context(|| format!("opening {}", path.display()))
    };
    let report = archive::verify(open()?)?;
    anyhow::ensure!(
        report.header.scope == "log",
        "a checkpoint covers the whole log; this archive holds {} (export the whole log with the operator key)",
        report.header.scope
    );
    let envelopes = archive::envelopes(open()?, report.trailer.events)?;
    let text = std::fs::read_to_string(checkpoints)
        .with_context(|| format!("reading {}", checkpoints.display()))?;
    let mut failed = false;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let checkpoint = Checkpoint::parse(line)?;
        match checkpoint::verify_log(&checkpoint, trusted.as_ref(), &envelopes) {
            Ok(_) => println!(
                "checkpoint at position {} ({} events): matches",
                checkpoint.state.position, checkpoint.state.events
            ),
            Err(e) => {
                failed = true;
                println!(
                    "checkpoint at position {}: DOES NOT MATCH: {e}",
                    checkpoint.state.position
                );
            }
        }
    }
    anyhow::ensure!(!failed, "the log is not what the checkpoints committed to");
    Ok(())
}

/// Verifies an archive without a server.
pub fn verify_archive(path: &PathBuf) -> anyhow::Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    match archive::verify(std::io::BufReader::new(file)) {
        Ok(report) => {
            println!("archive: {}", report.header.scope);
            println!("events: {}", report.trailer.events);
            println!("streams: {}", report.trailer.heads.len());
            println!("chain: intact");
            if let Ok(c) = Checkpoint::parse(&report.trailer.checkpoint) {
                println!(
                    "signed: by key {} over all {} events",
                    hex::encode(c.key),
                    c.state.events
                );
            }
            Ok(())
        }
        Err(e) => {
            println!("chain: BROKEN: {e}");
            anyhow::bail!("the archive does not verify")
        }
    }
}

/// Runs one command of this module.
pub async fn run(command: AuditCommand, client: &Client) -> anyhow::Result<()> {
    let mut audit = AuditClient::new(client.channel.clone());
    match command {
        AuditCommand::Replay {
            customer,
            contact,
            key_id,
            from,
            to,
            summaries,
        } => {
            let mut stream = audit
                .replay_history(client.request(pb::ReplayHistoryRequest {
                    customer_id: customer,
                    contact_id: contact,
                    key_id,
                    from_time: from,
                    to_time: to,
                    from_position: 0,
                    to_position: 0,
                })?)
                .await?
                .into_inner();
            let mut out = std::io::stdout().lock();
            while let Some(e) = stream.message().await? {
                if summaries {
                    writeln!(out, "{}", e.summary)?;
                    continue;
                }
                let payload: serde_json::Value =
                    serde_json::from_str(&e.payload_json).unwrap_or_default();
                let line = serde_json::json!({
                    "position": e.position,
                    "occurred_at": e.occurred_at,
                    "stream": e.stream,
                    "event_type": e.event_type,
                    "schema_version": e.schema_version,
                    "actor": e.actor,
                    "request_id": e.request_id,
                    "correlation_id": e.correlation_id,
                    "event_id": e.event_id,
                    "summary": e.summary,
                    "payload": payload,
                });
                writeln!(out, "{line}")?;
            }
        }
        AuditCommand::AccessAt {
            at,
            customer,
            contact,
        } => {
            let r = audit
                .access_at(client.request(pb::AccessAtRequest {
                    at,
                    customer_id: customer,
                    contact_id: contact,
                })?)
                .await?
                .into_inner();
            println!(
                "as of {} (log position {}, {} events replayed):",
                r.at, r.position, r.events_replayed
            );
            for c in r.contacts {
                let name = if c.username.is_empty() {
                    &c.email
                } else {
                    &c.username
                };
                println!(
                    "{name} ({}) {}: log in {}, order {}{}; sites {}; orders to {}",
                    c.contact_id,
                    c.status,
                    if c.could_log_in { "yes" } else { "no" },
                    if c.could_place_orders { "yes" } else { "no" },
                    if c.reason.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", c.reason)
                    },
                    c.visible_sites.join(", "),
                    c.order_site
                );
            }
        }
        AuditCommand::Verify {
            archive: Some(path),
            checkpoint,
            trusted_key,
        } => verify_archive_against(&path, checkpoint.as_ref(), trusted_key.as_deref())?,
        AuditCommand::Verify {
            archive: None,
            checkpoint: Some(checkpoints),
            trusted_key,
        } => {
            // The whole log, read here and checked like an archive.
            let dir = tempfile::tempdir()?;
            let path = dir.path().join("log.archive");
            export(client, &path).await?;
            verify_archive_against(&path, Some(&checkpoints), trusted_key.as_deref())?;
        }
        AuditCommand::Checkpoint => {
            let r = audit
                .get_checkpoint(client.request(pb::GetCheckpointRequest {})?)
                .await?
                .into_inner();
            eprintln!("signed with public key {}", r.public_key);
            println!("{}", r.checkpoint);
        }
        AuditCommand::Verify {
            archive: None,
            checkpoint: None,
            ..
        } => {
            let r = audit
                .verify_log(client.request(pb::VerifyLogRequest {})?)
                .await?
                .into_inner();
            print_verified(&r)?;
        }
        AuditCommand::Export { out } => {
            let trailer = export(client, &out).await?;
            println!("archive: {}", out.display());
            println!("events: {}", trailer.events);
            println!("streams: {}", trailer.heads.len());
            println!("sha256: {}", trailer.sha256);
        }
    }
    Ok(())
}

/// Writes the log (the tenant's part, or the whole log with the operator
/// key) to a self-verifying archive at `out`, atomically.
pub async fn export(client: &Client, out: &PathBuf) -> anyhow::Result<archive::Trailer> {
    let mut audit = AuditClient::new(client.channel.clone());
    let mut stream = audit
        .export_log(client.request(pb::ExportLogRequest {})?)
        .await?
        .into_inner();
    let partial = out.with_extension("partial");
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut writer: Option<archive::Writer<std::io::BufWriter<std::fs::File>>> = None;
    let mut file = Some(std::io::BufWriter::new(file));
    let exported_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let mut checkpoint = None;
    while let Some(e) = stream.message().await? {
        if !e.checkpoint.is_empty() {
            checkpoint = Some(e.checkpoint);
            continue;
        }
        if writer.is_none() {
            let header = Header {
                scope: e.scope.clone(),
                exported_at_ms,
                source_head: e.source_head,
            };
            let f = file.take().context("archive file")?;
            writer = Some(archive::Writer::new(f, &header)?);
        }
        if let Some(w) = writer.as_mut() {
            w.push(&e.envelope)
                .with_context(|| format!("event at position {}", e.position))?;
        }
    }
    let writer = match writer {
        Some(w) => w,
        None => archive::Writer::new(
            file.take().context("archive file")?,
            &Header {
                scope: "empty".into(),
                exported_at_ms,
                source_head: 0,
            },
        )?,
    };
    let trailer = writer.finish_signed(checkpoint.as_deref())?;
    std::fs::rename(&partial, out).with_context(|| format!("renaming to {}", out.display()))?;
    Ok(trailer)
}

/// Prints what a walk of the chains found; an error when one is broken.
pub(crate) fn print_verified(r: &pb::VerifyLogReply) -> anyhow::Result<()> {
    println!("events checked: {}", r.events_checked);
    println!("streams checked: {}", r.streams_checked);
    if r.ok {
        println!("chain: intact");
        Ok(())
    } else {
        println!("chain: BROKEN: {}", r.first_break);
        anyhow::bail!("the log does not verify")
    }
}
