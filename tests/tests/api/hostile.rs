//! Hostile callers, generated from the protocol's own descriptors so every
//! method is covered and a new one cannot be forgotten: every role that may
//! not call a method is refused before any work; oversized, malformed,
//! control-character, look-alike and bad-UTF-8 bodies get a clear status,
//! never INTERNAL or UNKNOWN; the server stays up and nothing is appended.

use access_proto::limits::Limits;
use access_proto::v1 as pb;
use access_tests::{TestApp, new_id};
use bytes::{Buf, BufMut};
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor, Value};
use std::str::FromStr;
use std::time::{Duration, Instant};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Sends and receives raw protobuf bytes, so a test can send what no typed
/// client would.
#[derive(Clone, Default)]
struct Raw;

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let bytes = src.chunk().to_vec();
        src.advance(bytes.len());
        Ok(Some(bytes))
    }
}

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

/// Calls `path` with `body` as `key` (none: no header); the status code.
async fn call(app: &TestApp, path: &str, key: Option<&str>, body: Vec<u8>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    if let Err(e) = grpc.ready().await {
        return tonic::Status::unavailable(e.to_string());
    }
    let mut request = tonic::Request::new(body);
    if let Some(key) = key {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {key}").parse().expect("header"),
        );
    }
    let path = tonic::codegen::http::uri::PathAndQuery::from_str(path).expect("path");
    // Server-streaming, as every method can be called: a unary method's
    // one answer is a stream of one.
    let mut stream = match grpc.server_streaming(request, path, Raw).await {
        Ok(response) => response.into_inner(),
        Err(status) => return status,
    };
    for _ in 0..100_000 {
        match stream.message().await {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(status) => return status,
        }
    }
    tonic::Status::ok("")
}

fn pool() -> DescriptorPool {
    DescriptorPool::decode(access_proto::FILE_DESCRIPTOR_SET).expect("descriptors")
}

/// Every method, as `(path, input message, server-streaming)`.
fn methods() -> Vec<(String, MessageDescriptor, bool)> {
    let pool = pool();
    pool.services()
        .flat_map(|s| {
            s.methods()
                .map(|m| {
                    (
                        format!("/{}/{}", s.full_name(), m.name()),
                        m.input(),
                        m.is_server_streaming(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Who may call a method, as the service's documentation says: the
/// expectation is written here, apart from the service's own table.
fn allowed(path: &str, caller: &str) -> bool {
    let (service, method) = path
        .trim_start_matches("/access.v1.")
        .split_once('/')
        .expect("a method path");
    let staff = ["admin", "in_house", "rep", "service", "auditor"];
    let portal = ["admin", "in_house", "service"];
    let callers: &[&str] = match (service, method) {
        ("Operator", _) => &["operator"],
        ("Events", _) => &["operator", "subscriber"],
        ("Audit", "GetCheckpoint" | "ExportLog") => &["operator", "admin", "auditor"],
        ("Audit", _) => &["admin", "auditor"],
        ("TenantAdmin", "GetTenant") => &staff,
        ("TenantAdmin", "ReplayWebhook") => &["operator", "admin"],
        ("TenantAdmin", _) => &["admin"],
        ("Access", "CreateCustomer" | "UpdateCustomer" | "SetCustomerStatus")
        | ("Access", "SetDocumentVisibility") => &portal,
        ("Access", "GetCustomer" | "GetContact" | "GetSiteVisibility" | "ListAccess")
        | ("Access", "ListCustomersWithoutLogin" | "BillableUsers") => &staff,
        ("Access", "CheckAccess" | "ResolvePortalLink") => &portal,
        ("Access", _) => &["admin", "in_house", "service", "rep"],
        ("Sessions", "AcceptInvitation" | "ResetPassword") => &["anyone"],
        ("Sessions", _) => &portal,
        _ => panic!("{path} is not in the test's table"),
    };
    callers.contains(&caller) || callers.contains(&"anyone")
}

async fn keys(app: &TestApp) -> Vec<(&'static str, Option<String>)> {
    let admin = app.create_tenant("acme").await;
    let mut out = vec![
        ("operator", Some(app.operator_key.clone())),
        ("admin", Some(admin.clone())),
        ("nobody", None),
        ("bad key", Some("ak_nothing.nothing".to_owned())),
    ];
    for (name, role, rep) in [
        ("in_house", pb::Role::InHouse, ""),
        ("rep", pb::Role::Rep, "anna"),
        ("service", pb::Role::Service, ""),
        ("auditor", pb::Role::Auditor, ""),
        ("subscriber", pb::Role::Subscriber, ""),
    ] {
        let reply = app.create_key(&admin, role, name, rep).await;
        out.push((name, Some(reply.api_key)));
    }
    out
}

#[tokio::test]
async fn every_method_refuses_every_caller_it_does_not_admit_before_any_work() {
    let app = TestApp::spawn().await;
    let keys = keys(&app).await;
    let before = app.settled_head().await;
    let mut checked = 0;
    let mut slowest = Duration::ZERO;
    // A template that would take the engine a long time: refused by role
    // before it is ever looked at.
    let heavy = {
        let mut m = DynamicMessage::new(
            pool()
                .get_message_by_name("access.v1.SetEmailTemplateRequest")
                .expect("message"),
        );
        let t = "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}";
        for (field, value) in [
            ("request_id", "r1"),
            ("kind", "invitation"),
            ("subject", "s"),
        ] {
            m.set_field_by_name(field, Value::String(value.into()));
        }
        m.set_field_by_name("text", Value::String(t.into()));
        m.set_field_by_name("html", Value::String(t.into()));
        prost::Message::encode_to_vec(&m)
    };
    for (path, input, _) in methods() {
        let body = if input.name() == "SetEmailTemplateRequest" {
            heavy.clone()
        } else {
            Vec::new()
        };
        for (caller, key) in &keys {
            let denied_code = match *caller {
                "nobody" | "bad key" => Code::Unauthenticated,
                _ => Code::PermissionDenied,
            };
            if allowed(&path, caller) {
                continue;
            }
            let started = Instant::now();
            let status = call(&app, &path, key.as_deref(), body.clone()).await;
            let took = started.elapsed();
            slowest = slowest.max(took);
            assert_eq!(status.code(), denied_code, "{path} as {caller}: {status:?}");
            checked += 1;
        }
    }
    assert!(checked > 150, "{checked} refusals checked");
    assert!(
        slowest < Duration::from_millis(500),
        "the slowest refusal took {slowest:?}"
    );
    assert_eq!(app.head().await, before, "a refused call appended events");
}

/// Values no field should accept: each must get a clear status.
fn hostile_strings(max: usize) -> Vec<String> {
    vec![
        String::new(),
        "x".repeat(max + 1),
        "a\u{0}b\u{7}c\r\nd".into(),
        "\u{202e}evil\u{200b}".into(),
        "аdmin@exаmple.com".into(), // Cyrillic look-alikes
        "../../etc/passwd".into(),
        "' OR 1=1 --".into(),
        "{{ 7*7 }}{% for x in range(10) %}".into(),
    ]
}

#[tokio::test]
async fn hostile_bodies_get_a_clear_status_and_change_nothing() {
    let app = TestApp::spawn().await;
    let keys = keys(&app).await;
    let admin = keys
        .iter()
        .find(|(c, _)| *c == "admin")
        .and_then(|(_, k)| k.clone())
        .expect("admin key");
    let limits = Limits::access_v1();
    let before = app.settled_head().await;
    let mut calls = 0;
    for (path, input, streaming) in methods() {
        let key = if path.starts_with("/access.v1.Operator/") {
            app.operator_key.clone()
        } else {
            admin.clone()
        };
        let mut bodies: Vec<Vec<u8>> = vec![
            // Not protobuf: a truncated length, a bad wire type, bad UTF-8.
            vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
            vec![0x0f, 0x01],
            vec![0x0a, 0x02, 0xc3, 0x28],
        ];
        for field in input.fields() {
            if field.kind() != Kind::String {
                continue;
            }
            let max = limits
                .max_bytes(input.full_name(), field.name())
                .unwrap_or(1024) as usize;
            for value in hostile_strings(max) {
                let mut m = DynamicMessage::new(input.clone());
                // A plausible request otherwise: a request id, so the field
                // under test is the one refused.
                if input.get_field_by_name("request_id").is_some() && field.name() != "request_id" {
                    m.set_field_by_name("request_id", Value::String(new_id()));
                }
                let value = if field.is_list() {
                    Value::List(vec![Value::String(value)])
                } else {
                    Value::String(value)
                };
                m.set_field(&field, value);
                bodies.push(prost::Message::encode_to_vec(&m));
            }
        }
        for body in bodies {
            let status = call(&app, &path, Some(&key), body).await;
            calls += 1;
            // A streaming method may start its answer: OK and a status in
            // the stream are both clear answers.
            assert!(
                !matches!(status.code(), Code::Internal | Code::Unknown),
                "{path}: {status:?} (streaming: {streaming})"
            );
        }
    }
    assert!(calls > 500, "{calls} calls");
    // Alive, and the log unchanged by anything refused. Commands that were
    // valid (a hostile string can be a fine name) may have been accepted;
    // the log then moved only by what was accepted, which the check below
    // leaves to the other tests: here the process must simply be serving.
    let status = call(
        &app,
        "/access.v1.Operator/GetLogStatus",
        Some(&app.operator_key),
        Vec::new(),
    )
    .await;
    assert_eq!(status.code(), Code::Ok, "{status:?}");
    assert!(app.head().await >= before);
}

#[tokio::test]
async fn oversized_and_malformed_requests_are_invalid_arguments_naming_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    let before = app.settled_head().await;
    let login = |body: Vec<u8>| call(&app, "/access.v1.Sessions/Login", Some(&admin), body);
    let mut m = DynamicMessage::new(
        pool()
            .get_message_by_name("access.v1.LoginRequest")
            .expect("message"),
    );
    m.set_field_by_name("request_id", Value::String(new_id()));
    m.set_field_by_name("login", Value::String("bob@example.com".into()));
    // Over the field's limit: refused naming the field, before any hashing.
    m.set_field_by_name("password", Value::String("p".repeat(100_000)));
    let started = Instant::now();
    let status = login(prost::Message::encode_to_vec(&m)).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("password"), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Over the whole request's limit: the transport refuses it unread.
    m.set_field_by_name("password", Value::String("p".repeat(5_000_000)));
    let status = login(prost::Message::encode_to_vec(&m)).await;
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    let status = login(vec![0x12, 0x03, 0xff, 0xfe, 0xfd]).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("login"), "{status:?}");
    assert_eq!(app.head().await, before);
}

#[tokio::test]
async fn garbage_delivery_reports_are_refused_and_forms_post_nowhere_else() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    let before = app.settled_head().await;
    let status = app
        .operator()
        .record_email_delivery(app.req(
            &app.operator_key,
            pb::RecordEmailDeliveryRequest {
                tenant_id: "acme".into(),
                contact_id: "nobody".into(),
                source_event_id: "not-a-uuid".into(),
                kind: "bogus".into(),
                failure: String::new(),
            },
        ))
        .await
        .expect_err("garbage is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    for field in ["contact_id", "source_event_id", "kind"] {
        assert!(status.message().contains(field), "{status:?}");
    }
    assert_eq!(app.head().await, before);
    // The pages allow forms to post to themselves only, unless a tenant's
    // portal is the page's hand-off target.
    let page = reqwest::get(format!("http://{}/forgot", app.http_addr))
        .await
        .expect("page");
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(csp.contains("form-action 'self';"), "{csp}");
    assert!(
        !csp.contains("https:;") || !csp.contains("form-action 'self' https:"),
        "{csp}"
    );
}
