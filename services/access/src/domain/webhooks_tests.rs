use super::*;
use crate::domain::policy::Role;

fn staff(role: Role) -> Staff {
    Staff { role, rep_id: None }
}

fn settings(url: &str) -> WebhookSettings {
    WebhookSettings {
        url: url.into(),
        event_types: vec!["contact.registered".into()],
        description: "ERP".into(),
    }
}

fn point(position: u64, part: u32) -> FeedPoint {
    FeedPoint { position, part }
}

const TENANT: &str = "acme";
const ID: &str = "w1";

fn with_hook<R>(f: impl FnOnce(Hook<'_>) -> R) -> R {
    let (tenant, id) = (TenantId::trusted(TENANT), GeneratedId::trusted(ID));
    f(Hook {
        tenant: &tenant,
        id: &id,
    })
}

fn given(changes: &[Vec<Change>]) -> WebhookState {
    changes
        .iter()
        .flatten()
        .fold(WebhookState::default(), |s, c| s.evolve(&c.event))
}

fn created_at(position: u64) -> Vec<Change> {
    with_hook(|h| {
        create(
            &WebhookState::default(),
            h,
            &staff(Role::Admin),
            settings("https://erp.acme.example/hooks"),
            (1, point(position, 0)),
        )
    })
    .unwrap()
}

fn delivered(replay: bool, after: FeedPoint, through: FeedPoint) -> Progress {
    Progress::Delivered(WebhookDelivered {
        replay,
        after,
        through,
        count: 1,
        last_event_id: "e".into(),
    })
}

fn reason(e: DomainError) -> Option<Reason> {
    match e {
        DomainError::FailedPrecondition { reason, .. } => Some(reason),
        _ => None,
    }
}

#[test]
fn urls_are_https_or_plain_http_to_this_machine() {
    let known = |t: &str| t == "contact.registered";
    assert!(check_settings(&settings("https://erp.acme.example/h"), known).is_empty());
    assert!(check_settings(&settings("http://127.0.0.1:9000/h"), known).is_empty());
    for bad in [
        "http://erp.acme.example/h",
        "ftp://erp.acme.example/h",
        "https://user@erp.acme.example/h",
        "erp.acme.example",
    ] {
        let problems = check_settings(&settings(bad), known);
        assert_eq!(problems.len(), 1, "{bad}");
        assert_eq!(problems[0].field, "url");
    }
}

#[test]
fn event_types_are_public_types_named_once() {
    let mut s = settings("https://erp.acme.example/h");
    s.event_types = vec![
        "contact.registered".into(),
        "contact.updated_by_magic".into(),
        "contact.registered".into(),
    ];
    let problems = check_settings(&s, |t| t == "contact.registered");
    let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["event_types[1]", "event_types[2]"]);
}

#[test]
fn only_admins_manage_webhooks() {
    for role in [
        Role::InHouse,
        Role::Rep,
        Role::Service,
        Role::Auditor,
        Role::Subscriber,
    ] {
        let refused = with_hook(|h| {
            create(
                &WebhookState::default(),
                h,
                &staff(role),
                settings("https://erp.acme.example/h"),
                (1, point(0, 0)),
            )
        });
        assert!(
            matches!(refused, Err(DomainError::PermissionDenied { .. })),
            "{role:?}"
        );
        let state = given(&[created_at(7)]);
        assert!(with_hook(|h| rotate_secret(&state, h, &staff(role), 1)).is_err());
        assert!(with_hook(|h| remove(&state, h, &staff(role), "x")).is_err());
    }
}

#[test]
fn a_new_webhook_starts_at_the_head_and_each_record_continues_the_last() {
    let state = given(&[created_at(7)]);
    assert_eq!(state.cursor, point(7, 0));
    assert_eq!(state.generation, 1);
    let first =
        with_hook(|h| progress(&state, h, delivered(false, point(7, 0), point(9, 1)))).unwrap();
    let state = given(&[created_at(7), first.clone()]);
    assert_eq!(state.cursor, point(9, 1));
    // A second worker that delivered the same events cannot record them.
    let again = with_hook(|h| progress(&state, h, delivered(false, point(7, 0), point(9, 1))));
    assert_eq!(again.err().and_then(reason), Some(Reason::Conflict));
    // Nor can a record go backwards or stand still.
    let still = with_hook(|h| progress(&state, h, delivered(false, point(9, 1), point(9, 1))));
    assert_eq!(still.err().and_then(reason), Some(Reason::Conflict));
}

#[test]
fn a_webhook_that_gave_up_records_nothing_until_resumed() {
    let gave_up = with_hook(|h| {
        progress(
            &given(&[created_at(7)]),
            h,
            Progress::GaveUp(WebhookGaveUp {
                replay: false,
                at: point(8, 0),
                event_id: "e8".into(),
                attempts: 40,
                error: "HTTP 503".into(),
            }),
        )
    })
    .unwrap();
    let state = given(&[created_at(7), gave_up.clone()]);
    assert!(state.gave_up);
    let refused = with_hook(|h| progress(&state, h, delivered(false, point(7, 0), point(8, 0))));
    assert_eq!(refused.err().and_then(reason), Some(Reason::Conflict));
    let resumed = with_hook(|h| resume(&state, h, &staff(Role::Admin))).unwrap();
    let state = given(&[created_at(7), gave_up, resumed]);
    assert!(!state.gave_up);
    assert!(with_hook(|h| progress(&state, h, delivered(false, point(7, 0), point(8, 0)))).is_ok());
    let twice = with_hook(|h| resume(&state, h, &staff(Role::Admin)));
    assert_eq!(twice.err().and_then(reason), Some(Reason::Unchanged));
}

#[test]
fn a_replay_covers_only_what_was_delivered_and_runs_beside_the_live_cursor() {
    let live = with_hook(|h| {
        progress(
            &given(&[created_at(7)]),
            h,
            delivered(false, point(7, 0), point(20, 0)),
        )
    })
    .unwrap();
    let history = [created_at(7), live];
    let state = given(&history);
    let beyond = with_hook(|h| replay(&state, h, point(2, 0), 21));
    assert!(matches!(beyond, Err(DomainError::Invalid(_))));
    let backwards = with_hook(|h| replay(&state, h, point(12, 0), 12));
    assert!(matches!(backwards, Err(DomainError::Invalid(_))));
    let asked = with_hook(|h| replay(&state, h, point(2, 0), 12)).unwrap();
    let mut history = history.to_vec();
    history.push(asked);
    let state = given(&history);
    assert_eq!(state.replay.map(|r| r.cursor), Some(point(2, 0)));
    let second = with_hook(|h| replay(&state, h, point(2, 0), 12));
    assert_eq!(second.err().and_then(reason), Some(Reason::Busy));
    // Replayed deliveries move the replay, not the live cursor.
    let replayed =
        with_hook(|h| progress(&state, h, delivered(true, point(2, 0), point(12, 0)))).unwrap();
    history.push(replayed);
    let state = given(&history);
    assert_eq!(state.cursor, point(20, 0));
    assert_eq!(
        state.replay.map(|r| (r.cursor, r.count)),
        Some((point(12, 0), 1))
    );
    // Only the replay under way can be finished.
    let other = with_hook(|h| progress(&state, h, Progress::ReplayFinished(point(3, 0), 12)));
    assert_eq!(other.err().and_then(reason), Some(Reason::Conflict));
    let finished =
        with_hook(|h| progress(&state, h, Progress::ReplayFinished(point(2, 0), 12))).unwrap();
    history.push(finished);
    assert_eq!(given(&history).replay, None);
}

#[test]
fn a_removed_webhook_takes_nothing_more() {
    let removed =
        with_hook(|h| remove(&given(&[created_at(7)]), h, &staff(Role::Admin), "moved")).unwrap();
    let state = given(&[created_at(7), removed]);
    let late = with_hook(|h| progress(&state, h, delivered(false, point(7, 0), point(8, 0))));
    assert_eq!(late.err().and_then(reason), Some(Reason::AlreadyDeleted));
    let update = with_hook(|h| {
        update(
            &state,
            h,
            &staff(Role::Admin),
            settings("https://other.example/h"),
        )
    });
    assert_eq!(update.err().and_then(reason), Some(Reason::AlreadyDeleted));
}

#[test]
fn a_rotation_moves_to_the_next_generation() {
    let rotated =
        with_hook(|h| rotate_secret(&given(&[created_at(7)]), h, &staff(Role::Admin), 2)).unwrap();
    assert_eq!(given(&[created_at(7), rotated]).generation, 2);
}

#[test]
fn a_replay_that_fails_too_long_gives_up_at_its_own_place() {
    let live = with_hook(|h| {
        progress(
            &given(&[created_at(7)]),
            h,
            delivered(false, point(7, 0), point(20, 0)),
        )
    })
    .unwrap();
    let asked =
        with_hook(|h| replay(&given(&[created_at(7), live.clone()]), h, point(2, 0), 12)).unwrap();
    let state = given(&[created_at(7), live.clone(), asked.clone()]);
    let give_up = |replay: bool, at: FeedPoint| {
        Progress::GaveUp(WebhookGaveUp {
            replay,
            at,
            event_id: "e".into(),
            attempts: 9,
            error: "HTTP 500".into(),
        })
    };
    // Behind the live cursor, but past the replay's.
    let gave_up = with_hook(|h| progress(&state, h, give_up(true, point(4, 0)))).unwrap();
    let live_refused = with_hook(|h| progress(&state, h, give_up(false, point(4, 0))));
    assert_eq!(live_refused.err().and_then(reason), Some(Reason::Conflict));
    let state = given(&[created_at(7), live, asked, gave_up]);
    assert!(state.gave_up);
    assert!(state.replay.is_some(), "the replay waits to be resumed");
}
