//! Queries answered from the read models.

use super::factor_policy::SecondStep;
use super::throttle::{Account, Ticket};
use super::{App, AppError};
use crate::app::{ClearLoginFailures, Command, RecordFirstLogin, RecordLoginFailure};
use crate::domain::DomainError;
use crate::domain::Reason;
use crate::domain::access::{self, Action, Decision, Facts};
use crate::domain::policy::Staff;
use crate::domain::values::{Email, GeneratedId, TenantId, Username};
use crate::projections::{CheckRows, ContactRow, ReadModels, SitesSeen};
use access_catalogue::Actor;
use access_keyring::SessionClaims;
use std::time::Duration;

/// Further tries at recording a failed login after conflicts.
const RECORD_RETRIES: usize = 10;

/// A successful login.
#[derive(Clone, Debug)]
pub struct LoginOutcome {
    /// The session token.
    pub token: String,
    /// When it stops working, Unix milliseconds.
    pub expires_at_ms: i64,
    /// The contact.
    pub contact: ContactRow,
    /// The login has a temporary password: the session only allows changing it.
    pub must_change_password: bool,
    /// The password was right and the contact has a second factor: no
    /// session yet (`token` is empty), this challenge and a code of the
    /// factor make one.
    pub second_factor_challenge: Option<String>,
    /// How the contact authenticated (RFC 8176): `pwd`, then `otp` and
    /// `mfa` after a second factor.
    pub amr: Vec<String>,
}

/// A password alone.
pub(super) fn password_only() -> Vec<String> {
    vec!["pwd".into()]
}

/// The authentication context class of methods `amr`: `mfa` for two
/// factors, `password` for one, empty when unknown (a check by contact id).
pub fn acr_of(amr: &[String]) -> &'static str {
    if amr.iter().any(|m| m == "mfa") {
        "mfa"
    } else if amr.is_empty() {
        ""
    } else {
        "password"
    }
}

/// What a link or a password change opened.
#[derive(Clone, Debug)]
pub enum Opened {
    /// A session.
    Session {
        /// The session token.
        token: String,
        /// When it stops working, Unix milliseconds.
        expires_at_ms: i64,
        /// Only changing the password is allowed with it.
        must_change_password: bool,
    },
    /// Nothing yet: the contact waits for approval.
    PendingApproval,
    /// Nothing yet: the contact signs in with a second factor; this is the
    /// challenge for it.
    SecondFactor(String),
}

/// The form of a login name that tries are counted under.
fn normalised_login(login: &str) -> String {
    match Email::parse(login.trim()) {
        Ok(email) => email.identity_id().as_str().to_owned(),
        Err(_) => login.trim().to_lowercase(),
    }
}

/// A command that belongs to one tenant.
trait HasTenant {
    fn tenant(&self) -> &TenantId;
}

impl HasTenant for RecordFirstLogin {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}

impl HasTenant for RecordLoginFailure {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}

impl HasTenant for ClearLoginFailures {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}

/// The error a refused login gets, with its stable reason.
pub(super) fn login_refusal(decision: Decision) -> DomainError {
    match decision.reason {
        Reason::InvitationPending => DomainError::precondition(
            Reason::InvitationPending,
            "this contact has not accepted the invitation yet; use the link in the invitation email",
        ),
        reason => DomainError::PermissionDenied {
            reason,
            message: decision.message,
        },
    }
}

/// The answer to an access check.
#[derive(Clone, Debug)]
pub struct AccessAnswer {
    /// Allowed or not, and why.
    pub decision: Decision,
    /// The contact's customer.
    pub customer_id: String,
    /// Where the contact's orders go.
    pub order_site: String,
}

impl App {
    /// The claims of a genuine, unexpired session token of `tenant`.
    pub fn session(&self, tenant: &TenantId, token: &str) -> Option<SessionClaims> {
        self.keyring
            .verify_session(token, self.now_ms())
            .filter(|claims| claims.tenant == tenant.as_str())
            // A session from before the contact added a second factor (or
            // from a password alone) ends with the enrolment: every session
            // of a contact with a factor has given it.
            .filter(|claims| self.session_stands(tenant.as_str(), &claims.contact_id, &claims.amr))
            // A removed factor may have been how the session signed in (a
            // stolen phone's passkey): sessions from before it end.
            .filter(|claims| {
                let signed_in_at =
                    claims.expires_at_ms - self.settings.session_ttl.as_millis() as i64;
                signed_in_at
                    >= self
                        .models
                        .factors_removed_at(tenant.as_str(), &claims.contact_id)
            })
    }

    /// The contact a login name (an email or a username) names in `tenant`,
    /// with the password hash it is checked against.
    fn find_login(
        &self,
        tenant: &str,
        login: &str,
    ) -> Result<Option<(ContactRow, Option<String>)>, AppError> {
        let login = login.trim();
        let found = if login.contains('@') {
            match Email::parse(login) {
                Ok(email) => self
                    .models
                    .membership(tenant, email.identity_id().as_str())
                    .map_err(AppError::Internal)?,
                Err(_) => None,
            }
        } else {
            match Username::parse(login) {
                Ok(username) => match self
                    .models
                    .contact_by_username(tenant, username.as_str())
                    .map_err(AppError::Internal)?
                {
                    Some(contact) => {
                        let identity = if contact.identity_id.is_empty() {
                            None
                        } else {
                            self.models
                                .identity(&contact.identity_id)
                                .map_err(AppError::Internal)?
                        };
                        Some((contact, identity))
                    }
                    None => None,
                },
                Err(_) => None,
            }
        };
        Ok(found.map(|(contact, identity)| {
            let phc = contact
                .local_password_hash
                .clone()
                .or_else(|| identity.and_then(|i| i.password_hash));
            (contact, phc)
        }))
    }

    /// The contact a login name (email or username) names in `tenant`.
    pub fn find_contact(&self, tenant: &str, login: &str) -> Result<Option<ContactRow>, AppError> {
        Ok(self.find_login(tenant, login)?.map(|(contact, _)| contact))
    }

    /// Checks a login name (email or username) and password for a tenant and
    /// opens a session.
    ///
    /// An unknown login costs the same argon2 work as a wrong password and gets
    /// the same answer; the state of the login (disabled, revoked, pending) is
    /// told only to whoever proved the password. A login with a temporary
    /// password succeeds into a session that only allows changing it.
    pub async fn login(
        &self,
        tenant: &str,
        login: &str,
        password: String,
        client_address: &str,
    ) -> Result<LoginOutcome, AppError> {
        // A login right after accepting or restoring must see that write:
        // catch up with everything the log holds now (milliseconds, normally).
        let head = *self.log.head().borrow();
        self.wait_for(head).await?;
        let found = self.find_login(tenant, login)?;
        let name = normalised_login(login);
        let durable = || match &found {
            Some((contact, _)) => self
                .models
                .contact(tenant, &contact.contact_id)
                .ok()
                .flatten()
                .map_or((Vec::new(), 0), |row| {
                    (row.failed_logins, row.locked_until_ms)
                }),
            None => (Vec::new(), 0),
        };
        let gate = match &found {
            Some((contact, _)) => Account::Known {
                tenant,
                contact_id: &contact.contact_id,
                durable: &durable,
            },
            None => Account::Unknown {
                tenant,
                name: &name,
            },
        };
        let ticket = self
            .throttle
            .admit(gate, client_address, self.now_ms())
            .map_err(|t| {
                metrics::counter!("access_logins_total", "outcome" => if t.locked { "locked" } else { "delayed" })
                    .increment(1);
                DomainError::from(t)
            })?;
        let phc = found.as_ref().and_then(|(_, phc)| phc.clone());
        // An imported hash is re-hashed once it lets the contact in.
        let imported = found
            .as_ref()
            .filter(|(contact, _)| contact.password_imported)
            .and(phc.clone())
            .map(|matched| (matched, password.clone()));
        let matched = self.passwords.verify(phc, password).await;
        let Some((contact, _)) = found.as_ref().filter(|_| matched) else {
            metrics::counter!("access_logins_total", "outcome" => "bad_credentials").increment(1);
            self.login_failed(
                tenant,
                found.map(|(c, _)| c.contact_id),
                client_address,
                ticket,
            );
            return Err(DomainError::bad_credentials().into());
        };
        drop(ticket);
        let contact = contact.clone();
        let decision = self.check(tenant, &contact, &Action::Login)?;
        if !decision.allowed {
            metrics::counter!("access_logins_total", "outcome" => "refused").increment(1);
            return Err(login_refusal(decision).into());
        }
        if let Some((matched, password)) = imported {
            self.rehash_imported(tenant, &contact.contact_id, matched, password);
        }
        let step = self.second_step(tenant, &contact);
        if step != SecondStep::Nothing {
            metrics::counter!("access_logins_total", "outcome" => "second_factor").increment(1);
            let challenge = self.second_factor_challenge(tenant, &contact, step);
            return Ok(LoginOutcome {
                token: String::new(),
                expires_at_ms: 0,
                must_change_password: contact.temporary,
                contact,
                second_factor_challenge: Some(challenge),
                amr: password_only(),
            });
        }
        self.signed_in(tenant, contact, password_only()).await
    }

    /// The session of a contact who proved who they are (a password, and a
    /// second factor where they have one): what the first success records.
    pub(super) async fn signed_in(
        &self,
        tenant: &str,
        contact: ContactRow,
        amr: Vec<String>,
    ) -> Result<LoginOutcome, AppError> {
        metrics::counter!("access_logins_total", "outcome" => "ok").increment(1);
        if !contact.failed_logins.is_empty() {
            let app = self.clone();
            let (tenant, contact_id) = (tenant.to_owned(), contact.contact_id.clone());
            tokio::spawn(async move { app.clear_login_failures(&tenant, &contact_id).await });
        }
        if !contact.logged_in {
            self.record_first_login(tenant, &contact.contact_id).await;
        }
        let must_change_password = contact.temporary;
        let (token, expires_at_ms) = self.open_session(
            tenant,
            (&contact.contact_id, &contact.identity_id),
            must_change_password,
            amr.clone(),
        );
        Ok(LoginOutcome {
            token,
            expires_at_ms,
            contact,
            must_change_password,
            second_factor_challenge: None,
            amr,
        })
    }

    /// What a link or password change just opened for a contact, after the
    /// read model reached `position`: a session; nothing while the contact
    /// waits for approval; or, for a contact with a second factor who has
    /// not given it here (`second_factor_given`), the challenge of a
    /// sign-in's second step: a link proves the mailbox, not the factor.
    /// Refused like a login when it may not log in (disabled, revoked,
    /// customer blocked…).
    pub async fn session_for(
        &self,
        tenant: &str,
        contact_id: &str,
        position: u64,
        given: &[String],
    ) -> Result<Opened, AppError> {
        self.wait_for(position).await?;
        let contact = self
            .models
            .contact(tenant, contact_id)
            .map_err(AppError::Internal)?
            .ok_or(DomainError::NotFound("contact"))?;
        let decision = self.check(tenant, &contact, &Action::Login)?;
        if decision.reason == Reason::PendingApproval {
            return Ok(Opened::PendingApproval);
        }
        if !decision.allowed {
            return Err(login_refusal(decision).into());
        }
        // A password change keeps what its session proved.
        let amr = if given.is_empty() {
            password_only()
        } else {
            given.to_vec()
        };
        let step = self.second_step(tenant, &contact);
        let stands = match step {
            SecondStep::Nothing => true,
            SecondStep::Give => self.session_stands(tenant, contact_id, &amr),
            SecondStep::Enrol(_) => false,
        };
        if !stands {
            return Ok(Opened::SecondFactor(
                self.second_factor_challenge(tenant, &contact, step),
            ));
        }
        // A session opened by a link (an accepted invitation, a reset) is a
        // login like any other: later access emails must not ask to set a
        // password again.
        if !contact.logged_in {
            self.record_first_login(tenant, &contact.contact_id).await;
        }
        let (token, expires_at_ms) = self.open_session(
            tenant,
            (&contact.contact_id, &contact.identity_id),
            contact.temporary,
            amr,
        );
        Ok(Opened::Session {
            token,
            expires_at_ms,
            must_change_password: contact.temporary,
        })
    }

    /// Counts a wrong password. The answer goes back at once, whether or not
    /// the name has an account (an append would make known names slower); the
    /// try's slot stays taken until its failure is in the read model.
    pub(super) fn login_failed(
        &self,
        tenant: &str,
        contact_id: Option<String>,
        client_address: &str,
        ticket: Ticket,
    ) {
        let now = self.now_ms();
        if ticket.failed(now).address_locked {
            metrics::counter!("access_lockouts_total", "kind" => "address").increment(1);
            tracing::warn!(
                tenant,
                "a client address reached the failed-login limit and is locked"
            );
        }
        let Some(contact_id) = contact_id else {
            return;
        };
        let (Ok(tenant_id), Ok(contact)) =
            (TenantId::parse(tenant), GeneratedId::parse(&contact_id))
        else {
            return;
        };
        let cmd = RecordLoginFailure {
            tenant: tenant_id,
            contact_id: contact,
            at_ms: now,
            client_address: client_address.to_owned(),
            policy: *self.throttle.policy(),
        };
        let app = self.clone();
        let busy = self.background.enter();
        tokio::spawn(async move {
            let _busy = busy;
            let request_id = format!("login-failure:{}", uuid::Uuid::now_v7());
            let actor = Actor::System {
                component: "login".into(),
            };
            // A burst of failures on one login conflicts on its stream; the
            // same request id makes every retry record it at most once.
            let mut recorded = app.execute_as(&request_id, actor.clone(), &cmd).await;
            for _ in 0..RECORD_RETRIES {
                match &recorded {
                    Err(AppError::Conflict(_) | AppError::Unavailable(_)) => {
                        tokio::time::sleep(Duration::from_millis(rand::random_range(5..50))).await;
                        recorded = app.execute_as(&request_id, actor.clone(), &cmd).await;
                    }
                    _ => break,
                }
            }
            match recorded {
                Ok(position) => {
                    if app.wait_for(position).await.is_err() {
                        tracing::warn!("a failed login is recorded but not yet visible");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not record a failed login; it counts in memory");
                    ticket.keep_unrecorded();
                }
            }
            drop(ticket);
        });
    }

    /// Forgets a contact's failed logins after a successful one.
    async fn clear_login_failures(&self, tenant: &str, contact_id: &str) {
        let (Ok(tenant_id), Ok(contact)) =
            (TenantId::parse(tenant), GeneratedId::parse(contact_id))
        else {
            return;
        };
        let cmd = ClearLoginFailures {
            tenant: tenant_id,
            contact_id: contact,
        };
        let request_id = format!("login-cleared:{}", uuid::Uuid::now_v7());
        let actor = Actor::Contact {
            contact_id: contact_id.to_owned(),
        };
        match self.execute_as(&request_id, actor, &cmd).await {
            Ok(_) | Err(AppError::Domain(_)) => {}
            Err(e) => tracing::warn!(error = %e, "could not clear failed logins"),
        }
    }

    /// Appends `FirstLogin` once per contact; the request id is derived from
    /// the contact, so concurrent first logins record it once.
    async fn record_first_login(&self, tenant: &str, contact_id: &str) {
        let (Ok(tenant_id), Ok(contact)) =
            (TenantId::parse(tenant), GeneratedId::parse(contact_id))
        else {
            return;
        };
        let request_id = format!("first-login:{tenant}:{contact_id}");
        let actor = Actor::Contact {
            contact_id: contact_id.to_owned(),
        };
        let cmd = RecordFirstLogin {
            tenant: tenant_id,
            contact_id: contact,
        };
        match self.execute_as(&request_id, actor, &cmd).await {
            Ok(_) | Err(AppError::Domain(_)) => {}
            // The login stands; the record follows with the next login.
            Err(e) => tracing::warn!(error = %e, "could not record a first login"),
        }
    }

    /// Runs a command the service issues itself, in the command's tenant,
    /// under a request id it derived; returns the position written.
    async fn execute_as<C: Command + HasTenant>(
        &self,
        request_id: &str,
        actor: Actor,
        cmd: &C,
    ) -> Result<u64, AppError> {
        Ok(self
            .execute_derived(request_id, cmd.tenant(), actor, cmd)
            .await?
            .position)
    }

    /// `CheckAccess`: whether a contact staff may read may do `action`,
    /// after `position`, and where its orders go. The rows are read in
    /// place, none copied: the check is the service's hottest path.
    pub async fn check_access(
        &self,
        tenant: &TenantId,
        staff: &Staff,
        contact_id: &str,
        action: &Action,
        position: u64,
    ) -> Result<AccessAnswer, AppError> {
        self.wait_for(position).await?;
        self.models
            .with_check_rows(tenant.as_str(), contact_id, |rows| {
                let rows = rows.map_err(DomainError::NotFound)?;
                staff.may_read_customer(rows.customer.record.sales_rep.as_deref())?;
                Ok(AccessAnswer {
                    decision: decide(rows, action),
                    customer_id: rows.customer_id.to_owned(),
                    order_site: SitesSeen::resolve(rows.contact.site_rule, rows.tenant)
                        .order_site
                        .to_owned(),
                })
            })
            .map_err(|e: DomainError| e.into())
    }

    /// Whether a contact of `tenant` may do `action`, from the read models.
    pub fn check(
        &self,
        tenant: &str,
        contact: &ContactRow,
        action: &Action,
    ) -> Result<Decision, AppError> {
        check_in(&self.models, tenant, contact, action)
    }

    /// Issues a session token for a contact; returns it with its expiry.
    pub fn open_session(
        &self,
        tenant: &str,
        (contact_id, identity_id): (&str, &str),
        must_change_password: bool,
        amr: Vec<String>,
    ) -> (String, i64) {
        let expires_at_ms = self.now_ms() + self.settings.session_ttl.as_millis() as i64;
        let token = self.keyring.session_token(&SessionClaims {
            tenant: tenant.to_owned(),
            contact_id: contact_id.to_owned(),
            identity_id: identity_id.to_owned(),
            expires_at_ms,
            must_change_password,
            amr,
        });
        (token, expires_at_ms)
    }
}

/// Whether a contact of `tenant` may do `action`, from the given read models
/// (the live ones, or ones replayed to a moment in the past).
pub fn check_in(
    models: &ReadModels,
    tenant: &str,
    contact: &ContactRow,
    action: &Action,
) -> Result<Decision, AppError> {
    models.with_check_rows(tenant, &contact.contact_id, |rows| {
        let rows = rows.map_err(DomainError::NotFound)?;
        let contact = contact.facts();
        Ok(decide(CheckRows { contact, ..rows }, action))
    })
}

/// The decision on a contact's rows.
fn decide(rows: CheckRows<'_>, action: &Action) -> Decision {
    let (contact, customer, tenant) = (rows.contact, rows.customer, rows.tenant);
    let seen = SitesSeen::resolve(contact.site_rule, tenant);
    access::check(
        &Facts {
            lifecycle: contact.lifecycle,
            disabled: contact.disabled,
            customer_status: customer.status,
            inactive_customers_may_log_in: tenant.inactive_customers_may_log_in,
            visible_sites: seen.visible_sites,
            documents: customer.documents.as_deref(),
            kind: contact.kind,
            must_change_password: contact.temporary,
        },
        action,
    )
}
