//! # access-catalogue
//!
//! What the customer portal access service records, and nothing about where
//! it is kept: the domain depends on this crate alone.
//!
//! - [`envelope`]: the fixed outer record every event travels in.
//! - [`catalogue`]: the payloads, one enum per aggregate, each variant versioned.
//! - [`codec`]: postcard encoding behind `(event_type, schema_version)` with upcasting.
//! - [`chain`]: the per-stream SHA-256 hash chain and its verifier.
//! - [`personal`]: personal values sealed under their person's key.
//! - [`damage`]: damage to stored history, named by place, offset, position
//!   and stream.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod catalogue;
pub mod chain;
pub mod codec;
pub mod damage;
pub mod envelope;
pub mod personal;

pub use envelope::{Actor, Envelope, StreamId};
