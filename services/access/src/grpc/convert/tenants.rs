//! Tenant and API key messages parsed into commands.

use super::{Fields, status, text};
use crate::app::{RevokeKey, RotateKey};
use crate::domain::policy::{Role, Staff};
use crate::domain::tenant::{ChangeSettings, CreateTenant, IssueApiKey};
use crate::domain::values::{GeneratedId, Name, RequestId, SiteName, TenantId};
use access_catalogue::catalogue::DefaultVisibility;
use access_proto::v1 as pb;
use tonic::Status;

/// Parses `CreateTenantRequest`; the admin key id is fresh.
pub fn create_tenant(r: &pb::CreateTenantRequest) -> Result<(RequestId, CreateTenant), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let tenant_id = f.parse("tenant_id", TenantId::parse(&r.tenant_id));
    let name = f.parse("name", Name::parse(&r.name));
    let sites: Vec<_> = r
        .sites
        .iter()
        .enumerate()
        .filter_map(|(i, s)| f.parse(&format!("sites[{i}]"), SiteName::parse(s)))
        .collect();
    let default_order_site = f.parse("default_order_site", SiteName::parse(&r.default_order_site));
    f.finish()?;
    let (request_id, tenant_id, name, default_order_site) =
        parsed!(request_id, tenant_id, name, default_order_site);
    Ok((
        request_id,
        CreateTenant {
            tenant_id,
            name,
            sites,
            default_order_site,
            admin_key_id: GeneratedId::generate(),
            admin_key_sha256: [0; 32],
        },
    ))
}

/// Parses `CreateApiKeyRequest`; the key id is fresh.
pub fn create_api_key(
    tenant: TenantId,
    by: Staff,
    r: &pb::CreateApiKeyRequest,
) -> Result<(RequestId, IssueApiKey), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let role = f.parse(
        "role",
        match pb::Role::try_from(r.role) {
            Ok(pb::Role::Admin) => Ok(Role::Admin),
            Ok(pb::Role::InHouse) => Ok(Role::InHouse),
            Ok(pb::Role::Rep) => Ok(Role::Rep),
            Ok(pb::Role::Service) => Ok(Role::Service),
            Ok(pb::Role::Auditor) => Ok(Role::Auditor),
            Ok(pb::Role::Subscriber) => Ok(Role::Subscriber),
            _ => Err("choose ADMIN, IN_HOUSE, REP, SERVICE, AUDITOR or SUBSCRIBER".to_owned()),
        },
    );
    let name = f.parse("name", Name::parse(&r.name));
    let rep_id = f.parse("rep_id", text(&r.rep_id, 200));
    f.finish()?;
    let (request_id, role, name, rep_id) = parsed!(request_id, role, name, rep_id);
    Ok((
        request_id,
        IssueApiKey {
            tenant,
            by,
            key_id: GeneratedId::generate(),
            key_sha256: [0; 32],
            role,
            name,
            rep_id: (!rep_id.is_empty()).then_some(rep_id),
        },
    ))
}

/// Parses `RevokeApiKeyRequest`.
pub fn revoke_api_key(
    tenant: TenantId,
    by: Staff,
    r: &pb::RevokeApiKeyRequest,
) -> Result<(RequestId, RevokeKey), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let key_id = f.parse("key_id", GeneratedId::parse(&r.key_id));
    f.finish()?;
    let (request_id, key_id) = parsed!(request_id, key_id);
    Ok((request_id, RevokeKey { tenant, by, key_id }))
}

/// Parses `UpdateTenantSettingsRequest`.
pub fn change_settings(
    tenant: TenantId,
    by: Staff,
    r: &pb::UpdateTenantSettingsRequest,
) -> Result<(RequestId, ChangeSettings), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let sites: Vec<_> = r
        .sites
        .iter()
        .enumerate()
        .filter_map(|(i, s)| f.parse(&format!("sites[{i}]"), SiteName::parse(s)))
        .collect();
    let default_order_site = f.parse("default_order_site", SiteName::parse(&r.default_order_site));
    let default_visibility = if r.default_site.trim().is_empty() {
        Some(DefaultVisibility::AllSites)
    } else {
        f.parse("default_site", SiteName::parse(&r.default_site))
            .map(|s| DefaultVisibility::OneSite(s.to_string()))
    };
    f.finish()?;
    let (request_id, default_order_site, default_visibility) =
        parsed!(request_id, default_order_site, default_visibility);
    Ok((
        request_id,
        ChangeSettings {
            tenant,
            by,
            sites,
            default_order_site,
            default_visibility,
            inactive_customers_may_log_in: r.inactive_customers_may_log_in,
        },
    ))
}

/// Parses `RotateApiKeyRequest`; the new key's id is fresh (a retry is
/// answered with the first new key, the stored reply).
pub fn rotate_api_key(
    tenant: TenantId,
    by: Staff,
    r: &pb::RotateApiKeyRequest,
) -> Result<(RequestId, RotateKey), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let old_key_id = f.parse("key_id", GeneratedId::parse(&r.key_id));
    let (request_id, old_key_id) = f.finish_with((request_id, old_key_id))?;
    Ok((
        request_id,
        RotateKey {
            tenant,
            by,
            old_key_id,
            new_key_id: GeneratedId::generate(),
            new_key_sha256: [0; 32],
        },
    ))
}

/// How to name an email's kind.
pub fn kind_help() -> String {
    "choose invitation, invitation_resent, password_reset, welcome, approval_request or approved"
        .into()
}

/// The portal's URL: https, since the login code travels in it (plain http
/// only to this machine, for development), or empty.
pub fn portal_url(text: &str) -> Result<String, String> {
    let url = page_url(text, false)?;
    let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| url.starts_with(p));
    if url.starts_with("http://") && !local {
        return Err("use an https:// URL: the one-time login code travels in it".into());
    }
    Ok(url)
}

/// An absolute URL for the pages (https only for a logo), or empty.
pub fn page_url(text: &str, https_only: bool) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(String::new());
    }
    let ok_scheme = text.starts_with("https://") || (!https_only && text.starts_with("http://"));
    let host = text.split_once("://").map_or("", |(_, rest)| rest);
    if !ok_scheme
        || host.is_empty()
        || text.len() > 2000
        || text
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '<' || c == '>')
    {
        return Err(if https_only {
            "use an https:// URL".to_owned()
        } else {
            "use an http:// or https:// URL".to_owned()
        });
    }
    Ok(text.to_owned())
}
