//! A tenant's public events as a subscriber asks for them: the log followed
//! from a point, each event mapped to the public schema (`crate::feed`) once
//! the read models know what it refers to, filtered, and handed on no faster
//! than the subscriber takes them.

use super::{App, AppError};
use crate::feed::{Disclosure, public_events};
use access_catalogue::catalogue::Event;
use access_catalogue::chain::ChainFollower;
use access_catalogue::envelope::GLOBAL_TENANT;
use access_log::LogError;
use access_log::log::subscribe;
use access_proto::v1::events as pe;
use futures::StreamExt;
use tokio::sync::mpsc;

/// What a subscriber asked for.
#[derive(Clone, Debug)]
pub struct FeedQuery {
    /// The tenant followed.
    pub tenant: String,
    /// Resume after this event (position and part); `(0, 0)`: from the start.
    pub after: (u64, u32),
    /// Only what happens from now on.
    pub from_now: bool,
    /// Only these types; empty: all.
    pub types: Vec<String>,
    /// Only the changes of this customer.
    pub customer_id: Option<String>,
    /// Only the changes of this contact.
    pub contact_id: Option<String>,
    /// What the subscriber may read.
    pub disclosure: Disclosure,
    /// The API key subscribed with (none for the operator): its stream ends
    /// when it is revoked.
    pub key_id: Option<String>,
    /// End once the log is read through this position (a replay's end).
    pub until: Option<u64>,
}

/// Events ready ahead of a subscriber that reads slowly: past them, the
/// feed waits for it, reading no further.
const AHEAD: usize = 64;

impl App {
    /// The public events `query` asks for, as they are read; an error ends
    /// them (damaged history, or the read models stuck behind the log).
    pub fn public_feed(&self, query: FeedQuery) -> mpsc::Receiver<Result<pe::Event, AppError>> {
        let (tx, rx) = mpsc::channel(AHEAD);
        let app = self.clone();
        // "From now" is the head when asked, not when the task first runs.
        let from = if query.from_now {
            *self.log.head().borrow() + 1
        } else {
            query.after.0.max(1)
        };
        tokio::spawn(async move {
            tokio::select! {
                () = app.feed_into(&query, from, &tx) => {}
                // The subscriber went away while nothing happened.
                () = tx.closed() => {}
            }
        });
        rx
    }

    async fn feed_into(
        &self,
        q: &FeedQuery,
        from: u64,
        tx: &mpsc::Sender<Result<pe::Event, AppError>>,
    ) {
        let mut events = subscribe(self.log.clone(), from);
        // What the feed reads it checks, as every reader of the log does.
        let mut chain = ChainFollower::new(FOLLOWED_STREAMS);
        while let Some(read) = events.next().await {
            let envelope = match read.and_then(|e| {
                chain.check(&e).map_err(LogError::Damaged)?;
                Ok(e)
            }) {
                Ok(e) => e,
                Err(e @ (LogError::Damaged(_) | LogError::Corrupt { .. })) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
                // The subscription tries again by itself, from where it was.
                Err(e) => {
                    tracing::debug!(error = %e, "the public feed waits for the log");
                    continue;
                }
            };
            let tenant = envelope.stream.tenant();
            if tenant != q.tenant && tenant != GLOBAL_TENANT {
                continue;
            }
            let public = match self.public_events_of(&envelope, q.disclosure).await {
                Ok(public) => public,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            // A key revoked since the stream opened reads no further: its
            // revocation is an event of this tenant, so it is seen here
            // before anything later, whatever the filters.
            if envelope.event_type == "ApiKeyRevoked"
                && let Some(refused) = self.revoked(q.key_id.as_deref())
            {
                let _ = tx.send(Err(refused)).await;
                return;
            }
            let end = q.until.filter(|u| envelope.position >= *u);
            for e in public {
                if e.tenant != q.tenant || !wanted(q, &e) || end.is_some_and(|u| e.position > u) {
                    continue;
                }
                if tx.send(Ok(e)).await.is_err() {
                    return;
                }
            }
            if end.is_some() {
                return;
            }
        }
    }

    /// The public events a stored event stands for, mapped once the read
    /// models reach it (what a contact or a link is, as of the event).
    pub async fn public_events_of(
        &self,
        envelope: &access_catalogue::Envelope,
        disclosure: Disclosure,
    ) -> Result<Vec<pe::Event>, AppError> {
        self.models
            .wait_for(envelope.position, FACTS_WAIT)
            .await
            .map_err(AppError::Behind)?;
        let event = self.open(envelope, disclosure).await?;
        Ok(public_events(
            envelope,
            &event,
            self.models.as_ref(),
            disclosure,
        ))
    }

    /// Why the key `key_id` may read no more, if it was revoked.
    fn revoked(&self, key_id: Option<&str>) -> Option<AppError> {
        let key_id = key_id?;
        let revoked = match self.models.api_key(key_id) {
            Ok(row) => row.is_none_or(|r| r.revoked),
            Err(e) => return Some(AppError::Internal(e)),
        };
        revoked.then(|| {
            AppError::Domain(crate::domain::DomainError::PermissionDenied {
                reason: crate::domain::Reason::ApiKeyRevoked,
                message: "the API key was revoked".into(),
            })
        })
    }

    /// The stored event, its personal values opened for a subscriber who
    /// may read them; for one who may not, only those whose key is gone are
    /// marked erased (the mapping withholds the rest), with no decryption.
    async fn open(
        &self,
        envelope: &access_catalogue::Envelope,
        disclosure: Disclosure,
    ) -> Result<Event, AppError> {
        let mut event = Event::decode(envelope)
            .map_err(|e| AppError::from(access_log::vault::DecodeOpenError::from(e)))?;
        let refs = event.sealed_refs();
        // Most events carry nothing personal: no vault to ask.
        if refs.is_empty() {
            return Ok(event);
        }
        if disclosure.personal {
            access_log::vault::open_where(
                self.vault.as_ref(),
                std::slice::from_ref(envelope),
                std::slice::from_mut(&mut event),
                |_| true,
            )
            .await
            .map_err(AppError::from)?;
            return Ok(event);
        }
        let mut gone = std::collections::HashSet::new();
        for key_ref in refs {
            match self.vault.get(&key_ref).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    gone.insert(key_ref);
                }
                // A key neither there nor destroyed: the vault is damaged.
                Err(access_log::vault::VaultError::Missing(what)) => {
                    return Err(AppError::Damaged(
                        access_catalogue::damage::Damage::new(
                            "the key vault",
                            format!("the key {what:?} is missing, and no erasure destroyed it"),
                        )
                        .at_position(envelope.position)
                        .in_stream(Some(envelope.stream.to_string())),
                    ));
                }
                Err(e) => return Err(AppError::Unavailable(e.to_string())),
            }
        }
        for (value, _) in event.personal_mut("") {
            if value.key_ref().is_some_and(|r| gone.contains(r)) {
                value.open(None);
            }
        }
        Ok(event)
    }
}

/// Stream heads a subscription's chain check remembers.
const FOLLOWED_STREAMS: usize = 10_000;

/// How long the feed waits for the read models to reach an event.
const FACTS_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether `e` passes the query's filters (its position aside).
fn wanted(q: &FeedQuery, e: &pe::Event) -> bool {
    // From now on, nothing before the start can come.
    if !q.from_now && (e.position, e.part) <= q.after {
        return false;
    }
    if !q.types.is_empty() && !q.types.contains(&e.r#type) {
        return false;
    }
    let (customer, contact) = e
        .change
        .as_ref()
        .map_or((None, None), crate::feed::map::subjects);
    if q.customer_id
        .as_deref()
        .is_some_and(|c| customer != Some(c))
    {
        return false;
    }
    if q.contact_id.as_deref().is_some_and(|c| contact != Some(c)) {
        return false;
    }
    true
}
