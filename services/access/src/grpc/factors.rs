//! The second-factor RPCs of `access.v1.Sessions` (the portal's key): a
//! login's second step, and enrolling an authenticator app from a session.

use super::convert::{Fields, fingerprint};
use super::sessions::login_session;
use super::status::to_status;
use super::{Shared, context};
use crate::app::{Enroller, SetSecondFactorPolicy};
use crate::domain::values::{CustomerId, RequestId};
use access_catalogue::catalogue::FactorRequirement;
use access_proto::v1 as pb;
use tonic::{Request, Response, Status};

/// Who enrols: the session, or the challenge given in its place.
pub(super) fn enroller<'a>(session: &'a str, challenge: &'a str) -> Enroller<'a> {
    match challenge.trim() {
        "" => Enroller::Session(session.trim()),
        challenge => Enroller::Challenge(challenge),
    }
}

/// `SetSecondFactorPolicy`.
pub async fn set_policy(
    shared: &Shared,
    request: Request<pb::SetSecondFactorPolicyRequest>,
) -> Result<Response<pb::SetSecondFactorPolicyReply>, Status> {
    let (principal, tenant, staff) = shared.auth.staff(&request).await?;
    let r = request.get_ref();
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let customer_id = f.parse(
        "customer_id",
        match r.customer_id.trim() {
            "" => Ok(None),
            id => CustomerId::parse(id).map(Some),
        },
    );
    let require = f.parse(
        "require",
        match pb::SecondFactorRequirement::try_from(r.require) {
            Ok(pb::SecondFactorRequirement::Password) => Ok(FactorRequirement::None),
            Ok(pb::SecondFactorRequirement::AnySecondFactor) => {
                Ok(FactorRequirement::AnySecondFactor)
            }
            Ok(pb::SecondFactorRequirement::Passkey) => Ok(FactorRequirement::Passkey),
            _ => Err("PASSWORD, ANY_SECOND_FACTOR or PASSKEY".to_owned()),
        },
    );
    let (request_id, customer_id, require) = f.finish_with((request_id, customer_id, require))?;
    let fp = fingerprint("SetSecondFactorPolicy", r, |m| m.request_id.clear());
    let ctx = context(
        &request,
        request_id,
        fp,
        Some(tenant.clone()),
        principal.actor(),
    );
    let cmd = SetSecondFactorPolicy {
        tenant,
        by: staff,
        customer_id,
        require,
    };
    let outcome = shared.app.execute(&ctx, &cmd).await.map_err(to_status)?;
    // What sessions and sign-ins on this replica see next is the new policy.
    shared
        .app
        .wait_for(outcome.position)
        .await
        .map_err(to_status)?;
    Ok(Response::new(pb::SetSecondFactorPolicyReply {
        position: outcome.position,
    }))
}

/// `CompleteSecondFactor`.
pub async fn complete(
    shared: &Shared,
    request: Request<pb::CompleteSecondFactorRequest>,
) -> Result<Response<pb::Session>, Status> {
    let (_, tenant, staff) = shared.auth.staff(&request).await?;
    staff.may_check_access().map_err(|e| to_status(e.into()))?;
    let r = request.get_ref();
    let mut f = Fields::default();
    for (field, value) in [("challenge", &r.challenge), ("code", &r.code)] {
        f.parse(
            field,
            if value.trim().is_empty() {
                Err(format!("a {field} is required"))
            } else {
                Ok(())
            },
        );
    }
    f.finish()?;
    let outcome = shared
        .app
        .complete_second_factor(
            tenant.as_str(),
            r.challenge.trim(),
            &r.code,
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

/// `BeginTotpEnrolment`.
pub async fn begin(
    shared: &Shared,
    request: Request<pb::BeginTotpEnrolmentRequest>,
) -> Result<Response<pb::TotpEnrolment>, Status> {
    let (_, tenant, staff) = shared.auth.staff(&request).await?;
    staff.may_check_access().map_err(|e| to_status(e.into()))?;
    let start = shared
        .app
        .begin_totp_enrolment(
            &tenant,
            enroller(
                request.get_ref().session_token.as_str(),
                &request.get_ref().second_factor_challenge,
            ),
        )
        .map_err(to_status)?;
    Ok(Response::new(pb::TotpEnrolment {
        secret: start.secret,
        otpauth_uri: start.uri,
        enrolment_token: start.enrolment_token,
    }))
}

/// `ConfirmTotpEnrolment`.
pub async fn confirm(
    shared: &Shared,
    request: Request<pb::ConfirmTotpEnrolmentRequest>,
) -> Result<Response<pb::ConfirmTotpEnrolmentReply>, Status> {
    let (principal, tenant, staff) = shared.auth.staff(&request).await?;
    staff.may_check_access().map_err(|e| to_status(e.into()))?;
    let r = request.get_ref();
    let mut f = Fields::default();
    let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
    let request_id = f.finish_with((request_id,))?.0;
    // A retry may type a later code; the request is the same.
    let fp = fingerprint("ConfirmTotpEnrolment", r, |m| {
        m.request_id.clear();
        m.code.clear();
    });
    let ctx = context(
        &request,
        request_id,
        fp,
        Some(tenant.clone()),
        principal.actor(),
    );
    let outcome = shared
        .app
        .confirm_totp_enrolment(
            &ctx,
            &tenant,
            enroller(&r.session_token, &r.second_factor_challenge),
            r.enrolment_token.trim(),
            &r.code,
        )
        .await
        .map_err(to_status)?;
    let (recovery_codes, session) = outcome.reply;
    Ok(Response::new(pb::ConfirmTotpEnrolmentReply {
        position: outcome.position,
        recovery_codes,
        session: session.map(|s| login_session(&shared.app, tenant.as_str(), s)),
    }))
}
