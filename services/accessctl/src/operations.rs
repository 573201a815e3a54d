//! The log, backups and forgetting a person (operator key).

use crate::Client;
use access_proto::v1 as pb;
use access_proto::v1::operator_client::OperatorClient;
use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;

/// The log and the operator's tasks (operator key).
#[derive(Subcommand)]
pub(crate) enum OperationsCommand {
    /// The event log (operator key).
    #[command(subcommand)]
    Log(LogCommand),
    /// An online backup (operator key): the whole log as a self-verifying
    /// archive, and the persons' keys next to it (`<out>.keys`, mode 0600).
    /// Restore with `accessd restore`.
    Backup {
        /// The archive to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Forgets a person (operator key): access ends everywhere, their personal
    /// data in the log becomes unreadable for good.
    Forget {
        /// The person's email.
        #[arg(long)]
        email: String,
        /// Why, for the record.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum LogCommand {
    /// The log's head position.
    Status,
    /// Verifies every stream's hash chain and the global order.
    Verify,
}

/// Runs one of these commands.
pub(crate) async fn run(command: OperationsCommand, client: &Client) -> anyhow::Result<()> {
    let rid = client.request_id.clone();
    let mut operator = OperatorClient::new(client.channel.clone());
    match command {
        OperationsCommand::Log(LogCommand::Status) => {
            let r = operator
                .get_log_status(client.request(pb::GetLogStatusRequest {})?)
                .await?
                .into_inner();
            println!("head position: {}", r.head_position);
            println!("read models at: {}", r.read_model_position);
            println!("background work: {}", r.background_pending);
            if r.sends_mail {
                println!("mailer at: {}", r.mailer_position);
                println!("mail outcomes to record: {}", r.mail_outcomes_pending);
            }
        }
        OperationsCommand::Log(LogCommand::Verify) => {
            let r = operator
                .verify_log(client.request(pb::VerifyLogRequest {})?)
                .await?
                .into_inner();
            crate::audit::print_verified(&r)?;
        }
        OperationsCommand::Backup { out } => {
            // The log first, then the keys: every key an archived event is
            // sealed under was made before that event, so it is in a keys
            // export taken after the archive's head (keys first missed the
            // keys of events appended in between).
            let trailer = crate::audit::export(client, &out).await?;
            let mut keys = operator
                .export_keys(client.request(pb::ExportKeysRequest {})?)
                .await?
                .into_inner();
            let mut text = String::new();
            let mut count = 0;
            while let Some(k) = keys.message().await? {
                text.push_str(&format!("{} {}\n", k.key_ref, hex::encode(&k.key)));
                count += 1;
            }
            let keys_path = PathBuf::from(format!("{}.keys", out.display()));
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            use std::io::Write;
            options
                .open(&keys_path)
                .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
                .with_context(|| format!("writing {}", keys_path.display()))?;
            println!("backup: {} ({} events)", out.display(), trailer.events);
            println!(
                "keys: {} ({count} persons; keep it as safe as server.key)",
                keys_path.display()
            );
        }
        OperationsCommand::Forget { email, reason } => {
            let r = operator
                .forget_identity(client.request(pb::ForgetIdentityRequest {
                    request_id: rid,
                    email,
                    identity_id: String::new(),
                    reason,
                })?)
                .await?
                .into_inner();
            println!("forgotten: identity {}", r.identity_id);
            for c in r.contacts {
                println!("access ended: {} contact {}", c.tenant_id, c.contact_id);
            }
            println!("position: {}", r.position);
        }
    }
    Ok(())
}
