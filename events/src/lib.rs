//! # access-events
//!
//! The event log of the customer portal access service: what happened, in what
//! order, caused by whom, and proof that nobody changed it afterwards.
//!
//! ## Layout
//! - [`envelope`]: the fixed outer record every event travels in (DESIGN rule 7).
//! - [`catalogue`]: the payloads, one enum per aggregate, each variant versioned.
//! - [`codec`]: postcard encoding behind `(event_type, schema_version)` with upcasting.
//! - [`chain`]: the per-stream SHA-256 hash chain and its verifier.
//! - [`checkpoint`]: signed checkpoints of the whole log, the keyed tamper
//!   evidence an auditor keeps off the host.
//! - [`log`]: the [`log::EventLog`] trait that every backend implements, and the
//!   subscription built on top of it.
//! - [`file_log`]: the embedded backend: an append-only file of checksummed
//!   frames ([`frames`]) with a fjall index beside it; two writer threads, group
//!   commit, `fdatasync`. [`sled_upgrade`] converts the earlier all-sled layout.
//! - [`nats`]: the distributed backend: one JetStream stream, atomic batches.
//! - [`damage`]: damage to stored history, named by file, offset, position
//!   and stream.
//! - [`personal`]: sealed personal values and the key vault; [`sled_vault`]
//!   keeps the keys in embedded mode, [`nats::KvVault`] on NATS.
//! - [`cli`]: parsing shared by the command lines (durations).
//! - [`links`]: derivation of the secrets that may never enter the log (link tokens,
//!   API keys), shared by the service and the mailer.
//! - [`conformance`]: the behaviour every backend must show, as reusable checks.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod archive;
pub mod catalogue;
pub mod chain;
pub mod checkpoint;
pub mod cli;
pub mod codec;
pub mod conformance;
pub mod damage;
pub mod envelope;
pub mod file_log;
pub mod frames;
pub mod links;
pub mod log;
pub mod nats;
pub mod personal;
pub mod sled_upgrade;
pub mod sled_vault;

pub use envelope::{Actor, Envelope, StreamId};
pub use log::{AppendError, AppendRequest, Committed, EventLog, LogError, NewEvent, StreamAppend};
