//! Resident memory of `accessd` around a burst of concurrent logins: idle,
//! at the burst's peak, and a minute later, against a budget.
//!
//! Password hashing is the one path whose memory a caller's concurrency
//! could multiply (argon2id takes 19 MiB a hash at the default cost); the
//! service hashes on one thread per core, so a burst should cost a few
//! hashes' worth at its peak and give it back afterwards.

use crate::seed::{self, spread};
use access_proto::v1 as pb;
use access_tests::{TestApp, new_id, status_kib, token_of};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Concurrent logins in the burst.
const BURST: usize = 500;
/// What the peak may add to the idle figure (which already holds each
/// hashing thread's 19 MiB, since the contacts' passwords were set): the
/// requests in flight, with room for the allocator's slack.
const PEAK_BUDGET_MIB: u64 = 32;
/// What may still be held a minute after the burst, above idle.
const AFTER_BUDGET_MIB: u64 = 16;
/// How long after the burst the last figure is read.
const SETTLE: Duration = Duration::from_secs(60);

const PASSWORD: &str = "correct horse 7";

/// One line for the notes: idle, peak and settled resident memory around
/// `BURST` concurrent logins of distinct contacts at the default cost.
pub async fn login_burst() -> anyhow::Result<String> {
    // The production cost, spelled out: the test harness hashes cheaply
    // unless told.
    let app =
        TestApp::spawn_with(&["--argon2-memory-kib", "19456", "--argon2-iterations", "2"]).await;
    let key = app.create_tenant("acme").await;
    let emails = contacts(&app, &key).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = app.rss_kib().unwrap_or(0);

    let sampling = Arc::new(AtomicBool::new(true));
    let peak = Arc::new(AtomicU64::new(idle));
    let sampler = {
        let (sampling, peak) = (sampling.clone(), peak.clone());
        let pid = app.pid().unwrap_or(0);
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                if let Some(now) = status_kib(pid, "VmRSS:") {
                    peak.fetch_max(now, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    // Several connections, as many portals' callers would arrive on.
    let mut channels = Vec::new();
    for _ in 0..8 {
        channels.push(
            tonic::transport::Channel::from_shared(format!("http://{}", app.grpc_addr))?
                .connect()
                .await?,
        );
    }
    let started = Instant::now();
    let logins = emails.iter().enumerate().map(|(i, email)| {
        let mut client = pb::sessions_client::SessionsClient::new(channels[i % 8].clone());
        let mut req = tonic::Request::new(pb::LoginRequest {
            request_id: new_id(),
            login: email.clone(),
            password: PASSWORD.into(),
            client_address: String::new(),
        });
        let bearer = format!("Bearer {key}");
        async move {
            req.metadata_mut().insert("authorization", bearer.parse()?);
            client.login(req).await?;
            Ok::<_, anyhow::Error>(())
        }
    });
    futures::future::try_join_all(logins).await?;
    let took = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    sampler.await?;
    let peak = peak.load(Ordering::Relaxed);
    drop(channels);
    tokio::time::sleep(SETTLE).await;
    let after = app.rss_kib().unwrap_or(0);

    let mib = |kib: u64| kib as f64 / 1024.0;
    let met = peak.saturating_sub(idle) <= PEAK_BUDGET_MIB * 1024
        && after.saturating_sub(idle) <= AFTER_BUDGET_MIB * 1024;
    Ok(format!(
        "- `accessd` resident memory around {BURST} concurrent `Login`s of distinct contacts \
         (default argon2id cost, 8 connections, all answered in {:.1} s): idle {:.0} MiB, \
         peak {:.0} MiB, {} s later {:.0} MiB. Budget: peak ≤ idle + {PEAK_BUDGET_MIB} MiB, \
         a minute later ≤ idle + {AFTER_BUDGET_MIB} MiB: {}.",
        took.as_secs_f64(),
        mib(idle),
        mib(peak),
        SETTLE.as_secs(),
        mib(after),
        if met { "met" } else { "**missed**" },
    ))
}

/// `BURST` contacts with their passwords set; their logins.
async fn contacts(app: &TestApp, key: &str) -> anyhow::Result<Vec<String>> {
    for c in 0..BURST.div_ceil(10) {
        seed::create_customer(app, key, c).await?;
    }
    let emails: Vec<String> = (0..BURST).map(|i| format!("p{i}@shop.example")).collect();
    let emails_ref = &emails;
    spread(BURST, 16, |i| async move {
        seed::invite(app, key, i, &emails_ref[i]).await
    })
    .await?;
    spread(BURST, 8, |i| async move {
        let link = app.wait_for_link(&emails_ref[i], "/invite/", 1).await;
        app.sessions()
            .accept_invitation(pb::AcceptInvitationRequest {
                request_id: new_id(),
                token: token_of(&link),
                password: PASSWORD.into(),
            })
            .await?;
        Ok(())
    })
    .await?;
    Ok(emails)
}
