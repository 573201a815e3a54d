//! `accessctl`: the command-line client of the customer portal access service,
//! for staff, auditors and operators. It speaks gRPC to `accessd`.
#![forbid(unsafe_code)]

mod audit;
mod changes;
mod contacts;
mod customers;
mod imports;
mod keys;
mod links;
mod oidc;
mod operations;
mod outbox;
mod reports;
mod settings;
mod tenant;
mod webhooks;

use customers::CustomerCommand;
use keys::KeyCommand;
use tenant::TenantCommand;

use access_proto::v1 as pb;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// Command-line client of the customer portal access service.
#[derive(Parser)]
#[command(name = "accessctl", version, about)]
struct Cli {
    /// gRPC address of accessd.
    #[arg(
        long,
        env = "ACCESS_ADDR",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    addr: String,
    /// A file holding the API key (else ACCESS_KEY).
    #[arg(long, env = "ACCESS_KEY_FILE", global = true)]
    key_file: Option<PathBuf>,
    /// The request id (idempotency key); a fresh one by default.
    #[arg(long, global = true)]
    request_id: Option<String>,
    /// For an https:// address: PEM CA certificates to trust (else the system's).
    #[arg(long, env = "ACCESS_CA_FILE", global = true)]
    ca_file: Option<PathBuf>,
    /// For mutual TLS: this client's PEM certificate.
    #[arg(
        long,
        env = "ACCESS_CLIENT_CERT_FILE",
        global = true,
        requires = "client_key_file"
    )]
    client_cert_file: Option<PathBuf>,
    /// For mutual TLS: this client's PEM private key.
    #[arg(
        long,
        env = "ACCESS_CLIENT_KEY_FILE",
        global = true,
        requires = "client_cert_file"
    )]
    client_key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The channel to accessd, over TLS for an https:// address.
async fn connect(cli: &Cli) -> anyhow::Result<Channel> {
    let mut endpoint =
        Channel::from_shared(cli.addr.clone()).context("--addr is not a valid URL")?;
    if cli.addr.starts_with("https://") {
        let mut tls = tonic::transport::ClientTlsConfig::new();
        tls = match &cli.ca_file {
            Some(path) => tls.ca_certificate(tonic::transport::Certificate::from_pem(
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
            )),
            None => tls.with_native_roots(),
        };
        if let (Some(cert), Some(key)) = (&cli.client_cert_file, &cli.client_key_file) {
            tls = tls.identity(tonic::transport::Identity::from_pem(
                std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?,
                std::fs::read(key).with_context(|| format!("reading {}", key.display()))?,
            ));
        }
        endpoint = endpoint.tls_config(tls).context("TLS settings")?;
    }
    endpoint
        .connect()
        .await
        .with_context(|| format!("connecting to {}", cli.addr))
}

// Parsed once per run: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Tenants (operator key).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Customer accounts.
    #[command(subcommand)]
    Customer(CustomerCommand),
    /// API keys of the tenant (admin key).
    #[command(subcommand)]
    Key(KeyCommand),
    /// OpenID Connect clients of the tenant (admin key).
    #[command(subcommand)]
    Oidc(oidc::OidcCommand),
    /// Webhooks of the tenant: where its public events are posted (admin key).
    #[command(subcommand)]
    Webhook(webhooks::WebhookCommand),
    /// Commands on one contact.
    #[command(flatten)]
    Contacts(contacts::ContactCommand),
    /// Prints the newest invitation link mailed to an address (embedded mode's outbox).
    OutboxLink {
        /// The data directory of accessd.
        #[arg(long, env = "ACCESS_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// The recipient.
        #[arg(long)]
        email: String,
    },
    /// The log, backups and forgetting a person.
    #[command(flatten)]
    Operations(operations::OperationsCommand),
    /// The tenant's history, its access at a past moment, verification and archives.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Reports and bulk invitations.
    #[command(flatten)]
    Reports(reports::ReportCommand),
    /// Changes to a contact by staff, approvals.
    #[command(flatten)]
    Changes(changes::ChangeCommand),
    /// The tenant's settings.
    #[command(flatten)]
    Settings(settings::SettingsCommand),
    /// Password resets and portal links.
    #[command(flatten)]
    Links(links::LinkCommand),
    /// Moves in customers and logins, with their password hashes, from CSV
    /// or JSON Lines files (admin key).
    Import(imports::ImportArgs),
}

/// The wire value of a document kind's name.
pub(crate) fn document_kind(name: &str) -> anyhow::Result<i32> {
    Ok(match name {
        "sales-quote" => pb::DocumentKind::SalesQuote,
        "sales-order" => pb::DocumentKind::SalesOrder,
        "sales-invoice" => pb::DocumentKind::SalesInvoice,
        "credit-note" => pb::DocumentKind::CreditNote,
        "delivery-note" => pb::DocumentKind::DeliveryNote,
        "payment" => pb::DocumentKind::Payment,
        "report" => pb::DocumentKind::Report,
        "" => pb::DocumentKind::Unspecified,
        other => anyhow::bail!("unknown document kind {other:?}"),
    } as i32)
}

/// A connected client with the caller's key and request id.
pub struct Client {
    pub(crate) channel: Channel,
    key: Option<String>,
    pub(crate) request_id: String,
}

impl Client {
    pub(crate) fn request<T>(&self, message: T) -> anyhow::Result<Request<T>> {
        let mut request = Request::new(message);
        if let Some(key) = &self.key {
            let value: MetadataValue<_> = format!("Bearer {key}")
                .parse()
                .context("the API key has characters a header cannot carry")?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

fn read_key(file: &Option<PathBuf>) -> anyhow::Result<Option<String>> {
    if let Some(path) = file {
        let key =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return Ok(Some(key.trim().to_owned()));
    }
    Ok(std::env::var("ACCESS_KEY")
        .ok()
        .map(|k| k.trim().to_owned()))
}

pub(crate) fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("ACCESS_PASSWORD") {
        return Ok(p);
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the password from standard input")?;
    Ok(s.trim_end_matches(['\r', '\n']).to_owned())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<tonic::Status>() {
                Some(status) => eprintln!("accessctl: {:?}: {}", status.code(), status.message()),
                None => eprintln!("accessctl: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Audit(audit::AuditCommand::Verify {
        archive: Some(path),
        checkpoint,
        trusted_key,
    }) = &cli.command
    {
        return audit::verify_archive_against(path, checkpoint.as_ref(), trusted_key.as_deref());
    }
    if let Command::OutboxLink { data_dir, email } = &cli.command {
        println!("{}", outbox::newest_link(&data_dir.join("outbox"), email)?);
        return Ok(());
    }
    let channel = connect(&cli).await?;
    let client = Client {
        channel,
        key: read_key(&cli.key_file)?,
        request_id: cli
            .request_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
    };
    match cli.command {
        Command::Tenant(c) => tenant::run(c, &client).await,
        Command::Customer(c) => customers::run(c, &client).await,
        Command::Key(c) => keys::run(c, &client).await,
        Command::Oidc(c) => oidc::run(c, &client).await,
        Command::Webhook(c) => webhooks::run(c, &client).await,
        Command::Contacts(c) => contacts::run(c, &client).await,
        Command::Operations(c) => operations::run(c, &client).await,
        Command::Reports(c) => reports::run(c, &client).await,
        Command::Changes(c) => changes::run(c, &client).await,
        Command::Settings(c) => settings::run(c, &client).await,
        Command::Links(c) => links::run(c, &client).await,
        Command::Audit(a) => audit::run(a, &client).await,
        Command::Import(args) => imports::run(args, &client).await,
        // Answered above, without a connection.
        Command::OutboxLink { .. } => Ok(()),
    }
}
