//! The read models' tables in memory: one set per tenant, and the rows found
//! by a key of their own (identities, API keys, portal links) in shards.
//!
//! Shards keep every map small enough that growing it never holds the
//! projector (and the readers behind it) for long, and give the snapshot
//! chunks of a bounded size.

use super::rows::{
    ContactRow, CustomerRow, IdentityRow, KeyRow, OidcClientRow, OidcGrantRow, PendingLogout,
    PortalLinkRow, SigningKeyRow, TenantRow,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};

/// How many shards hold the rows found by a key of their own. Part of the
/// snapshot's layout: a change is a new layout version.
pub(super) const GLOBAL_SHARDS: usize = 64;

/// What the read models know of one tenant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct TenantTables {
    /// The tenant's own row, once it is created.
    pub row: Option<TenantRow>,
    /// Customers in id order (listed in pages).
    pub customers: BTreeMap<Box<str>, CustomerRow>,
    /// Contacts by id.
    pub contacts: HashMap<Box<str>, ContactRow>,
    /// A customer's contacts, in id (creation) order.
    pub customer_contacts: HashMap<Box<str>, Vec<Box<str>>>,
    /// Contacts by lower-case username.
    pub usernames: HashMap<Box<str>, Box<str>>,
    /// The tenant's contact of an identity.
    pub memberships: HashMap<Box<str>, Box<str>>,
    /// An invitation's contact.
    pub invitations: HashMap<Box<str>, Box<str>>,
    /// A portal link's token hash, by link id.
    pub portal_link_ids: HashMap<Box<str>, [u8; 32]>,
    /// OpenID Connect clients in id order.
    pub oidc_clients: BTreeMap<Box<str>, OidcClientRow>,
    /// Token signing keys in id (creation) order.
    pub signing_keys: BTreeMap<Box<str>, SigningKeyRow>,
    /// OpenID Connect grants by id.
    pub grants: HashMap<Box<str>, OidcGrantRow>,
    /// Redeemed grants that have not ended, as (contact, grant).
    pub live_grants: BTreeSet<(Box<str>, Box<str>)>,
    /// Ended grants whose clients are still to be told, by grant.
    pub pending_logouts: BTreeMap<Box<str>, PendingLogout>,
}

/// One shard of the rows found by a key of their own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Globals {
    /// Global identities by id.
    pub identities: HashMap<Box<str>, IdentityRow>,
    /// API keys by key id.
    pub api_keys: HashMap<Box<str>, KeyRow>,
    /// Portal links by the SHA-256 of their token.
    pub portal_links: HashMap<[u8; 32], PortalLinkRow>,
}

/// Every row, and the log position they were built up to.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Tables {
    /// Per tenant, in name order (the live grants are paged over tenants).
    pub tenants: BTreeMap<Box<str>, TenantTables>,
    /// The shards of rows found by a key of their own.
    pub globals: Vec<Globals>,
    /// The last log position applied.
    pub checkpoint: u64,
    /// The hash of the event at `checkpoint`.
    pub checkpoint_hash: Option<[u8; 32]>,
}

impl Default for Tables {
    fn default() -> Self {
        Tables {
            tenants: BTreeMap::new(),
            globals: vec![Globals::default(); GLOBAL_SHARDS],
            checkpoint: 0,
            checkpoint_hash: None,
        }
    }
}

/// The shard of a key. SipHash with fixed keys: stable across runs, which
/// the snapshot's layout relies on.
fn shard_of(key: &[u8]) -> usize {
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    key.hash(&mut h);
    (h.finish() % GLOBAL_SHARDS as u64) as usize
}

impl Tables {
    /// A tenant's tables, if the tenant has any rows.
    pub fn tenant(&self, tenant: &str) -> Option<&TenantTables> {
        self.tenants.get(tenant)
    }

    /// A tenant's tables to change, made on first use.
    pub fn tenant_mut(&mut self, tenant: &str) -> &mut TenantTables {
        if !self.tenants.contains_key(tenant) {
            self.tenants.insert(tenant.into(), TenantTables::default());
        }
        self.tenants
            .get_mut(tenant)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    /// The shard holding a key's row.
    pub fn globals(&self, key: &[u8]) -> &Globals {
        &self.globals[shard_of(key)]
    }

    /// The shard holding a key's row, to change.
    pub fn globals_mut(&mut self, key: &[u8]) -> &mut Globals {
        &mut self.globals[shard_of(key)]
    }

    /// An identity's row.
    pub fn identity(&self, id: &str) -> Option<&IdentityRow> {
        self.globals(id.as_bytes()).identities.get(id)
    }

    /// A contact's row.
    pub fn contact(&self, tenant: &str, id: &str) -> Option<&ContactRow> {
        self.tenant(tenant)?.contacts.get(id)
    }
}
