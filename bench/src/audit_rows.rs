//! The auditor's point-in-time question on a big log: "who of this customer
//! could log in then", answered by replaying the tenant's events into fresh
//! read models, against a bare read-and-decode of the same log.

use crate::measure::{Row, Run, Target};
use access_catalogue::Actor;
use access_catalogue::catalogue::{
    ContactActivated, ContactEvent, ContactInvited, CustomerCreated, CustomerEvent, CustomerRecord,
    CustomerStatus, Event, SiteRule, TenantCreated, TenantEvent,
};
use access_catalogue::envelope::{Aggregate, StreamId};
use access_catalogue::personal::{self, Personal};
use access_log::file_log::FileLog;
use access_log::file_vault::FileVault;
use access_log::log::{AppendRequest, EventLog, NewEvent, StreamAppend};
use access_log::vault::{CachedVault, Vault};
use std::sync::Arc;
use std::time::Instant;

/// Contacts per customer in the synthetic log.
const CONTACTS_PER_CUSTOMER: usize = 50;

fn stream(aggregate: Aggregate, tenant: &str, id: &str) -> anyhow::Result<StreamId> {
    Ok(StreamId::parse(&format!(
        "{}.{tenant}.{id}",
        aggregate.as_str()
    ))?)
}

fn encoded(event: &Event) -> NewEvent {
    let (event_type, schema_version, payload) = event.encode();
    NewEvent {
        event_id: uuid::Uuid::now_v7(),
        event_type: event_type.into(),
        schema_version,
        payload,
    }
}

fn request(tenant: &str, streams: Vec<StreamAppend>) -> AppendRequest {
    AppendRequest {
        request_id: format!("{tenant}/{}", uuid::Uuid::now_v7()),
        fingerprint: [0; 32],
        tenant: Some(tenant.into()),
        actor: Actor::Operator,
        correlation_id: uuid::Uuid::now_v7(),
        causation_id: None,
        occurred_at_ms: 1_800_000_000_000,
        streams,
        reply: Vec::new(),
    }
}

/// Writes a log of about `events` events over `tenants` tenants: each tenant,
/// its customers, and contacts invited and activated, with their emails
/// sealed (one key per tenant here, so seeding does not wait on a key file
/// write per person; opening costs the same).
async fn seed(
    log: &FileLog,
    vault: &dyn Vault,
    tenants: usize,
    events: usize,
) -> anyhow::Result<u64> {
    let per_tenant = (events / tenants).max(2 * CONTACTS_PER_CUSTOMER + 2);
    let customers = per_tenant / (2 * CONTACTS_PER_CUSTOMER + 1);
    let mut written = 0;
    for t in 0..tenants {
        let tenant = format!("t{t:05}");
        let key = vault.get_or_create(&format!("bench-{tenant}")).await?;
        let created = Event::Tenant(TenantEvent::TenantCreated(TenantCreated {
            tenant_id: tenant.clone(),
            name: format!("Supplier {t}"),
            sites: vec!["Leeds".into(), "York".into()],
            default_order_site: "Leeds".into(),
        }));
        log.append(request(
            &tenant,
            vec![StreamAppend {
                stream: stream(Aggregate::Tenant, &tenant, &tenant)?,
                expected_version: 0,
                events: vec![encoded(&created)],
            }],
        ))
        .await?;
        written += 1;
        for c in 0..customers {
            let customer = format!("C{c:04}");
            let mut streams = vec![StreamAppend {
                stream: stream(Aggregate::Customer, &tenant, &customer)?,
                expected_version: 0,
                events: vec![encoded(&Event::Customer(CustomerEvent::CustomerCreated(
                    CustomerCreated {
                        record: CustomerRecord {
                            customer_id: customer.clone(),
                            name: format!("Customer {c}"),
                            ..CustomerRecord::default()
                        },
                        status: CustomerStatus::Active,
                    },
                )))],
            }];
            for n in 0..CONTACTS_PER_CUSTOMER {
                let contact_id = format!("{:032x}", (t * 1_000_000 + c * 1_000 + n) as u128);
                let mut email = Personal::clear(format!("buyer{n}@c{c}.t{t}.example"));
                email.seal(&format!("bench-{tenant}"), &key);
                let invited = Event::Contact(ContactEvent::ContactInvited(ContactInvited {
                    contact_id: contact_id.clone(),
                    customer_id: customer.clone(),
                    email,
                    identity_id: personal::identity_of(&format!("buyer{n}@c{c}.t{t}.example")),
                    site_rule: SiteRule::TenantDefault,
                    invitation_id: contact_id.clone(),
                }));
                let activated = Event::Contact(ContactEvent::ContactActivated(ContactActivated {
                    invitation_id: contact_id.clone(),
                }));
                streams.push(StreamAppend {
                    stream: stream(Aggregate::Contact, &tenant, &contact_id)?,
                    expected_version: 0,
                    events: vec![encoded(&invited), encoded(&activated)],
                });
            }
            written += streams.iter().map(|s| s.events.len() as u64).sum::<u64>();
            log.append(request(&tenant, streams)).await?;
        }
    }
    Ok(written)
}

/// `AccessAt` for one customer of one tenant on a log of about `events`
/// events over 1,000 tenants.
pub async fn access_at(events: usize, runs: usize) -> anyhow::Result<(Row, String)> {
    let dir = tempfile::tempdir_in(".")?;
    let log = FileLog::open(&dir.path().join("log"))?;
    let file_vault = Arc::new(FileVault::open(&dir.path().join("vault"))?);
    file_vault.attach(&log)?;
    let vault: Arc<dyn Vault> = CachedVault::new(file_vault);
    let started = Instant::now();
    let written = seed(&log, vault.as_ref(), 1_000, events).await?;
    let seeding = started.elapsed();
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    let mut answer_secs = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let mut from = 1;
        let mut n = 0u64;
        loop {
            let batch = log.read_from(from, 2048).await?;
            let Some(last) = batch.last() else { break };
            from = last.position + 1;
            for e in &batch {
                std::hint::black_box(Event::decode(e).ok());
                n += 1;
            }
        }
        base.push(Run {
            rate: n as f64 / started.elapsed().as_secs_f64(),
            p99: std::time::Duration::ZERO,
        });
        let started = Instant::now();
        let answer = access_service::audit::access_at(
            &log,
            vault.as_ref(),
            "t00500",
            2_000_000_000_000,
            Some("C0000"),
            None,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let took = started.elapsed();
        anyhow::ensure!(
            answer.contacts.len() == CONTACTS_PER_CUSTOMER
                && answer.contacts.iter().all(|c| c.could_log_in),
            "the replayed answer is wrong: {} contacts",
            answer.contacts.len()
        );
        answer_secs.push(took.as_secs_f64());
        ours.push(Run {
            rate: n as f64 / took.as_secs_f64(),
            p99: std::time::Duration::ZERO,
        });
    }
    answer_secs.sort_by(|a, b| a.total_cmp(b));
    let median = answer_secs[answer_secs.len() / 2];
    let row = Row {
        ours: "`AccessAt`: one customer's contacts at a moment, the tenant replayed into fresh read models".into(),
        baseline: "a bare read-and-decode of the same log".into(),
        unit: "events/s",
        ours_runs: ours,
        base_runs: base,
        target: Target::RateAtLeast(0.5),
        note: format!("{written} events, 1,000 tenants; answer in {median:.2} s (median)"),
    };
    let line = format!(
        "Point-in-time answer (`AccessAt`) on a log of {written} events over 1,000 tenants: {median:.2} s (median of {runs}); seeding the log took {:.0} s.",
        seeding.as_secs_f64()
    );
    Ok((row, line))
}
