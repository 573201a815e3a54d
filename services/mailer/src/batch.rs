//! The in-order worker's events handled side by side: up to
//! [`MAX_UNRECORDED`](crate::MAX_UNRECORDED) at once, each mail on a
//! connection of its own, so a relay's round trips overlap instead of
//! adding up.
//!
//! Order is kept where a reader sees it: the events of one stream (an
//! invitation and its resends, a contact's notices) wait for each other, an
//! invitation waits for its contact's earlier mails, and an event that
//! changes what every mail reads (a tenant's settings and templates, a
//! forgotten person's keys) waits until everything before it is done. The
//! checkpoint only ever passes a prefix of events that are all done.

use crate::state::Core;
use crate::worker::{ExecutionOutcome, Mode};
use access_catalogue::Envelope;
use access_catalogue::catalogue::{Event, InvitationEvent};
use access_catalogue::envelope::{Aggregate, StreamId};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use std::sync::Arc;

/// One event's slot: the event, what orders it, and what became of it.
struct Slot {
    envelope: Envelope,
    /// Streams whose earlier mails this one waits for; empty for an event
    /// that waits for everything.
    keys: Vec<String>,
    /// `None` while it runs; then whether a mail went out, or the failure.
    done: Option<anyhow::Result<bool>>,
}

/// How one event is acted on: whether a mail went out, or the failure.
type Handle = Arc<dyn Fn(Envelope) -> BoxFuture<'static, anyhow::Result<bool>> + Send + Sync>;

/// Events started, in log order, and the ones still running.
pub(crate) struct Batch {
    handle: Handle,
    slots: Vec<Slot>,
    running: FuturesUnordered<BoxFuture<'static, (usize, anyhow::Result<bool>)>>,
}

/// What a batch came to once every event in it is done.
pub(crate) struct Finished {
    /// The last event of the prefix that was handled whole, if any: the
    /// checkpoint may move to it.
    pub last: Option<(u64, [u8; 32])>,
    /// Whether any mail went out.
    pub sent: bool,
    /// The first failure, and the events from the failed one on, in log
    /// order, to be handled again (those done already find their mail in
    /// the ledger and send nothing twice).
    pub failed: Option<(anyhow::Error, Vec<Envelope>)>,
}

/// What `e` waits for: its stream, and for an invitation its contact's
/// stream too; nothing named (so everything) for a tenant's or an
/// identity's event.
fn keys_of(e: &Envelope) -> Vec<String> {
    match e.stream.aggregate() {
        Aggregate::Tenant | Aggregate::Identity => Vec::new(),
        _ => {
            let mut keys = vec![e.stream.as_str().to_owned()];
            if e.event_type == "InvitationIssued"
                && let Ok(Event::Invitation(InvitationEvent::InvitationIssued(i))) =
                    Event::decode(e)
                && let Ok(contact) =
                    StreamId::new(Aggregate::Contact, e.stream.tenant(), &i.contact_id)
            {
                keys.push(contact.as_str().to_owned());
            }
            keys
        }
    }
}

impl Batch {
    /// An empty batch acting through `core`, in log order's mode.
    pub fn new(core: Arc<Core>) -> Self {
        Self::acting_by(Arc::new(move |e: Envelope| {
            let core = core.clone();
            Box::pin(async move {
                let (outcome, _) = core.handle(&e, Mode::InOrder).await?;
                Ok(matches!(
                    outcome,
                    ExecutionOutcome::Handled { sent: true, .. }
                ))
            })
        }))
    }

    /// An empty batch acting on each event with `handle`.
    fn acting_by(handle: Handle) -> Self {
        Batch {
            handle,
            slots: Vec::new(),
            running: FuturesUnordered::new(),
        }
    }

    /// Events started so far.
    pub fn started(&self) -> usize {
        self.slots.len()
    }

    /// Events still running.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Whether an event of the batch failed.
    pub fn failed(&self) -> bool {
        self.slots.iter().any(|s| matches!(s.done, Some(Err(_))))
    }

    /// Waits for one running event to finish (at once if none runs).
    pub async fn one_done(&mut self) {
        if let Some((i, result)) = self.running.next().await
            && let Some(slot) = self.slots.get_mut(i)
        {
            slot.done = Some(result);
        }
    }

    /// Starts `e` once what it waits for is done.
    pub async fn start(&mut self, e: Envelope) {
        let keys = keys_of(&e);
        while self.running() > 0 && self.waits(&keys) {
            self.one_done().await;
        }
        let i = self.slots.len();
        let handled = (self.handle)(e.clone());
        self.running
            .push(Box::pin(async move { (i, handled.await) }));
        self.slots.push(Slot {
            envelope: e,
            keys,
            done: None,
        });
    }

    /// Whether an event with `keys` must wait for one still running.
    fn waits(&self, keys: &[String]) -> bool {
        keys.is_empty()
            || self.slots.iter().any(|s| {
                s.done.is_none() && (s.keys.is_empty() || s.keys.iter().any(|k| keys.contains(k)))
            })
    }

    /// Waits for every event, then tells what the batch came to.
    pub async fn finish(mut self) -> Finished {
        while self.running() > 0 {
            self.one_done().await;
        }
        let mut finished = Finished {
            last: None,
            sent: false,
            failed: None,
        };
        let mut slots = self.slots.into_iter();
        for slot in slots.by_ref() {
            match slot.done {
                Some(Ok(sent)) => {
                    finished.sent |= sent;
                    finished.last = Some((slot.envelope.position, slot.envelope.hash));
                }
                Some(Err(e)) => {
                    finished.failed = Some((e, vec![slot.envelope]));
                    break;
                }
                None => {
                    let e = anyhow::anyhow!("a mail's step did not finish");
                    finished.failed = Some((e, vec![slot.envelope]));
                    break;
                }
            }
        }
        if let Some((_, again)) = &mut finished.failed {
            again.extend(slots.map(|s| s.envelope));
        }
        finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use access_catalogue::Actor;
    use std::sync::Mutex;
    use std::time::Duration;

    /// What the handles saw: each event's start and end, in order.
    type Seen = Arc<Mutex<Vec<(&'static str, u64)>>>;

    /// Event `position` of `stream` (`<aggregate>.<tenant>.<id>`).
    fn event(position: u64, stream: &str, event_type: &str) -> Envelope {
        Envelope {
            envelope_version: 1,
            position,
            stream: StreamId::parse(stream).expect("a stream id"),
            stream_version: position,
            event_id: Default::default(),
            event_type: event_type.into(),
            schema_version: 1,
            occurred_at_ms: 0,
            tenant: None,
            actor: Actor::Operator,
            correlation_id: Default::default(),
            causation_id: None,
            request_id: String::new(),
            prev_hash: [0; 32],
            hash: [position as u8; 32],
            payload: Vec::new(),
        }
    }

    /// A batch whose events take `delay(position)` milliseconds and fail at
    /// `fail`, noting when each starts and ends.
    fn batch(fail: Option<u64>, delay: fn(u64) -> u64) -> (Batch, Seen) {
        let seen = Seen::default();
        let log = seen.clone();
        let handle: Handle = Arc::new(move |e: Envelope| {
            let log = log.clone();
            Box::pin(async move {
                let at = e.position;
                log.lock().expect("log").push(("start", at));
                tokio::time::sleep(Duration::from_millis(delay(at))).await;
                log.lock().expect("log").push(("end", at));
                match fail == Some(at) {
                    true => Err(anyhow::anyhow!("event {at} failed")),
                    false => Ok(true),
                }
            })
        });
        (Batch::acting_by(handle), seen)
    }

    /// Where `what` happened among what `seen` noted.
    fn when(seen: &Seen, what: (&'static str, u64)) -> usize {
        let seen = seen.lock().expect("log");
        seen.iter()
            .position(|s| *s == what)
            .unwrap_or_else(|| panic!("{what:?} not in {seen:?}"))
    }

    #[tokio::test]
    async fn events_of_other_streams_run_side_by_side_and_one_streams_in_order() {
        // The first event is slow: another stream's passes it, its own
        // stream's next one waits for it.
        let (mut b, seen) = batch(None, |at| if at == 1 { 50 } else { 1 });
        b.start(event(1, "contact.acme.c1", "ContactInvited")).await;
        b.start(event(2, "contact.acme.c2", "ContactInvited")).await;
        b.start(event(3, "contact.acme.c1", "AccessDisabled")).await;
        let done = b.finish().await;
        assert_eq!(done.last.map(|l| l.0), Some(3));
        assert!(done.sent && done.failed.is_none());
        assert!(when(&seen, ("end", 2)) < when(&seen, ("end", 1)));
        assert!(when(&seen, ("end", 1)) < when(&seen, ("start", 3)));
    }

    #[tokio::test]
    async fn a_tenants_event_waits_for_everything_before_it_and_holds_up_what_follows() {
        let (mut b, seen) = batch(None, |at| if at == 1 { 30 } else { 1 });
        b.start(event(1, "contact.acme.c1", "ContactInvited")).await;
        b.start(event(2, "tenant.acme.acme", "TenantCreated")).await;
        b.start(event(3, "contact.acme.c2", "ContactInvited")).await;
        b.finish().await;
        assert!(when(&seen, ("end", 1)) < when(&seen, ("start", 2)));
        assert!(when(&seen, ("end", 2)) < when(&seen, ("start", 3)));
    }

    #[tokio::test]
    async fn a_failure_keeps_the_checkpoint_before_it_and_hands_back_it_and_all_after() {
        let (mut b, _) = batch(Some(2), |_| 1);
        for (at, id) in [(1, "c1"), (2, "c2"), (3, "c3"), (4, "c4")] {
            b.start(event(at, &format!("contact.acme.{id}"), "ContactInvited"))
                .await;
        }
        let done = b.finish().await;
        assert_eq!(done.last.map(|l| l.0), Some(1));
        let (error, again) = done.failed.expect("a failure");
        assert!(error.to_string().contains("event 2 failed"));
        let again: Vec<u64> = again.iter().map(|e| e.position).collect();
        assert_eq!(again, [2, 3, 4]);
    }
}
