//! The sign-out worker, in every replica of both modes: it ends the live
//! grants of contacts who may no longer sign in (followed from the log,
//! after a sweep of every live grant at start), and tells each client that
//! asked of an ended grant with a logout token posted to its back-channel
//! URI, recorded once it is delivered. Transient failures are retried with
//! backoff for a day; a client's refusal is recorded as given up.

use crate::app::{App, AppError};
use crate::projections::PendingLogout;
use access_catalogue::catalogue::GrantEnd;
use access_catalogue::chain::ChainFollower;
use access_log::log::{EventLog, subscribe};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a client that cannot be reached is tried before giving up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The longest wait between two tries at one client.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Stream heads the worker's chain check remembers.
const FOLLOWED_STREAMS: usize = 10_000;
/// Logout tokens posted at once.
const IN_FLIGHT: usize = 8;

/// Runs both halves until `shutdown` turns true.
pub async fn run(app: App, log: Arc<dyn EventLog>, shutdown: watch::Receiver<bool>) {
    tokio::join!(
        end_lost_access(app.clone(), log, shutdown.clone()),
        deliver(app, shutdown)
    );
}

/// Waits `wait`, or less if shutting down; false when shutting down.
async fn pause(wait: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = shutdown.wait_for(|stop| *stop) => false,
    }
}

fn transient(e: &AppError) -> bool {
    matches!(
        e,
        AppError::Unavailable(_) | AppError::Behind(_) | AppError::Busy(_) | AppError::Conflict(_)
    )
}

/// Every live grant of a contact who may no longer sign in is ended:
/// first a sweep of them all, then the log's events as they come.
async fn end_lost_access(app: App, log: Arc<dyn EventLog>, mut shutdown: watch::Receiver<bool>) {
    let mut from = app.read_model_position() + 1;
    let mut after = Vec::new();
    let mut failures = 0u32;
    // The sweep: what changed while this replica was not watching.
    loop {
        let page = match app.live_grants_after(&after, 500) {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "sweeping live sign-ins; retrying");
                if !pause(Duration::from_secs(1), &mut shutdown).await {
                    return;
                }
                continue;
            }
        };
        let Some(last) = page.last() else { break };
        after = last.key.clone();
        // The index is by contact: each contact once.
        let mut seen: Option<(String, String)> = None;
        for grant in page {
            let contact = (grant.tenant, grant.contact_id);
            if seen.as_ref() == Some(&contact) {
                continue;
            }
            if !settle_contact(&app, &contact.0, &contact.1, &mut shutdown).await {
                return;
            }
            seen = Some(contact);
        }
    }
    let mut events = subscribe(log.clone(), from);
    // What this worker reads it checks, as every reader of the log does.
    let mut chain = ChainFollower::new(FOLLOWED_STREAMS);
    loop {
        let next = tokio::select! {
            item = events.next() => item,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let envelope = match next {
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                failures += 1;
                let wait = Duration::from_millis(100 * 2u64.pow(failures.min(5)));
                tracing::warn!(error = %e, "the sign-out worker could not read the log; retrying");
                if !pause(wait, &mut shutdown).await {
                    return;
                }
                events = subscribe(log.clone(), from);
                continue;
            }
            None => return,
        };
        failures = 0;
        if let Err(damage) = chain.check(&envelope) {
            tracing::error!(%damage, "the sign-out worker stopped at damaged history");
            return;
        }
        from = envelope.position + 1;
        // Decide on the read models as they are after this event.
        loop {
            match app.wait_for(envelope.position).await {
                Ok(()) => break,
                Err(e) if transient(&e) => {
                    if !pause(Duration::from_millis(200), &mut shutdown).await {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "the sign-out worker stopped");
                    return;
                }
            }
        }
        if let Some((tenant, contact, when)) = app.credentials_changed(&envelope)
            && !end_before(&app, &tenant, &contact, when, &mut shutdown).await
        {
            return;
        }
        let touched = match app.contacts_touched(&envelope) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "finding the contacts an event touched");
                Vec::new()
            }
        };
        for (tenant, contact) in touched {
            if !settle_contact(&app, &tenant, &contact, &mut shutdown).await {
                return;
            }
        }
    }
}

/// Ends a contact's grants if access is lost; false when shutting down.
async fn settle_contact(
    app: &App,
    tenant: &str,
    contact: &str,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let ending = || app.end_grants_if_access_lost(tenant, contact);
    ending_sign_ins(ending, "access_lost", tenant, contact, shutdown).await
}

/// Ends a contact's sign-ins made before their password changed (or a
/// second factor was removed) at the time given; false when shutting down.
async fn end_before(
    app: &App,
    tenant: &str,
    contact: &str,
    (at_ms, why): (i64, GrantEnd),
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let ending = || app.end_grants_signed_in_before(tenant, contact, (at_ms, why));
    let reason = match why {
        GrantEnd::FactorRemoved => "factor_removed",
        _ => "password_changed",
    };
    ending_sign_ins(ending, reason, tenant, contact, shutdown).await
}

/// Runs `ending` until it is done, retrying what is transient with backoff,
/// and counts what it ended under `reason`; false when shutting down.
async fn ending_sign_ins<F, Fut>(
    ending: F,
    reason: &'static str,
    tenant: &str,
    contact: &str,
    shutdown: &mut watch::Receiver<bool>,
) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<usize, AppError>>,
{
    let mut tries = 0u32;
    loop {
        match ending().await {
            Ok(0) => return true,
            Ok(ended) => {
                metrics::counter!("access_signins_ended_total", "reason" => reason)
                    .increment(ended as u64);
                tracing::info!(tenant, contact, ended, reason, "ended a contact's sign-ins");
                return true;
            }
            Err(e) if transient(&e) => {
                tries += 1;
                let wait = Duration::from_millis(100 * 2u64.pow(tries.min(6)));
                if !pause(wait, shutdown).await {
                    return false;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, tenant, contact, reason, "could not end a contact's sign-ins");
                return true;
            }
        }
    }
}

/// When the next try at a client may go, per grant.
#[derive(Clone, Copy)]
struct Backoff {
    first_failure: Instant,
    next: Instant,
    tries: u32,
}

/// Posts the logout tokens still to be delivered.
async fn deliver(app: App, mut shutdown: watch::Receiver<bool>) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client for back-channel logout");
            return;
        }
    };
    let backoff: Mutex<HashMap<String, Backoff>> = Mutex::new(HashMap::new());
    loop {
        let now = Instant::now();
        let due = {
            let waits = backoff.lock().unwrap_or_else(|e| e.into_inner());
            app.pending_logouts(
                |p| waits.get(&p.grant_id).is_none_or(|b| b.next <= now),
                256,
            )
        };
        let due = due.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading the pending logouts");
            Vec::new()
        });
        futures::stream::iter(due)
            .for_each_concurrent(IN_FLIGHT, |p| {
                let (app, http, backoff) = (&app, &http, &backoff);
                async move { deliver_one(app, http, backoff, &p).await }
            })
            .await;
        if !pause(Duration::from_millis(250), &mut shutdown).await {
            return;
        }
    }
}

async fn deliver_one(
    app: &App,
    http: &reqwest::Client,
    backoff: &Mutex<HashMap<String, Backoff>>,
    p: &PendingLogout,
) {
    // A token that cannot be signed now (no key of the client's algorithm)
    // waits like a client that cannot be reached.
    let outcome = match app.logout_token(p) {
        Ok(token) => http
            .post(&p.uri)
            .form(&[("logout_token", token)])
            .send()
            .await
            .ok()
            .map(|r| r.status()),
        Err(e) => {
            tracing::warn!(error = %e, tenant = %p.tenant, "signing a logout token");
            None
        }
    };
    let settled = match outcome {
        Some(status) if status.is_success() => Some(None),
        Some(status)
            if status.is_client_error()
                && status != reqwest::StatusCode::TOO_MANY_REQUESTS
                && status != reqwest::StatusCode::REQUEST_TIMEOUT =>
        {
            Some(Some(format!(
                "the client refused the logout token ({status})"
            )))
        }
        _ => {
            let mut waits = backoff.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let entry = waits.entry(p.grant_id.clone()).or_insert(Backoff {
                first_failure: now,
                next: now,
                tries: 0,
            });
            entry.tries += 1;
            let wait = Duration::from_secs(1 << entry.tries.min(9)).min(MAX_BACKOFF);
            entry.next = now + wait;
            if entry.first_failure.elapsed() < GIVE_UP_AFTER {
                metrics::counter!("access_backchannel_logouts_total", "outcome" => "retry")
                    .increment(1);
                tracing::warn!(tenant = %p.tenant, client = %p.client_id, uri = %p.uri, retry_in_s = wait.as_secs(), "a client could not be told of a sign-out; retrying");
                None
            } else {
                Some(Some("the client could not be reached for a day".to_owned()))
            }
        }
    };
    let Some(abandoned) = settled else { return };
    let outcome = if abandoned.is_some() {
        "abandoned"
    } else {
        "delivered"
    };
    if let Some(why) = &abandoned {
        tracing::warn!(tenant = %p.tenant, client = %p.client_id, reason = %why, "gave up telling a client of a sign-out");
    }
    match app.settle_logout(p, abandoned).await {
        Ok(position) => {
            metrics::counter!("access_backchannel_logouts_total", "outcome" => outcome)
                .increment(1);
            backoff
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&p.grant_id);
            // Until the read model has it, the logout is still listed.
            let _ = app.wait_for(position).await;
        }
        Err(e) => tracing::warn!(error = %e, "recording a back-channel logout; it is tried again"),
    }
}
