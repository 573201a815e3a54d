use super::*;
use access_catalogue::catalogue::{ApiKeyIssued, ContactInvited, LocalPasswordSet};
use access_catalogue::catalogue::{ContactEvent, SiteRule};

#[test]
fn credential_fields_are_redacted_at_any_depth() {
    let e = Event::Contact(ContactEvent::LocalPasswordSet(LocalPasswordSet {
        password_hash: "$argon2id$v=19$secret".into(),
        temporary: true,
        generated: None,
    }));
    let json = redacted_json(&e);
    assert!(!json.contains("argon2"), "{json}");
    assert!(json.contains(r#""password_hash":"[redacted]""#), "{json}");
    let k = Event::Tenant(TenantEvent::ApiKeyIssued(ApiKeyIssued {
        key_id: "k1".into(),
        role: "rep".into(),
        key_sha256: [7; 32],
        name: "anna".into(),
        rep_id: Some("R1".into()),
    }));
    let json = redacted_json(&k);
    assert!(json.contains(r#""key_sha256":"[redacted]""#), "{json}");
    assert!(json.contains(r#""name":"anna""#), "{json}");
}

#[test]
fn an_invitation_reads_as_a_sentence_with_names() {
    let mut names = Names::default();
    names
        .keys
        .insert("k_anna".into(), ("rep".into(), "anna".into()));
    names.customers.insert("C001".into(), "Acme Ltd".into());
    let event = Event::Contact(ContactEvent::ContactInvited(ContactInvited {
        contact_id: "c1".into(),
        customer_id: "C001".into(),
        email: "bob@acme.example".into(),
        identity_id: "i1".into(),
        site_rule: SiteRule::OneSite("Leeds".into()),
        invitation_id: "inv1".into(),
    }));
    let envelope = test_envelope(
        "contact.t.c1",
        Actor::ApiKey {
            key_id: "k_anna".into(),
            role: "rep".into(),
        },
    );
    assert_eq!(
        names.summary(&envelope, &event),
        "2026-03-02 14:10 rep key 'anna' (k_anna) invited bob@acme.example to Acme Ltd (C001), site Leeds"
    );
    names.learn(&envelope, &event);
    assert!(names.concerns(&Subject::Customer("C001".into()), &envelope, &event));
    assert!(names.concerns(&Subject::Contact("c1".into()), &envelope, &event));
    assert!(names.concerns(&Subject::Key("k_anna".into()), &envelope, &event));
    assert!(!names.concerns(&Subject::Customer("C002".into()), &envelope, &event));
}

fn test_envelope(stream: &str, actor: Actor) -> Envelope {
    Envelope {
        envelope_version: 1,
        position: 1,
        stream: access_catalogue::StreamId::parse(stream).expect("stream"),
        stream_version: 1,
        event_id: uuid::Uuid::nil(),
        event_type: String::new(),
        schema_version: 1,
        // 2026-03-02 14:10:00 UTC
        occurred_at_ms: 1_772_460_600_000,
        tenant: Some("t".into()),
        actor,
        correlation_id: uuid::Uuid::nil(),
        causation_id: None,
        request_id: String::new(),
        prev_hash: [0; 32],
        payload: Vec::new(),
        hash: [0; 32],
    }
}
