//! Read models: disposable views of the log, rebuilt by replaying it.
//!
//! One projector applies events in log order to tables in memory (exactly
//! what queries and checks need) and snapshots them to disk now and then;
//! a start loads the snapshot and replays the log after it. Deleting the
//! directory and restarting rebuilds identical answers.

mod apply;
mod dense;
mod facts;
mod ids;
mod queries;
mod rows;
mod snapshot;
mod store;
mod tables;
mod webhooks;

pub use queries::CheckRows;
pub use rows::{
    Branding, ContactRow, CustomerRow, IdentityRow, KeyRow, LiveGrant, OidcClientRow, OidcGrantRow,
    PendingLogout, PortalLinkRow, SigningKeyRow, SiteVisibility, SitesSeen, TenantRow,
};
pub use store::{Behind, ReadModels, run_projector};
pub use tables::{FactorKind, FactorRow};
pub use webhooks::{Failure, ReplayRow, SecretRef, WebhookRow};
