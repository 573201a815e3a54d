//! `accessctl`: the command-line client of the customer portal access service,
//! for staff, auditors and operators. It speaks gRPC to `accessd`.
#![forbid(unsafe_code)]

mod audit;
mod outbox;
mod reports;

use access_proto::v1 as pb;
use access_proto::v1::access_client::AccessClient;
use access_proto::v1::operator_client::OperatorClient;
use access_proto::v1::sessions_client::SessionsClient;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
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
    /// Asks whether a contact may do something, and why not.
    Check {
        /// The contact's id.
        #[arg(long)]
        contact: String,
        /// login, place-order, view-document, view-site, view-costs or view-balance.
        #[arg(long)]
        action: String,
        /// For view-document: sales-quote, sales-order, sales-invoice, credit-note, delivery-note, payment, report.
        #[arg(long, default_value = "")]
        kind: String,
        /// For view-site: the site.
        #[arg(long, default_value = "")]
        site: String,
    },
    /// Invites a customer contact by email.
    Invite {
        /// The customer's id.
        #[arg(long)]
        customer: String,
        /// The contact's email.
        #[arg(long)]
        email: String,
        /// The personal message of the invitation.
        #[arg(long)]
        message: String,
        /// Show only this site, and route orders there.
        #[arg(long, conflicts_with = "all_sites")]
        site: Option<String>,
        /// Show totals over all sites; route orders to the default order site.
        #[arg(long)]
        all_sites: bool,
    },
    /// Sends a fresh link for an unaccepted invitation (the old link dies).
    Resend {
        /// The contact's id.
        #[arg(long)]
        contact: String,
    },
    /// Blocks a contact's logins and orders, keeping everything.
    Disable(ContactArgs),
    /// Lifts a block.
    Restore(ContactArgs),
    /// Ends a contact's membership; the email can be invited again.
    Revoke(ContactArgs),
    /// Lifts a lock after too many failed logins.
    Unlock(ContactArgs),
    /// Shows a contact.
    Contact {
        /// The contact's id.
        #[arg(long)]
        contact: String,
    },
    /// Shows which sites a contact sees and where its orders go.
    Sites {
        /// The contact's id.
        #[arg(long)]
        contact: String,
    },
    /// Prints the newest invitation link mailed to an address (embedded mode's outbox).
    OutboxLink {
        /// The data directory of accessd.
        #[arg(long, env = "ACCESS_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// The recipient.
        #[arg(long)]
        email: String,
    },
    /// Accepts an invitation; reads the password from standard input.
    Accept {
        /// The link from the email, or just its token.
        #[arg(long)]
        link: String,
    },
    /// Logs a contact in; reads the password from standard input.
    Login {
        /// The contact's email or username.
        #[arg(long, visible_aliases = ["email", "username"])]
        login: String,
    },
    /// Changes a contact's password: logs in, then sets the new one. Reads the
    /// current and the new password from standard input, one per line.
    ChangePassword {
        /// The contact's email or username.
        #[arg(long, visible_aliases = ["email", "username"])]
        login: String,
    },
    /// Creates a customer's management login USERNAME and staff login USERNAME + S,
    /// with generated temporary passwords printed once.
    AddPortalUser {
        /// The customer's id.
        #[arg(long)]
        customer: String,
        /// The management login's username.
        #[arg(long)]
        username: String,
        /// The management login's email (optional).
        #[arg(long, default_value = "")]
        email: String,
    },
    /// Gives a login a generated temporary password, printed once.
    TemporaryPassword {
        /// The contact's id.
        #[arg(long)]
        contact: String,
    },
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
    /// The tenant's history, its access at a past moment, verification and archives.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Reports, bulk invitations, approvals, resets and portal links.
    #[command(flatten)]
    More(reports::ReportCommand),
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Creates a tenant and prints its admin API key (once).
    Create {
        /// The tenant's slug.
        #[arg(long)]
        id: String,
        /// Its display name.
        #[arg(long)]
        name: String,
        /// A stock site (repeat for each).
        #[arg(long = "site", required = true)]
        sites: Vec<String>,
        /// Where orders go by default.
        #[arg(long)]
        default_order_site: String,
    },
    /// Raises the rules for new passwords (admin key) and prints them.
    PasswordPolicy {
        /// Shortest accepted (6 to 64).
        #[arg(long, default_value_t = 6)]
        min_length: u32,
        /// Needs an upper-case and a lower-case letter.
        #[arg(long)]
        mixed_case: bool,
        /// Needs a symbol.
        #[arg(long)]
        symbol: bool,
    },
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum CustomerCommand {
    /// Creates a customer account.
    Create(CustomerArgs),
    /// Replaces a customer's record (unset options become empty).
    Update(CustomerArgs),
    /// Sets a customer active, inactive or blacklisted.
    Status {
        /// The customer's id.
        #[arg(long)]
        id: String,
        /// active, inactive or blacklisted.
        #[arg(long)]
        status: String,
        /// Why, for the audit trail.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Chooses the document kinds the customer's contacts may view.
    Documents {
        /// The customer's id.
        #[arg(long)]
        id: String,
        /// A kind (repeat): sales-quote, sales-order, sales-invoice, credit-note, delivery-note.
        #[arg(long = "kind")]
        kinds: Vec<String>,
    },
    /// Shows a customer.
    Show {
        /// The customer's id.
        #[arg(long)]
        id: String,
    },
}

#[derive(clap::Args)]
struct CustomerArgs {
    /// The customer's id in the ERP.
    #[arg(long)]
    id: String,
    /// Its name.
    #[arg(long)]
    name: String,
    /// Short name.
    #[arg(long, default_value = "")]
    short_name: String,
    /// Default department.
    #[arg(long, default_value = "")]
    department: String,
    /// General (accounting) email.
    #[arg(long, default_value = "")]
    email: String,
    /// Telephone.
    #[arg(long, default_value = "")]
    phone: String,
    /// Postal address.
    #[arg(long, default_value = "")]
    address: String,
    /// Billing email.
    #[arg(long, default_value = "")]
    billing_email: String,
    /// Billing address.
    #[arg(long, default_value = "")]
    billing_address: String,
    /// VAT or tax number.
    #[arg(long, default_value = "")]
    tax_id: String,
    /// Customer type.
    #[arg(long = "type", default_value = "")]
    customer_type: String,
    /// Price list.
    #[arg(long, default_value = "")]
    price_list: String,
    /// Assigned sales rep.
    #[arg(long, default_value = "")]
    sales_rep: String,
}

impl CustomerArgs {
    fn record(self) -> pb::CustomerRecord {
        pb::CustomerRecord {
            customer_id: self.id,
            name: self.name,
            short_name: self.short_name,
            default_department: self.department,
            contact: Some(pb::ContactDetails {
                email: self.email,
                phone: self.phone,
                address: self.address,
            }),
            billing: Some(pb::BillingDetails {
                email: self.billing_email,
                address: self.billing_address,
                tax_id: self.tax_id,
            }),
            customer_type: self.customer_type,
            price_list: self.price_list,
            sales_rep: self.sales_rep,
        }
    }
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Issues an API key and prints it (once).
    Create {
        /// admin, in_house, rep, service or auditor.
        #[arg(long)]
        role: String,
        /// Who or what holds the key.
        #[arg(long)]
        name: String,
        /// For rep keys: the sales rep.
        #[arg(long, default_value = "")]
        rep: String,
    },
    /// Revokes an API key.
    Revoke {
        /// The key's id.
        #[arg(long)]
        id: String,
    },
    /// Replaces a key: a new one (printed once) with the same role and holder,
    /// the old one revoked in the same step.
    Rotate {
        /// The key's id.
        #[arg(long)]
        id: String,
    },
    /// Lists the tenant's keys (never the keys themselves).
    List,
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

fn print_customer(c: &pb::Customer) {
    let r = c.record.clone().unwrap_or_default();
    println!("customer: {}", r.customer_id);
    println!("name: {}", r.name);
    println!(
        "status: {:?}",
        pb::CustomerStatus::try_from(c.status).unwrap_or_default()
    );
    println!("sales rep: {}", r.sales_rep);
    println!("type: {}", r.customer_type);
    println!("price list: {}", r.price_list);
    let kinds: Vec<String> = c
        .visible_documents
        .iter()
        .map(|k| format!("{:?}", pb::DocumentKind::try_from(*k).unwrap_or_default()))
        .collect();
    println!("documents: {}", kinds.join(", "));
}

#[derive(Subcommand)]
enum LogCommand {
    /// The log's head position.
    Status,
    /// Verifies every stream's hash chain and the global order.
    Verify,
}

#[derive(clap::Args)]
struct ContactArgs {
    /// The contact's id.
    #[arg(long)]
    contact: String,
    /// Why, for the audit trail.
    #[arg(long, default_value = "")]
    reason: String,
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

fn print_contact(c: &pb::Contact) {
    println!("contact: {}", c.contact_id);
    println!("customer: {}", c.customer_id);
    println!("email: {}", c.email);
    println!("status: {}", c.status);
    println!("invitation: {}", c.invitation_id);
    if !c.username.is_empty() {
        println!("username: {} ({} login)", c.username, c.kind);
    }
    println!("has logged in: {}", c.has_logged_in);
    if c.failed_logins > 0 {
        println!("failed logins: {}", c.failed_logins);
    }
    if !c.locked_until.is_empty() {
        println!("locked until: {}", c.locked_until);
    }
}

fn print_session(s: &pb::Session) {
    if s.must_change_password {
        println!("must change password: yes (only a password change is allowed)");
    }
    println!(
        "logged in: {} ({}) for customer {} of {}",
        s.email, s.contact_id, s.customer_id, s.tenant_id
    );
    println!("session expires: {}", s.expires_at);
    println!("position: {}", s.position);
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
    let command = match cli.command {
        Command::More(more) => return reports::run(more, &client).await,
        Command::Audit(a) => return audit::run(a, &client).await,
        other => other,
    };
    let rid = client.request_id.clone();
    let mut access = AccessClient::new(client.channel.clone());
    let mut operator = OperatorClient::new(client.channel.clone());
    let mut sessions = SessionsClient::new(client.channel.clone());
    let mut admin = TenantAdminClient::new(client.channel.clone());
    match command {
        Command::Tenant(TenantCommand::Create {
            id,
            name,
            sites,
            default_order_site,
        }) => {
            let r = operator
                .create_tenant(client.request(pb::CreateTenantRequest {
                    request_id: rid,
                    tenant_id: id,
                    name,
                    sites,
                    default_order_site,
                })?)
                .await?
                .into_inner();
            println!("tenant: {}", r.tenant_id);
            println!("admin key id: {}", r.admin_key_id);
            println!("admin key: {}", r.admin_api_key);
            eprintln!("Store the admin key now: it is not shown again.");
        }
        Command::Tenant(TenantCommand::PasswordPolicy {
            min_length,
            mixed_case,
            symbol,
        }) => {
            let r = admin
                .set_password_policy(client.request(pb::SetPasswordPolicyRequest {
                    request_id: rid,
                    min_length,
                    require_mixed_case: mixed_case,
                    require_symbol: symbol,
                })?)
                .await?
                .into_inner();
            let rules = r
                .tenant
                .and_then(|t| t.password_policy)
                .map(|p| p.rules)
                .unwrap_or_default();
            println!("new passwords need:");
            for rule in rules {
                println!("  - {rule}");
            }
        }
        Command::Customer(CustomerCommand::Create(args)) => {
            let r = access
                .create_customer(client.request(pb::CreateCustomerRequest {
                    request_id: rid,
                    customer: Some(args.record()),
                })?)
                .await?
                .into_inner();
            println!("customer: {}", r.customer_id);
            println!("position: {}", r.position);
        }
        Command::Customer(CustomerCommand::Update(args)) => {
            let r = access
                .update_customer(client.request(pb::UpdateCustomerRequest {
                    request_id: rid,
                    customer: Some(args.record()),
                })?)
                .await?
                .into_inner();
            print_customer(&r.customer.unwrap_or_default());
        }
        Command::Customer(CustomerCommand::Status { id, status, reason }) => {
            let status = match status.as_str() {
                "active" => pb::CustomerStatus::Active,
                "inactive" => pb::CustomerStatus::Inactive,
                "blacklisted" => pb::CustomerStatus::Blacklisted,
                other => {
                    anyhow::bail!("unknown status {other:?}: use active, inactive or blacklisted")
                }
            };
            let r = access
                .set_customer_status(client.request(pb::SetCustomerStatusRequest {
                    request_id: rid,
                    customer_id: id,
                    status: status as i32,
                    reason,
                })?)
                .await?
                .into_inner();
            print_customer(&r.customer.unwrap_or_default());
        }
        Command::Customer(CustomerCommand::Documents { id, kinds }) => {
            let kinds = kinds
                .iter()
                .map(|k| document_kind(k))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let r = access
                .set_document_visibility(client.request(pb::SetDocumentVisibilityRequest {
                    request_id: rid,
                    customer_id: id,
                    kinds,
                })?)
                .await?
                .into_inner();
            print_customer(&r.customer.unwrap_or_default());
        }
        Command::Customer(CustomerCommand::Show { id }) => {
            let r = access
                .get_customer(client.request(pb::GetCustomerRequest {
                    customer_id: id,
                    min_position: 0,
                })?)
                .await?
                .into_inner();
            print_customer(&r);
        }
        Command::Key(KeyCommand::Create { role, name, rep }) => {
            let role = match role.as_str() {
                "admin" => pb::Role::Admin,
                "in_house" => pb::Role::InHouse,
                "rep" => pb::Role::Rep,
                "service" => pb::Role::Service,
                "auditor" => pb::Role::Auditor,
                other => anyhow::bail!(
                    "unknown role {other:?}: use admin, in_house, rep, service or auditor"
                ),
            };
            let r = admin
                .create_api_key(client.request(pb::CreateApiKeyRequest {
                    request_id: rid,
                    role: role as i32,
                    name,
                    rep_id: rep,
                })?)
                .await?
                .into_inner();
            println!("key id: {}", r.key_id);
            println!("key: {}", r.api_key);
            eprintln!("Store the key now: it is not shown again.");
        }
        Command::Key(KeyCommand::Revoke { id }) => {
            let r = admin
                .revoke_api_key(client.request(pb::RevokeApiKeyRequest {
                    request_id: rid,
                    key_id: id,
                })?)
                .await?
                .into_inner();
            println!("revoked at position {}", r.position);
        }
        Command::Backup { out } => {
            // The log first, then the keys: every key an archived event is
            // sealed under was made before that event, so it is in a keys
            // export taken after the archive's head (keys first missed the
            // keys of events appended in between).
            let trailer = audit::export(&client, &out).await?;
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
        Command::Forget { email, reason } => {
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
        Command::Key(KeyCommand::Rotate { id }) => {
            let r = admin
                .rotate_api_key(client.request(pb::RotateApiKeyRequest {
                    request_id: rid,
                    key_id: id,
                })?)
                .await?
                .into_inner();
            println!("key id: {}", r.key_id);
            println!("key: {}", r.api_key);
            eprintln!("Store the key now: it is not shown again. The old key no longer works.");
        }
        Command::Key(KeyCommand::List) => {
            let r = admin
                .list_api_keys(client.request(pb::ListApiKeysRequest { min_position: 0 })?)
                .await?
                .into_inner();
            for k in r.keys {
                println!(
                    "{}  {:<8}  {}{}{}",
                    k.key_id,
                    k.role,
                    k.name,
                    if k.rep_id.is_empty() {
                        String::new()
                    } else {
                        format!(" (rep {})", k.rep_id)
                    },
                    if k.revoked { "  revoked" } else { "" }
                );
            }
        }
        Command::Check {
            contact,
            action,
            kind,
            site,
        } => {
            let action = match action.as_str() {
                "login" => pb::Action::Login,
                "place-order" => pb::Action::PlaceOrder,
                "view-document" => pb::Action::ViewDocument,
                "view-site" => pb::Action::ViewSite,
                "view-costs" => pb::Action::ViewCosts,
                "view-balance" => pb::Action::ViewBalance,
                other => anyhow::bail!("unknown action {other:?}"),
            };
            let r = access
                .check_access(client.request(pb::CheckAccessRequest {
                    contact_id: contact,
                    session_token: String::new(),
                    action: action as i32,
                    document_kind: document_kind(&kind)?,
                    site,
                    min_position: 0,
                })?)
                .await?
                .into_inner();
            println!("allowed: {}", r.allowed);
            println!("reason: {}", r.reason);
            println!("orders go to: {}", r.order_site);
        }
        Command::Invite {
            customer,
            email,
            message,
            site,
            all_sites,
        } => {
            use pb::site_rule::Rule;
            let rule = match (site, all_sites) {
                (Some(site), _) => Rule::OneSite(pb::OneSite { site }),
                (None, true) => Rule::AllSites(pb::AllSites {}),
                (None, false) => Rule::TenantDefault(pb::TenantDefault {}),
            };
            let r = access
                .invite_customer(client.request(pb::InviteCustomerRequest {
                    request_id: rid,
                    customer_id: customer,
                    email,
                    message,
                    site_rule: Some(pb::SiteRule { rule: Some(rule) }),
                })?)
                .await?
                .into_inner();
            println!("contact: {}", r.contact_id);
            println!("invitation: {}", r.invitation_id);
            println!("link expires: {}", r.expires_at);
            println!("position: {}", r.position);
        }
        Command::Resend { contact } => {
            let r = access
                .resend_invitation(client.request(pb::ResendInvitationRequest {
                    request_id: rid,
                    contact_id: contact,
                })?)
                .await?
                .into_inner();
            println!("invitation: {}", r.invitation_id);
            println!("link expires: {}", r.expires_at);
            println!("position: {}", r.position);
        }
        Command::Disable(a) => {
            let m = pb::ContactCommand {
                request_id: rid,
                contact_id: a.contact,
                reason: a.reason,
            };
            let r = access
                .disable_access(client.request(m)?)
                .await?
                .into_inner();
            print_contact(&r.contact.unwrap_or_default());
        }
        Command::Unlock(a) => {
            let m = pb::ContactCommand {
                request_id: rid,
                contact_id: a.contact,
                reason: a.reason,
            };
            let r = access.unlock_login(client.request(m)?).await?.into_inner();
            print_contact(&r.contact.unwrap_or_default());
        }
        Command::Restore(a) => {
            let m = pb::ContactCommand {
                request_id: rid,
                contact_id: a.contact,
                reason: a.reason,
            };
            let r = access
                .restore_access(client.request(m)?)
                .await?
                .into_inner();
            print_contact(&r.contact.unwrap_or_default());
        }
        Command::Revoke(a) => {
            let m = pb::ContactCommand {
                request_id: rid,
                contact_id: a.contact,
                reason: a.reason,
            };
            let r = access.revoke_access(client.request(m)?).await?.into_inner();
            print_contact(&r.contact.unwrap_or_default());
        }
        Command::Contact { contact } => {
            let r = access
                .get_contact(client.request(pb::GetContactRequest {
                    contact_id: contact,
                    min_position: 0,
                })?)
                .await?
                .into_inner();
            print_contact(&r);
        }
        Command::Sites { contact } => {
            let r = access
                .get_site_visibility(client.request(pb::GetSiteVisibilityRequest {
                    contact_id: contact,
                    min_position: 0,
                })?)
                .await?
                .into_inner();
            println!("visible sites: {}", r.visible_sites.join(", "));
            println!("orders go to: {}", r.order_site);
            println!("stock totals over all sites: {}", r.stock_totals);
        }
        Command::Accept { link } => {
            let token = link.rsplit('/').next().unwrap_or_default().to_owned();
            let password = read_password()?;
            let r = sessions
                .accept_invitation(client.request(pb::AcceptInvitationRequest {
                    request_id: rid,
                    token,
                    password,
                })?)
                .await?
                .into_inner();
            print_session(&r);
        }
        Command::Login { login } => {
            let password = read_password()?;
            let r = sessions
                .login(client.request(pb::LoginRequest {
                    request_id: rid,
                    login,
                    password,
                    client_address: String::new(),
                })?)
                .await?
                .into_inner();
            print_session(&r);
        }
        Command::ChangePassword { login } => {
            let input = read_password()?;
            let mut lines = input.lines();
            let (Some(current), Some(new)) = (lines.next(), lines.next()) else {
                anyhow::bail!(
                    "give the current and the new password on two lines of standard input"
                );
            };
            let session = sessions
                .login(client.request(pb::LoginRequest {
                    request_id: format!("{rid}-login"),
                    login,
                    password: current.to_owned(),
                    client_address: String::new(),
                })?)
                .await?
                .into_inner();
            let r = sessions
                .change_password(client.request(pb::ChangePasswordRequest {
                    request_id: rid,
                    session_token: session.session_token,
                    current_password: current.to_owned(),
                    new_password: new.to_owned(),
                })?)
                .await?
                .into_inner();
            print_session(&r);
        }
        Command::AddPortalUser {
            customer,
            username,
            email,
        } => {
            let r = access
                .add_portal_user(client.request(pb::AddPortalUserRequest {
                    request_id: rid,
                    customer_id: customer,
                    username,
                    email,
                    site_rule: None,
                    management_password: String::new(),
                    staff_password: String::new(),
                })?)
                .await?
                .into_inner();
            println!(
                "management login: {} ({})",
                r.management_username, r.management_contact_id
            );
            println!(
                "management temporary password: {}",
                r.management_temporary_password
            );
            println!("staff login: {} ({})", r.staff_username, r.staff_contact_id);
            println!("staff temporary password: {}", r.staff_temporary_password);
            eprintln!(
                "Hand these over now: they are not shown again, and must be changed at first login."
            );
        }
        Command::TemporaryPassword { contact } => {
            let r = access
                .set_temporary_password(client.request(pb::SetTemporaryPasswordRequest {
                    request_id: rid,
                    contact_id: contact,
                    password: String::new(),
                })?)
                .await?
                .into_inner();
            println!("temporary password: {}", r.temporary_password);
            eprintln!(
                "Hand it over now: it is not shown again, and must be changed at first login."
            );
        }
        Command::Log(LogCommand::Status) => {
            let r = operator
                .get_log_status(client.request(pb::GetLogStatusRequest {})?)
                .await?
                .into_inner();
            println!("head position: {}", r.head_position);
        }
        Command::Log(LogCommand::Verify) => {
            let r = operator
                .verify_log(client.request(pb::VerifyLogRequest {})?)
                .await?
                .into_inner();
            println!("events checked: {}", r.events_checked);
            println!("streams checked: {}", r.streams_checked);
            if r.ok {
                println!("chain: intact");
            } else {
                println!("chain: BROKEN: {}", r.first_break);
                anyhow::bail!("the log does not verify");
            }
        }
        Command::OutboxLink { .. } | Command::More(_) | Command::Audit(_) => {}
    }
    Ok(())
}
