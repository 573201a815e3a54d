//! Reports and bulk invitations: the access status report (text or CSV),
//! customers without a login, billable users.

use crate::Client;
use access_proto::v1 as pb;
use access_proto::v1::access_client::AccessClient;
use clap::{Args, Subcommand};
use std::borrow::Cow;

/// Filters on customers.
#[derive(Args, Clone, Debug)]
pub struct FilterArgs {
    /// Only customers of this type.
    #[arg(long = "type", default_value = "")]
    customer_type: String,
    /// Only customers of this sales rep.
    #[arg(long, default_value = "")]
    rep: String,
    /// Only customers on this price list.
    #[arg(long, default_value = "")]
    price_list: String,
}

impl FilterArgs {
    fn filter(&self) -> Option<pb::CustomerFilter> {
        Some(pb::CustomerFilter {
            customer_type: self.customer_type.clone(),
            sales_rep: self.rep.clone(),
            price_list: self.price_list.clone(),
        })
    }
}

/// Reports and bulk invitations.
#[derive(Subcommand)]
pub enum ReportCommand {
    /// The access status report: every customer and contact with its state.
    Report {
        #[command(flatten)]
        filter: FilterArgs,
        /// Only contacts in this status (invited, active, disabled, revoked, pending_approval, no_login).
        #[arg(long, default_value = "")]
        status: String,
        /// Print CSV (with a header line) instead of aligned text.
        #[arg(long)]
        csv: bool,
    },
    /// Customers without a login (the bulk-invitation list).
    WithoutLogin {
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Invites many customers: `--target ID=EMAIL` (repeat), or `--all` with filters.
    BulkInvite {
        /// The invitation message.
        #[arg(long)]
        message: String,
        /// A customer and its invitation address (blank: not invited).
        #[arg(long = "target")]
        targets: Vec<String>,
        /// Every customer without a login matching the filters, at its accounting email.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Logins that count for billing.
    Billable,
}

/// A field a spreadsheet would take for a formula (`=`, `+`, `-`, `@`, a tab
/// or a carriage return first: a customer's name is text its customer chose)
/// gets a leading `'`, as OWASP advises, so opening the report runs nothing.
fn spreadsheet_safe(field: &str) -> Cow<'_, str> {
    if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{field}"))
    } else {
        Cow::Borrowed(field)
    }
}

/// Runs one command of this module.
pub async fn run(command: ReportCommand, client: &Client) -> anyhow::Result<()> {
    let rid = client.request_id.clone();
    let mut access = AccessClient::new(client.channel.clone());
    match command {
        ReportCommand::Report {
            filter,
            status,
            csv: as_csv,
        } => {
            let mut token = String::new();
            let mut out = as_csv.then(|| csv::Writer::from_writer(std::io::stdout()));
            if let Some(out) = &mut out {
                out.write_record([
                    "customer_id",
                    "customer_name",
                    "customer_status",
                    "contact_id",
                    "email",
                    "username",
                    "kind",
                    "status",
                    "has_logged_in",
                ])?;
            }
            loop {
                let page = access
                    .list_access(client.request(pb::ListAccessRequest {
                        filter: filter.filter(),
                        status: status.clone(),
                        page_size: 1000,
                        page_token: token.clone(),
                        min_position: 0,
                    })?)
                    .await?
                    .into_inner();
                for r in &page.rows {
                    let fields = [
                        r.customer_id.as_str(),
                        &r.customer_name,
                        &r.customer_status,
                        &r.contact_id,
                        &r.email,
                        &r.username,
                        &r.kind,
                        &r.status,
                        if r.has_logged_in { "yes" } else { "no" },
                    ];
                    if let Some(out) = &mut out {
                        out.write_record(fields.iter().map(|f| spreadsheet_safe(f).into_owned()))?;
                    } else {
                        println!(
                            "{:<12} {:<24} {:<12} {:<32} {:<16} {}",
                            r.customer_id,
                            r.customer_name,
                            r.status,
                            r.email,
                            r.username,
                            r.customer_status
                        );
                    }
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
            if let Some(mut out) = out {
                out.flush()?;
            }
        }
        ReportCommand::WithoutLogin { filter } => {
            let mut token = String::new();
            loop {
                let page = access
                    .list_customers_without_login(client.request(pb::ListCustomersRequest {
                        filter: filter.filter(),
                        page_size: 1000,
                        page_token: token.clone(),
                        min_position: 0,
                    })?)
                    .await?
                    .into_inner();
                for c in page.customers {
                    let r = c.record.unwrap_or_default();
                    let email = r.contact.map(|c| c.email).unwrap_or_default();
                    println!(
                        "{:<12} {:<32} {:<32} {}",
                        r.customer_id, r.name, email, r.sales_rep
                    );
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
        }
        ReportCommand::BulkInvite {
            message,
            targets,
            all,
            filter,
        } => {
            let targets = targets
                .iter()
                .map(|t| {
                    let (id, email) = t.split_once('=').unwrap_or((t.as_str(), ""));
                    pb::BulkInviteTarget {
                        customer_id: id.into(),
                        email: email.into(),
                    }
                })
                .collect();
            let r = access
                .bulk_invite(client.request(pb::BulkInviteRequest {
                    request_id: rid,
                    message,
                    site_rule: None,
                    targets,
                    all_matching: all,
                    filter: filter.filter(),
                })?)
                .await?
                .into_inner();
            for i in &r.invited {
                println!(
                    "invited {} at {} (contact {})",
                    i.customer_id, i.email, i.contact_id
                );
            }
            for s in &r.skipped {
                println!("skipped {}: {} ({})", s.customer_id, s.reason, s.message);
            }
            println!("{} invited, {} skipped", r.invited.len(), r.skipped.len());
        }
        ReportCommand::Billable => {
            let r = access
                .billable_users(client.request(pb::BillableUsersRequest { min_position: 0 })?)
                .await?
                .into_inner();
            println!("billable users: {}", r.billable_users);
            println!(
                "  active: {}, disabled: {}, waiting for approval: {}",
                r.active, r.disabled, r.pending_approval
            );
            println!("invitations not accepted (not billed): {}", r.invited);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::spreadsheet_safe;

    fn line(fields: &[&str]) -> String {
        let mut out = csv::Writer::from_writer(Vec::new());
        out.write_record(fields.iter().map(|f| spreadsheet_safe(f).into_owned()))
            .expect("writes to memory");
        String::from_utf8(out.into_inner().expect("flushes")).expect("utf-8")
    }

    #[test]
    fn csv_fields_are_quoted_when_needed_and_never_read_as_formulas() {
        assert_eq!(
            line(&["ACME Ltd", "Smith, Jones & Co"]),
            "ACME Ltd,\"Smith, Jones & Co\"\n"
        );
        assert_eq!(line(&["the \"best\""]), "\"the \"\"best\"\"\"\n");
        assert_eq!(
            line(&["=HYPERLINK(\"http://x\")"]),
            "\"'=HYPERLINK(\"\"http://x\"\")\"\n"
        );
        assert_eq!(
            line(&["+44 113 496 0000", "@SUM(A1)", "-1"]),
            "'+44 113 496 0000,'@SUM(A1),'-1\n"
        );
    }
}
