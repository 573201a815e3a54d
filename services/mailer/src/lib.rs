//! # access-mailer
//!
//! The mailer worker: it consumes the event log from its own durable checkpoint
//! and sends the emails that events call for, each exactly once in effect.
//! In embedded mode `accessd` runs it in-process; on NATS, `mailerd` workers
//! share the work.
//!
//! ## Layout
//! - [`args`]: the mail settings of `accessd` and `mailerd`.
//! - [`worker`]: the consumer loop, a batch per step, and its checkpoint.
//! - `batch`: a batch's events handled side by side, in order where it shows.
//! - `state`: the core every step shares, and how one event is acted on.
//! - `facts`: what mails need besides their event, read from the log.
//! - `ledger`: the embedded worker's checkpoint, mails handled and outcomes
//!   to report, in one file.
//! - `sled_upgrade`: the earlier embedded state, moved once.
//! - `mails`: each kind of mail, its recipients, words and link.
//! - [`delivery`]: sending with retries and pacing, and the records of it.
//! - [`compose`]: what each email says, as text and HTML.
//! - [`distributed`]: `mailerd`'s loop: a shared durable consumer and ledger.
//! - `reconcile`: the mailer's state checked against the log before it sends.
//! - [`report`]: delivery outcomes back to `accessd` over gRPC.
//! - [`transport`]: where mail goes: `.eml` files in an outbox, or SMTP.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod args;
mod batch;
pub mod compose;
pub mod delivery;
pub mod distributed;
mod facts;
mod ledger;
mod mails;
mod reconcile;
pub mod report;
mod sled_upgrade;
mod state;
pub mod templates;
pub mod transport;
pub mod worker;

pub use args::MailArgs;
pub use delivery::{DeliveryReport, DeliveryReporter, LedgerEntry, RetryPolicy};
pub use transport::Transport;
pub use worker::{ExecutionOutcome, MAX_UNRECORDED, Mailer, MailerConfig, Progress, damage_of};
