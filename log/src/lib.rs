//! # access-log
//!
//! Where the customer portal access service keeps its events (see
//! `access-catalogue` for what they are): in order, durably, and with proof
//! that nobody changed them afterwards.
//!
//! - [`log`]: the [`log::EventLog`] trait that every backend implements, and the
//!   subscription built on top of it.
//! - [`file_log`]: the embedded backend: an append-only file of checksummed
//!   frames ([`file_log::frames`], the on-disk format) with a fjall index
//!   beside it; two writer threads, group commit, `fdatasync`.
//! - [`nats`]: the distributed backend: one JetStream stream, atomic batches.
//! - [`vault`]: where persons' keys live, and reading events with their
//!   personal values opened; [`file_vault`] keeps the keys in embedded mode
//!   (new keys ride in the log's group commit), [`nats::KvVault`] on NATS;
//!   [`sled_vault`] reads the earlier embedded vault once, to move it.
//! - [`checkpoint`]: signed checkpoints of the whole log, the keyed tamper
//!   evidence an auditor keeps off the host.
//! - [`archive`]: the portable archive of a whole log.
//! - [`consumer`]: whether a consumer is still backed by the log.
//! - `conformance` (feature `conformance`): the behaviour every backend must
//!   show, as checks the backends' tests run.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod archive;
pub mod checkpoint;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod consumer;
pub mod file_log;
pub mod file_vault;
pub mod log;
pub mod nats;
pub mod sled_vault;
pub mod vault;

pub use log::{AppendError, AppendRequest, Committed, EventLog, LogError, NewEvent, StreamAppend};
