//! Mail over real SMTP (aiosmtpd in its own process): invitations arrive as
//! multipart mail with a working link; temporary refusals are retried until
//! the mail is accepted once; permanent refusals are not retried and do not
//! hold up the mails after them.

use access_proto::v1 as pb;
use access_tests::smtp::SmtpServer;
use access_tests::{TestApp, link_in, new_id, token_of};

async fn app_mailing_to(smtp: &SmtpServer) -> TestApp {
    let url = smtp.url();
    TestApp::spawn_with_env(
        &["--mail-retry-base", "50ms", "--mail-max-attempts", "5"],
        &[("ACCESS_SMTP_URL", &url)],
    )
    .await
}

/// `accessd` mailing to `port` on this machine (where nothing may listen
/// yet), retrying from `base` up to `cap` between tries, `attempts` times.
async fn app_mailing_to_port(port: u16, base: &str, cap: &str, attempts: &str) -> TestApp {
    let url = format!("smtp://127.0.0.1:{port}");
    TestApp::spawn_with_env(
        &[
            "--mail-retry-base",
            base,
            "--mail-retry-cap",
            cap,
            "--mail-max-attempts",
            attempts,
        ],
        &[("ACCESS_SMTP_URL", &url)],
    )
    .await
}

#[tokio::test]
async fn an_invitation_arrives_over_smtp_as_multipart_mail_with_a_working_link() {
    // Arrange
    let smtp = SmtpServer::start(0, "").await;
    let app = app_mailing_to(&smtp).await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;

    // Act
    app.invite(&key, "C1", "bob@bob.example").await;

    // Assert
    let mail = smtp.wait_for(1).await.remove(0).replace("=\r\n", "");
    assert!(mail.contains("multipart/alternative"), "{mail}");
    assert!(mail.contains("To: bob@bob.example"));
    assert!(mail.contains("Subject: acme supplies invites you to its ordering portal"));
    let link = link_in(&mail).expect("a link in the mail");
    assert!(
        app.outbox_count() == 0,
        "with SMTP configured nothing goes to the outbox"
    );
    app.sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(&link),
            password: "sunlit7meadow".into(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn temporary_refusals_are_retried_until_the_mail_is_accepted_once() {
    let smtp = SmtpServer::start(3, "").await;
    let app = app_mailing_to(&smtp).await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    app.invite(&key, "C1", "bob@bob.example").await;
    smtp.wait_for(1).await;
    app.settled_head().await;
    assert_eq!(smtp.messages().len(), 1, "accepted exactly once");
    assert_eq!(
        smtp.attempts().len(),
        4,
        "three refusals, then the accepted attempt"
    );
}

#[tokio::test]
async fn a_permanent_refusal_is_not_retried_and_holds_nothing_up() {
    let smtp = SmtpServer::start(0, "bounce").await;
    let app = app_mailing_to(&smtp).await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    let bounced = app
        .invite(&key, "C1", "bounce@bob.example")
        .await
        .contact_id;
    let delivered = app.invite(&key, "C1", "ok@bob.example").await.contact_id;
    let accepted = smtp.wait_for(1).await;
    assert!(
        accepted[0].contains("To: ok@bob.example"),
        "{}",
        accepted[0]
    );
    let bounces = smtp
        .attempts()
        .iter()
        .filter(|a| a.contains("bounce"))
        .count();
    assert_eq!(bounces, 1, "a 5xx is not retried");

    // The outcome is recorded on each contact, for staff to see and resend.
    let state = |contact: String| {
        let request = app.req(
            &key,
            pb::GetContactRequest {
                contact_id: contact,
                min_position: 0,
            },
        );
        let mut access = app.access();
        async move { access.get_contact(request).await.unwrap().into_inner() }
    };
    let mut failed = state(bounced.clone()).await;
    for _ in 0..200 {
        if !failed.last_email_state.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        failed = state(bounced.clone()).await;
    }
    assert_eq!(
        (failed.last_email.as_str(), failed.last_email_state.as_str()),
        ("invitation", "failed")
    );
    assert!(
        failed.last_email_error.contains("550") || failed.last_email_error.contains("permanent"),
        "{}",
        failed.last_email_error
    );
    let mut sent = state(delivered.clone()).await;
    for _ in 0..200 {
        if !sent.last_email_state.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        sent = state(delivered.clone()).await;
    }
    assert_eq!(
        (sent.last_email.as_str(), sent.last_email_state.as_str()),
        ("invitation", "sent")
    );
}

#[tokio::test]
async fn a_tenants_own_template_is_checked_when_set_previewed_and_used() {
    use access_proto::v1::tenant_admin_client::TenantAdminClient;
    use tonic_types::StatusExt;
    // Arrange
    let smtp = SmtpServer::start(0, "").await;
    let app = app_mailing_to(&smtp).await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    let mut admin = TenantAdminClient::new(app.channel.clone());
    let template = |subject: &str, html: &str| pb::SetEmailTemplateRequest {
        request_id: new_id(),
        kind: "invitation".into(),
        subject: subject.into(),
        text: "Hi from {{ tenant_name }}: {{ link }}".into(),
        html: html.into(),
    };

    // A template that does not render is refused, naming its part.
    let err = admin
        .set_email_template(app.req(&key, template("Hello", "<p>{{ custmer_name }}</p>")))
        .await
        .unwrap_err();
    let violations = err.get_details_bad_request().unwrap().field_violations;
    assert_eq!(violations[0].field, "html");

    // Act
    let good = template(
        "Order online with {{ tenant_name }}",
        "<p>For {{ customer_name }}: <a href=\"{{ link }}\">start</a></p>",
    );
    admin.set_email_template(app.req(&key, good)).await.unwrap();
    let preview = admin
        .preview_email(app.req(
            &key,
            pb::PreviewEmailRequest {
                kind: "invitation".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    app.invite(&key, "C1", "bob@bob.example").await;

    // Assert: the preview and the real mail use it; values are escaped in HTML.
    assert!(preview.custom);
    assert_eq!(preview.subject, "Order online with Acme Supplies");
    assert!(
        preview.html.contains("Bob&#x27;s Hardware") || preview.html.contains("Bob&#39;s Hardware"),
        "{}",
        preview.html
    );
    let mail = smtp.wait_for(1).await.remove(0).replace("=\r\n", "");
    assert!(
        mail.contains("Subject: Order online with acme supplies"),
        "{mail}"
    );
    assert!(mail.contains("multipart/alternative"));
    let link = link_in(&mail).expect("a link");
    app.sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(&link),
            password: "sunlit7meadow".into(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn mail_is_paced_per_tenant_when_a_rate_is_set() {
    let smtp = SmtpServer::start(0, "").await;
    let url = smtp.url();
    let app = TestApp::spawn_with_env(&["--mail-rate", "10"], &[("ACCESS_SMTP_URL", &url)]).await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    let started = std::time::Instant::now();
    for i in 0..6 {
        app.invite(&key, "C1", &format!("c{i}@bob.example")).await;
    }
    smtp.wait_for(6).await;
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(450),
        "six mails at 10/s took only {took:?}"
    );
}

#[tokio::test]
async fn mail_waits_while_the_smtp_server_is_down_and_goes_out_when_it_is_back() {
    // Arrange: accessd mails to a port where nothing listens yet.
    let port = SmtpServer::reserve_port();
    let app = app_mailing_to_port(port, "100ms", "1s", "30").await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    app.invite(&key, "C1", "first@bob.example").await;
    app.invite(&key, "C1", "second@bob.example").await;

    // Act: the server comes up two seconds later.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let smtp = SmtpServer::start_on(port).await;

    // Assert: nothing lost, nothing twice.
    let mails = smtp.wait_for(2).await;
    app.settled_head().await;
    assert_eq!(smtp.messages().len(), 2);
    assert!(mails.iter().any(|m| m.contains("To: first@bob.example")));
    assert!(mails.iter().any(|m| m.contains("To: second@bob.example")));
}

/// Mails the embedded mailer may send before recording them (the mailer's
/// `MAX_UNRECORDED`): what a crash may repeat.
const MAX_UNRECORDED: usize = 8;

/// The `Message-ID` header of a mail as the server received it.
fn message_id(mail: &str) -> String {
    mail.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("message-id")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_crash_mid_burst_repeats_at_most_the_unrecorded_mails_each_with_its_message_id() {
    // Arrange: a burst of invitations, mail going out over real SMTP.
    let smtp = SmtpServer::start(0, "").await;
    let mut app = app_mailing_to(&smtp).await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    let invited = 40;
    let calls = (0..invited).map(|i| {
        let (app, key) = (&app, &key);
        async move { app.invite(key, "C1", &format!("p{i}@crash.example")).await }
    });
    futures::future::join_all(calls).await;

    // Act: killed while the mail is on its way, then started again.
    smtp.wait_for(5).await;
    app.kill9().await;
    let before = smtp.messages().len();
    let app = app.start_again().await;
    smtp.wait_for(invited).await;
    app.settled_head().await;

    // Assert: every invitation went out; repeats are few and recognisable.
    let mails = smtp.messages();
    let mut ids: Vec<String> = mails.iter().map(|m| message_id(m)).collect();
    assert!(
        ids.iter().all(|id| !id.is_empty()),
        "every mail has a Message-ID"
    );
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), invited, "each invitation once at least");
    let repeated = mails.len() - ids.len();
    eprintln!("{before} mails before the kill, {repeated} repeated after it");
    assert!(before < invited, "the kill came mid-burst");
    assert!(
        repeated <= MAX_UNRECORDED,
        "{repeated} mails repeated after the crash"
    );
}

/// The subject of a mail as the server received it.
fn subject(mail: &str) -> String {
    mail.lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn mails_go_out_side_by_side_yet_an_invitation_never_overtakes_its_resend() {
    // Arrange: the mail server is down while contacts are invited, each
    // invitation resent at once, so a batch of mails waits with a
    // contact's two mails side by side in it, each retried on its own
    // timer.
    let port = SmtpServer::reserve_port();
    let app = app_mailing_to_port(port, "50ms", "300ms", "100").await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    let contacts = 16;
    for i in 0..contacts {
        let invited = app.invite(&key, "C1", &format!("p{i}@order.example")).await;
        app.access()
            .resend_invitation(app.req(
                &key,
                pb::ResendInvitationRequest {
                    request_id: new_id(),
                    contact_id: invited.contact_id,
                },
            ))
            .await
            .expect("resent");
    }

    // Act: the server comes up.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let smtp = SmtpServer::start_on(port).await;
    let mails = smtp.wait_for(2 * contacts).await;
    app.settled_head().await;

    // Assert: each address got the invitation first, then the new link.
    assert_eq!(smtp.messages().len(), 2 * contacts, "each mail once");
    for i in 0..contacts {
        let to = format!("To: p{i}@order.example");
        let subjects: Vec<String> = mails
            .iter()
            .filter(|m| m.lines().any(|l| l == to))
            .map(|m| subject(m))
            .collect();
        assert_eq!(subjects.len(), 2, "{to}: {subjects:?}");
        assert!(subjects[0].contains("invites you"), "{to}: {subjects:?}");
        assert!(
            subjects[1].starts_with("Your new link"),
            "{to}: {subjects:?}"
        );
    }
}
