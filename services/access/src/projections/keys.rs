//! Row keys. `\0` separates parts; no id may contain it.

/// A tenant's row.
pub fn tenant(t: &str) -> Vec<u8> {
    [b"t\0", t.as_bytes()].concat()
}

/// An API key's row, by key id.
pub fn key(id: &str) -> Vec<u8> {
    [b"k\0", id.as_bytes()].concat()
}

/// A customer's row.
pub fn customer(t: &str, c: &str) -> Vec<u8> {
    [b"c\0", t.as_bytes(), b"\0", c.as_bytes()].concat()
}

/// A contact's row.
pub fn contact(t: &str, c: &str) -> Vec<u8> {
    [b"n\0", t.as_bytes(), b"\0", c.as_bytes()].concat()
}

/// A contact by username (case-insensitive) within its tenant.
pub fn username(t: &str, username: &str) -> Vec<u8> {
    [
        b"u\0",
        t.as_bytes(),
        b"\0",
        username.to_lowercase().as_bytes(),
    ]
    .concat()
}

/// Where a tenant's customers start, in id order.
pub fn customer_prefix(t: &str) -> Vec<u8> {
    [b"c\0", t.as_bytes(), b"\0"].concat()
}

/// A contact listed under its customer.
pub fn customer_contact(t: &str, customer: &str, contact: &str) -> Vec<u8> {
    [
        b"x\0",
        t.as_bytes(),
        b"\0",
        customer.as_bytes(),
        b"\0",
        contact.as_bytes(),
    ]
    .concat()
}

/// Where a customer's contacts start.
pub fn customer_contacts_prefix(t: &str, customer: &str) -> Vec<u8> {
    [b"x\0", t.as_bytes(), b"\0", customer.as_bytes(), b"\0"].concat()
}

/// An identity's contact within a tenant.
pub fn membership(t: &str, identity: &str) -> Vec<u8> {
    [b"m\0", t.as_bytes(), b"\0", identity.as_bytes()].concat()
}

/// A portal link by the SHA-256 of its token.
pub fn portal_link(token_sha256: &[u8; 32]) -> Vec<u8> {
    [b"p\0".as_slice(), token_sha256].concat()
}

/// A portal link's token hash, by link id.
pub fn portal_link_id(t: &str, link_id: &str) -> Vec<u8> {
    [b"l\0", t.as_bytes(), b"\0", link_id.as_bytes()].concat()
}

/// An invitation's contact.
pub fn invitation(t: &str, invitation: &str) -> Vec<u8> {
    [b"v\0", t.as_bytes(), b"\0", invitation.as_bytes()].concat()
}

/// A tenant's OpenID Connect client.
pub fn oidc_client(t: &str, client_id: &str) -> Vec<u8> {
    [b"o\0", t.as_bytes(), b"\0", client_id.as_bytes()].concat()
}

/// Where a tenant's OpenID Connect clients start.
pub fn oidc_client_prefix(t: &str) -> Vec<u8> {
    [b"o\0", t.as_bytes(), b"\0"].concat()
}

/// A tenant's signing key.
pub fn signing_key(t: &str, key_id: &str) -> Vec<u8> {
    [b"g\0", t.as_bytes(), b"\0", key_id.as_bytes()].concat()
}

/// Where a tenant's signing keys start.
pub fn signing_key_prefix(t: &str) -> Vec<u8> {
    [b"g\0", t.as_bytes(), b"\0"].concat()
}

/// A tenant's OpenID Connect grant.
pub fn oidc_grant(t: &str, grant_id: &str) -> Vec<u8> {
    [b"r\0", t.as_bytes(), b"\0", grant_id.as_bytes()].concat()
}

/// A contact's grant, in the index of grants by contact.
pub fn contact_grant(t: &str, contact: &str, grant_id: &str) -> Vec<u8> {
    [
        b"R\0",
        t.as_bytes(),
        b"\0",
        contact.as_bytes(),
        b"\0",
        grant_id.as_bytes(),
    ]
    .concat()
}

/// Where a contact's grants start in the index of grants by contact.
pub fn contact_grants_prefix(t: &str, contact: &str) -> Vec<u8> {
    [b"R\0", t.as_bytes(), b"\0", contact.as_bytes(), b"\0"].concat()
}

/// A grant whose end its client is still to be told of.
pub fn pending_logout(t: &str, grant_id: &str) -> Vec<u8> {
    [b"L\0", t.as_bytes(), b"\0", grant_id.as_bytes()].concat()
}

/// Where the pending logouts of every tenant start.
pub const PENDING_LOGOUTS: &[u8] = b"L\0";

/// Where a tenant's live grants start in the index by contact.
pub fn tenant_grants_prefix(t: &str) -> Vec<u8> {
    [b"R\0", t.as_bytes(), b"\0"].concat()
}

/// Where the live grants of every tenant start (the index by contact).
pub const LIVE_GRANTS: &[u8] = b"R\0";

/// An identity's row.
pub fn identity(i: &str) -> Vec<u8> {
    [b"i\0", i.as_bytes()].concat()
}

/// The last position applied.
pub const CHECKPOINT: &[u8] = b"_checkpoint";
/// The hash of the event at the checkpoint.
pub const CHECKPOINT_HASH: &[u8] = b"_checkpoint_hash";
/// The rows' layout version.
pub const SCHEMA: &[u8] = b"_schema";
