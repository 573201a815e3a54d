//! Read models: disposable views of the log, rebuilt by replaying it.
//!
//! One projector applies events in log order to a sled database of its own and
//! writes the rows and its checkpoint in one atomic batch, so after a crash it
//! resumes exactly after the last event it applied. Deleting the directory and
//! restarting rebuilds identical answers.

mod apply;
mod keys;
mod queries;
mod rows;
mod store;

pub use rows::{
    Branding, ContactRow, CustomerRow, IdentityRow, KeyRow, LiveGrant, OidcClientRow, OidcGrantRow,
    PendingLogout, PortalLinkRow, SigningKeyRow, SiteVisibility, TenantRow,
};
pub use store::{Behind, ReadModels, run_projector};
