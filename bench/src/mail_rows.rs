//! The mailer against a real SMTP server: our invitations' mail against a
//! plain lettre loop sending messages of the same size to the same server.

use crate::measure::{Row, Run, Target};
use crate::seed::{self, spread};
use access_tests::TestApp;
use access_tests::smtp::SmtpServer;
use lettre::AsyncTransport;
use std::time::{Duration, Instant};

/// Mails per second from the first accepted to the last, `count` invitations.
pub async fn mailer(count: usize) -> anyhow::Result<Row> {
    let smtp = SmtpServer::start(0, "").await;
    let url = smtp.url();
    let app = TestApp::spawn_with_env(&[], &[("ACCESS_SMTP_URL", &url)]).await;
    let key = app.create_tenant("acme").await;
    for c in 0..count.div_ceil(10) {
        app.create_customer(&key, &format!("C{c:07}")).await;
    }
    let started = Instant::now();
    let (app_ref, key_ref) = (&app, key.as_str());
    spread(count, 16, |i| async move {
        seed::invite(app_ref, key_ref, i, &format!("p{i}@shop.example")).await
    })
    .await?;
    seed::wait_until(
        Duration::from_secs(600),
        Duration::from_millis(50),
        "the invitations did not all reach the SMTP server",
        || smtp.count() >= count,
    )
    .await?;
    let ours = started.elapsed();
    let size = smtp.messages().first().map_or(2000, String::len);
    let peak = app.peak_rss_kib().unwrap_or(0);

    let body = "x".repeat(size.saturating_sub(300));
    let lettre_server = SmtpServer::start(0, "").await;
    let lettre_rate = lettre_loop(lettre_server.port, count.min(200), &body).await?;
    let bare_server = SmtpServer::start(0, "").await;
    let started = Instant::now();
    raw_loop(bare_server.port, count, &body).await?;
    let bare = started.elapsed();
    Ok(Row {
        ours: format!("mailer: {count} invitations, invite to accepted by the SMTP server"),
        baseline: "a bare SMTP client loop (one connection, no Nagle stall) of the same number and size of messages, same server".into(),
        unit: "mails/s",
        ours_runs: vec![Run {
            rate: count as f64 / ours.as_secs_f64(),
            p99: Duration::ZERO,
        }],
        base_runs: vec![Run {
            rate: count as f64 / bare.as_secs_f64(),
            p99: Duration::ZERO,
        }],
        target: Target::RateAtLeast(0.8),
        note: format!(
            "SMTP server: aiosmtpd; ~{size}-byte messages; accessd peak RSS {peak} KiB; \
             lettre's own pooled transport to the same server: {lettre_rate:.1} mails/s"
        ),
    })
}

/// lettre's own transport, as most programs use it: mails per second.
async fn lettre_loop(port: u16, count: usize, body: &str) -> anyhow::Result<f64> {
    let transport =
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(port)
            .build();
    let started = Instant::now();
    for i in 0..count {
        let message = lettre::Message::builder()
            .from("Portal <no-reply@localhost>".parse()?)
            .to(format!("p{i}@shop.example").parse()?)
            .subject("acme supplies invites you to its ordering portal")
            .body(body.to_owned())?;
        transport.send(message).await?;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// The server's own pace: a minimal SMTP client on one connection with
/// `TCP_NODELAY`, one write per command and one for content and dot.
async fn raw_loop(port: u16, count: usize, body: &str) -> anyhow::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let mut conn = BufReader::new(stream);
    async fn reply(conn: &mut BufReader<tokio::net::TcpStream>) -> anyhow::Result<()> {
        loop {
            let mut line = String::new();
            anyhow::ensure!(conn.read_line(&mut line).await? > 0, "the server hung up");
            anyhow::ensure!(
                line.starts_with('2') || line.starts_with('3'),
                "refused: {line}"
            );
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    }
    // SMTP lines stop at 1,000 characters: the body as 76-character lines.
    let body: String = body
        .as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n");
    reply(&mut conn).await?;
    conn.get_mut().write_all(b"EHLO bench\r\n").await?;
    reply(&mut conn).await?;
    for i in 0..count {
        for command in [
            "MAIL FROM:<no-reply@localhost>\r\n".to_owned(),
            format!("RCPT TO:<p{i}@shop.example>\r\n"),
            "DATA\r\n".to_owned(),
            format!(
                "From: Portal <no-reply@localhost>\r\nTo: p{i}@shop.example\r\nSubject: acme supplies invites you\r\n\r\n{body}\r\n.\r\n"
            ),
        ] {
            conn.get_mut().write_all(command.as_bytes()).await?;
            reply(&mut conn).await?;
        }
    }
    Ok(())
}

/// Mails per second of `mailerd` workers on the distributed log: one worker
/// against a bare SMTP client loop of mails of the same size to the same
/// kind of server, and two workers against one; each run on a fresh NATS
/// with `count` invitations already in the log, from the workers' start
/// (their start-up counts) to the last mail accepted.
pub async fn workers(count: usize) -> anyhow::Result<Vec<Row>> {
    let (one, size, one_first) = workers_run(1, count).await?;
    let (two, _, two_first) = workers_run(2, count).await?;
    let body = "x".repeat(size.saturating_sub(300));
    let bare_server = SmtpServer::start(0, "").await;
    let started = Instant::now();
    raw_loop(bare_server.port, count, &body).await?;
    let bare = Run {
        rate: count as f64 / started.elapsed().as_secs_f64(),
        p99: Duration::ZERO,
    };
    let note = format!(
        "each worker sends 8 mails at once, each: ledger read, send, ledger write \
         (a synced write: the test NATS runs with sync_interval always), then a report \
         through accessd; a message acked once its mails are done; the first mail came \
         {} ms (one worker) and {} ms (two) after the workers were started, of the time measured",
        one_first.as_millis(),
        two_first.as_millis()
    );
    Ok(vec![
        Row {
            ours: format!("one `mailerd` worker: {count} invitations waiting on NATS, mailed"),
            baseline: "a bare SMTP client loop (one connection) of the same number and size of messages, same server".into(),
            unit: "mails/s",
            ours_runs: vec![one],
            base_runs: vec![bare],
            target: Target::RateAtLeast(0.8),
            note: format!("SMTP server: aiosmtpd; ~{size}-byte messages; {note}"),
        },
        Row {
            ours: format!("two `mailerd` workers: {count} invitations waiting on NATS, mailed"),
            baseline: "one worker, the same invitations, NATS and SMTP server".into(),
            unit: "mails/s",
            ours_runs: vec![two],
            base_runs: vec![one],
            target: Target::RateAtLeast(1.6),
            note,
        },
    ])
}

/// One run of `workers` workers: the rate, the mails' size, and when the
/// first mail came.
async fn workers_run(workers: usize, count: usize) -> anyhow::Result<(Run, usize, Duration)> {
    let nats = access_tests::nats::Nats::single().await;
    let smtp = SmtpServer::start(0, "").await;
    let app = TestApp::spawn_with(&["--nats-url", &nats.urls()]).await;
    let key = app.create_tenant("acme").await;
    for c in 0..count.div_ceil(10) {
        app.create_customer(&key, &format!("C{c:07}")).await;
    }
    let (app_ref, key_ref) = (&app, key.as_str());
    spread(count, 16, |i| async move {
        seed::invite(app_ref, key_ref, i, &format!("p{i}@shop.example")).await
    })
    .await?;
    // Started side by side and timed from before either starts, so that one
    // does not work alone while the other starts.
    let started = Instant::now();
    let (nats_urls, smtp_url) = (nats.urls(), smtp.url());
    let _running = futures::future::join_all(
        (0..workers).map(|_| access_tests::Mailerd::start(&app, &nats_urls, &smtp_url, &[])),
    )
    .await;
    seed::wait_until(
        Duration::from_secs(600),
        Duration::from_millis(5),
        "the workers did not mail any invitation",
        || smtp.count() >= 1,
    )
    .await?;
    let first = started.elapsed();
    seed::wait_until(
        Duration::from_secs(600),
        Duration::from_millis(20),
        "the workers did not mail every invitation",
        || smtp.count() >= count,
    )
    .await?;
    let size = smtp.messages().first().map_or(2000, String::len);
    Ok((
        Run {
            rate: count as f64 / started.elapsed().as_secs_f64(),
            p99: Duration::ZERO,
        },
        size,
        first,
    ))
}
