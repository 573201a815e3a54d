//! What each background part of the service says about itself, and the
//! `grpc.health.v1` statuses built from it.
//!
//! The whole server (`""` and every `access.v1` service) is `SERVING` only
//! while the log takes appends, the read models keep up with it (they have
//! reached the head the log had a bound ago) and no part has stopped. Each part has a
//! health name of its own, so an operator can see which one is at fault.

use crate::projections::ReadModels;
use access_log::log::EventLog;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// A background part of the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// The event log (the file, or JetStream).
    Log,
    /// The projector and its read models.
    ReadModels,
    /// The in-process mailer.
    Mailer,
}

impl Part {
    /// Its `grpc.health.v1` service name.
    pub fn health_name(self) -> &'static str {
        match self {
            Part::Log => "access.v1.EventLog",
            Part::ReadModels => "access.v1.ReadModels",
            Part::Mailer => "access.v1.Mailer",
        }
    }

    /// Its label in metrics.
    fn label(self) -> &'static str {
        match self {
            Part::Log => "log",
            Part::ReadModels => "read_models",
            Part::Mailer => "mailer",
        }
    }
}

/// How a part is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartState {
    /// Doing its work.
    Running,
    /// Stopped on something retrying cannot fix (damaged history): it stays
    /// stopped until an operator acts, and says why.
    Stopped(String),
}

/// The states of every part, shared by the parts and the health reporter.
#[derive(Clone, Debug, Default)]
pub struct Parts {
    states: Arc<Mutex<HashMap<Part, PartState>>>,
    /// Wakes the reporter when a part's state changes.
    changed: Arc<tokio::sync::Notify>,
}

impl Parts {
    /// Records how `part` is now.
    pub fn set(&self, part: Part, state: PartState) {
        let up = matches!(state, PartState::Running);
        metrics::gauge!("access_part_up", "part" => part.label()).set(if up { 1.0 } else { 0.0 });
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(part, state);
        self.changed.notify_one();
    }

    /// How `part` is (running unless told otherwise).
    pub fn get(&self, part: Part) -> PartState {
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&part)
            .cloned()
            .unwrap_or(PartState::Running)
    }
}

/// Every name health is reported under for the server as a whole.
pub type ServerNames = &'static [&'static str];

/// What the reporter watches besides the parts' own states.
pub struct Watched {
    /// The log.
    pub log: Arc<dyn EventLog>,
    /// The read models, whose checkpoint is compared with the log's head.
    pub models: Arc<ReadModels>,
    /// How far the read models may trail: they must have reached, by now,
    /// the head the log had this long ago.
    pub max_lag: Duration,
}

/// The log's head over the last `max_lag`, to tell read models that keep up
/// with a busy log (always a little behind, never for long) from read models
/// that stopped following it.
struct HeadHistory {
    samples: VecDeque<(Instant, u64)>,
}

impl HeadHistory {
    /// Records `head` now; returns the head the log had `max_lag` ago (0 if
    /// nothing that old was seen: nothing to be behind yet).
    fn record(&mut self, now: Instant, head: u64, max_lag: Duration) -> u64 {
        self.samples.push_back((now, head));
        let mut due = 0;
        while let Some(&(at, h)) = self.samples.front() {
            if now.duration_since(at) < max_lag {
                break;
            }
            due = h;
            self.samples.pop_front();
        }
        // The oldest sample at or past the bound stays the reference.
        if due > 0 {
            self.samples.push_front((now - max_lag, due));
        }
        due
    }
}

/// Keeps the health statuses in step with the log, the read models' lag and
/// the parts until `stop`, then reports `NOT_SERVING` everywhere (load
/// balancers stop sending before the listeners close).
pub async fn report(
    watched: Watched,
    parts: Parts,
    health: HealthReporter,
    server: ServerNames,
    mut stop: watch::Receiver<bool>,
) {
    let Watched {
        log,
        models,
        max_lag,
    } = watched;
    let head = log.head();
    let mut history = HeadHistory {
        samples: VecDeque::new(),
    };
    let mut last: Option<(bool, bool, bool)> = None;
    let mut log_down_since: Option<Instant> = None;
    loop {
        let available = log.is_available();
        metrics::gauge!("access_log_available").set(if available { 1.0 } else { 0.0 });
        // A log found damaged is not serving either, reachable or not.
        let log_up = available && parts.get(Part::Log) == PartState::Running;
        // Lag against the head the log reports (the leader's, in the
        // distributed mode), measured here so the figure moves even when the
        // projector does not.
        let (now_head, applied) = (*head.borrow(), models.checkpoint());
        metrics::gauge!("access_projection_lag_events")
            .set(now_head.saturating_sub(applied) as f64);
        let at = Instant::now();
        let due = history.record(at, now_head, max_lag);
        // Out of reach of the log for longer than the bound, the read models
        // cannot know how far behind they are: they cannot follow it.
        log_down_since = if log_up {
            None
        } else {
            log_down_since.or(Some(at))
        };
        let reachable = log_down_since.is_none_or(|since| at.duration_since(since) <= max_lag);
        let following = applied >= due && reachable;
        let models_up = following && parts.get(Part::ReadModels) == PartState::Running;
        let mailer_up = parts.get(Part::Mailer) == PartState::Running;
        let now = (log_up, models_up, mailer_up);
        if last != Some(now) {
            if let Some((was_up, models_were_up, _)) = last {
                if was_up != log_up {
                    if log_up {
                        tracing::info!("event log reachable again");
                    } else {
                        tracing::warn!("event log unreachable: health is NOT_SERVING");
                    }
                }
                if models_were_up != models_up && !reachable {
                    tracing::warn!(
                        applied,
                        max_lag_ms = max_lag.as_millis() as u64,
                        "the log has been out of reach longer than the bound: the read models cannot follow it, and health is NOT_SERVING"
                    );
                } else if models_were_up != models_up && !following {
                    tracing::warn!(
                        head = now_head,
                        applied,
                        max_lag_ms = max_lag.as_millis() as u64,
                        "the read models trail the log by more than the bound: health is NOT_SERVING"
                    );
                } else if models_were_up != models_up && models_up {
                    tracing::info!(applied, "the read models follow the log again");
                }
            }
            let status = |up: bool| {
                if up {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                }
            };
            for name in server {
                health
                    .set_service_status(*name, status(log_up && models_up && mailer_up))
                    .await;
            }
            health
                .set_service_status(Part::Log.health_name(), status(log_up))
                .await;
            health
                .set_service_status(Part::ReadModels.health_name(), status(models_up))
                .await;
            health
                .set_service_status(Part::Mailer.health_name(), status(mailer_up))
                .await;
            last = Some(now);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = parts.changed.notified() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    not_serving(&health, server).await;
}

/// Reports `NOT_SERVING` for every name health answers: at start, before
/// the first report (an unknown name would read as "not registered"), and
/// when stopping.
pub async fn not_serving(health: &HealthReporter, server: ServerNames) {
    for name in server.iter().copied().chain([
        Part::Log.health_name(),
        Part::ReadModels.health_name(),
        Part::Mailer.health_name(),
    ]) {
        health
            .set_service_status(name, ServingStatus::NotServing)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_head_is_the_one_the_bound_ago() {
        let bound = Duration::from_secs(10);
        let t0 = Instant::now();
        let mut h = HeadHistory {
            samples: VecDeque::new(),
        };
        assert_eq!(h.record(t0, 5, bound), 0, "nothing that old yet");
        assert_eq!(h.record(t0 + Duration::from_secs(4), 50, bound), 0);
        assert_eq!(h.record(t0 + Duration::from_secs(10), 90, bound), 5);
        assert_eq!(h.record(t0 + Duration::from_secs(14), 95, bound), 50);
        // The log stood still: the reference catches up with it.
        assert_eq!(h.record(t0 + Duration::from_secs(30), 95, bound), 95);
        assert!(h.samples.len() <= 3, "{:?}", h.samples);
    }
}
