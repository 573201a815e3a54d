//! Moving in without a password reset: customers and logins imported with
//! the hashes independent tools made (Python's bcrypt, passlib, Django,
//! Werkzeug), each logging in and re-hashed once; the same file imported
//! again changing nothing; refused rows reported with their line; a dry run
//! recording nothing; rows landing in the key's tenant only. The helpers
//! here serve `import_edges.rs` too.

use crate::factors::sessions;
use access_proto::v1 as pb;
use access_proto::v1::audit_client::AuditClient;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use access_tests::{TestApp, customer, new_id};
use tonic::Code;

/// A `Login` from an address of its own, so that the per-address limit
/// on failures never joins in.
pub(crate) async fn try_login(
    app: &TestApp,
    key: &str,
    name: &str,
    password: &str,
) -> Result<pb::Session, tonic::Status> {
    sessions(app)
        .login(app.req(
            key,
            pb::LoginRequest {
                request_id: new_id(),
                login: name.into(),
                password: password.into(),
                client_address: format!("2001:db8::{:x}", rand_u16()),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

pub(crate) fn rand_u16() -> u16 {
    let id = new_id();
    u16::from_str_radix(&id.replace('-', "")[..4], 16).unwrap_or(1)
}

pub(crate) struct Vector {
    pub made_by: String,
    pub password: String,
    pub hash: String,
}

/// The hashes other tools made (`scripts/foreign-hash-vectors.py`), one
/// per tool and format, for one password.
pub(crate) fn vectors() -> Vec<Vector> {
    let all: Vec<serde_json::Value> = serde_json::from_str(include_str!(
        "../../../services/access/src/passwords/foreign_vectors.json"
    ))
    .expect("the vectors");
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    all.iter()
        .map(|v| Vector {
            made_by: text(v, "made_by"),
            password: text(v, "password"),
            hash: text(v, "hash"),
        })
        .filter(|v| v.password == "Correct horse 7")
        .collect()
}

pub(crate) fn customer_row(line: u32, id: &str) -> pb::ImportRequest {
    pb::ImportRequest {
        item: Some(pb::import_request::Item::Customer(pb::ImportedCustomer {
            place: Some(pb::RowPlace {
                source: "customers.csv".into(),
                line,
            }),
            customer: Some(customer(id, None)),
            status: pb::CustomerStatus::Active as i32,
            document_kinds: Vec::new(),
        })),
    }
}

pub(crate) fn contact_row(line: u32, contact: pb::ImportedContact) -> pb::ImportRequest {
    pb::ImportRequest {
        item: Some(pb::import_request::Item::Contact(pb::ImportedContact {
            place: Some(pb::RowPlace {
                source: "contacts.csv".into(),
                line,
            }),
            ..contact
        })),
    }
}

pub(crate) fn login_row(customer: &str, username: &str, hash: &str) -> pb::ImportedContact {
    pb::ImportedContact {
        customer_id: customer.into(),
        username: username.into(),
        email: format!("{}@c1.example", username.to_lowercase()),
        has_logged_in: true,
        password_hash: hash.into(),
        ..Default::default()
    }
}

pub(crate) fn options(dry_run: bool) -> pb::ImportRequest {
    pb::ImportRequest {
        item: Some(pb::import_request::Item::Options(pb::ImportOptions {
            import_id: String::new(),
            dry_run,
            invite_without_password: false,
        })),
    }
}

pub(crate) async fn import(
    app: &TestApp,
    key: &str,
    rows: Vec<pb::ImportRequest>,
) -> Result<pb::ImportReply, tonic::Status> {
    TenantAdminClient::new(app.channel.clone())
        .import(app.req(key, futures::stream::iter(rows)))
        .await
        .map(tonic::Response::into_inner)
}

pub(crate) fn counts(c: Option<pb::ImportCounts>) -> (u32, u32, u32) {
    let c = c.unwrap_or_default();
    (c.created, c.updated, c.unchanged)
}

pub(crate) async fn event_types(app: &TestApp, key: &str) -> Vec<pb::HistoryEvent> {
    let mut stream = AuditClient::new(app.channel.clone())
        .replay_history(app.req(key, pb::ReplayHistoryRequest::default()))
        .await
        .expect("the history")
        .into_inner();
    let mut out = Vec::new();
    while let Some(e) = stream.message().await.expect("an event") {
        out.push(e);
    }
    out
}

#[tokio::test]
async fn every_foreign_hash_logs_in_is_rehashed_once_and_a_second_import_changes_nothing() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    let vectors = vectors();
    assert!(vectors.len() >= 14, "one vector per tool and format");
    let mut rows = vec![options(false), customer_row(2, "C1")];
    for (i, v) in vectors.iter().enumerate() {
        rows.push(contact_row(
            i as u32 + 2,
            login_row("C1", &format!("U{i}"), &v.hash),
        ));
    }
    let first = import(&app, &key, rows.clone()).await.expect("imported");
    assert_eq!(first.refused, [], "{first:?}");
    assert_eq!(counts(first.customers), (1, 0, 0));
    assert_eq!(counts(first.contacts), (vectors.len() as u32, 0, 0));
    assert!(first.position > 0);
    for (i, v) in vectors.iter().enumerate() {
        let name = format!("U{i}");
        let wrong = try_login(&app, &key, &name, "Correct horse 8")
            .await
            .expect_err("a wrong password");
        assert_eq!(wrong.code(), Code::Unauthenticated, "{}", v.made_by);
        // Twice: the first login re-hashes, the second checks our hash.
        for _ in 0..2 {
            let session = try_login(&app, &key, &name, &v.password)
                .await
                .unwrap_or_else(|e| panic!("{} did not log in: {e:?}", v.made_by));
            assert!(!session.session_token.is_empty(), "{}", v.made_by);
            app.settled_head().await;
        }
    }
    let history = event_types(&app, &key).await;
    let rehashed = history
        .iter()
        .filter(|e| e.event_type == "PasswordRehashed")
        .count();
    assert_eq!(rehashed, vectors.len(), "each imported hash re-hashed once");
    for e in history.iter().filter(|e| e.event_type.contains("Password")) {
        for v in &vectors {
            assert!(!e.payload_json.contains(&v.hash), "{}", e.payload_json);
        }
    }
    let imported = history
        .iter()
        .find(|e| e.event_type == "ContactImported")
        .expect("an imported login");
    assert!(
        imported
            .summary
            .contains(&format!("import {}", first.import_id)),
        "{}",
        imported.summary
    );
    // Records written with the commands' own events carry it too.
    let customer = history
        .iter()
        .find(|e| e.event_type == "CustomerCreated")
        .expect("the imported customer");
    assert!(
        customer
            .request_id
            .starts_with(&format!("import-{}-", first.import_id)),
        "{}",
        customer.request_id
    );
    // The same file again: nothing changes, not even the re-hashed passwords.
    let head = app.settled_head().await;
    let again = import(&app, &key, rows).await.expect("imported again");
    assert_eq!(again.refused, []);
    assert_eq!(counts(again.customers), (0, 0, 1));
    assert_eq!(counts(again.contacts), (0, 0, vectors.len() as u32));
    assert_eq!(app.settled_head().await, head, "nothing was written");
    for (i, v) in vectors.iter().enumerate() {
        try_login(&app, &key, &format!("U{i}"), &v.password)
            .await
            .expect("still the same password");
    }
}

#[tokio::test]
async fn refused_rows_are_reported_by_line_and_a_dry_run_records_nothing() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    let bcrypt = vectors()
        .into_iter()
        .find(|v| v.made_by.contains("$2b$"))
        .expect("a bcrypt vector");
    let rows = |dry| {
        vec![
            options(dry),
            customer_row(2, "C1"),
            customer_row(3, "C1"),
            contact_row(2, login_row("C1", "GOOD1", &bcrypt.hash)),
            contact_row(3, login_row("C1", "GOOD1", &bcrypt.hash)),
            contact_row(4, login_row("C9", "NOCUSTOMER", "")),
            contact_row(
                5,
                login_row("C1", "MD5", "5f4dcc3b5aa765d61d8327deb882cf99"),
            ),
            contact_row(
                6,
                pb::ImportedContact {
                    email: "not an email".into(),
                    ..login_row("C1", "BADMAIL", "")
                },
            ),
            contact_row(
                7,
                pb::ImportedContact {
                    site_rule: Some(pb::SiteRule {
                        rule: Some(pb::site_rule::Rule::OneSite(pb::OneSite {
                            site: "Paris".into(),
                        })),
                    }),
                    ..login_row("C1", "PARIS", "")
                },
            ),
            contact_row(
                8,
                login_row("C1", "COST", &bcrypt.hash.replacen("$04$", "$16$", 1)),
            ),
            contact_row(9, login_row("C1", "GOOD2", "")),
        ]
    };
    let head = app.settled_head().await;
    let dry = import(&app, &key, rows(true)).await.expect("checked");
    assert!(dry.dry_run);
    assert_eq!(dry.position, 0);
    assert_eq!(app.settled_head().await, head, "a dry run records nothing");
    let lines = |r: &pb::ImportReply| -> Vec<(String, u32, String)> {
        r.refused
            .iter()
            .map(|row| {
                let p = row.place.clone().unwrap_or_default();
                (p.source, p.line, row.reason.clone())
            })
            .collect()
    };
    let expected = vec![
        ("customers.csv".to_owned(), 3, "already_exists".to_owned()),
        ("contacts.csv".to_owned(), 3, "already_exists".to_owned()),
        ("contacts.csv".to_owned(), 5, "invalid_argument".to_owned()),
        ("contacts.csv".to_owned(), 6, "invalid_argument".to_owned()),
        ("contacts.csv".to_owned(), 8, "invalid_argument".to_owned()),
        ("contacts.csv".to_owned(), 4, "not_found".to_owned()),
        ("contacts.csv".to_owned(), 7, "invalid_argument".to_owned()),
    ];
    let mut got = lines(&dry);
    got.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(got, want, "{dry:?}");
    assert_eq!(dry.refused_total, 7);
    assert_eq!(counts(dry.customers), (1, 0, 0));
    assert_eq!(
        counts(dry.contacts),
        (2, 0, 0),
        "the logins of a customer the dry run creates count"
    );
    let md5 = dry
        .refused
        .iter()
        .find(|r| r.place.as_ref().is_some_and(|p| p.line == 5))
        .expect("the md5 row");
    assert!(
        md5.message.contains("unknown password hash format"),
        "{}",
        md5.message
    );
    let cost = dry
        .refused
        .iter()
        .find(|r| r.place.as_ref().is_some_and(|p| p.line == 8))
        .expect("the cost row");
    assert!(cost.message.contains("bcrypt cost 16"), "{}", cost.message);
    // The real run imports the valid rows and refuses the same others.
    let real = import(&app, &key, rows(false)).await.expect("imported");
    let mut got = lines(&real);
    got.sort();
    assert_eq!(got, want);
    assert_eq!(counts(real.contacts), (2, 0, 0));
    try_login(&app, &key, "GOOD1", &bcrypt.password)
        .await
        .expect("the imported login");
    // No email went out: none was asked for.
    app.settled_head().await;
    assert_eq!(app.outbox_count(), 0);
}

#[tokio::test]
async fn rows_land_in_the_keys_tenant_only_and_changed_rows_update_as_commands_would() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let other = app.create_tenant("other").await;
    app.create_customer(&other, "C1").await;
    app.invite(&other, "C1", "taken@c1.example").await;
    let rows = |status: &str, email: &str| {
        vec![
            customer_row(2, "C1"),
            contact_row(
                2,
                pb::ImportedContact {
                    status: status.into(),
                    email: email.into(),
                    ..login_row("C1", "ANNA", "")
                },
            ),
        ]
    };
    let first = import(&app, &acme, rows("", "taken@c1.example"))
        .await
        .expect("imported");
    assert_eq!(
        first.refused,
        [],
        "the other tenant's contact is no obstacle"
    );
    assert_eq!(counts(first.contacts), (1, 0, 0));
    let anna = app
        .access()
        .list_access(app.req(&other, pb::ListAccessRequest::default()))
        .await
        .expect("the other tenant's list")
        .into_inner();
    assert!(
        !format!("{anna:?}").contains("ANNA"),
        "nothing landed in the other tenant"
    );
    // A changed row: blocked, and a new email, as the commands would.
    let changed = import(&app, &acme, rows("disabled", "anna@c1.example"))
        .await
        .expect("imported");
    assert_eq!(changed.refused, []);
    assert_eq!(counts(changed.contacts), (0, 1, 0));
    let types: Vec<String> = event_types(&app, &acme)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert!(
        types.contains(&"ContactDetailsChanged".to_owned()),
        "{types:?}"
    );
    assert!(types.contains(&"AccessDisabled".to_owned()), "{types:?}");
    // One row may not join two logins: the email names one, the username
    // another (each unique, as for the commands).
    let clash = import(
        &app,
        &acme,
        vec![
            contact_row(2, login_row("C1", "BOB", "")),
            contact_row(
                3,
                pb::ImportedContact {
                    email: "anna@c1.example".into(),
                    ..login_row("C1", "BOB", "")
                },
            ),
        ],
    )
    .await
    .expect("reported");
    assert_eq!(counts(clash.contacts), (1, 0, 0), "{clash:?}");
    assert_eq!(clash.refused_total, 1, "{clash:?}");
    assert_eq!(clash.refused[0].reason, "already_exists");
    let clash = import(
        &app,
        &acme,
        vec![contact_row(
            2,
            pb::ImportedContact {
                email: "anna@c1.example".into(),
                ..login_row("C1", "BOB", "")
            },
        )],
    )
    .await
    .expect("reported");
    assert_eq!(clash.refused_total, 1, "{clash:?}");
    assert_eq!(clash.refused[0].reason, "already_exists");
    assert!(
        clash.refused[0]
            .message
            .contains("the email names one login and the username another"),
        "{clash:?}"
    );
    let auditor = app
        .create_key(&acme, pb::Role::Auditor, "audit", "")
        .await
        .api_key;
    let refused = import(&app, &auditor, vec![customer_row(2, "C2")])
        .await
        .expect_err("an auditor imports nothing");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let id = new_id();
    let bad_id = import(
        &app,
        &acme,
        vec![pb::ImportRequest {
            item: Some(pb::import_request::Item::Options(pb::ImportOptions {
                import_id: format!("{id} with spaces"),
                ..Default::default()
            })),
        }],
    )
    .await
    .expect_err("a bad import id");
    assert_eq!(bad_id.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn accessctl_imports_the_example_files_and_invites_only_when_asked() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/import");
    let run = |extra: &[&str]| {
        let mut args: Vec<std::ffi::OsString> = vec![
            "import".into(),
            "--customers".into(),
            examples.join("customers.csv").into(),
            "--contacts".into(),
            examples.join("contacts.jsonl").into(),
        ];
        args.extend(extra.iter().map(Into::into));
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        app.accessctl(&key, &args)
    };
    let dry = run(&["--dry-run"]);
    let out = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(out.contains("customers: 3 would be created"), "{out}");
    assert!(out.contains("contacts: 5 would be created"), "{out}");
    let real = run(&["--invite-without-password", "--json"]);
    let out = String::from_utf8_lossy(&real.stdout);
    assert!(
        real.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&real.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&out).expect("a JSON report");
    assert_eq!(report["contacts"]["created"], 5, "{report}");
    assert_eq!(
        report["invitations"], 1,
        "only the login without a hash: {report}"
    );
    app.wait_for_link("dora@corner.example", "/reset/", 1).await;
    try_login(&app, &key, "ACME01", "Moving in 2026")
        .await
        .expect("bcrypt ($2y$) from the example");
    try_login(&app, &key, "ben@acme.example", "Moving in 2026")
        .await
        .expect("Django PBKDF2 from the example");
    let disabled = try_login(&app, &key, "carl@bm.example", "Moving in 2026")
        .await
        .expect_err("imported disabled");
    assert_eq!(disabled.code(), Code::PermissionDenied, "{disabled:?}");
    let again = run(&[]);
    let out = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{out}");
    assert!(
        out.contains("contacts: 0 were created, 0 updated, 5 unchanged"),
        "{out}"
    );
}
