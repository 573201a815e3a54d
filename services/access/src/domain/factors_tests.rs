use super::*;
use crate::domain::Aggregate;
use access_catalogue::catalogue::{ContactInvited, SiteRule};

const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; // "12345678901234567890"
const NOW: i64 = 1_111_111_111_000;

fn code(step: u64) -> String {
    format!("{:06}", totp::code_at(b"12345678901234567890", step))
}

fn with_of<R>(f: impl FnOnce(Of<'_>) -> R) -> R {
    let (tenant, contact) = (TenantId::trusted("acme"), GeneratedId::trusted("c1"));
    f(Of {
        tenant: &tenant,
        contact_id: &contact,
    })
}

fn invited() -> ContactState {
    ContactState::default().evolve(&Event::Contact(ContactEvent::ContactInvited(
        ContactInvited {
            contact_id: "c1".into(),
            customer_id: "C1".into(),
            email: Personal::clear("bob@acme.example"),
            identity_id: "id1".into(),
            site_rule: SiteRule::TenantDefault,
            invitation_id: "i1".into(),
        },
    )))
}

fn apply(state: ContactState, changes: &[Change]) -> ContactState {
    changes.iter().fold(state, |s, c| s.evolve(&c.event))
}

fn enrolled() -> ContactState {
    let changes = with_of(|of| {
        add_totp(
            &invited(),
            of,
            Enrolment {
                factor_id: GeneratedId::trusted("f1"),
                secret: SECRET.into(),
                code: code(totp::step_at(NOW)),
                now_ms: NOW,
                recovery_codes_sha256: vec![
                    recovery_digest("ABCD-EFGH"),
                    recovery_digest("IJKL-MNOP"),
                ],
            },
        )
    })
    .unwrap();
    apply(invited(), &changes)
}

fn wrong(e: DomainError) -> bool {
    matches!(
        e,
        DomainError::Unauthenticated {
            reason: Reason::BadCredentials,
            ..
        }
    )
}

#[test]
fn an_app_is_enrolled_by_a_first_code_once() {
    let bad = with_of(|of| {
        add_totp(
            &invited(),
            of,
            Enrolment {
                factor_id: GeneratedId::trusted("f1"),
                secret: SECRET.into(),
                code: code(totp::step_at(NOW) + 5),
                now_ms: NOW,
                recovery_codes_sha256: Vec::new(),
            },
        )
    });
    assert!(matches!(bad, Err(DomainError::Invalid(_))));
    let state = enrolled();
    let t = state.totp.clone().expect("enrolled");
    assert_eq!(
        (t.factor_id.as_str(), t.last_step),
        ("f1", totp::step_at(NOW))
    );
    let twice = with_of(|of| {
        add_totp(
            &state,
            of,
            Enrolment {
                factor_id: GeneratedId::trusted("f2"),
                secret: SECRET.into(),
                code: code(totp::step_at(NOW)),
                now_ms: NOW,
                recovery_codes_sha256: Vec::new(),
            },
        )
    });
    assert!(matches!(twice, Err(DomainError::AlreadyExists(_))));
}

#[test]
fn the_confirming_code_and_every_used_code_work_no_more() {
    let state = enrolled();
    let now = totp::step_at(NOW);
    let replay = with_of(|of| use_second_factor(&state, of, &code(now), NOW));
    assert!(replay.is_err_and(wrong), "the enrolment's own code");
    let next = with_of(|of| use_second_factor(&state, of, &code(now + 1), NOW)).unwrap();
    let state = apply(state, &next);
    let again = with_of(|of| use_second_factor(&state, of, &code(now + 1), NOW));
    assert!(again.is_err_and(wrong), "a code used once");
    let garbage = with_of(|of| use_second_factor(&state, of, "000000x", NOW));
    assert!(garbage.is_err_and(wrong));
}

#[test]
fn a_recovery_code_works_once_whatever_its_case_and_dashes() {
    let state = enrolled();
    let used = with_of(|of| use_second_factor(&state, of, "ijklmnop", NOW)).unwrap();
    let Event::Contact(ContactEvent::SecondFactorUsed(u)) = &used[0].event else {
        panic!()
    };
    assert_eq!((u.step, u.recovery_code), (None, Some(1)));
    let state = apply(state, &used);
    let again = with_of(|of| use_second_factor(&state, of, "IJKL-MNOP", NOW));
    assert!(again.is_err_and(wrong));
    assert!(with_of(|of| use_second_factor(&state, of, "abcd efgh", NOW)).is_ok());
}

#[test]
fn a_removed_factor_asks_for_nothing_more() {
    let state = enrolled();
    let staff = crate::domain::policy::Staff::new(crate::domain::policy::Role::InHouse);
    assert!(matches!(
        with_of(|of| remove_one(&state, of, (&staff, None), "f9", "lost phone")),
        Err(DomainError::NotFound(_))
    ));
    assert!(matches!(
        with_of(|of| remove_one(&state, of, (&staff, None), "f1", " ")),
        Err(DomainError::Invalid(_))
    ));
    let removed = with_of(|of| remove_one(&state, of, (&staff, None), "f1", "lost phone")).unwrap();
    let state = apply(state, &removed);
    assert_eq!(state.totp, None);
    assert!(matches!(
        with_of(|of| use_second_factor(&state, of, &code(totp::step_at(NOW) + 1), NOW)),
        Err(DomainError::FailedPrecondition { .. })
    ));
}

fn registration(id: &str, name: &str) -> crate::domain::passkeys::Registration {
    crate::domain::passkeys::Registration {
        factor_id: id.into(),
        name: name.into(),
        credential: format!("{{\"cred\":\"{id}\"}}"),
    }
}

#[test]
fn passkeys_are_named_counted_and_removed_one_at_a_time() {
    use crate::domain::passkeys::{self, MAX_PASSKEYS};
    let staff = crate::domain::policy::Staff::new(crate::domain::policy::Role::InHouse);
    let mut state = enrolled();
    for bad in ["", "  ", "a\u{7}b", &"x".repeat(65)] {
        assert!(
            matches!(
                with_of(|of| passkeys::add(&state, of, registration("p0", bad))),
                Err(DomainError::Invalid(_))
            ),
            "{bad:?}"
        );
    }
    for i in 0..MAX_PASSKEYS {
        let added =
            with_of(|of| passkeys::add(&state, of, registration(&format!("p{i}"), " laptop ")))
                .unwrap();
        let Event::Contact(ContactEvent::PasskeyAdded(p)) = &added[0].event else {
            panic!()
        };
        assert_eq!(p.name, "laptop", "trimmed");
        state = apply(state, &added);
    }
    assert!(matches!(
        with_of(|of| passkeys::add(&state, of, registration("p99", "one more"))),
        Err(DomainError::FailedPrecondition {
            reason: Reason::LimitReached,
            ..
        })
    ));
    assert_eq!(
        all_of(&state).len(),
        MAX_PASSKEYS + 1,
        "ten keys and the app"
    );
    assert_eq!(kind_of(&state, "p3"), Some("passkey"));
    let removed = with_of(|of| remove_one(&state, of, (&staff, None), "p3", "stolen")).unwrap();
    let state = apply(state, &removed);
    assert_eq!(state.passkeys.len(), MAX_PASSKEYS - 1);
    assert!(state.totp.is_some(), "the app stays");
    let reset = with_of(|of| reset(&state, of, (&staff, None), "called back")).unwrap();
    assert_eq!(reset.len(), MAX_PASSKEYS, "one removal per factor");
    let state = apply(state, &reset);
    assert!(state.passkeys.is_empty() && state.totp.is_none());
}

#[test]
fn a_passkey_answers_each_challenge_once_and_none_older() {
    use crate::domain::passkeys;
    let added = with_of(|of| passkeys::add(&invited(), of, registration("p1", "phone"))).unwrap();
    let state = apply(invited(), &added);
    let used = with_of(|of| passkeys::used(&state, of, "p1", 2_000, None)).unwrap();
    let state = apply(state, &used);
    for (factor, at) in [("p1", 2_000), ("p1", 1_999), ("p2", 3_000)] {
        assert!(
            with_of(|of| passkeys::used(&state, of, factor, at, None)).is_err_and(wrong),
            "{factor} at {at}"
        );
    }
    let moved =
        with_of(|of| passkeys::used(&state, of, "p1", 2_001, Some("{\"n\":2}".into()))).unwrap();
    let state = apply(state, &moved);
    assert_eq!(
        state.passkeys[0].credential, "{\"n\":2}",
        "the counter moved"
    );
}
