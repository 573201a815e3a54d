//! Which stream holds which aggregate. Ids here are already valid segments.

use super::values::{CustomerId, GeneratedId, TenantId};
use access_catalogue::StreamId;
use access_catalogue::envelope::{Aggregate, GLOBAL_TENANT};

fn make(aggregate: Aggregate, tenant: &str, id: &str) -> StreamId {
    // Every id type here is parsed to the stream-segment alphabet; an id that
    // is not (an empty one read back for a login without an invitation, say)
    // names an empty stream, so the decision finds nothing rather than panic.
    StreamId::new(aggregate, tenant, id).unwrap_or_else(|_| StreamId::placeholder(aggregate))
}

/// `tenant.<t>.<t>`
pub fn tenant(t: &TenantId) -> StreamId {
    make(Aggregate::Tenant, t.as_str(), t.as_str())
}

/// `customer.<t>.<customer id>`
pub fn customer(t: &TenantId, c: &CustomerId) -> StreamId {
    make(Aggregate::Customer, t.as_str(), c.as_str())
}

/// `contact.<t>.<contact id>`
pub fn contact(t: &TenantId, id: &GeneratedId) -> StreamId {
    make(Aggregate::Contact, t.as_str(), id.as_str())
}

/// `invitation.<t>.<invitation id>`
pub fn invitation(t: &TenantId, id: &GeneratedId) -> StreamId {
    make(Aggregate::Invitation, t.as_str(), id.as_str())
}

/// `identity._.<identity id>`: identities belong to no tenant.
pub fn identity(id: &GeneratedId) -> StreamId {
    make(Aggregate::Identity, GLOBAL_TENANT, id.as_str())
}

/// `emailslot.<t>.<identity id>`: the tenant's reservation of one email.
pub fn email_slot(t: &TenantId, identity: &GeneratedId) -> StreamId {
    make(Aggregate::EmailSlot, t.as_str(), identity.as_str())
}

/// `usernameslot.<t>.<slot id>`: the tenant's reservation of one username.
pub fn username_slot(t: &TenantId, slot: &GeneratedId) -> StreamId {
    make(Aggregate::UsernameSlot, t.as_str(), slot.as_str())
}

/// `portallink.<t>.<link id>`: one capability link.
pub fn portal_link(t: &TenantId, id: &GeneratedId) -> StreamId {
    make(Aggregate::PortalLink, t.as_str(), id.as_str())
}

/// `oidcclient.<t>.<client id>`: one OpenID Connect client of a tenant.
pub fn oidc_client(t: &TenantId, id: &GeneratedId) -> StreamId {
    make(Aggregate::OidcClient, t.as_str(), id.as_str())
}

/// `oidcgrant.<t>.<grant id>`: one contact's sign-in to one client.
pub fn oidc_grant(t: &TenantId, id: &GeneratedId) -> StreamId {
    make(Aggregate::OidcGrant, t.as_str(), id.as_str())
}

/// `webhook.<t>.<webhook id>`: one webhook of a tenant and its deliveries.
pub fn webhook(t: &TenantId, id: &GeneratedId) -> StreamId {
    make(Aggregate::Webhook, t.as_str(), id.as_str())
}
