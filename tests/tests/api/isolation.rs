//! Tenant isolation as a property: random interleavings of commands across
//! three tenants that share customer ids, emails and usernames; afterwards no
//! query under one tenant's key returns, counts, or tells apart from "never
//! existed" anything of another tenant.

use access_proto::v1 as pb;
use access_proto::v1::audit_client::AuditClient;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use access_tests::{TestApp, customer, invite_request, new_id, token_of};
use std::collections::{BTreeMap, BTreeSet};
use tonic::Code;

/// A small deterministic generator (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[derive(Default)]
struct Tenant {
    key: String,
    auditor: String,
    customers: BTreeSet<String>,
    contacts: BTreeMap<String, String>,
    links: Vec<String>,
}

const TENANTS: [&str; 3] = ["alpha", "beta", "gamma"];
const CUSTOMERS: [&str; 4] = ["C1", "C2", "C3", "C4"];
const EMAILS: [&str; 5] = [
    "ann@shared.example",
    "bob@shared.example",
    "cy@shared.example",
    "di@shared.example",
    "ed@shared.example",
];

/// The answer's code and words: what a caller can tell apart.
fn seen<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> String {
    match r {
        Ok(r) => format!("ok {:?}", r.into_inner()),
        Err(s) => format!("{:?} {}", s.code(), s.message()),
    }
}

async fn run(app: &TestApp, seed: u64, ops: usize) -> BTreeMap<&'static str, Tenant> {
    let mut rng = Rng(seed);
    let mut tenants: BTreeMap<&'static str, Tenant> = BTreeMap::new();
    for t in TENANTS {
        let key = app.create_tenant(t).await;
        let auditor = TenantAdminClient::new(app.channel.clone())
            .create_api_key(app.req(
                &key,
                pb::CreateApiKeyRequest {
                    request_id: new_id(),
                    role: pb::Role::Auditor as i32,
                    name: "audit".into(),
                    rep_id: String::new(),
                },
            ))
            .await
            .expect("auditor key")
            .into_inner()
            .api_key;
        tenants.insert(
            t,
            Tenant {
                key,
                auditor,
                ..Tenant::default()
            },
        );
    }
    for _ in 0..ops {
        let t = TENANTS[rng.below(3) as usize];
        let state = tenants.get_mut(t).expect("tenant");
        let key = state.key.clone();
        let c = CUSTOMERS[rng.below(4) as usize];
        match rng.below(5) {
            0 => {
                if app
                    .access()
                    .create_customer(app.req(
                        &key,
                        pb::CreateCustomerRequest {
                            request_id: new_id(),
                            customer: Some(customer(c, None)),
                        },
                    ))
                    .await
                    .is_ok()
                {
                    state.customers.insert(c.to_owned());
                }
            }
            1 | 2 => {
                let email = EMAILS[rng.below(5) as usize];
                if let Ok(r) = app
                    .access()
                    .invite_customer(app.req(&key, invite_request(c, email, None)))
                    .await
                {
                    state
                        .contacts
                        .insert(r.into_inner().contact_id, email.to_owned());
                }
            }
            3 => {
                if let Some((id, _)) = state.contacts.iter().nth(rng.below(8) as usize) {
                    let _ = app
                        .access()
                        .disable_access(app.req(
                            &key,
                            pb::ContactCommand {
                                request_id: new_id(),
                                contact_id: id.clone(),
                                reason: String::new(),
                            },
                        ))
                        .await;
                }
            }
            _ => {
                if let Ok(r) = app
                    .access()
                    .create_portal_link(app.req(
                        &key,
                        pb::CreatePortalLinkRequest {
                            request_id: new_id(),
                            customer_id: c.into(),
                            kinds: vec![pb::DocumentKind::SalesInvoice as i32],
                            expires_at: String::new(),
                        },
                    ))
                    .await
                {
                    state.links.push(r.into_inner().token);
                }
            }
        }
    }
    tenants
}

async fn accept_some(app: &TestApp) {
    // Some invitations accepted, so identities and passwords exist too.
    for email in &EMAILS[..2] {
        let mails = app.links_to(email, "/invite/");
        if let Some((_, link)) = mails.first() {
            let _ = app
                .sessions()
                .accept_invitation(pb::AcceptInvitationRequest {
                    request_id: new_id(),
                    token: token_of(link),
                    password: "sunlit7meadow".into(),
                })
                .await;
        }
    }
}

#[tokio::test]
async fn no_query_under_one_tenants_key_sees_or_counts_another_tenants_data() {
    for seed in [0x9e37_79b9_7f4a_7c15_u64, 0xdead_beef_cafe_f00d] {
        let app = TestApp::spawn().await;
        let tenants = run(&app, seed, 150).await;
        accept_some(&app).await;
        let head = app.settled_head().await;
        let never = "0190f0f0f0f0f0f0f0f0f0f0f0f0f0f0";
        let mut compared = 0;

        for (name, a) in &tenants {
            // Reports list only A's customers and contacts.
            let rows = app
                .access()
                .list_access(app.req(
                    &a.key,
                    pb::ListAccessRequest {
                        page_size: 1000,
                        min_position: head,
                        ..Default::default()
                    },
                ))
                .await
                .expect("report")
                .into_inner()
                .rows;
            for row in &rows {
                assert!(a.customers.contains(&row.customer_id), "{name}: {row:?}");
                if !row.contact_id.is_empty() {
                    assert!(a.contacts.contains_key(&row.contact_id), "{name}: {row:?}");
                }
            }
            let billed = app
                .access()
                .billable_users(app.req(&a.key, pb::BillableUsersRequest { min_position: head }))
                .await
                .expect("billing")
                .into_inner();
            assert!(
                billed.billable_users + billed.invited <= a.contacts.len() as u64,
                "{name}: {billed:?} counts more than its own {} contacts",
                a.contacts.len()
            );

            // The audit history holds only A's streams.
            let mut history = AuditClient::new(app.channel.clone())
                .replay_history(app.req(&a.auditor, pb::ReplayHistoryRequest::default()))
                .await
                .expect("history")
                .into_inner();
            while let Some(e) = history.message().await.expect("event") {
                let owner = e.stream.split('.').nth(1).unwrap_or_default();
                assert!(owner == *name || owner == "_", "{name} sees {}", e.stream);
            }

            // Another tenant's ids, tokens and logins answer exactly as ones
            // that never existed.
            for (other, b) in tenants.iter().filter(|(o, _)| *o != name) {
                for (contact, email) in &b.contacts {
                    if a.contacts.contains_key(contact) {
                        continue;
                    }
                    compared += 1;
                    let get = |id: &str| {
                        let mut client = app.access();
                        let request = app.req(
                            &a.key,
                            pb::GetContactRequest {
                                contact_id: id.into(),
                                min_position: 0,
                            },
                        );
                        async move { client.get_contact(request).await }
                    };
                    assert_eq!(
                        seen(get(contact).await),
                        seen(get(never).await),
                        "{name}/{other}"
                    );
                    let check = |id: &str| {
                        let mut client = app.access();
                        let request = app.req(
                            &a.key,
                            pb::CheckAccessRequest {
                                contact_id: id.into(),
                                action: pb::Action::Login as i32,
                                ..Default::default()
                            },
                        );
                        async move { client.check_access(request).await }
                    };
                    assert_eq!(seen(check(contact).await), seen(check(never).await));
                    let disable = |id: &str| {
                        let mut client = app.access();
                        let request = app.req(
                            &a.key,
                            pb::ContactCommand {
                                request_id: new_id(),
                                contact_id: id.into(),
                                reason: String::new(),
                            },
                        );
                        async move { client.disable_access(request).await }
                    };
                    assert_eq!(seen(disable(contact).await), seen(disable(never).await));
                    if !a.contacts.values().any(|e| e == email) {
                        let login = |login: &str| {
                            let mut client = app.sessions();
                            let request = app.req(
                                &a.key,
                                pb::LoginRequest {
                                    request_id: new_id(),
                                    login: login.into(),
                                    password: "sunlit7meadow".into(),
                                    client_address: String::new(),
                                },
                            );
                            async move { client.login(request).await }
                        };
                        let theirs = seen(login(email).await);
                        let nobody = seen(login("nobody-at-all@shared.example").await);
                        // Throttling may answer either; never "ok".
                        assert!(
                            !theirs.starts_with("ok"),
                            "{name} logged in {other}'s {email}"
                        );
                        if !theirs.contains("ResourceExhausted")
                            && !nobody.contains("ResourceExhausted")
                        {
                            assert_eq!(theirs, nobody);
                        }
                    }
                }
                for c in b.customers.difference(&a.customers) {
                    let get = |id: &str| {
                        let mut client = app.access();
                        let request = app.req(
                            &a.key,
                            pb::GetCustomerRequest {
                                customer_id: id.into(),
                                min_position: 0,
                            },
                        );
                        async move { client.get_customer(request).await }
                    };
                    assert_eq!(
                        seen(get(c).await),
                        seen(get("NEVER1").await),
                        "{name}/{other}"
                    );
                }
                for token in &b.links {
                    let resolve = |t: &str| {
                        let mut client = app.access();
                        let request =
                            app.req(&a.key, pb::ResolvePortalLinkRequest { token: t.into() });
                        async move { client.resolve_portal_link(request).await }
                    };
                    let theirs = resolve(token).await.expect_err("another tenant's link");
                    let forged = resolve("plk_forged").await.expect_err("a forged link");
                    assert_eq!(
                        (theirs.code(), theirs.message()),
                        (forged.code(), forged.message())
                    );
                    assert_ne!(theirs.code(), Code::Ok);
                    compared += 1;
                }
            }
        }
        assert!(
            compared > 20,
            "the interleaving made too little to compare: {compared}"
        );
    }
}
