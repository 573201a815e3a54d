//! A webhook's events as sentences: what staff changed, and how its
//! deliveries went.

use access_catalogue::catalogue::{FeedPoint, WebhookEvent};

/// Where a range that begins after `p` starts.
fn from(p: &FeedPoint) -> String {
    if p.part == u32::MAX {
        format!("from position {} on", p.position + 1)
    } else {
        format!("after {}", at(p))
    }
}

fn at(p: &FeedPoint) -> String {
    if p.part == 0 {
        format!("position {}", p.position)
    } else {
        format!("position {} part {}", p.position, p.part)
    }
}

/// The sentence for one event of webhook `id`.
pub(super) fn sentence(id: &str, event: &WebhookEvent) -> String {
    let types = |t: &[String]| {
        if t.is_empty() {
            "every event".to_owned()
        } else {
            t.join(", ")
        }
    };
    match event {
        WebhookEvent::WebhookCreated(c) => format!(
            "added webhook {id} posting {} to {}, {}",
            types(&c.settings.event_types),
            c.settings.url,
            from(&c.starts_after)
        ),
        WebhookEvent::WebhookUpdated(u) => format!(
            "changed webhook {id}: {} to {}",
            types(&u.settings.event_types),
            u.settings.url
        ),
        WebhookEvent::WebhookSecretRotated(r) => format!(
            "gave webhook {id} a new signing secret (generation {})",
            r.generation
        ),
        WebhookEvent::WebhookRemoved(r) if r.reason.is_empty() => format!("removed webhook {id}"),
        WebhookEvent::WebhookRemoved(r) => format!("removed webhook {id}: {}", r.reason),
        WebhookEvent::WebhookDelivered(d) => format!(
            "{} {} event{} to webhook {id}, through {} (last {})",
            if d.replay { "replayed" } else { "delivered" },
            d.count,
            if d.count == 1 { "" } else { "s" },
            at(&d.through),
            d.last_event_id
        ),
        WebhookEvent::WebhookFailing(f) => format!(
            "could not deliver event {} ({}) to webhook {id} after {} tries: {}",
            f.event_id,
            at(&f.at),
            f.attempts,
            f.error
        ),
        WebhookEvent::WebhookGaveUp(g) => format!(
            "gave up delivering to webhook {id} at event {} ({}) after {} tries: {}; it waits to be resumed",
            g.event_id,
            at(&g.at),
            g.attempts,
            g.error
        ),
        WebhookEvent::WebhookResumed(_) => format!("resumed deliveries to webhook {id}"),
        WebhookEvent::WebhookReplayRequested(r) => format!(
            "asked webhook {id} to be sent again the events {} through position {}",
            from(&r.after),
            r.through
        ),
        WebhookEvent::WebhookReplayFinished(r) => {
            format!("finished replaying {} events to webhook {id}", r.count)
        }
    }
}
