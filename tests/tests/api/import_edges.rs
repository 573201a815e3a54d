//! Imports at their edges: a wrong password against an imported hash
//! timed against ours, an erasure taking the imported hash, hostile rows,
//! and two replicas importing one file at once.

use crate::imports::{
    contact_row, counts, customer_row, event_types, import, login_row, options, try_login, vectors,
};
use access_proto::v1 as pb;
use access_tests::{TestApp, customer, new_id};
use std::time::{Duration, Instant};
use tonic::Code;

#[tokio::test]
async fn a_wrong_password_takes_as_long_against_an_imported_hash_as_against_ours() {
    // Our production cost (the suite's usual one is too cheap to compare).
    let app =
        TestApp::spawn_with(&["--argon2-memory-kib", "19456", "--argon2-iterations", "2"]).await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    // Every format, each far cheaper than our argon2id at these vectors'
    // costs; three logins each, one wrong try each.
    let vectors = vectors();
    let mut rows = vec![options(false)];
    for (f, v) in vectors.iter().enumerate() {
        for i in 0..3 {
            let name = format!("F{f}X{i}");
            rows.push(contact_row(0, login_row("C1", &name, &v.hash)));
        }
    }
    let reply = import(&app, &key, rows).await.expect("imported");
    assert_eq!(reply.refused, []);
    // Our own: logins whose password was set through an invitation.
    for i in 0..5 {
        let email = format!("n{i}@c1.example");
        app.invite(&key, "C1", &email).await;
        let link = app.wait_for_mail(&email, 1).await;
        app.accept(&link, crate::oidc_flow::PASSWORD).await;
    }
    app.settled_head().await;
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let wrong = |name: String| {
        let (app, key) = (&app, &key);
        async move {
            let started = Instant::now();
            let refused = try_login(app, key, &name, "wrong password 1").await;
            assert!(refused.is_err(), "{name}");
            started.elapsed()
        }
    };
    let mut ours = Vec::new();
    for i in 0..5 {
        ours.push(wrong(format!("n{i}@c1.example")).await);
    }
    let ours = median(ours);
    for (f, v) in vectors.iter().enumerate() {
        let mut theirs = Vec::new();
        for i in 0..3 {
            theirs.push(wrong(format!("F{f}X{i}")).await);
        }
        let theirs = median(theirs);
        let ratio = theirs.as_secs_f64() / ours.as_secs_f64();
        assert!(
            (0.75..1.5).contains(&ratio),
            "{}: {theirs:?} against ours {ours:?}",
            v.made_by
        );
    }
}

#[tokio::test]
async fn an_erasure_takes_the_imported_hash_with_the_person() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    let v = vectors()
        .into_iter()
        .find(|v| v.made_by.contains("Django PBKDF2"))
        .expect("a Django vector");
    let rows = vec![
        customer_row(2, "C1"),
        contact_row(2, login_row("C1", "ANNA", &v.hash)),
    ];
    import(&app, &key, rows).await.expect("imported");
    app.operator()
        .forget_identity(app.req(
            &app.operator_key,
            pb::ForgetIdentityRequest {
                request_id: new_id(),
                email: "anna@c1.example".into(),
                identity_id: String::new(),
                reason: "erasure request".into(),
            },
        ))
        .await
        .expect("forgotten");
    let kept = event_types(&app, &key)
        .await
        .into_iter()
        .find(|e| e.event_type == "PasswordImported")
        .expect("the imported hash's event stays");
    let salt = v.hash.split('$').nth(2).unwrap_or_default();
    assert!(!kept.payload_json.contains(salt), "{}", kept.payload_json);
    let login = event_types(&app, &key)
        .await
        .into_iter()
        .find(|e| e.event_type == "ContactImported")
        .expect("the imported login's event stays");
    assert!(
        login.payload_json.contains("[erased]"),
        "{}",
        login.payload_json
    );
    let gone = try_login(&app, &key, "ANNA", &v.password)
        .await
        .expect_err("the login ended with the person");
    assert!(
        matches!(gone.code(), Code::Unauthenticated | Code::PermissionDenied),
        "{gone:?}"
    );
}

/// Strings no field should choke on: empty, blank, control characters,
/// right-to-left marks, a formula, SQL, a path, huge, and near-miss hashes.
fn hostile() -> Vec<String> {
    vec![
        String::new(),
        "   ".into(),
        "\0\u{1}\u{7f}".into(),
        "\u{202e}gnp.exe".into(),
        "=HYPERLINK(\"http://x\")".into(),
        "'; DROP TABLE contacts; --".into(),
        "../../etc/passwd".into(),
        "x".repeat(500),
        "$2b$99$".into(),
        "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdA$aGFzaA".into(),
        "pbkdf2_sha256$-1$salt$hash".into(),
        "scrypt:0:0:0$s$00".into(),
        "$scrypt$ln=255,r=4294967295,p=4294967295$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA".into(),
    ]
}

#[tokio::test]
async fn hostile_rows_are_refused_or_imported_never_a_fault() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    let mut rows = vec![options(false), customer_row(1, "C1")];
    let mut line = 1;
    for value in hostile() {
        line += 1;
        let mut record = customer(&format!("H{line}"), None);
        record.name = value.clone();
        record.short_name = value.clone();
        rows.push(pb::ImportRequest {
            item: Some(pb::import_request::Item::Customer(pb::ImportedCustomer {
                place: Some(pb::RowPlace {
                    source: value.chars().take(200).collect(),
                    line,
                }),
                customer: Some(record),
                status: 77,
                document_kinds: vec![99],
            })),
        });
        for field in 0..5 {
            line += 1;
            let mut row = login_row("C1", &format!("H{line}"), "");
            match field {
                0 => row.email = value.clone(),
                1 => row.username = value.clone(),
                2 => row.kind = value.clone(),
                3 => row.status = value.clone(),
                _ => row.password_hash = value.clone(),
            }
            rows.push(contact_row(line, row));
        }
    }
    let reply = import(&app, &key, rows).await.expect("a report");
    assert!(reply.refused_total >= 40, "{reply:?}");
    for r in &reply.refused {
        assert!(
            !matches!(r.reason.as_str(), "internal" | "refused"),
            "{r:?}"
        );
    }
    // A message over a field's limit ends the call, naming the field.
    let over = import(
        &app,
        &key,
        vec![contact_row(2, login_row("C1", "LONG", &"x".repeat(600)))],
    )
    .await
    .expect_err("over the limit");
    assert_eq!(over.code(), Code::InvalidArgument, "{over:?}");
    assert!(over.message().contains("password_hash"), "{over:?}");
    // Alive, and a plain import still goes in.
    let fine = import(
        &app,
        &key,
        vec![contact_row(2, login_row("C1", "AFTER", ""))],
    )
    .await
    .expect("serving");
    assert_eq!(counts(fine.contacts), (1, 0, 0), "{fine:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_importing_one_file_at_once_record_each_row_once() {
    use access_tests::nats::Nats;
    let nats = Nats::single().await;
    let keys = tempfile::tempdir().expect("a key directory");
    let urls = nats.urls();
    let args = [
        "--nats-url",
        &urls,
        "--nats-replicas",
        "1",
        "--key-dir",
        keys.path().to_str().expect("a UTF-8 path"),
    ];
    let a = TestApp::spawn_with(&args).await;
    let b = TestApp::spawn_with(&args).await;
    let key = a.create_tenant("acme").await;
    let bcrypt = vectors()
        .into_iter()
        .find(|v| v.made_by.contains("$2b$"))
        .expect("a bcrypt vector");
    let mut rows = vec![options(false)];
    for c in 0..100 {
        rows.push(customer_row(c + 2, &format!("C{c:03}")));
    }
    for n in 0..1200u32 {
        let customer = format!("C{:03}", n % 100);
        rows.push(contact_row(
            n + 2,
            login_row(&customer, &format!("U{n:04}"), &bcrypt.hash),
        ));
    }
    let (on_a, on_b) = tokio::join!(
        import(&a, &key, rows.clone()),
        import(&b, &key, rows.clone())
    );
    let (on_a, on_b) = match (on_a, on_b) {
        (Ok(x), Ok(y)) => (x, y),
        (x, y) => panic!("a: {x:?}\n{}\nb: {y:?}\n{}", a.log_tail(30), b.log_tail(30)),
    };
    assert_eq!(on_a.refused_total, 0, "{:?}", on_a.refused.first());
    assert_eq!(on_b.refused_total, 0, "{:?}", on_b.refused.first());
    let created = |r: &pb::ImportReply, f: fn(&pb::ImportReply) -> Option<pb::ImportCounts>| {
        f(r).unwrap_or_default().created
    };
    assert_eq!(
        created(&on_a, |r| r.customers) + created(&on_b, |r| r.customers),
        100,
        "each customer created once"
    );
    assert_eq!(
        created(&on_a, |r| r.contacts) + created(&on_b, |r| r.contacts),
        1200,
        "each login created once"
    );
    try_login(&b, &key, "U0007", &bcrypt.password)
        .await
        .expect("a login imported on either replica signs in on b");
    let again = import(&b, &key, rows).await.expect("imported again");
    assert_eq!(counts(again.contacts), (0, 0, 1200), "{again:?}");
    assert_eq!(counts(again.customers), (0, 0, 100));
}
