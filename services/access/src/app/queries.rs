//! Queries answered from the read models.

use super::{App, AppError, now_ms};
use crate::domain::DomainError;
use crate::domain::access::{self, Action, Decision, Facts};
use crate::domain::values::Email;
use crate::projections::{ContactRow, SiteVisibility};
use crate::secrets::SessionClaims;

/// A successful login.
#[derive(Clone, Debug)]
pub struct LoginOutcome {
    /// The session token.
    pub token: String,
    /// When it stops working, Unix milliseconds.
    pub expires_at_ms: i64,
    /// The contact.
    pub contact: ContactRow,
}

impl App {
    /// Checks an email and password for a tenant and opens a session.
    ///
    /// An unknown email costs the same argon2 work as a wrong password and gets
    /// the same answer; the state of the login (disabled, revoked, pending) is
    /// told only to whoever proved the password.
    pub async fn login(
        &self,
        tenant: &str,
        email: &str,
        password: String,
    ) -> Result<LoginOutcome, AppError> {
        // A login right after accepting or restoring must see that write:
        // catch up with everything the log holds now (milliseconds, normally).
        let head = *self.log.head().borrow();
        self.wait_for(head).await?;
        let found = match Email::parse(email) {
            Ok(email) => self
                .models
                .membership(tenant, email.identity_id().as_str())
                .map_err(AppError::Internal)?,
            Err(_) => None,
        };
        let phc = found
            .as_ref()
            .and_then(|(_, identity)| identity.as_ref())
            .and_then(|i| i.password_hash.clone());
        let matched = self.passwords.verify(phc, password).await;
        let Some((contact, _)) = found.filter(|_| matched) else {
            return Err(DomainError::bad_credentials().into());
        };
        let decision = self.check(tenant, &contact, &Action::Login)?;
        if !decision.allowed {
            return Err(match decision.reason {
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
            .into());
        }
        let (token, expires_at_ms) =
            self.open_session(tenant, &contact.contact_id, &contact.identity_id);
        Ok(LoginOutcome {
            token,
            expires_at_ms,
            contact,
        })
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
            },
            action,
        ))
    }

    /// Issues a session token for a contact; returns it with its expiry.
    pub fn open_session(&self, tenant: &str, contact_id: &str, identity_id: &str) -> (String, i64) {
        let expires_at_ms = now_ms() + self.settings.session_ttl.as_millis() as i64;
        let token = self.sessions.issue(&SessionClaims {
            tenant: tenant.to_owned(),
            contact_id: contact_id.to_owned(),
            identity_id: identity_id.to_owned(),
            expires_at_ms,
        });
        (token, expires_at_ms)
    }
}
