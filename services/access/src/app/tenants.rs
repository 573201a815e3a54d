//! Commands of a tenant's administration: the tenant itself, API keys,
//! settings, username administrators, approval and email templates.

use super::{App, AppError, Command, Unit};
use crate::domain::password_policy::PasswordPolicy;
use crate::domain::policy::Staff;
use crate::domain::tenant::{self, ChangeSettings, CreateTenant, IssueApiKey, TenantState};
use crate::domain::values::{Email, GeneratedId, TenantId};
use crate::domain::{Change, streams};
use serde::{Deserialize, Serialize};

impl Command for CreateTenant {
    type Reply = TenantCreatedReply;

    async fn decide(
        &self,
        _app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, Self::Reply), AppError> {
        let state: TenantState = unit.load(&streams::tenant(&self.tenant_id)).await?;
        let changes = tenant::create(&state, self.clone())?;
        Ok((
            changes,
            TenantCreatedReply {
                tenant_id: self.tenant_id.to_string(),
                admin_key_id: self.admin_key_id.to_string(),
            },
        ))
    }
}

/// The answer to `CreateTenant`; the key text is derived again from its id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TenantCreatedReply {
    /// The tenant.
    pub tenant_id: String,
    /// The admin key's id.
    pub admin_key_id: String,
}

impl Command for IssueApiKey {
    type Reply = String;

    async fn decide(
        &self,
        _app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, String), AppError> {
        let state: TenantState = unit.load(&streams::tenant(&self.tenant)).await?;
        Ok((
            tenant::issue_key(&state, self.clone())?,
            self.key_id.to_string(),
        ))
    }
}

/// `RevokeApiKey` as received.
#[derive(Clone, Debug)]
pub struct RevokeKey {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The key to revoke.
    pub key_id: GeneratedId,
}

impl Command for RevokeKey {
    type Reply = String;

    async fn decide(
        &self,
        _app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, String), AppError> {
        let state: TenantState = unit.load(&streams::tenant(&self.tenant)).await?;
        let changes = tenant::revoke_key(&state, &self.tenant, &self.by, self.key_id.as_str())?;
        Ok((changes, self.key_id.to_string()))
    }
}

/// `RotateApiKey` as received, with the new key's id and hash.
#[derive(Clone, Debug)]
pub struct RotateKey {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The key to replace.
    pub old_key_id: GeneratedId,
    /// The new key's id.
    pub new_key_id: GeneratedId,
    /// SHA-256 of the new key's text.
    pub new_key_sha256: [u8; 32],
}

impl Command for RotateKey {
    type Reply = String;

    async fn decide(
        &self,
        _app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, String), AppError> {
        let state: TenantState = unit.load(&streams::tenant(&self.tenant)).await?;
        let changes = tenant::rotate_key(
            &state,
            &self.tenant,
            &self.by,
            self.old_key_id.as_str(),
            &self.new_key_id,
            self.new_key_sha256,
        )?;
        Ok((changes, self.new_key_id.to_string()))
    }
}

impl Command for ChangeSettings {
    type Reply = ();

    async fn decide(&self, _app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        // Loaded so that two concurrent changes of the settings conflict.
        let _: TenantState = unit.load(&streams::tenant(&self.tenant)).await?;
        Ok((tenant::change_settings(self.clone())?, ()))
    }
}

/// `SetUsernameAdministrators` as received.
#[derive(Clone, Debug)]
pub struct SetUsernameAdministrators {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// One to three emails.
    pub emails: Vec<Email>,
}

impl Command for SetUsernameAdministrators {
    type Reply = ();

    async fn decide(&self, _app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        let _: TenantState = unit.load(&streams::tenant(&self.tenant)).await?;
        let changes =
            tenant::set_username_administrators(&self.tenant, &self.by, self.emails.clone())?;
        Ok((changes, ()))
    }
}

/// `SetBranding` as received (values checked).
#[derive(Clone, Debug)]
pub struct SetBranding {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The settings.
    pub branding: access_catalogue::catalogue::BrandingSet,
}

impl Command for SetBranding {
    type Reply = ();

    async fn decide(&self, _app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        let state: TenantState = unit.load(&streams::tenant(&self.tenant)).await?;
        let changes = tenant::set_branding(&state, &self.tenant, &self.by, self.branding.clone())?;
        Ok((changes, ()))
    }
}

/// `SetPasswordPolicy` as received.
#[derive(Clone, Debug)]
pub struct SetPasswordPolicy {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The rules.
    pub policy: PasswordPolicy,
}

impl Command for SetPasswordPolicy {
    type Reply = ();

    async fn decide(&self, _app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        let state: TenantState = unit.load(&streams::tenant(&self.tenant)).await?;
        let changes = tenant::set_password_policy(&state, &self.tenant, &self.by, self.policy)?;
        Ok((changes, ()))
    }
}

/// `SetApprovalPolicy` as received.
#[derive(Clone, Debug)]
pub struct SetApprovalPolicy {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// Whether registrations wait for approval.
    pub approval_required: bool,
}

impl Command for SetApprovalPolicy {
    type Reply = ();

    async fn decide(&self, _app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        let state: TenantState = unit.load(&streams::tenant(&self.tenant)).await?;
        let changes =
            tenant::set_approval_policy(&state, &self.tenant, &self.by, self.approval_required)?;
        Ok((changes, ()))
    }
}

/// `SetEmailTemplate` as received (the template already checked to render).
#[derive(Clone, Debug)]
pub struct SetEmailTemplateCommand {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// Which email.
    pub kind: String,
    /// The template, or `None` for the built-in one.
    pub template: Option<access_catalogue::catalogue::EmailTemplateSet>,
}

impl Command for SetEmailTemplateCommand {
    type Reply = ();

    async fn decide(&self, _app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        let state: TenantState = unit.load(&streams::tenant(&self.tenant)).await?;
        let changes = tenant::set_email_template(
            &state,
            &self.tenant,
            &self.by,
            &self.kind,
            self.template.clone(),
        )?;
        Ok((changes, ()))
    }
}

/// `SetNotificationPolicy` as received.
#[derive(Clone, Debug)]
pub struct SetNotificationPolicy {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// Tell contacts when their access is disabled.
    pub access_disabled: bool,
    /// Mail generated temporary passwords in the notice.
    pub email_temporary_password: bool,
}

impl Command for SetNotificationPolicy {
    type Reply = ();

    async fn decide(&self, _app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        let _: TenantState = unit.load(&streams::tenant(&self.tenant)).await?;
        Ok((
            tenant::set_notification_policy(
                &self.tenant,
                &self.by,
                access_catalogue::catalogue::NotificationPolicySet {
                    access_disabled: self.access_disabled,
                    email_temporary_password: self.email_temporary_password,
                },
            )?,
            (),
        ))
    }
}
