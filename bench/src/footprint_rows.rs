//! What a seeded service costs to keep: resident memory, disk, and the time
//! it takes to start on its data.

use crate::grpc_rows::Seeded;
use access_proto::v1 as pb;
use std::time::Instant;

/// Bytes under `dir`.
pub fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Resident memory, disk and start-up of a seeded service.
pub async fn footprint(
    s: Seeded,
    keep_at: Option<&std::path::Path>,
) -> anyhow::Result<(
    Vec<String>,
    std::path::PathBuf,
    Vec<(usize, String)>,
    Option<tempfile::TempDir>,
)> {
    // The invitation rows leave the mailer behind (minutes at a million
    // contacts): wait for it, so the stop below is not measured with it
    // still sending, and the settle does not time out on it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3600);
    loop {
        let status = s.app.log_status().await;
        if !status.sends_mail || status.mailer_position >= status.head_position {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the mailer did not catch up after the rows within an hour"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let head = s.app.settled_head().await;
    let rss = s.app.peak_rss_kib().unwrap_or(0);
    let disk = dir_size(&s.app.dir.join("log"));
    let file = std::fs::metadata(s.app.dir.join("log").join("events")).map_or(0, |m| m.len());
    let contacts = s.contacts.len();
    let mut app = s.app;
    let stopping = Instant::now();
    app.terminate_within(std::time::Duration::from_secs(600))
        .await?;
    let stop = stopping.elapsed();
    if stop > std::time::Duration::from_secs(1) {
        // What the stop waited for, in the service's own words.
        eprintln!(
            "bench: the stop took {:.1} s; the service's last lines:\n{}",
            stop.as_secs_f64(),
            app.log_tail(25)
        );
    }
    let started = Instant::now();
    let app = app
        .start_again_within(std::time::Duration::from_secs(600))
        .await?;
    let (t, id) = &s.contacts[0];
    app.access()
        .get_contact(app.req(
            &s.keys[*t],
            pb::GetContactRequest {
                contact_id: id.clone(),
                min_position: head,
            },
        ))
        .await?;
    let restart = started.elapsed();
    if restart > std::time::Duration::from_secs(2) {
        eprintln!(
            "bench: the start took {:.1} s; the service's last lines:\n{}",
            restart.as_secs_f64(),
            app.log_tail(25)
        );
    }
    let mut lines = vec![
        format!(
            "- Seeded {contacts} contacts over {} tenants ({head} events) through gRPC in {:.1} s ({:.0} events/s).",
            s.keys.len(),
            s.took.as_secs_f64(),
            head as f64 / s.took.as_secs_f64()
        ),
        format!(
            "- How seeding scales: invitations per second over each tenth of the contacts, first to last: {}.",
            s.scaling
        ),
        format!(
            "- `accessd` peak resident memory after seeding: {rss} KiB, {:.2} KiB per contact (target ≤ 1 KiB per contact for the read models; the figure includes the whole process).",
            rss as f64 / contacts.max(1) as f64
        ),
        format!(
            "- Log on disk: {} bytes, {:.0} bytes per event ({:.0} in the log file itself, the rest its index).",
            disk,
            disk as f64 / head.max(1) as f64,
            file as f64 / head.max(1) as f64
        ),
        format!(
            "- Start on the existing data directory (process start to the first query answered at the head): {:.2} s (target: serving within 2 s, read models not rebuilt); the clean stop before it (SIGTERM to exit) took {:.2} s.",
            restart.as_secs_f64(),
            stop.as_secs_f64()
        ),
    ];
    let rss_after = app.peak_rss_kib().unwrap_or(0);
    lines.push(format!(
        "- Peak resident memory after the restart, before any load: {rss_after} KiB."
    ));
    let mut app = app;
    let stopping = Instant::now();
    app.terminate_within(std::time::Duration::from_secs(600))
        .await?;
    lines.push(format!(
        "- Stop right after that start (its background check of the whole log under way): {:.2} s.",
        stopping.elapsed().as_secs_f64()
    ));
    // Keep the data directory for the in-process rows.
    let (dest, keep) = match keep_at {
        Some(at) => (at.to_owned(), None),
        None => {
            let keep = tempfile::tempdir_in(".")?;
            (keep.path().join("data"), Some(keep))
        }
    };
    copy_dir(&app.dir, &dest)?;
    Ok((lines, dest, s.contacts, keep))
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}
