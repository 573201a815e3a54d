//! Each public type from the stored events that stand for it; personal data
//! withheld, erased or shown; a person's change heard by each of their logins.
//! The supplier's own records (tenant, customers, invitations, links) are in
//! `map_tests_records.rs`.

use super::*;
use access_catalogue::catalogue::*;
use access_catalogue::envelope::{Aggregate, ENVELOPE_VERSION, StreamId};
use std::collections::{BTreeSet, HashMap};

#[derive(Default)]
struct Known {
    contacts: HashMap<String, String>,
    links: HashMap<String, String>,
    invitations: HashMap<String, String>,
}

impl Facts for Known {
    fn customer_of_contact(&self, _tenant: &str, contact_id: &str) -> Option<String> {
        self.contacts.get(contact_id).cloned()
    }
    fn customer_of_link(&self, _tenant: &str, link_id: &str) -> Option<String> {
        self.links.get(link_id).cloned()
    }
    fn contact_of_invitation(&self, _tenant: &str, invitation_id: &str) -> Option<String> {
        self.invitations.get(invitation_id).cloned()
    }
}

fn known() -> Known {
    let mut k = Known::default();
    k.contacts.insert("c1".into(), "cust1".into());
    k.contacts.insert("c9".into(), "cust9".into());
    k.links.insert("l1".into(), "cust1".into());
    k.invitations.insert("i1".into(), "c1".into());
    k
}

const ALL: Disclosure = Disclosure { personal: true };
const NO_PERSONAL: Disclosure = Disclosure { personal: false };

fn envelope(aggregate: Aggregate, tenant: &str, id: &str, actor: Actor) -> Envelope {
    Envelope {
        envelope_version: ENVELOPE_VERSION,
        position: 42_001,
        stream: StreamId::new(aggregate, tenant, id).expect("a stream"),
        stream_version: 1,
        event_id: uuid::Uuid::from_u128(7),
        event_type: String::new(),
        schema_version: 1,
        occurred_at_ms: 1_700_000_000_000,
        tenant: Some(tenant.into()),
        actor,
        correlation_id: uuid::Uuid::from_u128(9),
        causation_id: None,
        request_id: "acme/r1".into(),
        prev_hash: [0; 32],
        hash: [0; 32],
        payload: Vec::new(),
    }
}

fn staff() -> Actor {
    Actor::ApiKey {
        key_id: "k1".into(),
        role: "admin".into(),
    }
}

/// The one public event of a stored event on `aggregate` `id` of `acme`.
fn one(aggregate: Aggregate, id: &str, event: Event) -> pe::Event {
    let mut out = public_events(
        &envelope(aggregate, "acme", id, staff()),
        &event,
        &known(),
        ALL,
    );
    assert_eq!(out.len(), 1, "{event:?}");
    out.remove(0)
}

fn change(e: pe::Event) -> Change {
    e.change.expect("a change")
}

fn email(text: &str) -> Personal {
    Personal::clear(text)
}

fn erased() -> Personal {
    let mut p = Personal::clear("gone@shop.example");
    p.seal("c1", &[3; 32]);
    p.open(None);
    p
}

fn sealed() -> Personal {
    let mut p = Personal::clear("closed@shop.example");
    p.seal("c1", &[3; 32]);
    p
}

fn invited(email: Personal) -> Event {
    Event::Contact(ContactEvent::ContactInvited(ContactInvited {
        contact_id: "c1".into(),
        customer_id: "cust1".into(),
        email,
        identity_id: "id1".into(),
        site_rule: SiteRule::OneSite("north".into()),
        invitation_id: "i1".into(),
    }))
}

fn access(reason: &str) -> AccessChanged {
    AccessChanged {
        reason: reason.into(),
    }
}

#[test]
fn every_public_type_comes_from_a_stored_event_with_its_envelope() {
    let e = one(Aggregate::Contact, "c1", invited(email("ann@shop.example")));
    assert_eq!(e.r#type, "contact.invited");
    assert_eq!(
        (e.position, e.version, e.tenant.as_str()),
        (42_001, 1, "acme")
    );
    assert_eq!(e.id, uuid::Uuid::from_u128(7).to_string());
    assert_eq!(e.correlation_id, uuid::Uuid::from_u128(9).to_string());
    assert_eq!(e.occurred_at_ms, 1_700_000_000_000);
    let actor = e.actor.clone().expect("an actor");
    assert_eq!(
        (actor.kind.as_str(), actor.id.as_str(), actor.role.as_str()),
        ("api_key", "k1", "admin")
    );
    assert!(!e.personal_withheld);
    let Change::ContactInvited(c) = change(e) else {
        panic!()
    };
    assert_eq!(c.contact_id, "c1");
    assert_eq!(c.customer_id, "cust1");
    assert_eq!(c.invitation_id, "i1");
    assert_eq!(
        c.email,
        Some(pe::Personal {
            value: "ann@shop.example".into(),
            erased: false
        })
    );
    assert_eq!(
        c.site_rule,
        Some(pe::SiteRule {
            kind: "one_site".into(),
            site: "north".into()
        })
    );
}

#[test]
fn personal_data_is_withheld_from_a_role_that_may_not_read_it_and_erased_stays_erased() {
    let e = envelope(Aggregate::Contact, "acme", "c1", staff());
    let withheld = public_events(
        &e,
        &invited(email("ann@shop.example")),
        &known(),
        NO_PERSONAL,
    );
    assert!(withheld[0].personal_withheld);
    let Some(Change::ContactInvited(c)) = withheld[0].change.clone() else {
        panic!()
    };
    assert_eq!(
        c.email,
        Some(pe::Personal {
            value: String::new(),
            erased: false
        })
    );

    for disclosure in [ALL, NO_PERSONAL] {
        let gone = public_events(&e, &invited(erased()), &known(), disclosure);
        let Some(Change::ContactInvited(c)) = gone[0].change.clone() else {
            panic!()
        };
        assert_eq!(
            c.email,
            Some(pe::Personal {
                value: String::new(),
                erased: true
            })
        );
    }
    // A value never opened is not sent, whatever the role.
    let closed = public_events(&e, &invited(sealed()), &known(), ALL);
    let Some(Change::ContactInvited(c)) = closed[0].change.clone() else {
        panic!()
    };
    assert_eq!(c.email.map(|p| p.value), Some(String::new()));
    assert!(closed[0].personal_withheld);
}

#[test]
fn a_contacts_changes_name_the_contact_and_its_customer() {
    let cases: Vec<(Event, &str, &str)> = vec![
        (
            Event::Contact(ContactEvent::ContactActivated(ContactActivated {
                invitation_id: "i1".into(),
            })),
            "contact.registered",
            "",
        ),
        (
            Event::Contact(ContactEvent::ContactAwaitingApproval(access(""))),
            "contact.awaiting_approval",
            "",
        ),
        (
            Event::Contact(ContactEvent::ContactApproved(access("known"))),
            "contact.approved",
            "known",
        ),
        (
            Event::Contact(ContactEvent::ContactRejected(access("unknown"))),
            "contact.rejected",
            "unknown",
        ),
        (
            Event::Contact(ContactEvent::FirstLogin(FirstLogin {})),
            "contact.activated",
            "",
        ),
        (
            Event::Contact(ContactEvent::AccessDisabled(access("unpaid"))),
            "contact.disabled",
            "unpaid",
        ),
        (
            Event::Contact(ContactEvent::AccessRestored(access("paid"))),
            "contact.restored",
            "paid",
        ),
        (
            Event::Contact(ContactEvent::AccessRevoked(access("left"))),
            "contact.revoked",
            "left",
        ),
        (
            Event::Contact(ContactEvent::PasswordResetCompleted(
                PasswordResetCompleted { generation: 2 },
            )),
            "password.reset",
            "",
        ),
        (
            Event::Contact(ContactEvent::LoginFailuresCleared(LoginFailuresCleared {
                reason: "phoned".into(),
            })),
            "login.unlocked",
            "phoned",
        ),
    ];
    for (event, kind, reason) in cases {
        let e = one(Aggregate::Contact, "c1", event);
        assert_eq!(e.r#type, kind);
        let changed = match change(e) {
            Change::ContactRegistered(c)
            | Change::ContactAwaitingApproval(c)
            | Change::ContactApproved(c)
            | Change::ContactRejected(c)
            | Change::ContactActivated(c)
            | Change::ContactDisabled(c)
            | Change::ContactRestored(c)
            | Change::ContactRevoked(c)
            | Change::PasswordReset(c)
            | Change::LoginUnlocked(c) => c,
            other => panic!("{kind}: {other:?}"),
        };
        assert_eq!(changed.contact_id, "c1", "{kind}");
        assert_eq!(changed.customer_id, "cust1", "{kind}");
        assert_eq!(changed.reason, reason, "{kind}");
    }
}

#[test]
fn sign_ins_passwords_and_mail() {
    let failed = one(
        Aggregate::Contact,
        "c1",
        Event::Contact(ContactEvent::LoginFailed(LoginFailed {
            at_ms: 5,
            client_address: email("203.0.113.9"),
        })),
    );
    assert_eq!(failed.r#type, "login.failed");
    let Change::LoginFailed(f) = change(failed) else {
        panic!()
    };
    assert_eq!(
        f.client_address.map(|p| p.value).as_deref(),
        Some("203.0.113.9")
    );

    let locked = one(
        Aggregate::Contact,
        "c1",
        Event::Contact(ContactEvent::LoginLocked(LoginLocked {
            until_ms: 99,
            failures: 5,
        })),
    );
    assert_eq!(locked.r#type, "login.locked");
    let Change::LoginLocked(l) = change(locked) else {
        panic!()
    };
    assert_eq!(
        (l.until_ms, l.failures, l.customer_id.as_str()),
        (99, 5, "cust1")
    );

    let code = one(
        Aggregate::Contact,
        "c1",
        Event::Contact(ContactEvent::LoginCodeExchanged(LoginCodeExchanged {
            nonce: "n".into(),
        })),
    );
    assert_eq!(code.r#type, "login.succeeded");
    let Change::LoginSucceeded(s) = change(code) else {
        panic!()
    };
    assert_eq!(s.method, "login_code");

    let temporary = one(
        Aggregate::Contact,
        "c1",
        Event::Contact(ContactEvent::LocalPasswordSet(LocalPasswordSet {
            password_hash: "$argon2id$secret".into(),
            temporary: true,
            generated: None,
        })),
    );
    assert_eq!(temporary.r#type, "password.changed");
    let Change::PasswordChanged(p) = change(temporary) else {
        panic!()
    };
    assert!(p.temporary);

    let reset = one(
        Aggregate::Contact,
        "c1",
        Event::Contact(ContactEvent::PasswordResetRequested(
            PasswordResetRequested {
                generation: 1,
                expires_at_ms: 77,
                by_staff: true,
                first_time: false,
            },
        )),
    );
    assert_eq!(reset.r#type, "password.reset_requested");
    let Change::PasswordResetRequested(r) = change(reset) else {
        panic!()
    };
    assert_eq!((r.by_staff, r.expires_at_ms), (true, 77));

    for (event, kind) in [
        (ContactEvent::EmailSent(delivery("")), "mail.delivered"),
        (
            ContactEvent::EmailDeliveryFailed(delivery("mailbox full")),
            "mail.failed",
        ),
    ] {
        let e = one(Aggregate::Contact, "c1", Event::Contact(event));
        assert_eq!(e.r#type, kind);
        let (Change::MailDelivered(m) | Change::MailFailed(m)) = change(e) else {
            panic!()
        };
        assert_eq!(
            (
                m.kind.as_str(),
                m.source_event_id.as_str(),
                m.customer_id.as_str()
            ),
            ("invitation", "ev1", "cust1")
        );
    }
}

fn delivery(reason: &str) -> EmailDelivery {
    EmailDelivery {
        source_event_id: "ev1".into(),
        kind: "invitation".into(),
        reason: reason.into(),
    }
}

#[test]
fn no_secret_of_a_stored_event_reaches_a_public_one() {
    let e = one(
        Aggregate::Contact,
        "c1",
        Event::Contact(ContactEvent::LocalPasswordSet(LocalPasswordSet {
            password_hash: "$argon2id$v=19$secret".into(),
            temporary: false,
            generated: None,
        })),
    );
    assert!(!format!("{e:?}").contains("argon2id"));
    let key = one(
        Aggregate::Tenant,
        "acme",
        Event::Tenant(TenantEvent::ApiKeyIssued(ApiKeyIssued {
            key_id: "k2".into(),
            role: "rep".into(),
            key_sha256: [0xab; 32],
            name: "Rep app".into(),
            rep_id: Some("rep7".into()),
        })),
    );
    assert_eq!(key.r#type, "api_key.issued");
    assert!(
        !format!("{key:?}").contains("171, 171"),
        "the key's digest stays in"
    );
    let Change::ApiKeyIssued(k) = change(key) else {
        panic!()
    };
    assert_eq!(
        (k.key_id.as_str(), k.role.as_str(), k.rep_id.as_str()),
        ("k2", "rep", "rep7")
    );
}

#[test]
fn a_lock_lifted_by_a_sign_in_and_a_cleared_local_password_are_bookkeeping() {
    let e = envelope(
        Aggregate::Contact,
        "acme",
        "c1",
        Actor::Contact {
            contact_id: "c1".into(),
        },
    );
    let cleared = Event::Contact(ContactEvent::LoginFailuresCleared(LoginFailuresCleared {
        reason: String::new(),
    }));
    assert!(public_events(&e, &cleared, &known(), ALL).is_empty());
    let local = Event::Contact(ContactEvent::LocalPasswordCleared(LocalPasswordCleared {}));
    assert!(public_events(&e, &local, &known(), ALL).is_empty());
}

#[test]
fn a_persons_erasure_is_heard_by_each_of_their_logins_in_its_own_tenant() {
    let e = envelope(Aggregate::Identity, GLOBAL_TENANT, "id1", Actor::Operator);
    let forgotten = Event::Identity(IdentityEvent::IdentityForgotten(IdentityForgotten {
        reason: "art. 17".into(),
        contacts: vec![
            ("acme".into(), "c1".into()),
            ("beta".into(), "c9".into()),
            ("acme".into(), "c2".into()),
        ],
    }));
    let out = public_events(&e, &forgotten, &known(), ALL);
    let seen: Vec<_> = out
        .iter()
        .map(|e| (e.tenant.as_str(), e.r#type.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("acme", "contact.forgotten"),
            ("beta", "contact.forgotten"),
            ("acme", "contact.forgotten")
        ]
    );
    // Parts count within a tenant: beta's subscriber learns nothing of acme.
    let parts: Vec<_> = out.iter().map(|e| (e.tenant.as_str(), e.part)).collect();
    assert_eq!(parts, [("acme", 0), ("beta", 0), ("acme", 1)]);
    let Some(Change::ContactForgotten(c)) = out[1].change.clone() else {
        panic!()
    };
    assert_eq!(
        (c.contact_id.as_str(), c.customer_id.as_str()),
        ("c9", "cust9")
    );
    assert_ne!(out[0].id, out[1].id, "one id per delivery, stable");
    assert_eq!(
        out[0].id,
        public_events(&e, &forgotten, &known(), ALL)[0].id
    );

    let password = Event::Identity(IdentityEvent::PasswordSet(PasswordSet {
        password_hash: "$argon2id$x".into(),
    }));
    // Said by the contact's own event beside it (registered, reset).
    assert!(public_events(&e, &password, &known(), ALL).is_empty());
    let registered = Event::Identity(IdentityEvent::IdentityRegistered(IdentityRegistered {
        email: email("a@b.example"),
    }));
    assert!(public_events(&e, &registered, &known(), ALL).is_empty());
}

#[path = "map_tests_records.rs"]
mod records;

#[test]
fn the_tests_above_cover_every_public_type() {
    // Every name `kind` gives, against the proto's list of changes: a type
    // added to the proto without a mapping, or a mapping without a test
    // above, shows here.
    let tests = [
        include_str!("map_tests.rs"),
        include_str!("map_tests_records.rs"),
    ];
    let names: BTreeSet<&str> = tests
        .iter()
        .flat_map(|t| t.split('"'))
        .filter(|s| {
            s.contains('.')
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
        })
        .collect();
    let descriptor = include_str!("../../../../proto/access/v1/events.proto");
    let oneof = descriptor
        .split("oneof change {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("the oneof");
    let fields = oneof.lines().filter(|l| l.trim().ends_with(';')).count();
    let public: BTreeSet<&str> = include_str!("map.rs")
        .lines()
        .filter_map(|l| l.split("=> \"").nth(1))
        .filter_map(|l| l.split('"').next())
        .filter(|name| name.contains('.'))
        .collect();
    assert_eq!(public.len(), fields, "one name per change in the proto");
    assert_eq!(
        public,
        TYPES.iter().copied().collect::<BTreeSet<_>>(),
        "the list subscribers filter by"
    );
    let untested: Vec<_> = public.difference(&names).collect();
    assert!(untested.is_empty(), "no test names {untested:?}");
}

#[test]
fn a_sign_in_to_a_client_is_a_login_and_the_rest_of_its_grant_is_bookkeeping() {
    let issued = Event::OidcGrant(OidcGrantEvent::AuthorizationCodeIssued(
        AuthorizationCodeIssued {
            client_id: "shop".into(),
            contact_id: "c1".into(),
            redirect_uri: "https://shop.acme.example/cb".into(),
            scopes: vec!["openid".into()],
            code_challenge: None,
            nonce: None,
            auth_time_ms: 1234,
            expires_at_ms: 5678,
            session_id: "s".into(),
            server_key_id: 1,
            client_address: Personal::clear("203.0.113.9"),
            amr: vec!["pwd".into()],
        },
    ));
    let signed_in = one(Aggregate::OidcGrant, "g1", issued);
    assert_eq!(signed_in.r#type, "login.succeeded");
    let Change::LoginSucceeded(s) = change(signed_in) else {
        panic!()
    };
    assert_eq!(
        (
            s.method.as_str(),
            s.client_id.as_str(),
            s.contact_id.as_str(),
            s.customer_id.as_str(),
            s.auth_time_ms
        ),
        ("oidc", "shop", "c1", "cust1", 1234)
    );
    let e = envelope(Aggregate::OidcGrant, "acme", "g1", Actor::Operator);
    let revoked = Event::OidcGrant(OidcGrantEvent::GrantRevoked(GrantRevoked {
        reason: GrantEnd::AccessLost,
    }));
    assert!(public_events(&e, &revoked, &known(), ALL).is_empty());
}

#[test]
fn second_factors_enrolled_used_and_removed_are_told_without_their_secrets() {
    let added = one(
        Aggregate::Contact,
        "c1",
        Event::Contact(ContactEvent::TotpAdded(TotpAdded {
            factor_id: "f1".into(),
            secret: Personal::clear("GEZDGNBVGY3TQOJQ"),
            identity_id: "id1".into(),
            confirmed_step: 7,
            recovery_codes_sha256: vec![[1; 32]],
        })),
    );
    assert_eq!(added.r#type, "second_factor.added");
    let Change::SecondFactorAdded(a) = change(added.clone()) else {
        panic!()
    };
    assert_eq!(
        (
            a.factor_id.as_str(),
            a.kind.as_str(),
            a.customer_id.as_str()
        ),
        ("f1", "totp", "cust1")
    );
    assert!(!format!("{added:?}").contains("GEZDGNBV"), "no secret");
    let removed = one(
        Aggregate::Contact,
        "c1",
        Event::Contact(ContactEvent::SecondFactorRemoved(SecondFactorRemoved {
            factor_id: "f1".into(),
            reason: "lost phone".into(),
            kind: "totp".into(),
        })),
    );
    assert_eq!(removed.r#type, "second_factor.removed");
    let Change::SecondFactorRemoved(r) = change(removed) else {
        panic!()
    };
    assert_eq!(r.reason, "lost phone");
    for (step, recovery, method) in [(Some(9), None, "totp"), (None, Some(0), "recovery_code")] {
        let used = one(
            Aggregate::Contact,
            "c1",
            Event::Contact(ContactEvent::SecondFactorUsed(SecondFactorUsed {
                factor_id: "f1".into(),
                step,
                recovery_code: recovery,
            })),
        );
        assert_eq!(used.r#type, "login.succeeded");
        let Change::LoginSucceeded(s) = change(used) else {
            panic!()
        };
        assert_eq!(s.method, method);
    }
}
