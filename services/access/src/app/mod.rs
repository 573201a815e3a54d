//! Runs commands against the log: load the streams a decision needs, decide,
//! append everything atomically with the versions seen, and on a conflict load
//! again and decide again. A request id seen before is answered from its first
//! result without deciding anything.

mod accept;
mod audit;
mod authorize;
mod background;
mod bulk;
mod claims;
mod commands;
mod customers;
mod delivery;
mod erasure;
mod error;
mod execute;
mod factor_policy;
mod factors;
mod feed;
mod handoff;
mod import_batch;
mod imports;
mod introspect;
mod jwt;
mod keys;
mod logins;
mod oidc_clients;
mod passkeys;
mod portal_links;
mod preview;
mod queries;
mod reads;
mod rehash;
mod reports;
mod resets;
mod selfservice;
mod signing;
mod signout;
mod temporary;
mod tenants;
#[cfg(test)]
mod tests;
mod throttle;
mod tokens;
mod webhooks;

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use accept::*;
pub use authorize::{AuthorizationRequest, AuthorizeError, Prompt, SignedIn, with_query};
pub use background::{Background, Busy};
pub use bulk::{BulkInvite, BulkInvited, BulkOutcome, BulkSelection, BulkSkipped};
pub use claims::SignInClaims;
pub use commands::*;
pub use customers::*;
pub use delivery::{MailReporter, RecordDelivery};
pub use erasure::{ForgetIdentity, Forgotten};
pub use error::AppError;
pub use execute::{Command, CommandContext, Outcome, Unit};
pub use factor_policy::{SecondStep, SetSecondFactorPolicy, amr_meets, enrol_word};
pub use factors::{Enroller, TotpEnrolmentStart};
pub use feed::FeedQuery;
pub use handoff::RedeemLoginCode;
pub use imports::{
    ContactInput, CustomerInput, ImportCounts, ImportOptions, ImportReport, ImportRow, Importer,
    MAX_IMPORT_ROWS, MAX_REPORTED_REFUSALS, RefusedRow, RowPlace,
};
pub use introspect::ActiveToken;
pub use jwt::TokenSigner;
pub use keys::{IssuedKey, KeyHolder, KeyRefused};
pub use logins::*;
pub use oidc_clients::{
    OidcClientChange, OidcClientCommand, RegisterOidcClientCommand, RegisteredClient,
};
pub use passkeys::PasskeyCeremony;
pub use portal_links::*;
pub use preview::Preview;
pub use queries::{AccessAnswer, LoginOutcome, Opened, acr_of, check_in};
pub use reports::{AccessLine, BillableUsers, CustomerFilter, PageRequest};
pub use resets::*;
pub use selfservice::{InvitationView, LinkState};
pub use signing::RotateSigningKeyCommand;
pub use signout::IdTokenHint;
pub use temporary::PortalUsersShown;
pub use tenants::*;
pub use throttle::LoginThrottle;
pub use tokens::{ClientCredentials, OauthError, TokenResponse};
pub use webhooks::{WebhookChange, WebhookChanged, WebhookCommand};

use crate::domain::Reason;
use crate::domain::contact::ContactState;
use crate::domain::password_policy::PasswordPolicy;
use crate::domain::values::{Password, TenantId};
use crate::projections::ReadModels;
use crate::secrets::Passwords;
use access_keyring::Keyring;
use access_log::log::EventLog;
use access_log::vault::Vault;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The least time between two self-service reset links to one login.
const RESET_INTERVAL: Duration = Duration::from_secs(60);

/// How many times a command is decided again after a conflict.
const MAX_ATTEMPTS: usize = 5;

/// Tunables of the command and query paths.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long an invitation link lives.
    pub link_ttl: Duration,
    /// How long a session lives.
    pub session_ttl: Duration,
    /// How long a query waits for its read model to reach `min_position`.
    pub query_wait: Duration,
    /// How long a command may take in all, every round trip included.
    pub command_deadline: Duration,
    /// The public base URL of links (portal links are `<base>/p/<token>`).
    pub public_base_url: String,
    /// Whether webhooks may post to loopback and private addresses.
    pub webhook_private_addresses: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            link_ttl: Duration::from_secs(24 * 3600),
            session_ttl: Duration::from_secs(12 * 3600),
            query_wait: Duration::from_secs(5),
            command_deadline: Duration::from_secs(10),
            public_base_url: "http://127.0.0.1:8080".into(),
            webhook_private_addresses: false,
        }
    }
}

/// Everything a command or query needs.
#[derive(Clone)]
pub struct App {
    /// The event log.
    log: Arc<dyn EventLog>,
    /// The read models.
    models: Arc<ReadModels>,
    /// Password hashing.
    passwords: Passwords,
    /// The server keys: every secret derived from them (links, sessions,
    /// login codes, API keys, portal links, temporary passwords).
    keyring: Keyring,
    /// Persons' keys: personal values in events are sealed under them.
    vault: Arc<dyn Vault>,
    /// Tunables.
    settings: Settings,
    /// The gate in front of every password check (lockout, delays).
    throttle: Arc<LoginThrottle>,
    /// When each login last asked for a reset link, to send at most one a minute.
    reset_throttle: Arc<std::sync::Mutex<HashMap<String, std::time::Instant>>>,
    /// The queue of "forgot password" requests, worked off by one task.
    forgot: Arc<std::sync::OnceLock<tokio::sync::mpsc::Sender<selfservice::Forgot>>>,
    /// Work a call left running after its answer (a failed login being
    /// recorded, a reset request queued), so that waiting for it is waiting
    /// on a fact.
    background: Background,
    /// What the service reads the time from.
    clock: Arc<dyn Clock>,
    /// Permits for rendering email previews.
    renders: Arc<tokio::sync::Semaphore>,
}

/// What an [`App`] is made of; the rest it makes itself.
pub struct AppParts {
    /// The event log.
    pub log: Arc<dyn EventLog>,
    /// The read models, fed by the projector.
    pub models: Arc<ReadModels>,
    /// Password hashing.
    pub passwords: Passwords,
    /// The server keys.
    pub keyring: Keyring,
    /// Persons' keys.
    pub vault: Arc<dyn Vault>,
    /// Tunables.
    pub settings: Settings,
    /// The gate in front of every password check.
    pub throttle: Arc<LoginThrottle>,
    /// The time.
    pub clock: Arc<dyn Clock>,
}

impl App {
    /// An app over `parts`, with no background work yet.
    pub fn new(parts: AppParts) -> App {
        App {
            log: parts.log,
            models: parts.models,
            passwords: parts.passwords,
            keyring: parts.keyring,
            vault: parts.vault,
            settings: parts.settings,
            throttle: parts.throttle,
            clock: parts.clock,
            reset_throttle: Default::default(),
            forgot: Default::default(),
            background: Default::default(),
            renders: Arc::new(tokio::sync::Semaphore::new(preview::RENDERS_AT_ONCE)),
        }
    }

    /// Now, by the app's clock (milliseconds since the Unix epoch).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The tunables.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The last position this process knows the log to have.
    pub fn head(&self) -> u64 {
        *self.log.head().borrow()
    }

    /// Work calls left running after their answers, not done yet.
    pub fn background_pending(&self) -> usize {
        self.background.pending()
    }

    /// The position the read models have applied up to.
    pub fn read_model_position(&self) -> u64 {
        self.models.checkpoint()
    }
}

/// Checks a new password against `policy` and the contact's email and username.
pub fn check_password(
    policy: &PasswordPolicy,
    password: &Password,
    contact: &ContactState,
    field: &str,
) -> Result<(), AppError> {
    let mut names = vec![contact.email.as_str()];
    names.extend(contact.username.as_deref());
    policy
        .check(password, &names)
        .map_err(|m| AppError::Domain(crate::domain::DomainError::invalid(field, m)))
}

impl App {
    /// Whether a self-service reset link may go to this contact now: at most
    /// one a minute, so nobody can flood a mailbox (or keep killing links).
    pub fn may_send_reset(&self, tenant: &str, contact_id: &str) -> bool {
        let now = std::time::Instant::now();
        let mut last = self
            .reset_throttle
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if last.len() > 10_000 {
            last.retain(|_, at| now.duration_since(*at) < RESET_INTERVAL);
        }
        let key = format!("{tenant}/{contact_id}");
        match last.get(&key) {
            Some(at) if now.duration_since(*at) < RESET_INTERVAL => false,
            _ => {
                last.insert(key, now);
                true
            }
        }
    }

    /// Checks a new password against its tenant's rules (from the read model:
    /// a policy changed a moment ago may not apply yet) and the login's names.
    pub fn check_new_password(
        &self,
        tenant: &TenantId,
        password: &Password,
        contact: &ContactState,
        field: &str,
    ) -> Result<(), AppError> {
        let policy = self
            .models
            .tenant(tenant.as_str())
            .map_err(AppError::Internal)?
            .map(|t| t.password_policy)
            .unwrap_or_default();
        check_password(&policy, password, contact, field)
    }

    /// Waits until the read models have reached `min_position`.
    pub async fn wait_for(&self, min_position: u64) -> Result<(), AppError> {
        if min_position == 0 {
            return Ok(());
        }
        match self
            .models
            .wait_for(min_position, self.settings.query_wait)
            .await
        {
            Ok(()) => Ok(()),
            Err(behind) => {
                // Past the log's own head, no wait will ever reach it: the
                // caller's position is wrong, and retrying cannot help.
                let head = match self.log.latest().await {
                    Ok(head) => head,
                    Err(_) => return Err(AppError::Behind(behind)),
                };
                if min_position > head {
                    Err(crate::domain::DomainError::FailedPrecondition {
                        reason: Reason::PositionBeyondLog,
                        message: format!(
                            "min_position {min_position} is beyond the log's last position {head}; use a position a reply gave"
                        ),
                    }
                    .into())
                } else {
                    Err(AppError::Behind(behind))
                }
            }
        }
    }
}
