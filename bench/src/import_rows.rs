//! Moving in: one `Import` of many logins with password hashes, against the
//! same number of single `InviteCustomer` commands from 64 callers, each
//! into a fresh tenant of the same server in the same run.

use crate::grpc_rows::with_key;
use crate::measure::{Row, Run, Target, drive_each};
use access_proto::v1 as pb;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use access_tests::{TestApp, customer, invite_request};
use std::time::Instant;

/// A bcrypt hash at cost 10, as an old portal stores it (parsed at import,
/// checked only at a login).
const BCRYPT: &str = "$2b$10$0Wz1elHkG9s2MJnnmblgsOSGcZ6yAuKwBsrxNXxB2lNKEdADdW91.";

/// Logins per customer in both workloads.
const PER_CUSTOMER: usize = 10;

fn rows(contacts: usize) -> Vec<pb::ImportRequest> {
    let customers = contacts.div_ceil(PER_CUSTOMER);
    let item = |item| pb::ImportRequest { item: Some(item) };
    let mut rows = Vec::with_capacity(customers + contacts + 1);
    rows.push(item(pb::import_request::Item::Options(
        pb::ImportOptions::default(),
    )));
    for c in 0..customers {
        rows.push(item(pb::import_request::Item::Customer(
            pb::ImportedCustomer {
                customer: Some(customer(&format!("C{c:07}"), None)),
                ..Default::default()
            },
        )));
    }
    for n in 0..contacts {
        rows.push(item(pb::import_request::Item::Contact(
            pb::ImportedContact {
                customer_id: format!("C{:07}", n % customers),
                email: format!("moved-{n}@old{}.example", n % 89),
                username: format!("U{n:07}"),
                has_logged_in: true,
                password_hash: BCRYPT.into(),
                ..Default::default()
            },
        )));
    }
    rows
}

/// One import of `contacts` logins, as a rate of logins a second.
async fn import_once(app: &TestApp, key: &str, contacts: usize) -> anyhow::Result<Run> {
    let rows = rows(contacts);
    let started = Instant::now();
    let reply = TenantAdminClient::new(app.channel.clone())
        .import(app.req(key, futures::stream::iter(rows)))
        .await?
        .into_inner();
    let took = started.elapsed();
    let created = reply.contacts.unwrap_or_default().created as usize;
    anyhow::ensure!(
        created == contacts && reply.refused_total == 0,
        "the import created {created} of {contacts} logins, refused {}",
        reply.refused_total
    );
    Ok(Run {
        rate: contacts as f64 / took.as_secs_f64(),
        p99: took,
    })
}

/// The same number of logins by single `InviteCustomer` commands, 64 callers.
async fn invite_once(app: &TestApp, key: &str, contacts: usize) -> anyhow::Result<Run> {
    let customers = contacts.div_ceil(PER_CUSTOMER);
    let mut admin = TenantAdminClient::new(app.channel.clone());
    // The customers come in untimed, by an import of their own.
    let mut only_customers = rows(contacts);
    only_customers.truncate(customers + 1);
    admin
        .import(app.req(key, futures::stream::iter(only_customers)))
        .await?;
    let requests: Vec<_> = (0..contacts)
        .map(|n| {
            invite_request(
                &format!("C{:07}", n % customers),
                &format!("invited-{n}@new{}.example", n % 89),
                None,
            )
        })
        .collect();
    let (channel, key) = (app.channel.clone(), key.to_owned());
    Ok(drive_each(64, requests, move |request| {
        let mut client = pb::access_client::AccessClient::new(channel.clone());
        let request = with_key(request, &key);
        async move {
            client.invite_customer(request?).await?;
            Ok(())
        }
    })
    .await)
}

/// The row, and a line with the import's wall time at this size.
pub async fn import(contacts: usize, runs: usize) -> anyhow::Result<(Row, String)> {
    let app = TestApp::spawn().await;
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let key = app.create_tenant(&format!("moving{run}")).await;
        ours.push(import_once(&app, &key, contacts).await?);
        let key = app.create_tenant(&format!("inviting{run}")).await;
        base.push(invite_once(&app, &key, contacts).await?);
    }
    let mut secs: Vec<f64> = ours.iter().map(|r| r.p99.as_secs_f64()).collect();
    secs.sort_by(f64::total_cmp);
    let median = secs.get(secs.len() / 2).copied().unwrap_or_default();
    let line = format!(
        "Import of {contacts} logins with bcrypt hashes over {} customers in one `Import` stream: {median:.1} s (median of {runs}; each into a fresh tenant).",
        contacts.div_ceil(PER_CUSTOMER),
    );
    Ok((
        Row {
            ours: format!("`Import` of {contacts} logins with password hashes (one stream)"),
            baseline: format!("{contacts} single `InviteCustomer` commands, 64 callers"),
            unit: "logins/s",
            ours_runs: ours,
            base_runs: base,
            target: Target::RateAtLeast(2.0),
            note: format!(
                "{PER_CUSTOMER} logins a customer; the import's customers are in its time, the commands' are not; an invitation also mails"
            ),
        },
        line,
    ))
}
