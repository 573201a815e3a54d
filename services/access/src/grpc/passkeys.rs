//! The passkey RPCs of `access.v1.Sessions` (the portal's key): registering
//! one from a session, and signing in with one.

use super::convert::{Fields, fingerprint};
use super::sessions::login_session;
use super::status::to_status;
use super::{Shared, context};
use crate::app::PasskeyCeremony;
use crate::domain::values::RequestId;
use access_proto::v1 as pb;
use tonic::{Request, Response, Status};

fn ceremony(c: PasskeyCeremony) -> Response<pb::PasskeyCeremony> {
    Response::new(pb::PasskeyCeremony {
        options_json: c.options_json,
        ceremony_token: c.ceremony_token,
    })
}

/// Refuses empty required fields, every one at once.
fn required(fields: &[(&str, &str)]) -> Result<(), Status> {
    let mut f = Fields::default();
    for (field, value) in fields {
        f.parse(
            field,
            if value.trim().is_empty() {
                Err(format!("{field} is required"))
            } else {
                Ok(())
            },
        );
    }
    f.finish()
}

/// `BeginPasskeyRegistration`.
pub async fn begin_registration(
    shared: &Shared,
    request: Request<pb::BeginPasskeyRegistrationRequest>,
) -> Result<Response<pb::PasskeyCeremony>, Status> {
    let (_, tenant, staff) = shared.auth.staff(&request).await?;
    staff.may_check_access().map_err(|e| to_status(e.into()))?;
    let started = shared
        .app
        .begin_passkey_registration(
            &tenant,
            super::factors::enroller(
                &request.get_ref().session_token,
                &request.get_ref().second_factor_challenge,
            ),
        )
        .await
        .map_err(to_status)?;
    Ok(ceremony(started))
}

/// `FinishPasskeyRegistration`.
pub async fn finish_registration(
    shared: &Shared,
    request: Request<pb::FinishPasskeyRegistrationRequest>,
) -> Result<Response<pb::FinishPasskeyRegistrationReply>, Status> {
    let (principal, tenant, staff) = shared.auth.staff(&request).await?;
    staff.may_check_access().map_err(|e| to_status(e.into()))?;
    let r = request.get_ref();
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let request_id = f.finish_with((request_id,))?.0;
    required(&[
        ("ceremony_token", &r.ceremony_token),
        ("credential_json", &r.credential_json),
    ])?;
    let fp = fingerprint("FinishPasskeyRegistration", r, |m| m.request_id.clear());
    let ctx = context(
        &request,
        request_id,
        fp,
        Some(tenant.clone()),
        principal.actor(),
    );
    let outcome = shared
        .app
        .finish_passkey_registration(
            &ctx,
            &tenant,
            (
                super::factors::enroller(&r.session_token, &r.second_factor_challenge),
                r.ceremony_token.trim(),
            ),
            &r.credential_json,
            &r.name,
        )
        .await
        .map_err(to_status)?;
    let (factor_id, session) = outcome.reply;
    Ok(Response::new(pb::FinishPasskeyRegistrationReply {
        position: outcome.position,
        factor_id,
        session: session.map(|s| login_session(&shared.app, tenant.as_str(), s)),
    }))
}

/// `BeginPasskeyLogin`.
pub async fn begin_login(
    shared: &Shared,
    request: Request<pb::BeginPasskeyLoginRequest>,
) -> Result<Response<pb::PasskeyCeremony>, Status> {
    let (_, tenant, staff) = shared.auth.staff(&request).await?;
    staff.may_check_access().map_err(|e| to_status(e.into()))?;
    let challenge = request.get_ref().second_factor_challenge.trim();
    let started = shared
        .app
        .begin_passkey_login(&tenant, Some(challenge).filter(|c| !c.is_empty()))
        .map_err(to_status)?;
    Ok(ceremony(started))
}

/// `FinishPasskeyLogin`.
pub async fn finish_login(
    shared: &Shared,
    request: Request<pb::FinishPasskeyLoginRequest>,
) -> Result<Response<pb::Session>, Status> {
    let (_, tenant, staff) = shared.auth.staff(&request).await?;
    staff.may_check_access().map_err(|e| to_status(e.into()))?;
    let r = request.get_ref();
    required(&[
        ("ceremony_token", &r.ceremony_token),
        ("credential_json", &r.credential_json),
    ])?;
    let outcome = shared
        .app
        .finish_passkey_login(
            &tenant,
            r.ceremony_token.trim(),
            &r.credential_json,
            r.client_address.trim(),
        )
        .await
        .map_err(to_status)?;
    Ok(Response::new(login_session(
        &shared.app,
        tenant.as_str(),
        outcome,
    )))
}
