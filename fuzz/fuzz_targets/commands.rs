//! Any bytes as any request message, parsed into its command the way the
//! gRPC layer does: a command or field violations, never a panic.
#![no_main]

use access_proto::v1 as pb;
use access_service::app::AccessAction;
use access_service::domain::policy::{Role, Staff};
use access_service::domain::values::TenantId;
use access_service::grpc::convert;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn tenant() -> TenantId {
    TenantId::parse("acme").expect("a valid tenant id")
}

fn staff() -> Staff {
    Staff::new(Role::Admin)
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    match pick % 16 {
        0 => {
            if let Ok(m) = pb::CreateTenantRequest::decode(bytes) {
                let _ = convert::create_tenant(&m);
            }
        }
        1 => {
            if let Ok(m) = pb::CreateCustomerRequest::decode(bytes) {
                let _ = convert::write_customer(tenant(), staff(), &m.request_id, &m.customer);
            }
        }
        2 => {
            if let Ok(m) = pb::UpdateCustomerRequest::decode(bytes) {
                let _ = convert::write_customer(tenant(), staff(), &m.request_id, &m.customer);
            }
        }
        3 => {
            if let Ok(m) = pb::SetCustomerStatusRequest::decode(bytes) {
                let _ = convert::set_status(tenant(), staff(), &m);
            }
        }
        4 => {
            if let Ok(m) = pb::SetDocumentVisibilityRequest::decode(bytes) {
                let _ = convert::set_documents(tenant(), staff(), &m);
            }
        }
        5 => {
            if let Ok(m) = pb::CreateApiKeyRequest::decode(bytes) {
                let _ = convert::create_api_key(tenant(), staff(), &m);
            }
        }
        6 => {
            if let Ok(m) = pb::RevokeApiKeyRequest::decode(bytes) {
                let _ = convert::revoke_api_key(tenant(), staff(), &m);
            }
        }
        7 => {
            if let Ok(m) = pb::UpdateTenantSettingsRequest::decode(bytes) {
                let _ = convert::change_settings(tenant(), staff(), &m);
            }
        }
        8 => {
            if let Ok(m) = pb::AddPortalUserRequest::decode(bytes) {
                let _ = convert::add_portal_user(tenant(), staff(), &m);
            }
        }
        9 => {
            if let Ok(m) = pb::SetTemporaryPasswordRequest::decode(bytes) {
                let _ = convert::set_temporary_password(tenant(), staff(), &m);
            }
        }
        10 => {
            if let Ok(m) = pb::CheckAccessRequest::decode(bytes) {
                let _ = convert::action(&m);
            }
        }
        11 => {
            if let Ok(m) = pb::InviteCustomerRequest::decode(bytes) {
                let _ = convert::invite(tenant(), staff(), &m);
            }
        }
        12 => {
            if let Ok(m) = pb::ResendInvitationRequest::decode(bytes) {
                let _ = convert::resend(tenant(), staff(), &m);
            }
        }
        13 => {
            if let Ok(m) = pb::ContactCommand::decode(bytes) {
                for action in [
                    AccessAction::Disable,
                    AccessAction::Restore,
                    AccessAction::Revoke,
                    AccessAction::Approve,
                    AccessAction::Reject,
                    AccessAction::Unlock,
                ] {
                    let _ = convert::access(tenant(), staff(), action, &m);
                }
            }
        }
        14 => {
            if let Ok(text) = std::str::from_utf8(bytes) {
                let _ = convert::parse_time(text);
                let _ = convert::contact_id(text);
            }
        }
        _ => {
            if let Ok(m) = pb::ReplayHistoryRequest::decode(bytes) {
                let _ = convert::parse_time(&m.from_time);
            }
        }
    }
});
