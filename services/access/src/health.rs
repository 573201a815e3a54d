//! What each background part of the service says about itself, and the
//! `grpc.health.v1` statuses built from it.
//!
//! The whole server (`""` and every `access.v1` service) is `SERVING` only
//! while the log takes appends and no part has stopped. Each part has a
//! health name of its own, so an operator can see which one is at fault.

use access_events::log::EventLog;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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

/// Keeps the health statuses in step with the log and the parts until
/// `stop`, then reports `NOT_SERVING` everywhere (load balancers stop sending
/// before the listeners close).
pub async fn report(
    log: Arc<dyn EventLog>,
    parts: Parts,
    health: HealthReporter,
    server: ServerNames,
    mut stop: watch::Receiver<bool>,
) {
    let mut last: Option<(bool, bool, bool)> = None;
    loop {
        let available = log.is_available();
        metrics::gauge!("access_log_available").set(if available { 1.0 } else { 0.0 });
        // A log found damaged is not serving either, reachable or not.
        let log_up = available && parts.get(Part::Log) == PartState::Running;
        let models_up = parts.get(Part::ReadModels) == PartState::Running;
        let mailer_up = parts.get(Part::Mailer) == PartState::Running;
        let now = (log_up, models_up, mailer_up);
        if last != Some(now) {
            if let Some((was_up, _, _)) = last
                && was_up != log_up
            {
                if log_up {
                    tracing::info!("event log reachable again");
                } else {
                    tracing::warn!("event log unreachable: health is NOT_SERVING");
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
            _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
            _ = parts.changed.notified() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
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
