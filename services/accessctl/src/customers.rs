//! `accessctl customer`: customer accounts.

use crate::{Client, document_kind};
use access_proto::v1 as pb;
use access_proto::v1::access_client::AccessClient;
use clap::Subcommand;

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub(crate) enum CustomerCommand {
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
pub(crate) struct CustomerArgs {
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

pub(crate) fn print_customer(c: &pb::Customer) {
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

/// Runs one of these commands.
pub(crate) async fn run(command: CustomerCommand, client: &Client) -> anyhow::Result<()> {
    let rid = client.request_id.clone();
    let mut access = AccessClient::new(client.channel.clone());
    match command {
        CustomerCommand::Create(args) => {
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
        CustomerCommand::Update(args) => {
            let r = access
                .update_customer(client.request(pb::UpdateCustomerRequest {
                    request_id: rid,
                    customer: Some(args.record()),
                })?)
                .await?
                .into_inner();
            print_customer(&r.customer.unwrap_or_default());
        }
        CustomerCommand::Status { id, status, reason } => {
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
        CustomerCommand::Documents { id, kinds } => {
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
        CustomerCommand::Show { id } => {
            let r = access
                .get_customer(client.request(pb::GetCustomerRequest {
                    customer_id: id,
                    min_position: 0,
                })?)
                .await?
                .into_inner();
            print_customer(&r);
        }
    }
    Ok(())
}
