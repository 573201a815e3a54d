//! The rules of codes and refresh tokens, given/when/then.

use super::*;
use crate::domain::test_support::{given, then};
use access_catalogue::personal::Personal;

const NOW: i64 = 1_800_000_000_000;
/// A verifier and its S256 challenge (computed apart, with Python's hashlib).
const VERIFIER: &str = "dBjftJeZ4CVP-mJ0kzgbwvVbatN2ty9-0iv1FW-pTJo";
const CHALLENGE: &str = "N27wL20-G8bBH0PlZVaXvtcknAXwdJXz5yTg1gb5c-o";

fn ids() -> (TenantId, GeneratedId) {
    (
        TenantId::parse("acme").expect("tenant"),
        GeneratedId::parse("0123456789abcdef0123456789abcdef").expect("id"),
    )
}

fn issued(challenge: Option<&str>) -> Event {
    Event::OidcGrant(OidcGrantEvent::AuthorizationCodeIssued(
        AuthorizationCodeIssued {
            client_id: "portal".into(),
            contact_id: "c1".into(),
            redirect_uri: "https://shop.example/cb".into(),
            scopes: vec!["openid".into()],
            code_challenge: challenge.map(str::to_owned),
            nonce: Some("n".into()),
            auth_time_ms: NOW,
            expires_at_ms: NOW + CODE_TTL_MS,
            session_id: "s1".into(),
            server_key_id: 1,
            client_address: Personal::clear("192.0.2.1"),
            amr: vec!["pwd".into()],
        },
    ))
}

fn redeem_now<'a>(verifier: Option<&'a str>) -> Redeem<'a> {
    Redeem {
        client_id: "portal",
        redirect_uri: "https://shop.example/cb",
        verifier,
        now_ms: NOW + 1000,
        refresh_ttl_ms: 3_600_000,
    }
}

fn refresh_of(generation: u32) -> Refresh<'static> {
    Refresh {
        client_id: "portal",
        generation,
        now_ms: NOW + 2000,
        refresh_ttl_ms: 3_600_000,
    }
}

#[test]
fn a_verifier_matches_its_s256_challenge_and_nothing_else() {
    assert!(verifier_matches(CHALLENGE, VERIFIER));
    assert!(!verifier_matches(CHALLENGE, &VERIFIER.replace('d', "e")));
    assert!(!verifier_matches(CHALLENGE, "short"));
    assert!(!verifier_matches(CHALLENGE, &format!("{VERIFIER} ")));
}

#[test]
fn a_code_works_once_and_a_replay_ends_the_grant() {
    let (tenant, grant_id) = ids();
    let stream = GrantStream {
        tenant: &tenant,
        grant_id: &grant_id,
    };
    let state: GrantState = given(&[issued(Some(CHALLENGE))]);
    let first = redeem(&stream, &state, &redeem_now(Some(VERIFIER)));
    assert_eq!(first.outcome, Ok(()));
    let state = then(state, &first.changes);
    assert_eq!(state.generation, 1);

    let replay = redeem(&stream, &state, &redeem_now(Some(VERIFIER)));
    assert_eq!(replay.outcome, Err(GrantRefusal::CodeUsed));
    let state = then(state, &replay.changes);
    assert_eq!(state.ended, Some(GrantEnd::CodeReplayed));
    // The refresh token the first exchange gave stops working.
    assert_eq!(
        refresh(&stream, &state, &refresh_of(1)).outcome,
        Err(GrantRefusal::Ended)
    );
    // A third try records nothing more.
    assert!(
        redeem(&stream, &state, &redeem_now(Some(VERIFIER)))
            .changes
            .is_empty()
    );
}

#[test]
fn a_code_is_refused_for_another_client_redirect_verifier_or_after_its_time() {
    let (tenant, grant_id) = ids();
    let stream = GrantStream {
        tenant: &tenant,
        grant_id: &grant_id,
    };
    let state: GrantState = given(&[issued(Some(CHALLENGE))]);
    let cases = [
        (
            Redeem {
                client_id: "other",
                ..redeem_now(Some(VERIFIER))
            },
            GrantRefusal::Unknown,
        ),
        (
            Redeem {
                redirect_uri: "https://shop.example/cb/",
                ..redeem_now(Some(VERIFIER))
            },
            GrantRefusal::RedirectMismatch,
        ),
        (redeem_now(None), GrantRefusal::VerifierMismatch),
        (
            redeem_now(Some(&VERIFIER[1..])),
            GrantRefusal::VerifierMismatch,
        ),
        (
            Redeem {
                now_ms: NOW + CODE_TTL_MS,
                ..redeem_now(Some(VERIFIER))
            },
            GrantRefusal::Expired,
        ),
    ];
    for (request, refusal) in cases {
        let decision = redeem(&stream, &state, &request);
        assert_eq!(decision.outcome, Err(refusal));
        assert!(decision.changes.is_empty(), "{refusal:?} records nothing");
    }
    // Nothing about the code changed: the right request still works.
    assert_eq!(
        redeem(&stream, &state, &redeem_now(Some(VERIFIER))).outcome,
        Ok(())
    );
}

#[test]
fn a_verifier_for_a_code_without_a_challenge_is_refused() {
    let (tenant, grant_id) = ids();
    let stream = GrantStream {
        tenant: &tenant,
        grant_id: &grant_id,
    };
    let state: GrantState = given(&[issued(None)]);
    assert_eq!(
        redeem(&stream, &state, &redeem_now(Some(VERIFIER))).outcome,
        Err(GrantRefusal::VerifierMismatch)
    );
    assert_eq!(redeem(&stream, &state, &redeem_now(None)).outcome, Ok(()));
}

#[test]
fn refresh_tokens_rotate_and_a_replaced_one_ends_the_grant() {
    let (tenant, grant_id) = ids();
    let stream = GrantStream {
        tenant: &tenant,
        grant_id: &grant_id,
    };
    let state: GrantState = given(&[issued(None)]);
    let state = then(
        state.clone(),
        &redeem(&stream, &state, &redeem_now(None)).changes,
    );
    let second = refresh(&stream, &state, &refresh_of(1));
    assert_eq!(second.outcome, Ok(()));
    let state = then(state, &second.changes);
    assert_eq!(state.generation, 2);

    let reused = refresh(&stream, &state, &refresh_of(1));
    assert_eq!(reused.outcome, Err(GrantRefusal::Reused));
    let state = then(state, &reused.changes);
    assert_eq!(state.ended, Some(GrantEnd::RefreshReused));
    // The thief's and the client's current token are both dead now.
    assert_eq!(
        refresh(&stream, &state, &refresh_of(2)).outcome,
        Err(GrantRefusal::Ended)
    );
}

#[test]
fn a_refresh_token_is_refused_unused_past_its_time_or_for_another_client() {
    let (tenant, grant_id) = ids();
    let stream = GrantStream {
        tenant: &tenant,
        grant_id: &grant_id,
    };
    let state: GrantState = given(&[issued(None)]);
    let state = then(
        state.clone(),
        &redeem(&stream, &state, &redeem_now(None)).changes,
    );
    let late = Refresh {
        now_ms: NOW + 1000 + 3_600_000,
        ..refresh_of(1)
    };
    assert_eq!(
        refresh(&stream, &state, &late).outcome,
        Err(GrantRefusal::Expired)
    );
    let other = Refresh {
        client_id: "other",
        ..refresh_of(1)
    };
    assert_eq!(
        refresh(&stream, &state, &other).outcome,
        Err(GrantRefusal::Unknown)
    );
    let future = refresh_of(7);
    assert_eq!(
        refresh(&stream, &state, &future).outcome,
        Err(GrantRefusal::Unknown)
    );
}

#[test]
fn revoking_ends_a_grant_once() {
    let (tenant, grant_id) = ids();
    let stream = GrantStream {
        tenant: &tenant,
        grant_id: &grant_id,
    };
    assert!(revoke(&stream, &GrantState::default(), GrantEnd::LoggedOut).is_empty());
    let state: GrantState = given(&[issued(None)]);
    let changes = revoke(&stream, &state, GrantEnd::AccessLost);
    let state = then(state, &changes);
    assert_eq!(state.ended, Some(GrantEnd::AccessLost));
    assert!(revoke(&stream, &state, GrantEnd::LoggedOut).is_empty());
    assert_eq!(
        redeem(&stream, &state, &redeem_now(None)).outcome,
        Err(GrantRefusal::Ended)
    );
}

#[test]
fn refreshing_never_takes_a_grant_past_its_longest_life() {
    let (tenant, grant_id) = ids();
    let stream = GrantStream {
        tenant: &tenant,
        grant_id: &grant_id,
    };
    let state: GrantState = given(&[issued(None)]);
    let state = then(
        state.clone(),
        &redeem(&stream, &state, &redeem_now(None)).changes,
    );
    // Refreshed just before the end: the new token ends with the grant.
    let late = Refresh {
        now_ms: NOW + MAX_GRANT_MS - 1000,
        ..refresh_of(1)
    };
    let mut state = state;
    state.refresh_expires_at_ms = i64::MAX;
    let decision = refresh(&stream, &state, &late);
    assert_eq!(decision.outcome, Ok(()));
    let state = then(state, &decision.changes);
    assert_eq!(state.refresh_expires_at_ms, NOW + MAX_GRANT_MS);
    let after = Refresh {
        now_ms: NOW + MAX_GRANT_MS,
        ..refresh_of(2)
    };
    assert_eq!(
        refresh(&stream, &state, &after).outcome,
        Err(GrantRefusal::Expired)
    );
}
