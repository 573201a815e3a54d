//! The public event feed: what other services learn of access changes, in
//! the public schema `access.v1.events`, never in the log's own layout.
//!
//! [`map`] turns each stored event into the public events it stands for
//! (none for the service's own bookkeeping), with personal data only where
//! the subscriber may read it.

pub mod map;
pub mod nats;

pub use map::{Disclosure, Facts, public_events};
