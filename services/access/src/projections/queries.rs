//! The read models' queries: single rows by key, and the scans the use
//! cases need (a tenant's customers in id order, a customer's contacts, a
//! tenant's keys and clients), each bounded.

use super::keys;
use super::rows::{
    ContactRow, CustomerRow, IdentityRow, KeyRow, LiveGrant, OidcClientRow, OidcGrantRow,
    PendingLogout, PortalLinkRow, SigningKeyRow, TenantRow,
};
use super::store::ReadModels;
use anyhow::Context;

impl ReadModels {
    /// Every contact (tenant, contact id) of an identity, in every tenant.
    pub fn contacts_with_identity(
        &self,
        identity_id: &str,
    ) -> anyhow::Result<Vec<(String, String)>> {
        // Contact rows are `n\0<tenant>\0<contact>`: a scan, as erasure is rare.
        let prefix = keys::contact("", "");
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(&prefix[..2]) {
            let (k, v) = item?;
            let row: ContactRow = postcard::from_bytes(&v).context("read-model row")?;
            if row.identity_id != identity_id {
                continue;
            }
            let tenant = k[2..]
                .split(|b| *b == 0)
                .next()
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .unwrap_or_default();
            out.push((tenant, row.contact_id));
        }
        Ok(out)
    }

    /// A tenant's API keys, by key id.
    pub fn api_keys_of(&self, tenant: &str) -> anyhow::Result<Vec<(String, KeyRow)>> {
        let prefix = keys::key("");
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(&prefix) {
            let (k, v) = item?;
            let row: KeyRow = postcard::from_bytes(&v).context("read-model row")?;
            if row.tenant == tenant {
                out.push((
                    String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
                    row,
                ));
            }
        }
        Ok(out)
    }

    /// A tenant's OpenID Connect client, if it exists and was not removed.
    pub fn oidc_client(
        &self,
        tenant: &str,
        client_id: &str,
    ) -> anyhow::Result<Option<OidcClientRow>> {
        self.get(&keys::oidc_client(tenant, client_id))
    }

    /// A tenant's OpenID Connect clients, in id order (at most 1,000).
    pub fn oidc_clients_of(&self, tenant: &str) -> anyhow::Result<Vec<OidcClientRow>> {
        self.tree
            .scan_prefix(keys::oidc_client_prefix(tenant))
            .take(1000)
            .map(|item| {
                let (_, v) = item?;
                postcard::from_bytes(&v).context("read-model row")
            })
            .collect()
    }

    /// A tenant's OpenID Connect grant.
    pub fn oidc_grant(&self, tenant: &str, grant_id: &str) -> anyhow::Result<Option<OidcGrantRow>> {
        self.get(&keys::oidc_grant(tenant, grant_id))
    }

    /// The ids of a contact's redeemed grants that have not ended.
    pub fn live_grants_of(&self, tenant: &str, contact_id: &str) -> anyhow::Result<Vec<String>> {
        // All of them: a sign-out or a lost access must reach every one
        // (sign-ins are limited per address, so the list stays short).
        let prefix = keys::contact_grants_prefix(tenant, contact_id);
        self.tree
            .scan_prefix(&prefix)
            .keys()
            .map(|key| Ok(String::from_utf8_lossy(&key?[prefix.len()..]).into_owned()))
            .collect()
    }

    /// The contacts of a tenant with live grants (at most 100,000).
    pub fn contacts_with_live_grants(&self, tenant: &str) -> anyhow::Result<Vec<String>> {
        let prefix = keys::tenant_grants_prefix(tenant);
        let mut contacts: Vec<String> = Vec::new();
        for key in self.tree.scan_prefix(&prefix).keys().take(100_000) {
            let key = key?;
            let rest = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            let contact = rest.split('\0').next().unwrap_or_default().to_owned();
            if contacts.last() != Some(&contact) {
                contacts.push(contact);
            }
        }
        Ok(contacts)
    }

    /// Clients still to be told that a sign-in ended, of those `due` picks
    /// (at most `limit`): every pending one is looked at, so those waiting
    /// out a backoff hold up no others.
    pub fn pending_logouts(
        &self,
        due: impl Fn(&PendingLogout) -> bool,
        limit: usize,
    ) -> anyhow::Result<Vec<PendingLogout>> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(keys::PENDING_LOGOUTS) {
            let (_, v) = item?;
            let pending: PendingLogout = postcard::from_bytes(&v).context("read-model row")?;
            if due(&pending) {
                out.push(pending);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Live grants of every tenant, after the index key `after` (empty: from
    /// the start), at most `limit`.
    pub fn live_grants_after(&self, after: &[u8], limit: usize) -> anyhow::Result<Vec<LiveGrant>> {
        let start = if after.is_empty() {
            keys::LIVE_GRANTS.to_vec()
        } else {
            [after, b"\0"].concat()
        };
        self.tree
            .range(start..)
            .keys()
            .take_while(|k| k.as_ref().is_ok_and(|k| k.starts_with(keys::LIVE_GRANTS)))
            .take(limit)
            .map(|key| {
                let key = key?.to_vec();
                let text = String::from_utf8_lossy(&key[keys::LIVE_GRANTS.len()..]).into_owned();
                let mut parts = text.split('\0').map(str::to_owned);
                Ok(LiveGrant {
                    tenant: parts.next().unwrap_or_default(),
                    contact_id: parts.next().unwrap_or_default(),
                    grant_id: parts.next().unwrap_or_default(),
                    key,
                })
            })
            .collect()
    }

    /// One signing key of a tenant by its id.
    pub fn signing_key(&self, tenant: &str, key_id: &str) -> anyhow::Result<Option<SigningKeyRow>> {
        self.get(&keys::signing_key(tenant, key_id))
    }

    /// A tenant's newest signing keys (at most 100), newest first: the one
    /// that signs is always among them, however many were retired.
    pub fn signing_keys_of(&self, tenant: &str) -> anyhow::Result<Vec<SigningKeyRow>> {
        self.tree
            .scan_prefix(keys::signing_key_prefix(tenant))
            .rev()
            .take(100)
            .map(|item| {
                let (_, v) = item?;
                postcard::from_bytes(&v).context("read-model row")
            })
            .collect()
    }

    /// A tenant.
    pub fn tenant(&self, tenant: &str) -> anyhow::Result<Option<TenantRow>> {
        self.get(&keys::tenant(tenant))
    }

    /// An API key by its id.
    pub fn api_key(&self, key_id: &str) -> anyhow::Result<Option<KeyRow>> {
        self.get(&keys::key(key_id))
    }

    /// A customer of a tenant.
    pub fn customer(&self, tenant: &str, customer_id: &str) -> anyhow::Result<Option<CustomerRow>> {
        self.get(&keys::customer(tenant, customer_id))
    }

    /// A contact of a tenant.
    pub fn contact(&self, tenant: &str, contact_id: &str) -> anyhow::Result<Option<ContactRow>> {
        self.get(&keys::contact(tenant, contact_id))
    }

    /// The tenant's current contact for an identity, with the identity.
    pub fn membership(
        &self,
        tenant: &str,
        identity_id: &str,
    ) -> anyhow::Result<Option<(ContactRow, Option<IdentityRow>)>> {
        let Some(contact_id) = self.get::<String>(&keys::membership(tenant, identity_id))? else {
            return Ok(None);
        };
        let Some(contact) = self.contact(tenant, &contact_id)? else {
            return Ok(None);
        };
        Ok(Some((contact, self.identity(identity_id)?)))
    }

    /// A contact of a tenant by username (any case).
    pub fn contact_by_username(
        &self,
        tenant: &str,
        username: &str,
    ) -> anyhow::Result<Option<ContactRow>> {
        match self.get::<String>(&keys::username(tenant, username))? {
            Some(contact_id) => self.contact(tenant, &contact_id),
            None => Ok(None),
        }
    }

    /// Customers of a tenant in id order, after `after` (exclusive), at most `limit`.
    pub fn customers_after(
        &self,
        tenant: &str,
        after: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<CustomerRow>> {
        let prefix = keys::customer_prefix(tenant);
        let start = [prefix.as_slice(), after.as_bytes(), b"\0"].concat();
        let start = if after.is_empty() {
            prefix.clone()
        } else {
            start
        };
        let mut out = Vec::new();
        for item in self.tree.range(start..) {
            let (k, v) = item?;
            if !k.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            out.push(postcard::from_bytes(&v).context("read-model row")?);
        }
        Ok(out)
    }

    /// Every contact of one customer, in contact-id (creation) order.
    pub fn contacts_of(&self, tenant: &str, customer_id: &str) -> anyhow::Result<Vec<ContactRow>> {
        let prefix = keys::customer_contacts_prefix(tenant, customer_id);
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(&prefix) {
            let (k, _) = item?;
            let contact_id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if let Some(row) = self.contact(tenant, &contact_id)? {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// A portal link by the SHA-256 of its token.
    pub fn portal_link(&self, token_sha256: &[u8; 32]) -> anyhow::Result<Option<PortalLinkRow>> {
        self.get(&keys::portal_link(token_sha256))
    }

    /// Counts one resolve of a link; returns the count so far.
    pub fn count_resolve(&self, link_id: &str) -> anyhow::Result<u64> {
        let next = self.counters.update_and_fetch(link_id.as_bytes(), |old| {
            let n = old
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            Some((n + 1).to_be_bytes().to_vec())
        })?;
        Ok(next
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// A global identity.
    pub fn identity(&self, identity_id: &str) -> anyhow::Result<Option<IdentityRow>> {
        self.get(&keys::identity(identity_id))
    }
}
