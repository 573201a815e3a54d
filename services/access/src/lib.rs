//! # access-service
//!
//! The customer portal access service: decides which customer contacts may log
//! in to a supplier's ordering portal, what they see and where their orders go.
//!
//! ## Layout
//! - [`domain`]: pure decisions and state, tested given/when/then.
//! - [`app`]: runs commands: load streams, decide, append atomically, retry on conflict.
//! - [`projections`]: the read models and the projector that feeds them from the log.
//! - [`grpc`]: the `access.v1` servers, authentication and error mapping.
//! - [`http`]: the HTTP side: liveness, the contact pages ([`pages`]) and
//!   the OpenID Connect provider ([`oidc`]: discovery, JWKS, token,
//!   userinfo, introspection, revocation; the sign-in page is a page).
//! - [`feed`]: the public events other services subscribe to, mapped
//!   from the log.
//! - [`signout`]: ends the sign-ins of contacts who may no longer sign in
//!   and tells their clients (back-channel logout).
//! - [`health`]: each background part's state and the health statuses.
//! - [`check`]: `accessd check`, a stopped data directory against its log.
//! - [`checkpoints`]: the log's running digest and its signed checkpoints.
//! - [`repair`]: `accessd repair --quarantine`, the operator's recorded repair.
//! - [`integrity`]: the checks before serving: stores backed by the log.
//! - [`secrets`]: the key files of the data directory and digests of
//!   presented keys (what is derived from the server key is in
//!   `access_keyring`; password hashing in [`passwords`]).
//! - [`config`], [`startup`]: wiring (log output and signals are
//!   `access_runtime`'s).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod audit;
pub mod check;
pub mod checkpoints;
pub mod clock;
pub mod config;
pub mod config_file;
pub mod datadir;
pub mod domain;
pub mod embedded_vault;
pub mod feed;
pub mod grpc;
pub mod health;
pub mod http;
pub mod integrity;
pub mod metrics;
pub mod oidc;
pub mod pages;
pub mod passwords;
pub mod projections;
pub mod proxies;
pub mod repair;
pub mod secrets;
pub mod signout;
pub mod startup;
pub mod tls;
pub mod webhooks;
pub use access_runtime as telemetry;
