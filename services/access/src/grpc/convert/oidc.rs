//! OpenID Connect client messages parsed into commands.

use super::Fields;
use crate::app::{OidcClientChange, OidcClientCommand};
use crate::domain::oidc_clients::RegisterOidcClient;
use crate::domain::policy::Staff;
use crate::domain::values::{GeneratedId, RequestId, TenantId};
use access_catalogue::catalogue::{OidcClientKind, OidcClientSettings};
use access_proto::v1 as pb;
use tonic::Status;

/// The settings as sent (checked by the domain, every problem at once).
fn settings(s: &Option<pb::OidcClientSettings>) -> OidcClientSettings {
    let s = s.clone().unwrap_or_default();
    OidcClientSettings {
        name: s.name.trim().to_owned(),
        redirect_uris: s.redirect_uris,
        scopes: s.scopes.iter().map(|x| x.trim().to_owned()).collect(),
        access_token_ttl_s: s.access_token_ttl_seconds,
        refresh_token_ttl_s: s.refresh_token_ttl_seconds,
        backchannel_logout_uri: Some(s.backchannel_logout_uri.trim().to_owned())
            .filter(|u| !u.is_empty()),
        post_logout_redirect_uris: s.post_logout_redirect_uris,
        initiate_login_uri: Some(s.initiate_login_uri.trim().to_owned()).filter(|u| !u.is_empty()),
        token_signing_alg: match s.token_signing_alg.trim() {
            "" => "EdDSA".to_owned(),
            alg => alg.to_owned(),
        },
    }
}

/// Parses `RegisterOidcClientRequest`; the client id is fresh.
pub fn register_oidc_client(
    tenant: TenantId,
    by: Staff,
    r: &pb::RegisterOidcClientRequest,
) -> Result<(RequestId, RegisterOidcClient), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let kind = f.parse(
        "kind",
        match pb::OidcClientKind::try_from(r.kind) {
            Ok(pb::OidcClientKind::Confidential) => Ok(OidcClientKind::Confidential),
            Ok(pb::OidcClientKind::Public) => Ok(OidcClientKind::Public),
            _ => Err("choose CONFIDENTIAL or PUBLIC".to_owned()),
        },
    );
    let (request_id, kind) = f.finish_with((request_id, kind))?;
    Ok((
        request_id,
        RegisterOidcClient {
            tenant,
            by,
            client_id: GeneratedId::generate(),
            kind,
            settings: settings(&r.settings),
            secret_sha256: None,
            server_key_id: 0,
        },
    ))
}

fn change(
    tenant: TenantId,
    by: Staff,
    request_id: &str,
    client_id: &str,
    change: OidcClientChange,
) -> Result<(RequestId, OidcClientCommand), Status> {
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(request_id));
    let client_id = f.parse("client_id", GeneratedId::parse(client_id));
    let (request_id, client_id) = f.finish_with((request_id, client_id))?;
    Ok((
        request_id,
        OidcClientCommand {
            tenant,
            by,
            client_id,
            change,
        },
    ))
}

/// Parses `UpdateOidcClientRequest`.
pub fn update_oidc_client(
    tenant: TenantId,
    by: Staff,
    r: &pb::UpdateOidcClientRequest,
) -> Result<(RequestId, OidcClientCommand), Status> {
    let update = OidcClientChange::Update(settings(&r.settings));
    change(tenant, by, &r.request_id, &r.client_id, update)
}

/// Parses `RotateOidcClientSecretRequest`.
pub fn rotate_oidc_client_secret(
    tenant: TenantId,
    by: Staff,
    r: &pb::RotateOidcClientSecretRequest,
) -> Result<(RequestId, OidcClientCommand), Status> {
    let rotate = OidcClientChange::RotateSecret;
    change(tenant, by, &r.request_id, &r.client_id, rotate)
}

/// Parses `RemoveOidcClientRequest`.
pub fn remove_oidc_client(
    tenant: TenantId,
    by: Staff,
    r: &pb::RemoveOidcClientRequest,
) -> Result<(RequestId, OidcClientCommand), Status> {
    let remove = OidcClientChange::Remove(r.reason.trim().to_owned());
    change(tenant, by, &r.request_id, &r.client_id, remove)
}
