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

/// Events started, in log order, and the ones still running.
pub(crate) struct Batch {
    core: Arc<Core>,
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
    /// An empty batch acting through `core`.
    pub fn new(core: Arc<Core>) -> Self {
        Batch {
            core,
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
        let (core, envelope) = (self.core.clone(), e.clone());
        self.running.push(Box::pin(async move {
            let handled = core.handle(&envelope, Mode::InOrder).await;
            let sent =
                |(outcome, _)| matches!(outcome, ExecutionOutcome::Handled { sent: true, .. });
            (i, handled.map(sent))
        }));
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
