//! `accessctl import`: customers and logins from the system a supplier
//! leaves, read from CSV or JSON Lines files and streamed to `Import`.
//! The columns are documented in the README and `examples/import/`.

use crate::Client;
use access_proto::v1 as pb;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use anyhow::Context;
use clap::Args;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// The columns of a customers file.
const CUSTOMER_COLUMNS: &[&str] = &[
    "customer_id",
    "name",
    "short_name",
    "default_department",
    "email",
    "phone",
    "address",
    "billing_email",
    "billing_address",
    "tax_id",
    "customer_type",
    "price_list",
    "sales_rep",
    "status",
    "document_kinds",
];

/// The columns of a contacts file.
const CONTACT_COLUMNS: &[&str] = &[
    "customer_id",
    "email",
    "username",
    "site",
    "kind",
    "status",
    "has_logged_in",
    "password_hash",
];

/// Imports customers and logins (admin key).
#[derive(Args)]
pub struct ImportArgs {
    /// A customers file (.csv with a header line, or .jsonl); repeatable.
    #[arg(long = "customers")]
    customers: Vec<PathBuf>,
    /// A contacts file (.csv with a header line, or .jsonl); repeatable.
    /// Read after every customers file.
    #[arg(long = "contacts")]
    contacts: Vec<PathBuf>,
    /// Check every row and report, recording nothing.
    #[arg(long)]
    dry_run: bool,
    /// Send each new login without a password hash a link to set one (no
    /// email is sent otherwise).
    #[arg(long)]
    invite_without_password: bool,
    /// The import's name in every record's history (default: a fresh one).
    #[arg(long, default_value = "")]
    import_id: String,
    /// Print the whole report as JSON.
    #[arg(long)]
    json: bool,
}

/// A row the client could not read, reported beside the service's refusals.
struct LocalRefusal {
    source: String,
    line: u32,
    message: String,
}

/// Runs the import; fails (after printing the report) when a row was refused.
pub async fn run(args: ImportArgs, client: &Client) -> anyhow::Result<()> {
    if args.customers.is_empty() && args.contacts.is_empty() {
        anyhow::bail!("name at least one --customers or --contacts file");
    }
    for path in args.customers.iter().chain(&args.contacts) {
        format_of(path)?;
    }
    let (tx, rx) = mpsc::channel::<pb::ImportRequest>(1024);
    let options = pb::ImportOptions {
        import_id: args.import_id.clone(),
        dry_run: args.dry_run,
        invite_without_password: args.invite_without_password,
    };
    let files: Vec<(PathBuf, bool)> = args
        .customers
        .iter()
        .map(|p| (p.clone(), true))
        .chain(args.contacts.iter().map(|p| (p.clone(), false)))
        .collect();
    // Files are read on a thread of their own, row by row, as the service
    // takes them: a file of a million rows is never held whole.
    let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<LocalRefusal>> {
        let send = |item| {
            tx.blocking_send(pb::ImportRequest { item: Some(item) })
                .map_err(|_| anyhow::anyhow!("the service stopped taking rows"))
        };
        send(pb::import_request::Item::Options(options))?;
        let mut refused = Vec::new();
        for (path, customers) in files {
            read_file(&path, customers, &send, &mut refused)?;
        }
        Ok(refused)
    });
    let mut admin = TenantAdminClient::new(client.channel.clone());
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let answer = admin.import(client.request(stream)?).await;
    let local = reader.await.context("the file reader")?;
    let reply = answer?.into_inner();
    let local = local?;
    print_report(&reply, &local, args.json)?;
    let refused = reply.refused_total as usize + local.len();
    if refused > 0 {
        anyhow::bail!(
            "{refused} row(s) refused; the others were {}",
            if reply.dry_run { "checked" } else { "imported" }
        );
    }
    Ok(())
}

enum Format {
    Csv,
    JsonLines,
}

fn format_of(path: &Path) -> anyhow::Result<Format> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => Ok(Format::Csv),
        Some("jsonl" | "ndjson") => Ok(Format::JsonLines),
        _ => anyhow::bail!("{}: name a .csv or .jsonl file", path.display()),
    }
}

/// Sends every row of one file, noting the rows it cannot read.
fn read_file(
    path: &Path,
    customers: bool,
    send: &dyn Fn(pb::import_request::Item) -> anyhow::Result<()>,
    refused: &mut Vec<LocalRefusal>,
) -> anyhow::Result<()> {
    let source = path.display().to_string();
    let columns = if customers {
        CUSTOMER_COLUMNS
    } else {
        CONTACT_COLUMNS
    };
    let file = std::fs::File::open(path).with_context(|| format!("opening {source}"))?;
    let mut row = |line: u32, fields: Result<BTreeMap<String, String>, String>| {
        let place = Some(pb::RowPlace {
            source: source.clone(),
            line,
        });
        let item = fields.and_then(|f| {
            if customers {
                customer(&f, place).map(pb::import_request::Item::Customer)
            } else {
                contact(&f, place).map(pb::import_request::Item::Contact)
            }
        });
        match item {
            Ok(item) => send(item),
            Err(message) => {
                refused.push(LocalRefusal {
                    source: source.clone(),
                    line,
                    message,
                });
                Ok(())
            }
        }
    };
    match format_of(path)? {
        Format::Csv => {
            let mut csv = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .from_reader(file);
            let header: Vec<String> = csv
                .headers()
                .with_context(|| format!("{source}: the header line"))?
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect();
            if let Some(unknown) = header.iter().find(|h| !columns.contains(&h.as_str())) {
                anyhow::bail!(
                    "{source}: unknown column {unknown:?} (the columns are {})",
                    columns.join(", ")
                );
            }
            for record in csv.records() {
                let (line, fields) = match record {
                    Ok(r) => (
                        r.position().map_or(0, |p| p.line() as u32),
                        Ok(header
                            .iter()
                            .cloned()
                            .zip(r.iter().map(str::to_owned))
                            .collect()),
                    ),
                    Err(e) => (
                        e.position().map_or(0, |p| p.line() as u32),
                        Err(format!("not a CSV row: {e}")),
                    ),
                };
                row(line, fields)?;
            }
        }
        Format::JsonLines => {
            use std::io::BufRead;
            for (i, text) in std::io::BufReader::new(file).lines().enumerate() {
                let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
                let text = text.with_context(|| format!("reading {source}"))?;
                if text.trim().is_empty() {
                    continue;
                }
                row(line, json_fields(&text, columns))?;
            }
        }
    }
    Ok(())
}

/// One JSON object's fields as text (numbers and booleans as written).
fn json_fields(text: &str, columns: &[&str]) -> Result<BTreeMap<String, String>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
    let object = value.as_object().ok_or("not a JSON object")?;
    let mut fields = BTreeMap::new();
    for (key, value) in object {
        if !columns.contains(&key.as_str()) {
            return Err(format!(
                "unknown field {key:?} (the fields are {})",
                columns.join(", ")
            ));
        }
        let text = match value {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        };
        fields.insert(key.clone(), text);
    }
    Ok(fields)
}

fn get<'a>(fields: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    fields.get(key).map_or("", |v| v.trim())
}

fn customer(
    f: &BTreeMap<String, String>,
    place: Option<pb::RowPlace>,
) -> Result<pb::ImportedCustomer, String> {
    let status = match get(f, "status").to_ascii_lowercase().as_str() {
        "" | "active" => pb::CustomerStatus::Active,
        "inactive" => pb::CustomerStatus::Inactive,
        "blacklisted" => pb::CustomerStatus::Blacklisted,
        other => return Err(format!("status {other:?}: active, inactive or blacklisted")),
    };
    let document_kinds = get(f, "document_kinds")
        .split([' ', ';', '|', ','])
        .filter(|k| !k.is_empty())
        .map(|k| crate::document_kind(&k.to_ascii_lowercase()).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(pb::ImportedCustomer {
        place,
        customer: Some(pb::CustomerRecord {
            customer_id: get(f, "customer_id").into(),
            name: get(f, "name").into(),
            short_name: get(f, "short_name").into(),
            default_department: get(f, "default_department").into(),
            contact: Some(pb::ContactDetails {
                email: get(f, "email").into(),
                phone: get(f, "phone").into(),
                address: get(f, "address").into(),
            }),
            billing: Some(pb::BillingDetails {
                email: get(f, "billing_email").into(),
                address: get(f, "billing_address").into(),
                tax_id: get(f, "tax_id").into(),
            }),
            customer_type: get(f, "customer_type").into(),
            price_list: get(f, "price_list").into(),
            sales_rep: get(f, "sales_rep").into(),
        }),
        status: status as i32,
        document_kinds,
    })
}

fn contact(
    f: &BTreeMap<String, String>,
    place: Option<pb::RowPlace>,
) -> Result<pb::ImportedContact, String> {
    use pb::site_rule::Rule;
    let site = get(f, "site");
    let rule = match site.to_ascii_lowercase().as_str() {
        "" | "default" => Rule::TenantDefault(pb::TenantDefault {}),
        "all" | "*" => Rule::AllSites(pb::AllSites {}),
        _ => Rule::OneSite(pb::OneSite { site: site.into() }),
    };
    let has_logged_in = match get(f, "has_logged_in").to_ascii_lowercase().as_str() {
        "" | "false" | "no" | "0" => false,
        "true" | "yes" | "1" => true,
        other => return Err(format!("has_logged_in {other:?}: true or false")),
    };
    Ok(pb::ImportedContact {
        place,
        customer_id: get(f, "customer_id").into(),
        email: get(f, "email").into(),
        username: get(f, "username").into(),
        site_rule: Some(pb::SiteRule { rule: Some(rule) }),
        kind: get(f, "kind").into(),
        status: get(f, "status").into(),
        has_logged_in,
        password_hash: get(f, "password_hash").into(),
    })
}

fn print_report(reply: &pb::ImportReply, local: &[LocalRefusal], json: bool) -> anyhow::Result<()> {
    let counts = |c: &Option<pb::ImportCounts>| (*c).unwrap_or_default();
    let (customers, contacts) = (counts(&reply.customers), counts(&reply.contacts));
    if json {
        let refused: Vec<serde_json::Value> = local
            .iter()
            .map(|r| {
                serde_json::json!({"source": r.source, "line": r.line, "reason": "unreadable", "message": r.message})
            })
            .chain(reply.refused.iter().map(|r| {
                let place = r.place.clone().unwrap_or_default();
                serde_json::json!({"source": place.source, "line": place.line, "reason": r.reason, "message": r.message})
            }))
            .collect();
        let count = |c: &pb::ImportCounts| serde_json::json!({"created": c.created, "updated": c.updated, "unchanged": c.unchanged});
        let report = serde_json::json!({
            "import_id": reply.import_id,
            "dry_run": reply.dry_run,
            "customers": count(&customers),
            "contacts": count(&contacts),
            "invitations": reply.invitations,
            "refused_total": reply.refused_total as usize + local.len(),
            "refused": refused,
            "position": reply.position,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let verb = if reply.dry_run { "would be" } else { "were" };
    println!(
        "import {}{}",
        reply.import_id,
        if reply.dry_run {
            " (dry run: nothing recorded)"
        } else {
            ""
        }
    );
    for (what, c) in [("customers", &customers), ("contacts", &contacts)] {
        println!(
            "{what}: {} {verb} created, {} updated, {} unchanged",
            c.created, c.updated, c.unchanged
        );
    }
    if reply.invitations > 0 {
        println!("links to set a password {verb} sent: {}", reply.invitations);
    }
    for r in local {
        println!("refused {}:{}: unreadable: {}", r.source, r.line, r.message);
    }
    for r in &reply.refused {
        let place = r.place.clone().unwrap_or_default();
        println!(
            "refused {}:{}: {}: {}",
            place.source, place.line, r.reason, r.message
        );
    }
    let listed = reply.refused.len() as u32;
    if reply.refused_total > listed {
        println!("... and {} more refused rows", reply.refused_total - listed);
    }
    Ok(())
}
