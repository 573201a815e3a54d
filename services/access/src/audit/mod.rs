//! What auditors ask: a tenant's history in order and in words, who could do
//! what at a moment in the past, and whether the tenant's chains are intact.
//!
//! Everything here reads the log itself, never the live read models: the log
//! is the record, and the same projection code replayed into fresh, temporary
//! read models gives the answers "as of" any moment.

pub mod export;
pub mod history;

use crate::app::{AppError, check_in};
use crate::domain::access::Action;
use crate::projections::{ContactRow, ReadModels, SiteVisibility};
use access_catalogue::Envelope;
use access_catalogue::catalogue::{Event, IdentityEvent};
use access_catalogue::damage::Damage;
use access_catalogue::envelope::Aggregate;
use access_log::log::{EventLog, LogError};
use access_log::vault::{Vault, decode_open};
use history::{Names, Subject};
use tokio::sync::mpsc;

/// Events read from the log per request.
const BATCH: usize = 2048;

/// Which part of a tenant's history, and between which bounds.
#[derive(Clone, Debug)]
pub struct HistoryQuery {
    /// The tenant.
    pub tenant: String,
    /// Whose history.
    pub subject: Subject,
    /// Earliest moment, Unix milliseconds.
    pub from_ms: Option<i64>,
    /// Latest moment, inclusive.
    pub to_ms: Option<i64>,
    /// Earliest position.
    pub from_position: u64,
    /// Latest position, inclusive (0: the head when the walk starts).
    pub to_position: u64,
}

/// One event of the history, described.
#[derive(Clone, Debug)]
pub struct HistoryLine {
    /// The stored event.
    pub envelope: Envelope,
    /// One line in words.
    pub summary: String,
    /// The payload as JSON, credentials redacted.
    pub payload_json: String,
    /// Who acted, in words.
    pub actor: String,
}

/// Whether an event may be part of `tenant`'s history: its streams, the
/// global identity events its own commands wrote, and the erasures of
/// persons (checked against their contacts once decoded).
fn of_tenant(envelope: &Envelope, tenant: &str) -> bool {
    envelope.stream.tenant() == tenant
        || envelope.tenant.as_deref() == Some(tenant)
        || envelope.event_type == "IdentityForgotten"
}

/// Whether a decoded event really concerns `tenant` (an erasure: only if the
/// person was one of its contacts).
fn concerns_tenant(event: &Event, tenant: &str) -> bool {
    match event {
        Event::Identity(IdentityEvent::IdentityForgotten(f)) => {
            f.contacts.iter().any(|(t, _)| t == tenant)
        }
        _ => true,
    }
}

/// Walks the log from the start (names need the early events), sending the
/// lines the query asks for to `out`; stops early if the receiver goes away.
pub async fn replay(
    log: &dyn EventLog,
    vault: &dyn Vault,
    query: HistoryQuery,
    out: mpsc::Sender<Result<HistoryLine, AppError>>,
) {
    let head = *log.head().borrow();
    let last = if query.to_position == 0 {
        head
    } else {
        query.to_position.min(head)
    };
    let mut names = Names::default();
    let mut next = 1;
    while next <= last {
        let batch = match log.read_from(next, BATCH).await {
            Ok(batch) if !batch.is_empty() => batch,
            Ok(_) => break,
            Err(e) => {
                let _ = out.send(Err(AppError::from(e))).await;
                return;
            }
        };
        next = batch.last().map_or(next, |e| e.position + 1);
        let mine: Vec<Envelope> = batch
            .into_iter()
            .filter(|e| e.position <= last && of_tenant(e, &query.tenant))
            .collect();
        let events = match decode_open(vault, &mine).await {
            Ok(events) => events,
            Err(e) => {
                let _ = out.send(Err(AppError::from(e))).await;
                return;
            }
        };
        for (envelope, event) in mine.into_iter().zip(events) {
            if !concerns_tenant(&event, &query.tenant) {
                continue;
            }
            names.learn(&envelope, &event);
            let in_range = envelope.position >= query.from_position
                && query.from_ms.is_none_or(|t| envelope.occurred_at_ms >= t)
                && query.to_ms.is_none_or(|t| envelope.occurred_at_ms <= t);
            if !in_range || !names.concerns(&query.subject, &envelope, &event) {
                continue;
            }
            let line = HistoryLine {
                summary: names.summary(&envelope, &event),
                payload_json: history::redacted_json(&event),
                actor: names.actor(&envelope.actor),
                envelope,
            };
            if out.send(Ok(line)).await.is_err() {
                return;
            }
        }
    }
}

/// A contact's access at a moment.
#[derive(Clone, Debug)]
pub struct ContactAccess {
    /// The contact as the read model had it then.
    pub contact: ContactRow,
    /// Could log in.
    pub could_log_in: bool,
    /// Could place orders.
    pub could_place_orders: bool,
    /// Why not, when not.
    pub reason: String,
    /// Sites whose stock it saw, and where its orders went.
    pub visibility: SiteVisibility,
}

/// The answer about a moment.
#[derive(Clone, Debug)]
pub struct AccessAt {
    /// The last event taken into account.
    pub position: u64,
    /// How many of the tenant's events were replayed.
    pub events_replayed: u64,
    /// The contacts asked about.
    pub contacts: Vec<ContactAccess>,
}

/// Replays `tenant`'s events up to `at_ms` into temporary read models and
/// answers, with the same rules as live checks, what the customer's contacts
/// (or one contact) could do then.
pub async fn access_at(
    log: &dyn EventLog,
    vault: &dyn Vault,
    tenant: &str,
    at_ms: i64,
    customer_id: Option<&str>,
    contact_id: Option<&str>,
) -> Result<AccessAt, AppError> {
    let models = ReadModels::temporary().map_err(AppError::Internal)?;
    let head = *log.head().borrow();
    let (mut next, mut position, mut replayed) = (1, 0, 0);
    while next <= head {
        let batch = log.read_from(next, BATCH).await.map_err(AppError::from)?;
        let Some(last) = batch.last() else { break };
        next = last.position + 1;
        let mine: Vec<Envelope> = batch
            .into_iter()
            .filter(|e| {
                e.stream.tenant() == tenant
                    && e.occurred_at_ms <= at_ms
                    && e.stream.aggregate() != Aggregate::Identity
            })
            .collect();
        if let Some(last) = mine.last() {
            position = last.position;
            replayed += mine.len() as u64;
            models
                .apply(&mine, vault)
                .await
                .map_err(AppError::Internal)?;
        }
    }
    let contacts = match (contact_id, customer_id) {
        (Some(id), _) => models
            .contact(tenant, id)
            .map_err(AppError::Internal)?
            .into_iter()
            .collect(),
        (None, Some(customer)) => models
            .contacts_of(tenant, customer)
            .map_err(AppError::Internal)?,
        (None, None) => Vec::new(),
    };
    let tenant_row = models.tenant(tenant).map_err(AppError::Internal)?;
    let mut out = Vec::with_capacity(contacts.len());
    for contact in contacts {
        let login = check_in(&models, tenant, &contact, &Action::Login)?;
        let order = check_in(&models, tenant, &contact, &Action::PlaceOrder)?;
        let visibility = match &tenant_row {
            Some(t) => SiteVisibility::resolve(&contact.site_rule, t),
            None => SiteVisibility::default(),
        };
        let reason = if !login.allowed {
            login.reason.as_str()
        } else if !order.allowed {
            order.reason.as_str()
        } else {
            ""
        };
        out.push(ContactAccess {
            could_log_in: login.allowed,
            could_place_orders: order.allowed,
            reason: reason.to_owned(),
            visibility,
            contact,
        });
    }
    Ok(AccessAt {
        position,
        events_replayed: replayed,
        contacts: out,
    })
}

/// What walking a tenant's chains found.
#[derive(Clone, Debug, Default)]
pub struct Verified {
    /// Events checked.
    pub events: u64,
    /// Streams checked.
    pub streams: u64,
    /// Empty when intact; otherwise the first break, precisely.
    pub first_break: String,
    /// Whether the walk stopped because the log could not be read (not a
    /// verdict on the history: worth trying again).
    pub unreadable: bool,
}

/// Walks every event of the log in order (the global order has no holes
/// where it should have none) and checks the hash chain of each of
/// `tenant`'s streams (all streams when `tenant` is `None`).
pub async fn verify(log: &dyn EventLog, tenant: Option<&str>) -> Verified {
    // A backend's own complete check reads the history once, not twice.
    if tenant.is_none()
        && let Some(whole) = storage_verdict(log, None).await
    {
        return whole;
    }
    let head = *log.head().borrow();
    let mut verifier = log.chain_verifier();
    let mut next = 1;
    // A stream is counted at its first event: the chain check holds
    // versions to 1, 2, 3…, so no copy of every name is needed.
    let mut streams = 0u64;
    let mut events = 0;
    while next <= head {
        let batch = match log.read_from(next, BATCH).await {
            Ok(batch) if !batch.is_empty() => batch,
            Ok(_) => {
                return Verified {
                    events,
                    streams,
                    first_break: format!("events {next} to {head} are missing"),
                    unreadable: false,
                };
            }
            Err(e) => {
                return Verified {
                    events,
                    streams,
                    unreadable: !matches!(e, LogError::Damaged(_)),
                    first_break: match e {
                        LogError::Damaged(d) => told(&d, tenant),
                        other => other.to_string(),
                    },
                };
            }
        };
        for e in &batch {
            next = e.position + 1;
            if let Err(b) = verifier.check(e) {
                let mine = tenant.is_none_or(|t| e.stream.tenant() == t);
                return Verified {
                    events,
                    streams,
                    unreadable: false,
                    // Another tenant's stream names are not this caller's to see.
                    first_break: if mine {
                        b.to_string()
                    } else {
                        format!(
                            "the log is broken at position {} (outside this tenant's streams); the operator's check names it",
                            e.position
                        )
                    },
                };
            }
            if tenant.is_none_or(|t| e.stream.tenant() == t) {
                events += 1;
                streams += u64::from(e.stream_version == 1);
            }
        }
    }
    // Its heads are not needed past here, and the storage's check keeps
    // its own: one set of every stream's head in memory at a time.
    drop(verifier);
    // What reading cannot show: the storage's own structure (commit frames,
    // the index's offsets and heads).
    let storage = storage_verdict(log, tenant).await.unwrap_or_default();
    Verified {
        events,
        streams,
        first_break: storage.first_break,
        unreadable: storage.unreadable,
    }
}

/// The backend's own complete check as `tenant` may see it; `None` where
/// the backend has none.
async fn storage_verdict(log: &dyn EventLog, tenant: Option<&str>) -> Option<Verified> {
    Some(match log.check_whole().await {
        Ok(None) => return None,
        Ok(Some(whole)) => Verified {
            events: whole.events,
            streams: whole.streams,
            first_break: whole
                .damage
                .first()
                .map(|d| told(d, tenant))
                .unwrap_or_default(),
            unreadable: false,
        },
        Err(LogError::Damaged(d)) => Verified {
            first_break: told(&d, tenant),
            ..Verified::default()
        },
        Err(e) => Verified {
            first_break: e.to_string(),
            unreadable: true,
            ..Verified::default()
        },
    })
}

/// Damage as a tenant's auditor may see it: position and what, with the
/// stream only when it is the tenant's, and never a file path.
fn told(d: &Damage, tenant: Option<&str>) -> String {
    let mine = d.stream.as_deref().is_some_and(|s| {
        tenant.is_none_or(|t| access_catalogue::StreamId::parse(s).is_ok_and(|id| id.tenant() == t))
    });
    let mut out = d.what.clone();
    if let Some(p) = d.position {
        out = format!("position {p}: {out}");
    }
    match (&d.stream, mine, tenant) {
        (Some(s), true, _) => format!("{out} (stream {s})"),
        (_, _, None) => format!("{out} in {}", d.place),
        _ => out,
    }
}
