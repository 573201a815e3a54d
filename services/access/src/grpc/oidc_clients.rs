//! The OpenID Connect RPCs of `access.v1.TenantAdmin` (admin keys): the
//! clients, and the tenant's signing key.

use super::Shared;
use super::convert;
use super::status::to_status;
use crate::app::{OidcClientCommand, Outcome};
use crate::domain::policy::Staff;
use crate::domain::values::{RequestId, TenantId};
use crate::projections::OidcClientRow;
use access_catalogue::catalogue::OidcClientKind;
use access_proto::v1 as pb;
use tonic::{Request, Response, Status};

/// A client as the API shows it (never its secret).
fn client_to_pb(row: OidcClientRow) -> pb::OidcClient {
    pb::OidcClient {
        client_id: row.client_id,
        kind: match row.kind {
            OidcClientKind::Confidential => pb::OidcClientKind::Confidential,
            OidcClientKind::Public => pb::OidcClientKind::Public,
        }
        .into(),
        settings: Some(pb::OidcClientSettings {
            name: row.settings.name,
            redirect_uris: row.settings.redirect_uris,
            scopes: row.settings.scopes,
            access_token_ttl_seconds: row.settings.access_token_ttl_s,
            refresh_token_ttl_seconds: row.settings.refresh_token_ttl_s,
            backchannel_logout_uri: row.settings.backchannel_logout_uri.unwrap_or_default(),
            post_logout_redirect_uris: row.settings.post_logout_redirect_uris,
            token_signing_alg: row.settings.token_signing_alg,
            initiate_login_uri: row.settings.initiate_login_uri.unwrap_or_default(),
        }),
        secret_generation: row.secret_generation,
    }
}

/// `RegisterOidcClient`.
pub async fn register(
    shared: &Shared,
    request: Request<pb::RegisterOidcClientRequest>,
) -> Result<Response<pb::RegisterOidcClientReply>, Status> {
    let clear = |m: &mut pb::RegisterOidcClientRequest| m.request_id.clear();
    let parse = convert::register_oidc_client;
    let c = shared
        .staff_command(&request, "RegisterOidcClient", clear, parse)
        .await?;
    let outcome = shared
        .app
        .register_oidc_client(&c.ctx, c.cmd)
        .await
        .map_err(to_status)?;
    Ok(Response::new(pb::RegisterOidcClientReply {
        position: outcome.position,
        client_secret: outcome.reply.secret.unwrap_or_default(),
        client_id: outcome.reply.client_id,
    }))
}

/// How a change's message is parsed into its command.
type ParseChange<M> = fn(TenantId, Staff, &M) -> Result<(RequestId, OidcClientCommand), Status>;

/// A change to a registered client, run: the command as parsed, and its
/// outcome (a rotation's holds the new secret).
async fn change<M: prost::Message + Clone>(
    shared: &Shared,
    request: &Request<M>,
    method: &'static str,
    parse: ParseChange<M>,
    clear: fn(&mut M),
) -> Result<(OidcClientCommand, Outcome<Option<String>>), Status> {
    let c = shared.staff_command(request, method, clear, parse).await?;
    let outcome = shared
        .app
        .change_oidc_client(&c.ctx, &c.cmd)
        .await
        .map_err(to_status)?;
    Ok((c.cmd, outcome))
}

/// `UpdateOidcClient`: answers with the client as it is after the change.
pub async fn update(
    shared: &Shared,
    request: Request<pb::UpdateOidcClientRequest>,
) -> Result<Response<pb::OidcClientReply>, Status> {
    let parse = convert::update_oidc_client;
    let clear = |m: &mut pb::UpdateOidcClientRequest| m.request_id.clear();
    let (cmd, outcome) = change(shared, &request, "UpdateOidcClient", parse, clear).await?;
    let row = shared
        .app
        .oidc_client(&cmd.tenant, cmd.client_id.as_str(), outcome.position)
        .await
        .map_err(to_status)?;
    Ok(Response::new(pb::OidcClientReply {
        position: outcome.position,
        client: Some(client_to_pb(row)),
    }))
}

/// `RotateOidcClientSecret`.
pub async fn rotate_secret(
    shared: &Shared,
    request: Request<pb::RotateOidcClientSecretRequest>,
) -> Result<Response<pb::RotateOidcClientSecretReply>, Status> {
    let parse = convert::rotate_oidc_client_secret;
    let clear = |m: &mut pb::RotateOidcClientSecretRequest| m.request_id.clear();
    let (_, outcome) = change(shared, &request, "RotateOidcClientSecret", parse, clear).await?;
    Ok(Response::new(pb::RotateOidcClientSecretReply {
        position: outcome.position,
        client_secret: outcome.reply.unwrap_or_default(),
    }))
}

/// `RemoveOidcClient`.
pub async fn remove(
    shared: &Shared,
    request: Request<pb::RemoveOidcClientRequest>,
) -> Result<Response<pb::RemoveOidcClientReply>, Status> {
    let parse = convert::remove_oidc_client;
    let clear = |m: &mut pb::RemoveOidcClientRequest| m.request_id.clear();
    let (_, outcome) = change(shared, &request, "RemoveOidcClient", parse, clear).await?;
    Ok(Response::new(pb::RemoveOidcClientReply {
        position: outcome.position,
    }))
}

/// `ListOidcClients`.
pub async fn list(
    shared: &Shared,
    request: Request<pb::ListOidcClientsRequest>,
) -> Result<Response<pb::ListOidcClientsReply>, Status> {
    let (_, tenant, staff) = shared.auth.staff(&request).await?;
    staff.may_manage_tenant().map_err(|e| to_status(e.into()))?;
    let rows = shared
        .app
        .oidc_clients(&tenant, request.get_ref().min_position)
        .await
        .map_err(to_status)?;
    Ok(Response::new(pb::ListOidcClientsReply {
        clients: rows.into_iter().map(client_to_pb).collect(),
    }))
}

/// `RotateSigningKey`.
pub async fn rotate_signing_key(
    shared: &Shared,
    request: Request<pb::RotateSigningKeyRequest>,
) -> Result<Response<pb::RotateSigningKeyReply>, Status> {
    let clear = |m: &mut pb::RotateSigningKeyRequest| m.request_id.clear();
    let parse = |_, _, r: &pb::RotateSigningKeyRequest| {
        let mut f = convert::Fields::default();
        let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
        Ok((f.finish_with((request_id,))?.0, ()))
    };
    let c = shared
        .staff_command(&request, "RotateSigningKey", clear, parse)
        .await?;
    let outcome = shared
        .app
        .rotate_signing_key(&c.ctx, &c.tenant, c.staff)
        .await
        .map_err(to_status)?;
    // The reply as stored: the new keys' ids, comma-separated.
    let key_ids: Vec<String> = outcome.reply.split(',').map(str::to_owned).collect();
    Ok(Response::new(pb::RotateSigningKeyReply {
        position: outcome.position,
        key_id: key_ids.first().cloned().unwrap_or_default(),
        key_ids,
    }))
}
