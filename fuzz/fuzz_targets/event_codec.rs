//! Any payload under any known event type and schema version (current and
//! legacy): an error, or an event whose encoding decodes back to itself.
#![no_main]

use access_catalogue::catalogue::Event;
use access_catalogue::{Actor, Envelope, StreamId};
use libfuzzer_sys::fuzz_target;

/// Every (aggregate, type, version) the catalogue decodes.
const KNOWN: &[(&str, &str, u16)] = &[
    ("tenant", "TenantCreated", 1),
    ("tenant", "ApiKeyIssued", 1),
    ("tenant", "ApiKeyIssued", 2),
    ("tenant", "ApiKeyRevoked", 1),
    ("tenant", "TenantSettingsChanged", 1),
    ("tenant", "ApprovalPolicySet", 1),
    ("tenant", "UsernameAdministratorsSet", 1),
    ("tenant", "EmailTemplateSet", 1),
    ("tenant", "EmailTemplateReset", 1),
    ("tenant", "NotificationPolicySet", 1),
    ("tenant", "NotificationPolicySet", 2),
    ("tenant", "PasswordPolicySet", 1),
    ("customer", "CustomerCreated", 1),
    ("customer", "CustomerCreated", 2),
    ("customer", "CustomerCreated", 3),
    ("customer", "CustomerUpdated", 1),
    ("customer", "CustomerStatusChanged", 1),
    ("customer", "DocumentVisibilitySet", 1),
    ("contact", "ContactInvited", 1),
    ("contact", "ContactActivated", 1),
    ("contact", "AccessDisabled", 1),
    ("contact", "AccessRestored", 1),
    ("contact", "AccessRevoked", 1),
    ("contact", "LoginCreated", 1),
    ("contact", "ContactImported", 1),
    ("contact", "PasswordImported", 1),
    ("contact", "PasswordRehashed", 1),
    ("contact", "LocalPasswordSet", 1),
    ("contact", "LocalPasswordSet", 2),
    ("contact", "FirstLogin", 1),
    ("contact", "PasswordResetRequested", 1),
    ("contact", "PasswordResetCompleted", 1),
    ("contact", "LocalPasswordCleared", 1),
    ("contact", "ContactDetailsChanged", 1),
    ("contact", "EmailSent", 1),
    ("contact", "EmailDeliveryFailed", 1),
    ("contact", "ContactAwaitingApproval", 1),
    ("contact", "ContactApproved", 1),
    ("contact", "ContactRejected", 1),
    ("contact", "LoginFailed", 1),
    ("contact", "LoginLocked", 1),
    ("contact", "LoginFailuresCleared", 1),
    ("invitation", "InvitationIssued", 1),
    ("invitation", "InvitationResent", 1),
    ("invitation", "InvitationAccepted", 1),
    ("invitation", "InvitationCancelled", 1),
    ("identity", "IdentityRegistered", 1),
    ("identity", "PasswordSet", 1),
    ("portallink", "PortalLinkCreated", 1),
    ("portallink", "PortalLinkDeleted", 1),
    ("usernameslot", "UsernameReserved", 1),
    ("usernameslot", "UsernameReleased", 1),
    ("emailslot", "EmailReserved", 1),
    ("emailslot", "EmailReleased", 1),
    ("system", "LogRepaired", 1),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let (aggregate, event_type, schema_version) = KNOWN[pick as usize % KNOWN.len()];
    let Ok(stream) = StreamId::parse(&format!("{aggregate}.t.x")) else {
        return;
    };
    let envelope = Envelope {
        envelope_version: 1,
        position: 1,
        stream,
        stream_version: 1,
        event_id: Default::default(),
        event_type: event_type.into(),
        schema_version,
        occurred_at_ms: 0,
        tenant: None,
        actor: Actor::Operator,
        correlation_id: Default::default(),
        causation_id: None,
        request_id: String::new(),
        prev_hash: [0; 32],
        hash: [0; 32],
        payload: payload.to_vec(),
    };
    if let Ok(event) = Event::decode(&envelope) {
        // Legacy versions are upcast; the current encoding must round-trip.
        let (t, v, bytes) = event.encode();
        let again = Envelope {
            event_type: t.into(),
            schema_version: v,
            payload: bytes,
            ..envelope
        };
        assert_eq!(Event::decode(&again).expect("own encoding decodes"), event);
    }
});
