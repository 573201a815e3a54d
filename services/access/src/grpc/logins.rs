//! The staff-created logins of `access.v1.Access`: a customer's management
//! and staff pair, and temporary passwords. Typed passwords stay out of the
//! stored fingerprint (only whether one was typed).

use super::Shared;
use super::convert;
use super::status::to_status;
use access_proto::v1 as pb;
use tonic::{Request, Response, Status};

/// `AddPortalUser`.
pub async fn add_portal_user(
    shared: &Shared,
    request: Request<pb::AddPortalUserRequest>,
) -> Result<Response<pb::AddPortalUserReply>, Status> {
    let clear = |m: &mut pb::AddPortalUserRequest| {
        m.request_id.clear();
        for p in [&mut m.management_password, &mut m.staff_password] {
            if !p.is_empty() {
                *p = "typed".into();
            }
        }
    };
    let c = shared
        .staff_command(&request, "AddPortalUser", clear, convert::add_portal_user)
        .await?;
    let outcome = shared
        .app
        .add_portal_user(&c.ctx, &c.cmd)
        .await
        .map_err(to_status)?;
    let (added, shown) = (&outcome.reply.added, &outcome.reply);
    Ok(Response::new(pb::AddPortalUserReply {
        position: outcome.position,
        management_contact_id: added.management_contact_id.clone(),
        management_username: added.management_username.clone(),
        management_temporary_password: shown.management_password.clone(),
        staff_contact_id: added.staff_contact_id.clone(),
        staff_username: added.staff_username.clone(),
        staff_temporary_password: shown.staff_password.clone(),
    }))
}

/// `SetTemporaryPassword`.
pub async fn set_temporary_password(
    shared: &Shared,
    request: Request<pb::SetTemporaryPasswordRequest>,
) -> Result<Response<pb::SetTemporaryPasswordReply>, Status> {
    let clear = |m: &mut pb::SetTemporaryPasswordRequest| {
        m.request_id.clear();
        if !m.password.is_empty() {
            m.password = "typed".into();
        }
    };
    let parse = convert::set_temporary_password;
    let c = shared
        .staff_command(&request, "SetTemporaryPassword", clear, parse)
        .await?;
    let outcome = shared
        .app
        .set_temporary_password(&c.ctx, &c.cmd)
        .await
        .map_err(to_status)?;
    Ok(Response::new(pb::SetTemporaryPasswordReply {
        position: outcome.position,
        temporary_password: outcome.reply,
    }))
}
