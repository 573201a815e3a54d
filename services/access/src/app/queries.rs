//! Queries answered from the read models.

use super::{App, AppError, now_ms};
use crate::app::{CommandContext, RecordFirstLogin};
use crate::domain::DomainError;
use crate::domain::access::{self, Action, Decision, Facts};
use crate::domain::values::{Email, GeneratedId, RequestId, TenantId, Username};
use crate::projections::{ContactRow, SiteVisibility};
use crate::secrets::SessionClaims;
use access_events::Actor;

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
}

/// The error a refused login gets, with its stable reason.
fn login_refusal(decision: Decision) -> DomainError {
    match decision.reason {
        "invitation_pending" => DomainError::precondition(
            "invitation_pending",
            "this contact has not accepted the invitation yet; use the link in the invitation email",
        ),
        "revoked" => DomainError::PermissionDenied {
            reason: "access_revoked",
            message: decision.message,
        },
        "disabled" => DomainError::PermissionDenied {
            reason: "access_disabled",
            message: decision.message,
        },
        reason => DomainError::PermissionDenied {
            reason,
            message: decision.message,
        },
    }
}

impl App {
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
    ) -> Result<LoginOutcome, AppError> {
        // A login right after accepting or restoring must see that write:
        // catch up with everything the log holds now (milliseconds, normally).
        let head = *self.log.head().borrow();
        self.wait_for(head).await?;
        let found = self.find_login(tenant, login)?;
        let phc = found.as_ref().and_then(|(_, phc)| phc.clone());
        let matched = self.passwords.verify(phc, password).await;
        let Some((contact, _)) = found.filter(|_| matched) else {
            return Err(DomainError::bad_credentials().into());
        };
        let decision = self.check(tenant, &contact, &Action::Login)?;
        if !decision.allowed {
            return Err(login_refusal(decision).into());
        }
        if !contact.logged_in {
            self.record_first_login(tenant, &contact.contact_id).await;
        }
        let must_change_password = contact.temporary;
        let (token, expires_at_ms) = self.open_session(
            tenant,
            &contact.contact_id,
            &contact.identity_id,
            must_change_password,
        );
        Ok(LoginOutcome {
            token,
            expires_at_ms,
            contact,
            must_change_password,
        })
    }

    /// The session for a contact a link or password change just let in, after
    /// the read model reached `position`: `None` while the contact waits for
    /// approval; refused like a login when it may not log in (disabled,
    /// revoked, customer blocked…).
    pub async fn session_for(
        &self,
        tenant: &str,
        contact_id: &str,
        position: u64,
    ) -> Result<Option<(String, i64, bool)>, AppError> {
        self.wait_for(position).await?;
        let contact = self
            .models
            .contact(tenant, contact_id)
            .map_err(AppError::Internal)?
            .ok_or(DomainError::NotFound("contact"))?;
        let decision = self.check(tenant, &contact, &Action::Login)?;
        if decision.reason == "pending_approval" {
            return Ok(None);
        }
        if !decision.allowed {
            return Err(login_refusal(decision).into());
        }
        let (token, expires_at_ms) = self.open_session(
            tenant,
            &contact.contact_id,
            &contact.identity_id,
            contact.temporary,
        );
        Ok(Some((token, expires_at_ms, contact.temporary)))
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
        let Ok(request) = RequestId::parse(&request_id) else {
            return;
        };
        let ctx = CommandContext {
            fingerprint: crate::secrets::sha256(&request_id),
            request_id: request,
            tenant: Some(tenant_id.clone()),
            actor: Actor::Contact {
                contact_id: contact_id.to_owned(),
            },
            correlation_id: uuid::Uuid::new_v4(),
        };
        let cmd = RecordFirstLogin {
            tenant: tenant_id,
            contact_id: contact,
        };
        match self.execute(&ctx, &cmd).await {
            Ok(_) | Err(AppError::Domain(_)) => {}
            // The login stands; the record follows with the next login.
            Err(e) => tracing::warn!(error = %e, "could not record a first login"),
        }
    }

    /// Whether a contact of `tenant` may do `action`, from the read models.
    pub fn check(
        &self,
        tenant: &str,
        contact: &ContactRow,
        action: &Action,
    ) -> Result<Decision, AppError> {
        let tenant_row = self
            .models
            .tenant(tenant)
            .map_err(AppError::Internal)?
            .ok_or(DomainError::NotFound("tenant"))?;
        let customer = self
            .models
            .customer(tenant, &contact.customer_id)
            .map_err(AppError::Internal)?
            .ok_or(DomainError::NotFound("customer"))?;
        let visibility = SiteVisibility::resolve(&contact.site_rule, &tenant_row);
        Ok(access::check(
            &Facts {
                lifecycle: contact.lifecycle,
                disabled: contact.disabled,
                customer_status: customer.status,
                inactive_customers_may_log_in: tenant_row.inactive_customers_may_log_in,
                visible_sites: &visibility.visible_sites,
                documents: customer.documents.as_deref(),
                kind: contact.kind,
                must_change_password: contact.temporary,
            },
            action,
        ))
    }

    /// Issues a session token for a contact; returns it with its expiry.
    pub fn open_session(
        &self,
        tenant: &str,
        contact_id: &str,
        identity_id: &str,
        must_change_password: bool,
    ) -> (String, i64) {
        let expires_at_ms = now_ms() + self.settings.session_ttl.as_millis() as i64;
        let token = self.sessions.issue(&SessionClaims {
            tenant: tenant.to_owned(),
            contact_id: contact_id.to_owned(),
            identity_id: identity_id.to_owned(),
            expires_at_ms,
            must_change_password,
        });
        (token, expires_at_ms)
    }
}
