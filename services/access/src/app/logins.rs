//! Commands on logins created by staff: the management/staff pair, temporary
//! passwords, password changes and the first-login record.

use super::{App, AppError, Command, Unit};
use crate::domain::Reason;
use crate::domain::contact::ContactState;
use crate::domain::customer::CustomerState;
use crate::domain::email_slot::EmailSlotState;
use crate::domain::identity::IdentityState;
use crate::domain::lockout::{self, LockoutPolicy};
use crate::domain::logins::{self, AddPortalUserState, NewLogin};
use crate::domain::policy::Staff;
use crate::domain::tenant::TenantState;
use crate::domain::values::{CustomerId, Email, GeneratedId, Password, TenantId, Username};
use crate::domain::{Change, DomainError, streams};
use access_catalogue::catalogue::GeneratedPassword;
use access_catalogue::catalogue::SiteRule;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

/// A temporary password as asked for: typed by staff, or generated.
#[derive(Clone)]
pub enum TemporaryPassword {
    /// Typed by staff (checked against the rules).
    Typed(Password),
    /// Generated from the request: shown once in the reply.
    Generated,
}

impl std::fmt::Debug for TemporaryPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TemporaryPassword::Typed(_) => "Typed(<redacted>)",
            TemporaryPassword::Generated => "Generated",
        })
    }
}

impl TemporaryPassword {
    /// The password text: typed, or derived from the request and `label`.
    pub fn text(&self, app: &App, tenant: &TenantId, request_id: &str, label: &str) -> String {
        match self {
            TemporaryPassword::Typed(p) => p.expose().to_owned(),
            TemporaryPassword::Generated => {
                app.keyring
                    .temporary_password(tenant.as_str(), request_id, label)
            }
        }
    }

    /// Whether the reply should show it.
    pub fn generated(&self) -> bool {
        matches!(self, TemporaryPassword::Generated)
    }

    /// Where it was derived from, if generated: what the mailer needs to
    /// derive it again (for tenants that mail temporary passwords).
    pub fn origin(&self, request_id: &str, label: &str) -> Option<GeneratedPassword> {
        self.generated().then(|| GeneratedPassword {
            request_id: request_id.to_owned(),
            label: label.to_owned(),
        })
    }
}

/// `AddPortalUser` as received.
#[derive(Debug)]
pub struct AddPortalUserCommand {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The request id, from which generated passwords are derived.
    pub request_id: String,
    /// The customer.
    pub customer_id: CustomerId,
    /// The management username (the staff one adds `S`).
    pub username: Username,
    /// The management login's email, if any.
    pub email: Option<Email>,
    /// Visibility and routing.
    pub site_rule: SiteRule,
    /// The management login's temporary password.
    pub management_password: TemporaryPassword,
    /// The staff login's temporary password.
    pub staff_password: TemporaryPassword,
    /// The two hashes, computed once across conflict retries.
    pub hashes: OnceCell<(String, String)>,
}

/// The answer to `AddPortalUser` (never the passwords: they are derived again).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PortalUserAdded {
    /// The management login.
    pub management_contact_id: String,
    /// Its username.
    pub management_username: String,
    /// The staff login.
    pub staff_contact_id: String,
    /// Its username.
    pub staff_username: String,
}

impl Command for AddPortalUserCommand {
    type Reply = PortalUserAdded;

    async fn decide(
        &self,
        app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, PortalUserAdded), AppError> {
        let staff_username = self
            .username
            .staff()
            .map_err(|m| AppError::Domain(DomainError::invalid("username", m)))?;
        let tenant: TenantState = unit.load(&streams::tenant(&self.tenant)).await?;
        let mut names = vec![self.username.as_str(), staff_username.as_str()];
        names.extend(self.email.as_ref().map(Email::as_str));
        for (field, password) in [
            ("management_password", &self.management_password),
            ("staff_password", &self.staff_password),
        ] {
            if let TemporaryPassword::Typed(typed) = password {
                tenant
                    .password_policy
                    .check(typed, &names)
                    .map_err(|m| AppError::Domain(DomainError::invalid(field, m)))?;
            }
        }
        let customer: CustomerState = unit
            .load(&streams::customer(&self.tenant, &self.customer_id))
            .await?;
        let management_slot: EmailSlotState = unit
            .load(&streams::username_slot(
                &self.tenant,
                &self.username.slot_id(),
            ))
            .await?;
        let staff_slot: EmailSlotState = unit
            .load(&streams::username_slot(
                &self.tenant,
                &staff_username.slot_id(),
            ))
            .await?;
        let email_slot: EmailSlotState = match &self.email {
            Some(email) => {
                unit.load(&streams::email_slot(&self.tenant, &email.identity_id()))
                    .await?
            }
            None => EmailSlotState::default(),
        };
        let (management_hash, staff_hash) = self
            .hashes
            .get_or_try_init(|| async {
                let m = self.management_password.text(
                    app,
                    &self.tenant,
                    &self.request_id,
                    "management",
                );
                let s = self
                    .staff_password
                    .text(app, &self.tenant, &self.request_id, "staff");
                Ok::<_, anyhow::Error>((app.passwords.hash(m).await?, app.passwords.hash(s).await?))
            })
            .await
            .map_err(AppError::Internal)?
            .clone();
        let management = NewLogin {
            contact_id: GeneratedId::generate(),
            username: self.username.clone(),
            temporary_hash: management_hash,
            generated: self
                .management_password
                .origin(&self.request_id, "management"),
        };
        let staff = NewLogin {
            contact_id: GeneratedId::generate(),
            username: staff_username,
            temporary_hash: staff_hash,
            generated: self.staff_password.origin(&self.request_id, "staff"),
        };
        let reply = PortalUserAdded {
            management_contact_id: management.contact_id.to_string(),
            management_username: management.username.to_string(),
            staff_contact_id: staff.contact_id.to_string(),
            staff_username: staff.username.to_string(),
        };
        let changes = logins::add_portal_user(
            AddPortalUserState {
                tenant: &tenant,
                customer: &customer,
                management_slot: &management_slot,
                staff_slot: &staff_slot,
                email_slot: &email_slot,
            },
            logins::AddPortalUser {
                tenant: self.tenant.clone(),
                by: self.by.clone(),
                customer_id: self.customer_id.clone(),
                email: self.email.clone(),
                site_rule: self.site_rule.clone(),
                management,
                staff,
            },
        )?;
        Ok((changes, reply))
    }
}

/// `SetTemporaryPassword` as received.
#[derive(Debug)]
pub struct SetTemporaryPasswordCommand {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The request id, from which a generated password is derived.
    pub request_id: String,
    /// The contact.
    pub contact_id: GeneratedId,
    /// Typed or generated.
    pub password: TemporaryPassword,
    /// The hash, computed once across conflict retries.
    pub hash: OnceCell<String>,
}

impl Command for SetTemporaryPasswordCommand {
    type Reply = String;

    async fn decide(
        &self,
        app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, String), AppError> {
        let contact: ContactState = unit
            .load(&streams::contact(&self.tenant, &self.contact_id))
            .await?;
        let customer = super::commands::load_customer_of(unit, &self.tenant, &contact).await?;
        if let TemporaryPassword::Typed(typed) = &self.password {
            app.check_new_password(&self.tenant, typed, &contact, "password")?;
        }
        let hash = self
            .hash
            .get_or_try_init(|| {
                app.passwords.hash(self.password.text(
                    app,
                    &self.tenant,
                    &self.request_id,
                    "temporary",
                ))
            })
            .await
            .map_err(AppError::Internal)?
            .clone();
        let changes = logins::set_temporary_password(
            &contact,
            &customer,
            logins::SetTemporaryPassword {
                tenant: self.tenant.clone(),
                by: self.by.clone(),
                contact_id: self.contact_id.clone(),
                temporary_hash: hash,
                generated: self.password.origin(&self.request_id, "temporary"),
            },
        )?;
        Ok((changes, self.contact_id.to_string()))
    }
}

/// `ChangePassword` as received from a contact's session.
pub struct ChangePasswordCommand {
    /// The contact's tenant.
    pub tenant: TenantId,
    /// The contact.
    pub contact_id: GeneratedId,
    /// The current password, as typed.
    pub current: String,
    /// The new password (checked against the rules).
    pub new: Password,
    /// The new hash, computed once across conflict retries.
    pub hash: OnceCell<String>,
}

impl std::fmt::Debug for ChangePasswordCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangePasswordCommand")
            .field("contact_id", &self.contact_id)
            .finish_non_exhaustive()
    }
}

/// The hash a contact's password is checked against: this login's own, or
/// else its identity's.
async fn current_hash(
    unit: &mut Unit<'_>,
    contact: &ContactState,
) -> Result<Option<String>, AppError> {
    if let Some(local) = &contact.local_password {
        return Ok(Some(local.clone()));
    }
    if contact.identity_id.is_empty() {
        return Ok(None);
    }
    let identity: IdentityState = unit
        .load(&streams::identity(&GeneratedId::trusted(
            &contact.identity_id,
        )))
        .await?;
    Ok(identity.password_hash)
}

impl Command for ChangePasswordCommand {
    type Reply = String;

    async fn decide(
        &self,
        app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, String), AppError> {
        let contact: ContactState = unit
            .load(&streams::contact(&self.tenant, &self.contact_id))
            .await?;
        app.check_new_password(&self.tenant, &self.new, &contact, "new_password")?;
        let phc = current_hash(unit, &contact).await?;
        let current_matches = app.passwords.verify(phc, self.current.clone()).await;
        let hash = self
            .hash
            .get_or_try_init(|| app.passwords.hash(self.new.expose().to_owned()))
            .await
            .map_err(AppError::Internal)?
            .clone();
        let changes = logins::change_password(
            &contact,
            logins::ChangePassword {
                tenant: self.tenant.clone(),
                contact_id: self.contact_id.clone(),
                current_matches,
                new_hash: hash,
            },
        )?;
        Ok((changes, self.contact_id.to_string()))
    }

    /// A retried change opens a session only for whoever knows the new password.
    async fn check_replay(&self, app: &App, _reply: &String) -> Result<(), AppError> {
        let mut unit = Unit::new(app);
        let contact: ContactState = unit
            .load(&streams::contact(&self.tenant, &self.contact_id))
            .await?;
        let phc = current_hash(&mut unit, &contact).await?;
        if app
            .passwords
            .verify(phc, self.new.expose().to_owned())
            .await
        {
            Ok(())
        } else {
            Err(DomainError::bad_credentials().into())
        }
    }
}

/// Records a contact's first login.
#[derive(Clone, Debug)]
pub struct RecordFirstLogin {
    /// The tenant.
    pub tenant: TenantId,
    /// The contact.
    pub contact_id: GeneratedId,
}

impl Command for RecordFirstLogin {
    type Reply = ();

    async fn decide(&self, _app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        let contact: ContactState = unit
            .load(&streams::contact(&self.tenant, &self.contact_id))
            .await?;
        let changes = logins::first_login(&contact, &self.tenant, &self.contact_id);
        if changes.is_empty() {
            return Err(DomainError::precondition(
                Reason::Unchanged,
                "the first login was recorded before",
            )
            .into());
        }
        Ok((changes, ()))
    }
}

/// Records a wrong password against a contact (and locks it at the limit).
#[derive(Clone, Debug)]
pub struct RecordLoginFailure {
    /// The tenant.
    pub tenant: TenantId,
    /// The contact.
    pub contact_id: GeneratedId,
    /// When the password was found wrong.
    pub at_ms: i64,
    /// The end user's address, as the caller passed it.
    pub client_address: String,
    /// The rules.
    pub policy: LockoutPolicy,
}

impl Command for RecordLoginFailure {
    type Reply = ();

    async fn decide(&self, _app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        let contact: ContactState = unit
            .load(&streams::contact(&self.tenant, &self.contact_id))
            .await?;
        let changes = self.policy.failure(
            &contact,
            &self.tenant,
            &self.contact_id,
            self.at_ms,
            &self.client_address,
        );
        if changes.is_empty() {
            return Err(DomainError::NotFound("contact").into());
        }
        if changes.len() > 1 {
            metrics::counter!("access_lockouts_total", "kind" => "account").increment(1);
        }
        Ok((changes, ()))
    }
}

/// Forgets a contact's failed logins after it logged in.
#[derive(Clone, Debug)]
pub struct ClearLoginFailures {
    /// The tenant.
    pub tenant: TenantId,
    /// The contact.
    pub contact_id: GeneratedId,
}

impl Command for ClearLoginFailures {
    type Reply = ();

    async fn decide(&self, _app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        let contact: ContactState = unit
            .load(&streams::contact(&self.tenant, &self.contact_id))
            .await?;
        let changes = lockout::clear_after_login(&contact, &self.tenant, &self.contact_id);
        if changes.is_empty() {
            return Err(DomainError::precondition(
                Reason::Unchanged,
                "no failed logins are counted",
            )
            .into());
        }
        Ok((changes, ()))
    }
}
