//! `Events`: a tenant's public events as a stream, for `subscriber` keys
//! (personal data withheld) and the operator (who names the tenant).

use super::Shared;
use super::auth::Principal;
use super::convert::Fields;
use super::status::to_status;
use crate::app::FeedQuery;
use crate::domain::values::{CustomerId, GeneratedId, TenantId};
use crate::feed::{Disclosure, map::is_type};
use access_proto::v1 as pb;
use access_proto::v1::events as pe;
use access_proto::v1::events_server::Events;
use futures::StreamExt;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// The `Events` service.
pub struct EventsService {
    /// What every service shares.
    pub shared: Shared,
    /// Turns true when the server stops: open streams end then, so a stop
    /// does not wait out the drain deadline for subscribers who never leave.
    pub stop: tokio::sync::watch::Receiver<bool>,
    /// Streams open now, by key (the operator's under `""`).
    pub open: Arc<Mutex<HashMap<String, usize>>>,
}

/// Streams one key may hold open at once: each follows the whole log.
pub const STREAMS_PER_KEY: usize = 16;

/// One open stream, counted against its key until dropped.
struct Counted {
    open: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl Counted {
    fn take(open: &Arc<Mutex<HashMap<String, usize>>>, key: &str) -> Result<Self, Status> {
        let mut counts = open.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(key.to_owned()).or_default();
        if *n >= STREAMS_PER_KEY {
            return Err(Status::resource_exhausted(format!(
                "this key has {STREAMS_PER_KEY} event streams open already; close one first"
            )));
        }
        *n += 1;
        Ok(Counted {
            open: open.clone(),
            key: key.to_owned(),
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut counts = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

fn optional<T>(
    f: &mut Fields,
    field: &str,
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<Option<String>>
where
    T: std::fmt::Display,
{
    if text.trim().is_empty() {
        Some(None)
    } else {
        f.parse(field, parse(text.trim()))
            .map(|v| Some(v.to_string()))
    }
}

#[tonic::async_trait]
impl Events for EventsService {
    type SubscribeStream = Pin<Box<dyn Stream<Item = Result<pe::Event, Status>> + Send>>;

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let principal = self.shared.auth.authenticate(&request).await?;
        let r = request.into_inner();
        let mut f = Fields::default();
        let key_id = match &principal {
            Principal::Operator => None,
            Principal::Staff { key_id, .. } => Some(key_id.clone()),
        };
        let (tenant, disclosure) = match principal {
            Principal::Operator => (
                f.parse("tenant", TenantId::parse(r.tenant.trim()))
                    .map(|t| t.to_string()),
                Disclosure { personal: true },
            ),
            Principal::Staff { tenant, .. } => {
                if !r.tenant.trim().is_empty() && r.tenant.trim() != tenant.as_str() {
                    f.parse::<()>("tenant", Err("a key follows its own tenant only".into()));
                }
                (Some(tenant.to_string()), Disclosure { personal: false })
            }
        };
        let unknown: Vec<&String> = r.types.iter().filter(|t| !is_type(t)).collect();
        if !unknown.is_empty() {
            f.parse::<()>("types", Err(format!("unknown event types: {unknown:?}")));
        }
        let customer_id = optional(&mut f, "customer_id", &r.customer_id, CustomerId::parse);
        let contact_id = optional(&mut f, "contact_id", &r.contact_id, GeneratedId::parse);
        let (tenant, customer_id, contact_id) = f.finish_with((tenant, customer_id, contact_id))?;
        let query = FeedQuery {
            tenant,
            after: (r.after_position, r.after_part),
            from_now: r.from_now,
            types: r.types,
            customer_id,
            contact_id,
            disclosure,
            key_id,
            until: None,
        };
        let counted = Counted::take(&self.open, query.key_id.as_deref().unwrap_or(""))?;
        let rx = self.shared.app.public_feed(query);
        let mut stop = self.stop.clone();
        let stopped = self.stop.clone();
        let stream = ReceiverStream::new(rx)
            .map(move |item| {
                // Counted for as long as the stream lives.
                let _ = &counted;
                item.map_err(to_status)
            })
            .take_until(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            // Told why, so the client subscribes again elsewhere and resumes.
            .chain(
                futures::stream::once(async move {
                    (*stopped.borrow()).then(|| {
                        Err(Status::unavailable(
                            "the server is stopping: subscribe again after the last event's position and part",
                        ))
                    })
                })
                .filter_map(|item| async move { item }),
            );
        Ok(Response::new(Box::pin(stream)))
    }
}
