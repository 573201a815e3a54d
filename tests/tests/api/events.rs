//! The public event feed over gRPC: what a subscriber key and the operator
//! see, resuming without gaps or repeats, filters, and who may subscribe.

use access_proto::v1 as pb;
use access_proto::v1::events as pe;
use access_proto::v1::events_client::EventsClient;
use access_tests::{TestApp, new_id};
use futures::StreamExt;
use std::time::Duration;
use tonic::Code;

async fn open(
    app: &TestApp,
    key: &str,
    request: pb::SubscribeRequest,
) -> Result<tonic::Streaming<pe::Event>, tonic::Status> {
    EventsClient::new(app.channel.clone())
        .subscribe(app.req(key, request))
        .await
        .map(tonic::Response::into_inner)
}

/// The next `n` events of `stream`, within a deadline.
async fn take(stream: &mut tonic::Streaming<pe::Event>, n: usize) -> Vec<pe::Event> {
    let mut out = Vec::new();
    while out.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} events came: {out:?}", out.len()))
            .expect("the stream goes on")
            .expect("an event");
        out.push(next);
    }
    out
}

fn types(events: &[pe::Event]) -> Vec<&str> {
    events.iter().map(|e| e.r#type.as_str()).collect()
}

/// Every public type but the mails' outcomes, which come whenever the
/// mailer gets to them.
fn without_mail() -> Vec<String> {
    [
        "tenant.created",
        "api_key.issued",
        "customer.created",
        "contact.invited",
        "contact.disabled",
        "contact.restored",
    ]
    .map(String::from)
    .to_vec()
}

/// A replica's flags on the NATS at `urls`, with keys in `keys`.
fn on_nats(urls: &str, keys: &std::path::Path) -> Vec<String> {
    vec![
        "--nats-url".into(),
        urls.into(),
        "--key-dir".into(),
        keys.display().to_string(),
    ]
}

/// Runs the Python subscriber (stubs generated from the proto) with
/// `args`; the events it printed, one JSON object each.
async fn python_subscriber(args: &[&str]) -> Vec<serde_json::Value> {
    let proto = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events/subscriber.py");
    let output = tokio::process::Command::new("python3")
        .arg(&script)
        .args(["--proto-dir", &proto.display().to_string()])
        .args(args)
        .output()
        .await
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the Python subscriber failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn disable(contact_id: &str) -> pb::ContactCommand {
    pb::ContactCommand {
        request_id: new_id(),
        contact_id: contact_id.into(),
        reason: "unpaid invoices".into(),
    }
}

#[tokio::test]
async fn a_subscriber_follows_a_tenants_changes_by_id_and_resumes_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    let other = app.create_tenant("other").await;
    let subscriber = app
        .create_key(&admin, pb::Role::Subscriber, "erp", "")
        .await
        .api_key;
    app.create_customer(&admin, "C001").await;
    app.create_customer(&other, "X001").await;
    let bob = app.invite(&admin, "C001", "bob@acme.example").await;
    app.invite(&other, "X001", "eve@other.example").await;

    // Every type but the mail's, whose outcomes come whenever the mailer
    // gets to them.
    let changes: Vec<String> = [
        "tenant.created",
        "api_key.issued",
        "customer.created",
        "contact.invited",
        "contact.disabled",
    ]
    .map(String::from)
    .to_vec();
    let mut all = open(
        &app,
        &subscriber,
        pb::SubscribeRequest {
            types: changes.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("subscribed");
    let first = take(&mut all, 5).await;
    assert_eq!(
        types(&first),
        [
            "tenant.created",
            "api_key.issued",
            "api_key.issued",
            "customer.created",
            "contact.invited"
        ],
        "acme's changes in the log's order, none of other's"
    );
    assert!(first.iter().all(|e| e.tenant == "acme" && e.version == 1));
    assert!(first.windows(2).all(|w| w[0].position < w[1].position));
    let Some(pe::event::Change::ContactInvited(invited)) = first[4].change.clone() else {
        panic!("{:?}", first[4]);
    };
    assert_eq!(invited.contact_id, bob.contact_id);
    assert_eq!(invited.customer_id, "C001");
    assert_eq!(
        invited.email,
        Some(pe::Personal::default()),
        "a subscriber key reads no personal data"
    );
    assert!(first[4].personal_withheld);

    // Live: a change made now arrives on the open stream.
    app.access()
        .disable_access(app.req(&admin, disable(&bob.contact_id)))
        .await
        .expect("disabled");
    let live = take(&mut all, 1).await;
    assert_eq!(types(&live), ["contact.disabled"]);
    let Some(pe::event::Change::ContactDisabled(disabled)) = live[0].change.clone() else {
        panic!()
    };
    assert_eq!(
        (disabled.customer_id.as_str(), disabled.reason.as_str()),
        ("C001", "unpaid invoices")
    );

    // Resuming after the invitation gives exactly what came after it.
    let mut resumed = open(
        &app,
        &subscriber,
        pb::SubscribeRequest {
            after_position: first[4].position,
            after_part: first[4].part,
            types: changes,
            ..Default::default()
        },
    )
    .await
    .expect("resumed");
    let again = take(&mut resumed, 1).await;
    assert_eq!(again[0].id, live[0].id, "the same change, with the same id");
    assert_eq!(again[0].position, live[0].position);
    let more = tokio::time::timeout(Duration::from_millis(500), resumed.message()).await;
    assert!(more.is_err(), "nothing after it: {more:?}");
}

#[tokio::test]
async fn filters_by_type_customer_and_contact_and_the_operator_sees_personal_data() {
    let app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    app.create_customer(&admin, "C001").await;
    app.create_customer(&admin, "C002").await;
    let bob = app.invite(&admin, "C001", "bob@acme.example").await;
    let carol = app.invite(&admin, "C002", "carol@acme.example").await;
    for contact in [&bob.contact_id, &carol.contact_id] {
        app.access()
            .disable_access(app.req(&admin, disable(contact)))
            .await
            .expect("disabled");
    }
    // The mails' outcomes are all in before anyone subscribes.
    app.settled_head().await;
    let operator = app.operator_key.clone();
    // Every type but the mail's, unless a test narrows it further.
    let request = |f: fn(&mut pb::SubscribeRequest)| {
        let mut r = pb::SubscribeRequest {
            tenant: "acme".into(),
            types: without_mail(),
            ..Default::default()
        };
        f(&mut r);
        r
    };
    let mut invited = open(
        &app,
        &operator,
        request(|r| r.types = vec!["contact.invited".into()]),
    )
    .await
    .expect("subscribed");
    let events = take(&mut invited, 2).await;
    assert_eq!(types(&events), ["contact.invited"; 2]);
    let emails: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.change {
            Some(pe::event::Change::ContactInvited(c)) => c.email.clone().map(|p| p.value),
            _ => None,
        })
        .collect();
    assert_eq!(emails, ["bob@acme.example", "carol@acme.example"]);
    assert!(!events[0].personal_withheld);

    let mut of_c002 = open(&app, &operator, request(|r| r.customer_id = "C002".into()))
        .await
        .expect("subscribed");
    assert_eq!(
        types(&take(&mut of_c002, 3).await),
        ["customer.created", "contact.invited", "contact.disabled"]
    );
    let mut filter = request(|_| {});
    filter.contact_id = bob.contact_id.clone();
    let mut of_bob = open(&app, &operator, filter).await.expect("subscribed");
    let bobs = take(&mut of_bob, 2).await;
    assert_eq!(types(&bobs), ["contact.invited", "contact.disabled"]);

    // From now on: nothing of the past, the next change only.
    let mut now = open(&app, &operator, request(|r| r.from_now = true))
        .await
        .expect("subscribed");
    app.access()
        .restore_access(app.req(&admin, disable(&carol.contact_id)))
        .await
        .expect("restored");
    assert_eq!(types(&take(&mut now, 1).await), ["contact.restored"]);
}

#[tokio::test]
async fn only_subscriber_keys_and_the_operator_subscribe_and_bad_requests_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    let subscriber = app
        .create_key(&admin, pb::Role::Subscriber, "crm", "")
        .await
        .api_key;
    let refused = open(&app, &admin, pb::SubscribeRequest::default())
        .await
        .expect_err("an admin key does not subscribe");
    assert_eq!(refused.code(), Code::PermissionDenied);
    // A subscriber key does nothing else.
    let err = app
        .access()
        .get_customer(app.req(
            &subscriber,
            pb::GetCustomerRequest {
                customer_id: "C001".into(),
                min_position: 0,
            },
        ))
        .await
        .expect_err("a subscriber key reads no customer");
    assert_eq!(err.code(), Code::PermissionDenied);

    let bad = [
        pb::SubscribeRequest {
            types: vec!["contact.invented".into()],
            ..Default::default()
        },
        pb::SubscribeRequest {
            tenant: "other".into(),
            ..Default::default()
        },
        pb::SubscribeRequest {
            customer_id: "not a customer id".into(),
            ..Default::default()
        },
    ];
    for request in bad {
        let err = open(&app, &subscriber, request.clone())
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{request:?}: {err:?}");
    }
    let operator = app.operator_key.clone();
    let err = open(&app, &operator, pb::SubscribeRequest::default())
        .await
        .expect_err("the operator names a tenant");
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn links_resent_invitations_and_an_erasure_name_their_customer_and_contact() {
    let app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    app.create_customer(&admin, "C001").await;
    let bob = app.invite(&admin, "C001", "bob@acme.example").await;
    let link = app
        .access()
        .create_portal_link(app.req(
            &admin,
            pb::CreatePortalLinkRequest {
                request_id: new_id(),
                customer_id: "C001".into(),
                kinds: vec![pb::DocumentKind::SalesInvoice as i32],
                expires_at: String::new(),
            },
        ))
        .await
        .expect("a link")
        .into_inner();
    app.access()
        .delete_portal_link(app.req(
            &admin,
            pb::DeletePortalLinkRequest {
                request_id: new_id(),
                link_id: link.link_id.clone(),
            },
        ))
        .await
        .expect("deleted");
    app.access()
        .resend_invitation(app.req(
            &admin,
            pb::ResendInvitationRequest {
                request_id: new_id(),
                contact_id: bob.contact_id.clone(),
            },
        ))
        .await
        .expect("resent");
    app.operator()
        .forget_identity(app.req(
            &app.operator_key,
            pb::ForgetIdentityRequest {
                request_id: new_id(),
                email: "bob@acme.example".into(),
                identity_id: String::new(),
                reason: "asked to be forgotten".into(),
            },
        ))
        .await
        .expect("forgotten");

    let operator = app.operator_key.clone();
    let mut stream = open(
        &app,
        &operator,
        pb::SubscribeRequest {
            tenant: "acme".into(),
            types: vec![
                "contact.invited".into(),
                "portal_link.deleted".into(),
                "invitation.resent".into(),
                "contact.forgotten".into(),
            ],
            ..Default::default()
        },
    )
    .await
    .expect("subscribed");
    let events = take(&mut stream, 4).await;
    assert_eq!(
        types(&events),
        [
            "contact.invited",
            "portal_link.deleted",
            "invitation.resent",
            "contact.forgotten"
        ]
    );
    use pe::event::Change;
    let Some(Change::PortalLinkDeleted(deleted)) = events[1].change.clone() else {
        panic!()
    };
    assert_eq!(
        (deleted.link_id, deleted.customer_id.as_str()),
        (link.link_id, "C001")
    );
    let Some(Change::InvitationResent(resent)) = events[2].change.clone() else {
        panic!()
    };
    assert_eq!(
        (resent.contact_id.as_str(), resent.customer_id.as_str()),
        (bob.contact_id.as_str(), "C001")
    );
    let Some(Change::ContactForgotten(forgotten)) = events[3].change.clone() else {
        panic!()
    };
    assert_eq!(forgotten.contact_id, bob.contact_id);
    // The erasure reaches back: the invitation's address reads erased now,
    // even for the operator.
    // A subscriber key, which reads no personal data, is told so too.
    let subscriber = app
        .create_key(&admin, pb::Role::Subscriber, "erp", "")
        .await
        .api_key;
    let mut theirs = open(
        &app,
        &subscriber,
        pb::SubscribeRequest {
            types: vec!["contact.invited".into()],
            ..Default::default()
        },
    )
    .await
    .expect("subscribed");
    let Some(Change::ContactInvited(seen)) = take(&mut theirs, 1).await[0].change.clone() else {
        panic!()
    };
    assert_eq!(seen.email.map(|p| p.erased), Some(true));
    let Some(Change::ContactInvited(invited)) = events[0].change.clone() else {
        panic!()
    };
    assert_eq!(
        invited.email,
        Some(pe::Personal {
            value: String::new(),
            erased: true
        })
    );
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_holds_up_no_one_and_later_gets_everything_in_order() {
    let app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    let subscriber = app
        .create_key(&admin, pb::Role::Subscriber, "slow", "")
        .await
        .api_key;
    let mut slow = open(&app, &subscriber, pb::SubscribeRequest::default())
        .await
        .expect("subscribed");
    take(&mut slow, 1).await;
    // Far more than the server keeps ahead of a reader, and than the
    // connection's own window holds.
    const CUSTOMERS: usize = 1_500;
    let calls = (0..CUSTOMERS).map(|i| {
        let (app, admin) = (&app, &admin);
        async move { app.create_customer(admin, &format!("C{i:05}")).await }
    });
    futures::stream::iter(calls)
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    // Meanwhile another subscriber reads it all, and commands go on.
    let mut fast = open(
        &app,
        &subscriber,
        pb::SubscribeRequest {
            types: vec!["customer.created".into()],
            ..Default::default()
        },
    )
    .await
    .expect("subscribed");
    assert_eq!(take(&mut fast, CUSTOMERS).await.len(), CUSTOMERS);
    // The slow one, reading at last, misses nothing and repeats nothing.
    let rest = take(&mut slow, 2 + CUSTOMERS).await;
    assert!(
        rest.windows(2)
            .all(|w| (w[0].position, w[0].part) < (w[1].position, w[1].part))
    );
    let created = rest
        .iter()
        .filter(|e| e.r#type == "customer.created")
        .count();
    assert_eq!(created, CUSTOMERS);
}

#[tokio::test]
async fn a_python_subscriber_with_stubs_generated_from_the_proto_reads_the_same_stream() {
    let app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    let subscriber = app
        .create_key(&admin, pb::Role::Subscriber, "python", "")
        .await
        .api_key;
    app.create_customer(&admin, "C001").await;
    let bob = app.invite(&admin, "C001", "bob@acme.example").await;
    let mut ours = open(&app, &subscriber, pb::SubscribeRequest::default())
        .await
        .expect("subscribed");
    let expected = take(&mut ours, 5).await;
    let addr = app.grpc_addr.trim_start_matches("http://").to_owned();
    // Resumed after the first event, as a reconnecting client would.
    let (position, part) = (
        expected[0].position.to_string(),
        expected[0].part.to_string(),
    );
    let lines = python_subscriber(&[
        "--addr",
        &addr,
        "--key",
        &subscriber,
        "--count",
        "4",
        "--after-position",
        &position,
        "--after-part",
        &part,
    ])
    .await;
    let seen: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["type"].as_str().unwrap_or(""),
                l["id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let want: Vec<(&str, &str)> = expected[1..]
        .iter()
        .map(|e| (e.r#type.as_str(), e.id.as_str()))
        .collect();
    assert_eq!(seen, want);
    assert_eq!(
        lines[3]["contactInvited"]["contactId"].as_str(),
        Some(bob.contact_id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_nats_each_public_event_is_published_once_as_protobuf_whichever_replica_wrote_it() {
    use access_tests::nats::Nats;
    use prost::Message as _;
    let nats = Nats::single().await;
    let keys = tempfile::tempdir().expect("a directory");
    let urls = nats.urls();
    let args = on_nats(&urls, keys.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = TestApp::spawn_with(&args).await;
    let b = TestApp::spawn_with(&args).await;
    // A plain NATS subscriber, as `nats sub 'access.public.acme.>'` is.
    let client = async_nats::connect(&urls).await.expect("connects");
    let mut heard = client
        .subscribe("access.public.acme.>")
        .await
        .expect("subscribed");
    let admin = a.create_tenant("acme").await;
    a.create_customer(&admin, "C001").await;
    b.create_customer(&admin, "C002").await;
    let bob = a.invite(&admin, "C001", "bob@acme.example").await;
    let carol = b.invite(&admin, "C002", "carol@acme.example").await;
    for (app, contact) in [(&b, &bob.contact_id), (&a, &carol.contact_id)] {
        app.access()
            .disable_access(app.req(&admin, disable(contact)))
            .await
            .expect("disabled");
    }
    let expected = [
        "tenant.created",
        "api_key.issued",
        "customer.created",
        "customer.created",
        "contact.invited",
        "contact.invited",
        "contact.disabled",
        "contact.disabled",
    ];
    let mut events = Vec::new();
    while events.len() < expected.len() {
        let message = tokio::time::timeout(Duration::from_secs(20), heard.next())
            .await
            .unwrap_or_else(|_| panic!("only {} public events came: {events:?}", events.len()))
            .expect("the subscription goes on");
        let event = pe::Event::decode(message.payload.clone()).expect("protobuf");
        assert_eq!(
            message.subject.as_str(),
            format!("access.public.acme.{}", event.r#type),
            "each event under its tenant and type"
        );
        events.push(event);
    }
    assert_eq!(types(&events), expected, "in the log's order");
    assert!(events.windows(2).all(|w| w[0].position < w[1].position));
    let Some(pe::event::Change::ContactInvited(invited)) = events[4].change.clone() else {
        panic!()
    };
    assert_eq!(invited.contact_id, bob.contact_id);
    assert_eq!(
        invited.email,
        Some(pe::Personal::default()),
        "no personal data on the broker"
    );
    // Nothing more: no replica published an event twice.
    let more = tokio::time::timeout(Duration::from_secs(2), heard.next()).await;
    assert!(more.is_err(), "a repeat: {more:?}");
}

#[tokio::test]
async fn a_stop_ends_open_subscriptions_promptly_saying_to_resume_elsewhere() {
    let mut app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    let subscriber = app
        .create_key(&admin, pb::Role::Subscriber, "erp", "")
        .await
        .api_key;
    let mut stream = open(&app, &subscriber, pb::SubscribeRequest::default())
        .await
        .expect("subscribed");
    take(&mut stream, 3).await;
    // Far inside the 30 s the server gives requests in flight.
    app.terminate_within(Duration::from_secs(10))
        .await
        .expect("a prompt stop despite the open stream");
    let end = stream.message().await;
    match end {
        Err(status) => {
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            assert!(status.message().contains("stopping"), "{status:?}");
        }
        Ok(end) => panic!("the stream ended without saying why: {end:?}"),
    }
}

#[tokio::test]
async fn a_subscriber_key_revoked_mid_stream_reads_no_further() {
    let app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    let key = app
        .create_key(&admin, pb::Role::Subscriber, "erp", "")
        .await;
    // Its filter matches nothing that follows: the revocation ends it anyway.
    let mut stream = open(
        &app,
        &key.api_key,
        pb::SubscribeRequest {
            types: vec!["contact.invited".into()],
            ..Default::default()
        },
    )
    .await
    .expect("subscribed");
    access_proto::v1::tenant_admin_client::TenantAdminClient::new(app.channel.clone())
        .revoke_api_key(app.req(
            &admin,
            pb::RevokeApiKeyRequest {
                request_id: new_id(),
                key_id: key.key_id.clone(),
            },
        ))
        .await
        .expect("revoked");
    app.create_customer(&admin, "C001").await;
    let end = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the stream ends at once");
    match end {
        Err(status) => assert_eq!(status.code(), Code::PermissionDenied, "{status:?}"),
        Ok(next) => panic!("read on after its key was revoked: {next:?}"),
    }
}

#[tokio::test]
async fn a_key_holds_a_bounded_number_of_streams_open() {
    let app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    let key = app
        .create_key(&admin, pb::Role::Subscriber, "erp", "")
        .await
        .api_key;
    let mut open_now = Vec::new();
    for _ in 0..16 {
        open_now.push(
            open(&app, &key, pb::SubscribeRequest::default())
                .await
                .expect("subscribed"),
        );
    }
    let refused = open(&app, &key, pb::SubscribeRequest::default())
        .await
        .expect_err("one too many");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    // Closing one frees its place.
    drop(open_now.pop());
    let mut again = None;
    for _ in 0..50 {
        match open(&app, &key, pb::SubscribeRequest::default()).await {
            Ok(stream) => {
                again = Some(stream);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(
        again.is_some(),
        "a closed stream's place was not given back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_nats_a_subscriber_from_the_start_goes_from_history_to_live_without_a_gap() {
    use access_tests::nats::Nats;
    let nats = Nats::single().await;
    let keys = tempfile::tempdir().expect("a directory");
    let urls = nats.urls();
    let args = on_nats(&urls, keys.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let app = TestApp::spawn_with(&args).await;
    let admin = app.create_tenant("acme").await;
    let key = app
        .create_key(&admin, pb::Role::Subscriber, "erp", "")
        .await
        .api_key;
    const BEFORE: usize = 400;
    const DURING: usize = 400;
    let create = |range: std::ops::Range<usize>| {
        let (app, admin) = (&app, &admin);
        futures::stream::iter(
            range
                .map(move |i| async move { app.create_customer(admin, &format!("C{i:05}")).await }),
        )
        .buffer_unordered(16)
        .collect::<Vec<_>>()
    };
    create(0..BEFORE).await;
    app.settled_head().await;
    // History (read from the stream), then what is written while it reads.
    let mut stream = open(
        &app,
        &key,
        pb::SubscribeRequest {
            types: vec!["customer.created".into()],
            ..Default::default()
        },
    )
    .await
    .expect("subscribed");
    let (read, ()) = tokio::join!(take(&mut stream, BEFORE + DURING), async {
        create(BEFORE..BEFORE + DURING).await;
    });
    assert!(read.windows(2).all(|w| w[0].position < w[1].position));
    let mut ids: Vec<String> = read
        .iter()
        .filter_map(|e| match &e.change {
            Some(pe::event::Change::CustomerCreated(c)) => Some(c.customer_id.clone()),
            _ => None,
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), BEFORE + DURING, "each customer once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_reads_the_public_subjects_on_nats_from_the_start_of_their_stream() {
    use access_tests::nats::Nats;
    let nats = Nats::single().await;
    let keys = tempfile::tempdir().expect("a directory");
    let urls = nats.urls();
    let args = on_nats(&urls, keys.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let app = TestApp::spawn_with(&args).await;
    let admin = app.create_tenant("acme").await;
    app.create_customer(&admin, "C001").await;
    let bob = app.invite(&admin, "C001", "bob@acme.example").await;
    let mut ours = open(
        &app,
        &app.operator_key,
        pb::SubscribeRequest {
            tenant: "acme".into(),
            ..Default::default()
        },
    )
    .await
    .expect("subscribed");
    let expected = take(&mut ours, 4).await;
    let lines = python_subscriber(&[
        "--nats",
        &urls,
        "--subject",
        "access.public.acme.>",
        "--count",
        "4",
    ])
    .await;
    let seen: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["type"].as_str().unwrap_or(""),
                l["id"].as_str().unwrap_or(""),
                l["subject"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let subjects: Vec<String> = expected
        .iter()
        .map(|e| format!("access.public.acme.{}", e.r#type))
        .collect();
    let want: Vec<(&str, &str, &str)> = expected
        .iter()
        .zip(&subjects)
        .map(|(e, s)| (e.r#type.as_str(), e.id.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        seen, want,
        "the same events, in order, under their subjects"
    );
    assert_eq!(
        lines[3]["contactInvited"]["contactId"].as_str(),
        Some(bob.contact_id.as_str())
    );
}
