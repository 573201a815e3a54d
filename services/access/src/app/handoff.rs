//! The hand-off from the pages into the tenant's portal: a one-time login
//! code in the redirect, exchanged by the portal's backend for a session.

use super::{App, AppError, Command, Unit};
use crate::domain::Reason;
use crate::domain::contact::ContactState;
use crate::domain::values::{GeneratedId, TenantId};
use crate::domain::{Change, DomainError, streams};
use access_catalogue::Actor;
use access_catalogue::catalogue::{ContactEvent, Event, LoginCodeExchanged};

/// Records that a login code was used; its request id is the code's nonce,
/// so the log lets each code through once, whichever replica is asked.
#[derive(Clone, Debug)]
pub struct RedeemLoginCode {
    /// The tenant.
    pub tenant: TenantId,
    /// The contact.
    pub contact_id: GeneratedId,
    /// The code's nonce.
    pub nonce: String,
}

impl Command for RedeemLoginCode {
    type Reply = ();

    async fn decide(&self, _app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        let contact: ContactState = unit
            .load(&streams::contact(&self.tenant, &self.contact_id))
            .await?;
        if contact.lifecycle.is_none() {
            return Err(DomainError::NotFound("contact").into());
        }
        Ok((
            vec![Change::new(
                streams::contact(&self.tenant, &self.contact_id),
                Event::Contact(ContactEvent::LoginCodeExchanged(LoginCodeExchanged {
                    nonce: self.nonce.clone(),
                })),
            )],
            (),
        ))
    }
}

/// A code that is not (or no longer) good: one answer for all cases.
fn bad_code() -> AppError {
    DomainError::Unauthenticated {
        reason: Reason::BadLoginCode,
        message: "the login code is unknown, expired or used; log in with the password".into(),
    }
    .into()
}

impl App {
    /// Where the browser goes after a password was set for `contact_id`: the
    /// tenant's portal with a fresh login code, or `None` without a portal.
    pub fn hand_off_url(&self, tenant: &str, contact_id: &str) -> Result<Option<String>, AppError> {
        let Some(row) = self.models.tenant(tenant).map_err(AppError::Internal)? else {
            return Ok(None);
        };
        let portal = row.branding.portal_url;
        if portal.is_empty() {
            return Ok(None);
        }
        // A contact with a second step to take signs in at the portal.
        let contact = self
            .models
            .contact(tenant, contact_id)
            .map_err(AppError::Internal)?;
        if contact.is_none_or(|c| {
            self.second_step(tenant, &c) != super::factor_policy::SecondStep::Nothing
        }) {
            return Ok(Some(portal));
        }
        let code = self.keyring.login_code(tenant, contact_id, self.now_ms());
        // The code goes into the query, before any fragment, so the portal's
        // server receives it.
        let (base, fragment) = match portal.split_once('#') {
            Some((base, fragment)) => (base, format!("#{fragment}")),
            None => (portal.as_str(), String::new()),
        };
        let joiner = if base.contains('?') { '&' } else { '?' };
        Ok(Some(format!("{base}{joiner}code={code}{fragment}")))
    }

    /// Exchanges a login code for the contact's session (once, for the tenant
    /// that issued it), refused like a login when the contact may not log in.
    pub async fn exchange_login_code(
        &self,
        tenant: &TenantId,
        code: &str,
    ) -> Result<(String, i64, bool, String), AppError> {
        let claims = self
            .keyring
            .verify_login_code(code.trim(), self.now_ms())
            .filter(|c| c.tenant == tenant.as_str())
            .ok_or_else(bad_code)?;
        let contact_id = GeneratedId::parse(&claims.contact_id).map_err(|_| bad_code())?;
        let cmd = RedeemLoginCode {
            tenant: tenant.clone(),
            contact_id: contact_id.clone(),
            nonce: claims.nonce.clone(),
        };
        let request_id = format!("login-code:{}", claims.nonce);
        let request =
            crate::domain::values::RequestId::parse(&request_id).map_err(|_| bad_code())?;
        let ctx = super::CommandContext {
            fingerprint: crate::secrets::sha256(&request_id),
            request_id: request,
            tenant: Some(tenant.clone()),
            actor: Actor::Contact {
                contact_id: contact_id.to_string(),
            },
            correlation_id: uuid::Uuid::new_v4(),
        };
        let outcome = self.execute(&ctx, &cmd).await?;
        if outcome.duplicate {
            return Err(bad_code());
        }
        let opened = self
            .session_for(tenant.as_str(), contact_id.as_str(), outcome.position, &[])
            .await?;
        match opened {
            super::Opened::Session {
                token,
                expires_at_ms,
                must_change_password,
            } => Ok((
                token,
                expires_at_ms,
                must_change_password,
                contact_id.to_string(),
            )),
            super::Opened::PendingApproval => Err(AppError::Domain(DomainError::precondition(
                Reason::PendingApproval,
                "this contact waits for approval",
            ))),
            // The code stood for a password just set; the second factor is
            // still to come, at the portal's login.
            super::Opened::SecondFactor(_) => Err(bad_code()),
        }
    }
}
