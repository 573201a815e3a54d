//! The service's signed checkpoints (see `access_log::checkpoint`): a
//! follower of the whole log keeps its running digest, checking each event
//! against its stream's chain on the way; a checkpoint is signed on demand
//! (`Audit.GetCheckpoint`, `accessctl audit checkpoint`) and every interval,
//! when it is written to the service's log for log shipping to carry off the
//! host. The signing key is `audit.key` in the key directory.

use access_catalogue::chain::ChainFollower;
use access_log::checkpoint::{Checkpoint, LogDigest};
use access_log::log::{EventLog, subscribe};
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Stream heads the follower's chain check remembers.
const FOLLOWED_STREAMS: usize = 100_000;

/// Why no checkpoint can be signed now.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointUnavailable {
    /// The follower has not reached the position asked for in time.
    #[error(
        "the checkpoint follower is at position {at}, behind the log's {wanted}; retry shortly"
    )]
    Behind {
        /// Where it is.
        at: u64,
        /// What was asked.
        wanted: u64,
    },
    /// The follower met damaged history: nothing is signed over it.
    #[error("no checkpoint is signed over damaged history: {0}")]
    Damaged(String),
}

/// The log's running digest and the key that signs it.
pub struct Checkpoints {
    key: SigningKey,
    state: watch::Sender<LogDigest>,
    damaged: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoints")
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

impl Checkpoints {
    /// A digest of the empty log, signed with `key`.
    pub fn new(key: SigningKey) -> Arc<Self> {
        Arc::new(Checkpoints {
            key,
            state: watch::channel(LogDigest::default()).0,
            damaged: Default::default(),
        })
    }

    /// Signs `state` now: for a digest taken elsewhere (a whole-log export).
    pub fn sign(&self, state: LogDigest) -> Checkpoint {
        Checkpoint::sign(state, crate::clock::system_now_ms(), &self.key)
    }

    /// A checkpoint of the log up to at least `position`, waiting at most
    /// `wait` for the follower to get there.
    pub async fn sign_at_least(
        &self,
        position: u64,
        wait: Duration,
    ) -> Result<Checkpoint, CheckpointUnavailable> {
        let mut rx = self.state.subscribe();
        let reached = tokio::time::timeout(wait, rx.wait_for(|s| s.position >= position)).await;
        if let Some(why) = self
            .damaged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(CheckpointUnavailable::Damaged(why));
        }
        let state = match reached {
            Ok(Ok(state)) => *state,
            _ => {
                return Err(CheckpointUnavailable::Behind {
                    at: self.state.borrow().position,
                    wanted: position,
                });
            }
        };
        Ok(Checkpoint::sign(
            state,
            crate::clock::system_now_ms(),
            &self.key,
        ))
    }

    /// Follows the log from its start until `stop`, signing a checkpoint into
    /// the service's log every `every`.
    pub async fn follow(
        self: Arc<Self>,
        log: Arc<dyn EventLog>,
        every: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut events = subscribe(log, 1);
        let mut follower = ChainFollower::new(FOLLOWED_STREAMS);
        let mut digest = LogDigest::default();
        let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
        tick.tick().await;
        loop {
            let next = tokio::select! {
                next = events.next() => next,
                _ = tick.tick() => {
                    let line = Checkpoint::sign(digest, crate::clock::system_now_ms(), &self.key).to_line();
                    tracing::info!(checkpoint = %line, "signed checkpoint of the log");
                    continue;
                }
                _ = stop.wait_for(|s| *s) => return,
            };
            let e = match next {
                Some(Ok(e)) => e,
                Some(Err(access_log::LogError::Damaged(d))) => {
                    return self.stop_on(d.to_string());
                }
                // The subscription retries by itself.
                Some(Err(_)) => continue,
                None => return,
            };
            if let Err(d) = follower.check(&e) {
                return self.stop_on(d.to_string());
            }
            digest.add(&e);
            self.state.send_replace(digest);
        }
    }

    fn stop_on(&self, why: String) {
        tracing::error!(damage = %why, "checkpoints stopped: no checkpoint is signed over damaged history");
        *self.damaged.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
    }
}
