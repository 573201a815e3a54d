//! Contact, invitation and login messages parsed into commands.

use super::{Fields, document_request, status};
use crate::app::{
    AccessAction, AccessCommand, AddPortalUserCommand, Invite, RequestResetCommand, Resend,
    SetTemporaryPasswordCommand, TemporaryPassword, UpdateContactCommand,
};
use crate::domain::access::Action;
use crate::domain::contact::ChangeAccess;
use crate::domain::policy::Staff;
use crate::domain::values::{
    CustomerId, Email, GeneratedId, Message, Password, RequestId, SiteName, TenantId, Username,
};
use access_catalogue::catalogue::SiteRule;
use access_proto::v1 as pb;
use tonic::Status;

fn temporary_password(f: &mut Fields, field: &str, text: &str) -> Option<TemporaryPassword> {
    if text.is_empty() {
        Some(TemporaryPassword::Generated)
    } else {
        f.parse(field, Password::parse(text))
            .map(TemporaryPassword::Typed)
    }
}

/// Parses `AddPortalUserRequest`.
pub fn add_portal_user(
    tenant: TenantId,
    by: Staff,
    r: &pb::AddPortalUserRequest,
) -> Result<(RequestId, AddPortalUserCommand), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let customer_id = f.parse("customer_id", CustomerId::parse(&r.customer_id));
    let username = f.parse(
        "username",
        Username::parse(&r.username).and_then(|u| u.staff().map(|_| u)),
    );
    let email = if r.email.trim().is_empty() {
        Some(None)
    } else {
        f.parse("email", Email::parse(&r.email)).map(Some)
    };
    let site_rule = site_rule(&mut f, &r.site_rule);
    let management_password =
        temporary_password(&mut f, "management_password", &r.management_password);
    let staff_password = temporary_password(&mut f, "staff_password", &r.staff_password);
    f.finish()?;
    let (request_id, customer_id, username, email, site_rule, management_password, staff_password) = parsed!(
        request_id,
        customer_id,
        username,
        email,
        site_rule,
        management_password,
        staff_password
    );
    Ok((
        request_id.clone(),
        AddPortalUserCommand {
            tenant,
            by,
            request_id: request_id.to_string(),
            customer_id,
            username,
            email,
            site_rule,
            management_password,
            staff_password,
            hashes: Default::default(),
        },
    ))
}

/// Parses `SetTemporaryPasswordRequest`.
pub fn set_temporary_password(
    tenant: TenantId,
    by: Staff,
    r: &pb::SetTemporaryPasswordRequest,
) -> Result<(RequestId, SetTemporaryPasswordCommand), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let contact_id = f.parse("contact_id", GeneratedId::parse(&r.contact_id));
    let password = temporary_password(&mut f, "password", &r.password);
    f.finish()?;
    let (request_id, contact_id, password) = parsed!(request_id, contact_id, password);
    Ok((
        request_id.clone(),
        SetTemporaryPasswordCommand {
            tenant,
            by,
            request_id: request_id.to_string(),
            contact_id,
            password,
            hash: Default::default(),
        },
    ))
}

/// Parses the action of a `CheckAccessRequest`.
pub fn action(r: &pb::CheckAccessRequest) -> Result<Action, Status> {
    let mut f = Fields::default();
    let action = match pb::Action::try_from(r.action) {
        Ok(pb::Action::Login) => Some(Action::Login),
        Ok(pb::Action::PlaceOrder) => Some(Action::PlaceOrder),
        Ok(pb::Action::ViewCosts) => Some(Action::ViewCosts),
        Ok(pb::Action::ViewBalance) => Some(Action::ViewBalance),
        Ok(pb::Action::ViewDocument) => f
            .parse("document_kind", document_request(r.document_kind))
            .map(Action::ViewDocument),
        Ok(pb::Action::ViewSite) => f
            .parse("site", SiteName::parse(&r.site))
            .map(|s| Action::ViewSite(s.to_string())),
        _ => f.parse::<Action>("action", Err("choose an action".into())),
    };
    f.finish()?;
    action.ok_or_else(status::internal)
}

pub(crate) fn site_rule(f: &mut Fields, rule: &Option<pb::SiteRule>) -> Option<SiteRule> {
    use pb::site_rule::Rule;
    match rule.as_ref().and_then(|r| r.rule.as_ref()) {
        None | Some(Rule::TenantDefault(_)) => Some(SiteRule::TenantDefault),
        Some(Rule::AllSites(_)) => Some(SiteRule::AllSites),
        Some(Rule::OneSite(s)) => f
            .parse("site_rule.one_site.site", SiteName::parse(&s.site))
            .map(|s| SiteRule::OneSite(s.to_string())),
    }
}

/// Parses `InviteCustomerRequest`.
pub fn invite(
    tenant: TenantId,
    by: Staff,
    r: &pb::InviteCustomerRequest,
) -> Result<(RequestId, Invite), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let customer_id = f.parse("customer_id", CustomerId::parse(&r.customer_id));
    let email = f.parse("email", Email::parse(&r.email));
    let message = f.parse("message", Message::parse(&r.message));
    let site_rule = site_rule(&mut f, &r.site_rule);
    f.finish()?;
    let (request_id, customer_id, email, message, site_rule) =
        parsed!(request_id, customer_id, email, message, site_rule);
    Ok((
        request_id,
        Invite {
            tenant,
            by,
            customer_id,
            email,
            message,
            site_rule,
        },
    ))
}

/// Parses `ResendInvitationRequest`.
pub fn resend(
    tenant: TenantId,
    by: Staff,
    r: &pb::ResendInvitationRequest,
) -> Result<(RequestId, Resend), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let contact_id = f.parse("contact_id", GeneratedId::parse(&r.contact_id));
    f.finish()?;
    let (request_id, contact_id) = parsed!(request_id, contact_id);
    Ok((
        request_id,
        Resend {
            tenant,
            by,
            contact_id,
        },
    ))
}

/// Parses a `ContactCommand` for one of the access actions.
pub fn access(
    tenant: TenantId,
    by: Staff,
    action: AccessAction,
    r: &pb::ContactCommand,
) -> Result<(RequestId, AccessCommand), Status> {
    access_on(tenant, by, action, r, None)
}

/// Parses `RemoveSecondFactorRequest`.
pub fn remove_second_factor(
    tenant: TenantId,
    by: Staff,
    r: &pb::RemoveSecondFactorRequest,
) -> Result<(RequestId, AccessCommand), Status> {
    let command = pb::ContactCommand {
        request_id: r.request_id.clone(),
        contact_id: r.contact_id.clone(),
        reason: r.reason.clone(),
    };
    access_on(
        tenant,
        by,
        AccessAction::RemoveSecondFactor,
        &command,
        Some(&r.factor_id),
    )
}

fn access_on(
    tenant: TenantId,
    by: Staff,
    action: AccessAction,
    r: &pb::ContactCommand,
    factor_id: Option<&str>,
) -> Result<(RequestId, AccessCommand), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let contact_id = f.parse("contact_id", GeneratedId::parse(&r.contact_id));
    let reason = f.parse(
        "reason",
        if r.reason.chars().count() <= 1000 {
            Ok(r.reason.trim().to_owned())
        } else {
            Err("a reason has at most 1000 characters".to_owned())
        },
    );
    let factor_id = match factor_id {
        Some(id) => f.parse("factor_id", GeneratedId::parse(id)).map(Some),
        None => Some(None),
    };
    f.finish()?;
    let (request_id, contact_id, reason, factor_id) =
        parsed!(request_id, contact_id, reason, factor_id);
    Ok((
        request_id,
        AccessCommand {
            action,
            change: ChangeAccess {
                tenant,
                by,
                contact_id,
                reason,
            },
            factor_id,
        },
    ))
}

/// Parses `UpdateContactRequest`; an empty email or username keeps it.
pub fn update_contact(
    tenant: TenantId,
    by: Staff,
    r: &pb::UpdateContactRequest,
) -> Result<(RequestId, UpdateContactCommand), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let contact_id = f.parse("contact_id", GeneratedId::parse(&r.contact_id));
    let email = if r.email.trim().is_empty() {
        Some(None)
    } else {
        f.parse("email", Email::parse(&r.email)).map(Some)
    };
    let username = if r.username.trim().is_empty() {
        Some(None)
    } else {
        f.parse("username", Username::parse(&r.username)).map(Some)
    };
    let (request_id, contact_id, email, username) =
        f.finish_with((request_id, contact_id, email, username))?;
    Ok((
        request_id,
        UpdateContactCommand {
            tenant,
            by,
            contact_id,
            email,
            username,
            send_access_email: r.send_access_email,
        },
    ))
}

/// Parses `SendPasswordResetRequest`.
pub fn send_password_reset(
    tenant: TenantId,
    by: Staff,
    r: &pb::SendPasswordResetRequest,
) -> Result<(RequestId, RequestResetCommand), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let contact_id = f.parse("contact_id", GeneratedId::parse(&r.contact_id));
    let (request_id, contact_id) = f.finish_with((request_id, contact_id))?;
    Ok((
        request_id,
        RequestResetCommand {
            tenant,
            contact_id,
            by: Some(by),
        },
    ))
}
