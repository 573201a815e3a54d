//! `mailerd` workers on the distributed log: they share the mail, a killed
//! worker's share is taken over, and every mail reaches a real SMTP server:
//! a 1,000-mail burst, one worker killed with SIGKILL and restarted.

use access_proto::v1 as pb;
use access_tests::deployment::MAILS_IN_FLIGHT;
use access_tests::nats::Nats;
use access_tests::smtp::SmtpServer;
use access_tests::{Mailerd, TestApp, invite_request};
use std::collections::HashMap;

fn recipient(mail: &str) -> String {
    mail.lines()
        .find_map(|l| l.strip_prefix("To: "))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_burst_loses_no_mail_and_its_share_is_taken_over() {
    // Arrange: the service on NATS, two workers, a real SMTP server.
    const MAILS: usize = 1_000;
    let nats = Nats::single().await;
    let smtp = SmtpServer::start(0, "").await;
    let app = TestApp::spawn_with(&["--nats-url", &nats.urls()]).await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    let in_flight = MAILS_IN_FLIGHT.to_string();
    let worker_args = ["--ack-wait", "2s", "--in-flight", &in_flight];
    let mut first = Mailerd::start(&app, &nats.urls(), &smtp.url(), &worker_args).await;
    let _second = Mailerd::start(&app, &nats.urls(), &smtp.url(), &worker_args).await;

    // Act: a burst of invitations; one worker dies with SIGKILL in the middle
    // and comes back on its own state a second later.
    let burst: Vec<_> = (0..8)
        .map(|caller| {
            let mut access = app.access();
            let requests: Vec<_> = (0..MAILS)
                .filter(|i| i % 8 == caller)
                .map(|i| {
                    app.req(
                        &key,
                        invite_request("C1", &format!("p{i}@shop.example"), None),
                    )
                })
                .collect();
            tokio::spawn(async move {
                let mut replies = Vec::new();
                for r in requests {
                    replies.push(
                        access
                            .invite_customer(r)
                            .await
                            .expect("invite")
                            .into_inner(),
                    );
                }
                replies
            })
        })
        .collect();
    while smtp.count() < MAILS / 4 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    first.kill9().await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    first.restart().await;
    let mut contacts = Vec::new();
    for caller in burst {
        contacts.extend(caller.await.expect("a caller"));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while smtp.count() < MAILS && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    nats.mail_settled(std::time::Duration::from_secs(60))
        .await
        .expect("every mail acknowledged");

    // Assert: everyone got their invitation; a repeat is possible only for
    // the mails the killed worker had in hand (at most `--in-flight`), each
    // accepted by the relay but not yet recorded.
    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for mail in smtp.messages() {
        *per_recipient.entry(recipient(&mail)).or_default() += 1;
    }
    assert_eq!(per_recipient.len(), MAILS, "every contact got a mail");
    let repeats: usize = per_recipient.values().map(|n| n - 1).sum();
    assert!(
        repeats <= MAILS_IN_FLIGHT,
        "{repeats} repeated mails after one crash of a worker holding at most {MAILS_IN_FLIGHT}"
    );
    // The outcome is recorded on the contact, through the service's API.
    let last = contacts.last().expect("contacts");
    let contact = app
        .access()
        .get_contact(app.req(
            &key,
            pb::GetContactRequest {
                contact_id: last.contact_id.clone(),
                min_position: 0,
            },
        ))
        .await
        .expect("the contact")
        .into_inner();
    assert_eq!(contact.last_email_state, "sent", "{contact:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_down_longer_than_the_retries_loses_nothing_in_the_distributed_mode() {
    // Arrange: a worker that gives up on a mail after two quick attempts,
    // and no SMTP server yet.
    let nats = Nats::single().await;
    let port = SmtpServer::reserve_port();
    let url = format!("smtp://127.0.0.1:{port}");
    let app = TestApp::spawn_with(&["--nats-url", &nats.urls()]).await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    let args = [
        "--ack-wait",
        "2s",
        "--mail-max-attempts",
        "2",
        "--mail-retry-base",
        "50ms",
    ];
    let _worker = Mailerd::start(&app, &nats.urls(), &url, &args).await;

    // Act: an invitation while the relay is down; the relay comes back later.
    app.invite(&key, "C1", "late@shop.example").await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let smtp = SmtpServer::start_on(port).await;

    // Assert: it arrives, once.
    smtp.wait_for(1).await;
    nats.mail_settled(std::time::Duration::from_secs(30))
        .await
        .expect("the mail acknowledged");
    assert_eq!(smtp.count(), 1);
}
