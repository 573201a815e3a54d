//! A tenant's policies and looks: branding, password rules, approval,
//! username administrators, email templates and notifications.

use super::TenantState;
use crate::domain::Reason;
use crate::domain::password_policy::PasswordPolicy;
use crate::domain::policy::Staff;
use crate::domain::values::{Email, TenantId};
use crate::domain::{Change, DomainError, streams};
use access_catalogue::catalogue::{
    ApprovalPolicySet, BrandingSet, EmailTemplateReset, EmailTemplateSet, Event, FactorRequirement,
    PasswordPolicySet, SecondFactorPolicySet, TenantEvent, UsernameAdministratorsSet,
};

/// Decides `SetBranding` (values checked by the caller).
pub fn set_branding(
    state: &TenantState,
    tenant: &TenantId,
    by: &Staff,
    branding: BrandingSet,
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_tenant()?;
    if !state.exists {
        return Err(DomainError::NotFound("tenant"));
    }
    Ok(vec![Change::new(
        streams::tenant(tenant),
        Event::Tenant(TenantEvent::BrandingSet(branding)),
    )])
}

/// Decides `SetPasswordPolicy`.
pub fn set_password_policy(
    state: &TenantState,
    tenant: &TenantId,
    by: &Staff,
    policy: PasswordPolicy,
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_tenant()?;
    if !state.exists {
        return Err(DomainError::NotFound("tenant"));
    }
    Ok(vec![Change::new(
        streams::tenant(tenant),
        Event::Tenant(TenantEvent::PasswordPolicySet(PasswordPolicySet {
            min_length: policy.min_length,
            require_mixed_case: policy.require_mixed_case,
            require_symbol: policy.require_symbol,
        })),
    )])
}

/// Decides `SetSecondFactorPolicy` for the whole tenant.
pub fn set_second_factor_policy(
    state: &TenantState,
    tenant: &TenantId,
    by: &Staff,
    require: FactorRequirement,
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_tenant()?;
    if !state.exists {
        return Err(DomainError::NotFound("tenant"));
    }
    Ok(vec![Change::new(
        streams::tenant(tenant),
        Event::Tenant(TenantEvent::SecondFactorPolicySet(SecondFactorPolicySet {
            require,
        })),
    )])
}

/// Decides `SetApprovalPolicy`.
pub fn set_approval_policy(
    state: &TenantState,
    tenant: &TenantId,
    by: &Staff,
    approval_required: bool,
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_tenant()?;
    if approval_required && state.username_administrators.is_empty() {
        return Err(DomainError::precondition(
            Reason::NoUsernameAdministrators,
            "set at least one username administrator first: they approve registrations",
        ));
    }
    Ok(vec![Change::new(
        streams::tenant(tenant),
        Event::Tenant(TenantEvent::ApprovalPolicySet(ApprovalPolicySet {
            approval_required,
        })),
    )])
}

/// Decides `SetUsernameAdministrators`: one to three distinct emails.
pub fn set_username_administrators(
    tenant: &TenantId,
    by: &Staff,
    emails: Vec<Email>,
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_tenant()?;
    let mut unique: Vec<String> = Vec::new();
    for e in emails {
        let e = e.to_string();
        if unique.iter().any(|u| u.eq_ignore_ascii_case(&e)) {
            return Err(DomainError::invalid(
                "emails",
                format!("{e} is listed twice"),
            ));
        }
        unique.push(e);
    }
    if unique.is_empty() || unique.len() > 3 {
        return Err(DomainError::invalid(
            "emails",
            "give one to three username administrators",
        ));
    }
    Ok(vec![Change::new(
        streams::tenant(tenant),
        Event::Tenant(TenantEvent::UsernameAdministratorsSet(
            UsernameAdministratorsSet { emails: unique },
        )),
    )])
}

/// Decides `SetEmailTemplate`: the template was checked to render already
/// (by the caller, with the mail engine); `None` goes back to the built-in one.
pub fn set_email_template(
    state: &TenantState,
    tenant: &TenantId,
    by: &Staff,
    kind: &str,
    template: Option<EmailTemplateSet>,
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_tenant()?;
    let event = match template {
        Some(t) => TenantEvent::EmailTemplateSet(t),
        None if state.templates.contains_key(kind) => {
            TenantEvent::EmailTemplateReset(EmailTemplateReset {
                kind: kind.to_owned(),
            })
        }
        None => {
            return Err(DomainError::precondition(
                Reason::Unchanged,
                "this email already uses the built-in template",
            ));
        }
    };
    Ok(vec![Change::new(
        streams::tenant(tenant),
        Event::Tenant(event),
    )])
}

/// Decides `SetNotificationPolicy` (admins).
pub fn set_notification_policy(
    tenant: &TenantId,
    by: &Staff,
    policy: access_catalogue::catalogue::NotificationPolicySet,
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_tenant()?;
    Ok(vec![Change::new(
        streams::tenant(tenant),
        Event::Tenant(TenantEvent::NotificationPolicySet(policy)),
    )])
}
