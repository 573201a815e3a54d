//! Webhooks: where a tenant's public events are posted. Staff add, change,
//! rotate, remove, resume and replay them; the delivery worker records how
//! far each got. Its records continue exactly from the last one, so two
//! workers that both delivered cannot both record it, and a replica that
//! lost the webhook to another stops at its next record.

use super::oidc_clients::redirect_uri_problem;
use super::policy::Staff;
use super::values::{FieldViolation, GeneratedId, TenantId};
use super::{Aggregate, Change, DomainError, Reason, streams};
use access_catalogue::catalogue::{
    Event, FeedPoint, WebhookCreated, WebhookDelivered, WebhookEvent, WebhookFailing,
    WebhookGaveUp, WebhookRemoved, WebhookReplayFinished, WebhookReplayRequested, WebhookResumed,
    WebhookSecretRotated, WebhookSettings, WebhookUpdated,
};

/// Most webhooks one tenant may have.
pub const MAX_PER_TENANT: usize = 10;
/// Most event types one webhook may name.
pub const MAX_TYPES: usize = 64;

/// A replay under way: where it began and is, and its last log position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replay {
    /// Where it began (what names it).
    pub after: FeedPoint,
    /// Delivered through here.
    pub cursor: FeedPoint,
    /// It ends after this log position.
    pub through: u64,
    /// Posted so far.
    pub count: u64,
}

/// What the log says about one webhook.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookState {
    /// False until it is created.
    pub exists: bool,
    /// Removed webhooks are never posted to again.
    pub removed: bool,
    /// Its settings.
    pub settings: Option<WebhookSettings>,
    /// Its secret's generation (the first is 1).
    pub generation: u32,
    /// The live feed delivered through here.
    pub cursor: FeedPoint,
    /// A replay under way.
    pub replay: Option<Replay>,
    /// Deliveries were given up; it waits to be resumed.
    pub gave_up: bool,
}

impl Aggregate for WebhookState {
    fn evolve(mut self, event: &Event) -> Self {
        let Event::Webhook(e) = event else {
            return self;
        };
        match e {
            WebhookEvent::WebhookCreated(c) => {
                self.exists = true;
                self.settings = Some(c.settings.clone());
                self.generation = 1;
                self.cursor = c.starts_after;
            }
            WebhookEvent::WebhookUpdated(u) => self.settings = Some(u.settings.clone()),
            WebhookEvent::WebhookSecretRotated(r) => self.generation = r.generation,
            WebhookEvent::WebhookRemoved(_) => self.removed = true,
            WebhookEvent::WebhookDelivered(d) => match (&mut self.replay, d.replay) {
                (Some(r), true) => {
                    r.cursor = d.through;
                    r.count += u64::from(d.count);
                }
                (_, true) => {}
                (_, false) => self.cursor = d.through,
            },
            WebhookEvent::WebhookFailing(_) => {}
            WebhookEvent::WebhookGaveUp(_) => self.gave_up = true,
            WebhookEvent::WebhookResumed(_) => self.gave_up = false,
            WebhookEvent::WebhookReplayRequested(r) => {
                self.replay = Some(Replay {
                    after: r.after,
                    cursor: r.after,
                    through: r.through,
                    count: 0,
                });
            }
            WebhookEvent::WebhookReplayFinished(_) => self.replay = None,
        }
        self
    }
}

/// Every problem with `settings`, by field; `known` says whether a public
/// event type exists.
pub fn check_settings(
    settings: &WebhookSettings,
    known: impl Fn(&str) -> bool,
) -> Vec<FieldViolation> {
    let mut problems = Vec::new();
    if let Some(problem) = redirect_uri_problem(&settings.url) {
        problems.push(FieldViolation::new(
            "url",
            problem.replace("a redirect URI", "a webhook URL"),
        ));
    }
    if settings.event_types.len() > MAX_TYPES {
        problems.push(FieldViolation::new(
            "event_types",
            format!("name at most {MAX_TYPES} types, or none for all"),
        ));
    }
    for (i, kind) in settings.event_types.iter().enumerate() {
        if !known(kind) {
            problems.push(FieldViolation::new(
                &format!("event_types[{i}]"),
                "not a public event type (see access.v1.events)",
            ));
        } else if settings.event_types[..i].contains(kind) {
            problems.push(FieldViolation::new(
                &format!("event_types[{i}]"),
                "given twice",
            ));
        }
    }
    if settings.description.chars().count() > 200 {
        problems.push(FieldViolation::new("description", "at most 200 characters"));
    }
    problems
}

/// One webhook of a tenant: the stream its decisions write to.
#[derive(Clone, Copy, Debug)]
pub struct Hook<'a> {
    /// The tenant.
    pub tenant: &'a TenantId,
    /// The webhook.
    pub id: &'a GeneratedId,
}

impl Hook<'_> {
    fn change(&self, event: WebhookEvent) -> Vec<Change> {
        vec![Change::new(
            streams::webhook(self.tenant, self.id),
            Event::Webhook(event),
        )]
    }
}

/// A webhook that exists and was not removed.
fn live(state: &WebhookState) -> Result<(), DomainError> {
    if !state.exists {
        return Err(DomainError::NotFound("webhook"));
    }
    if state.removed {
        return Err(DomainError::precondition(
            Reason::AlreadyDeleted,
            "this webhook was removed",
        ));
    }
    Ok(())
}

/// Decides `CreateWebhook`; `settings` were checked by [`check_settings`].
pub fn create(
    state: &WebhookState,
    hook: Hook<'_>,
    by: &Staff,
    settings: WebhookSettings,
    (server_key_id, starts_after): (u8, FeedPoint),
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_tenant()?;
    if state.exists {
        return Err(DomainError::AlreadyExists(
            "this webhook exists already".into(),
        ));
    }
    Ok(hook.change(WebhookEvent::WebhookCreated(WebhookCreated {
        webhook_id: hook.id.to_string(),
        settings,
        server_key_id,
        starts_after,
    })))
}

/// Decides `UpdateWebhook`: the settings replaced as a whole.
pub fn update(
    state: &WebhookState,
    hook: Hook<'_>,
    by: &Staff,
    settings: WebhookSettings,
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_tenant()?;
    live(state)?;
    if state.settings.as_ref() == Some(&settings) {
        return Err(DomainError::precondition(
            Reason::Unchanged,
            "the webhook is already so",
        ));
    }
    Ok(hook.change(WebhookEvent::WebhookUpdated(WebhookUpdated { settings })))
}

/// Decides `RotateWebhookSecret`: the next generation, derived from the
/// server key `server_key_id`.
pub fn rotate_secret(
    state: &WebhookState,
    hook: Hook<'_>,
    by: &Staff,
    server_key_id: u8,
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_tenant()?;
    live(state)?;
    Ok(
        hook.change(WebhookEvent::WebhookSecretRotated(WebhookSecretRotated {
            generation: state.generation + 1,
            server_key_id,
        })),
    )
}

/// Decides `DeleteWebhook`.
pub fn remove(
    state: &WebhookState,
    hook: Hook<'_>,
    by: &Staff,
    reason: &str,
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_tenant()?;
    live(state)?;
    Ok(hook.change(WebhookEvent::WebhookRemoved(WebhookRemoved {
        reason: reason.to_owned(),
    })))
}

/// Decides `ResumeWebhook`: only a webhook that gave up.
pub fn resume(
    state: &WebhookState,
    hook: Hook<'_>,
    by: &Staff,
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_tenant()?;
    live(state)?;
    if !state.gave_up {
        return Err(DomainError::precondition(
            Reason::Unchanged,
            "the webhook is delivering; nothing to resume",
        ));
    }
    Ok(hook.change(WebhookEvent::WebhookResumed(WebhookResumed {})))
}

/// Decides `ReplayWebhook`: the public events after `after` through log
/// position `through`, which the live feed has passed already (a later
/// one would be posted twice). One replay at a time.
pub fn replay(
    state: &WebhookState,
    hook: Hook<'_>,
    after: FeedPoint,
    through: u64,
) -> Result<Vec<Change>, DomainError> {
    live(state)?;
    if through <= after.position {
        return Err(DomainError::invalid(
            "through_position",
            "a replay ends after it starts",
        ));
    }
    if through > state.cursor.position {
        return Err(DomainError::invalid(
            "through_position",
            format!(
                "the webhook has been delivered through position {}; a replay ends there or before",
                state.cursor.position
            ),
        ));
    }
    if state.replay.is_some() {
        return Err(DomainError::precondition(
            Reason::Busy,
            "a replay of this webhook is under way; wait for it to finish",
        ));
    }
    Ok(hook.change(WebhookEvent::WebhookReplayRequested(
        WebhookReplayRequested { after, through },
    )))
}

/// What the delivery worker records.
#[derive(Clone, Debug)]
pub enum Progress {
    /// Deliveries accepted by the receiver.
    Delivered(WebhookDelivered),
    /// A delivery failing.
    Failing(WebhookFailing),
    /// Deliveries given up.
    GaveUp(WebhookGaveUp),
    /// The replay that began after this place and ends at this position
    /// reached its end.
    ReplayFinished(FeedPoint, u64),
}

/// Decides a record of the delivery worker. Deliveries must continue
/// exactly from the last record of their feed: otherwise another worker
/// delivered them (`Conflict`), and this one stops.
pub fn progress(
    state: &WebhookState,
    hook: Hook<'_>,
    step: Progress,
) -> Result<Vec<Change>, DomainError> {
    live(state)?;
    let moved =
        || DomainError::precondition(Reason::Conflict, "another worker delivers this webhook now");
    let event = match step {
        Progress::Delivered(d) => {
            let cursor = match (d.replay, &state.replay) {
                (false, _) => state.cursor,
                (true, Some(r)) => r.cursor,
                (true, None) => return Err(moved()),
            };
            if d.after != cursor || d.through <= d.after || state.gave_up {
                return Err(moved());
            }
            WebhookEvent::WebhookDelivered(d)
        }
        Progress::Failing(f) => {
            if state.gave_up {
                return Err(moved());
            }
            WebhookEvent::WebhookFailing(f)
        }
        Progress::GaveUp(g) => {
            let cursor = match (g.replay, &state.replay) {
                (false, _) => state.cursor,
                (true, Some(r)) => r.cursor,
                (true, None) => return Err(moved()),
            };
            if state.gave_up || g.at <= cursor {
                return Err(moved());
            }
            WebhookEvent::WebhookGaveUp(g)
        }
        Progress::ReplayFinished(after, through) => {
            let Some(r) = state
                .replay
                .filter(|r| (r.after, r.through) == (after, through))
            else {
                return Err(moved());
            };
            WebhookEvent::WebhookReplayFinished(WebhookReplayFinished {
                after,
                through,
                count: r.count,
            })
        }
    };
    Ok(hook.change(event))
}

#[cfg(test)]
#[path = "webhooks_tests.rs"]
mod tests;
