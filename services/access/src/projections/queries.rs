//! The read models' queries: single rows by key, and the scans the use
//! cases need (a tenant's customers in id order, a customer's contacts, a
//! tenant's keys and clients), each bounded.
//!
//! They answer `anyhow::Result` so that callers need not change if a table
//! moves back to storage; in memory they do not fail.

use super::rows::{
    ContactFacts, ContactRow, CustomerRow, IdentityRow, KeyRow, LiveGrant, OidcClientRow,
    OidcGrantRow, PendingLogout, PortalLinkRow, SigningKeyRow, TenantRow,
};
use super::store::ReadModels;
use std::ops::Bound;

/// Joins the parts of a live grant's paging key.
fn live_grant_key(tenant: &str, contact: &str, grant: &str) -> Vec<u8> {
    [tenant, contact, grant].join("\0").into_bytes()
}

/// The rows a check reads, borrowed together under one read of the tables.
#[derive(Clone, Copy, Debug)]
pub struct CheckRows<'a> {
    /// The contact's tenant.
    pub tenant: &'a TenantRow,
    /// What the check needs of the contact.
    pub contact: ContactFacts<'a>,
    /// The contact's customer's id.
    pub customer_id: &'a str,
    /// Its customer.
    pub customer: &'a CustomerRow,
}

impl ReadModels {
    /// Calls `f` with a contact's rows for a check, or with what is unknown
    /// (`"contact"`, `"customer"`, `"tenant"`), without copying a row: `f`
    /// runs under a read of the tables, so it must be short and not block.
    pub fn with_check_rows<R>(
        &self,
        tenant: &str,
        contact_id: &str,
        f: impl FnOnce(Result<CheckRows<'_>, &'static str>) -> R,
    ) -> R {
        let tables = self.read();
        let t = tables.tenant(tenant);
        let contact = tables.contact(tenant, contact_id);
        let rows = match (t, contact) {
            (Some(t), Some((_, contact))) => {
                let customer_id = tables.ids.name(contact.customer);
                t.customers
                    .get(customer_id)
                    .ok_or("customer")
                    .and_then(|customer| {
                        Ok(CheckRows {
                            tenant: t.row.as_ref().ok_or("tenant")?,
                            contact: contact.facts(),
                            customer_id,
                            customer,
                        })
                    })
            }
            _ => Err("contact"),
        };
        f(rows)
    }

    /// Every contact (tenant, contact id) of an identity, in every tenant.
    pub fn contacts_with_identity(
        &self,
        identity_id: &str,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let tables = self.read();
        let Some(identity) = tables.ids.find(identity_id) else {
            return Ok(Vec::new());
        };
        // Every contact of every tenant: erasure is rare, so a scan is
        // affordable.
        let mut out = Vec::new();
        for (tenant, t) in &tables.tenants {
            for (id, row) in &t.contacts {
                if row.identity == Some(identity) {
                    out.push((tenant.to_string(), tables.ids.name(*id).to_owned()));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// A tenant's API keys, by key id.
    pub fn api_keys_of(&self, tenant: &str) -> anyhow::Result<Vec<(String, KeyRow)>> {
        let tables = self.read();
        let mut out: Vec<(String, KeyRow)> = tables
            .globals
            .iter()
            .flat_map(|g| g.api_keys.iter())
            .filter(|(_, row)| row.tenant == tenant)
            .map(|(id, row)| (id.to_string(), row.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// A tenant's OpenID Connect client, if it exists and was not removed.
    pub fn oidc_client(
        &self,
        tenant: &str,
        client_id: &str,
    ) -> anyhow::Result<Option<OidcClientRow>> {
        let tables = self.read();
        Ok(tables
            .tenant(tenant)
            .and_then(|t| t.oidc_clients.get(client_id).cloned()))
    }

    /// A tenant's OpenID Connect clients, in id order (at most 1,000).
    pub fn oidc_clients_of(&self, tenant: &str) -> anyhow::Result<Vec<OidcClientRow>> {
        let tables = self.read();
        Ok(tables.tenant(tenant).map_or_else(Vec::new, |t| {
            t.oidc_clients.values().take(1000).cloned().collect()
        }))
    }

    /// A tenant's OpenID Connect grant.
    pub fn oidc_grant(&self, tenant: &str, grant_id: &str) -> anyhow::Result<Option<OidcGrantRow>> {
        let tables = self.read();
        Ok(tables
            .tenant(tenant)
            .and_then(|t| t.grants.get(grant_id).cloned()))
    }

    /// The ids of a contact's redeemed grants that have not ended.
    pub fn live_grants_of(&self, tenant: &str, contact_id: &str) -> anyhow::Result<Vec<String>> {
        // All of them: a sign-out or a lost access must reach every one
        // (sign-ins are limited per address, so the list stays short).
        let tables = self.read();
        let Some(t) = tables.tenant(tenant) else {
            return Ok(Vec::new());
        };
        let from: (Box<str>, Box<str>) = (contact_id.into(), "".into());
        Ok(t.live_grants
            .range(from..)
            .take_while(|(c, _)| c.as_ref() == contact_id)
            .map(|(_, g)| g.to_string())
            .collect())
    }

    /// The contacts of a tenant with live grants (at most 100,000).
    pub fn contacts_with_live_grants(&self, tenant: &str) -> anyhow::Result<Vec<String>> {
        let tables = self.read();
        let mut contacts: Vec<String> = Vec::new();
        if let Some(t) = tables.tenant(tenant) {
            for (contact, _) in t.live_grants.iter().take(100_000) {
                if contacts.last().map(String::as_str) != Some(contact.as_ref()) {
                    contacts.push(contact.to_string());
                }
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
        let tables = self.read();
        Ok(tables
            .tenants
            .values()
            .flat_map(|t| t.pending_logouts.values())
            .filter(|p| due(p))
            .take(limit)
            .cloned()
            .collect())
    }

    /// Live grants of every tenant, after the paging key `after` (empty: from
    /// the start), at most `limit`.
    pub fn live_grants_after(&self, after: &[u8], limit: usize) -> anyhow::Result<Vec<LiveGrant>> {
        let tables = self.read();
        let after = String::from_utf8_lossy(after);
        let mut parts = after.splitn(3, '\0');
        let (tenant, contact, grant) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let mut out = Vec::new();
        for (name, t) in tables
            .tenants
            .range::<str, _>((Bound::Included(tenant), Bound::Unbounded))
        {
            let grants: Box<dyn Iterator<Item = &(Box<str>, Box<str>)>> = if name.as_ref() == tenant
            {
                let from = (Box::<str>::from(contact), Box::<str>::from(grant));
                Box::new(
                    t.live_grants
                        .range((Bound::Excluded(from), Bound::Unbounded)),
                )
            } else {
                Box::new(t.live_grants.iter())
            };
            for (contact, grant) in grants {
                if out.len() == limit {
                    return Ok(out);
                }
                out.push(LiveGrant {
                    key: live_grant_key(name, contact, grant),
                    tenant: name.to_string(),
                    contact_id: contact.to_string(),
                    grant_id: grant.to_string(),
                });
            }
        }
        Ok(out)
    }

    /// One signing key of a tenant by its id.
    pub fn signing_key(&self, tenant: &str, key_id: &str) -> anyhow::Result<Option<SigningKeyRow>> {
        let tables = self.read();
        Ok(tables
            .tenant(tenant)
            .and_then(|t| t.signing_keys.get(key_id).cloned()))
    }

    /// A tenant's newest signing keys (at most 100), newest first: the one
    /// that signs is always among them, however many were retired.
    pub fn signing_keys_of(&self, tenant: &str) -> anyhow::Result<Vec<SigningKeyRow>> {
        let tables = self.read();
        Ok(tables.tenant(tenant).map_or_else(Vec::new, |t| {
            t.signing_keys.values().rev().take(100).cloned().collect()
        }))
    }

    /// A tenant.
    pub fn tenant(&self, tenant: &str) -> anyhow::Result<Option<TenantRow>> {
        let tables = self.read();
        Ok(tables.tenant(tenant).and_then(|t| t.row.clone()))
    }

    /// An API key by its id.
    pub fn api_key(&self, key_id: &str) -> anyhow::Result<Option<KeyRow>> {
        let tables = self.read();
        Ok(tables
            .globals(key_id.as_bytes())
            .api_keys
            .get(key_id)
            .cloned())
    }

    /// A customer of a tenant.
    pub fn customer(&self, tenant: &str, customer_id: &str) -> anyhow::Result<Option<CustomerRow>> {
        let tables = self.read();
        Ok(tables
            .tenant(tenant)
            .and_then(|t| t.customers.get(customer_id).cloned()))
    }

    /// A contact of a tenant.
    pub fn contact(&self, tenant: &str, contact_id: &str) -> anyhow::Result<Option<ContactRow>> {
        let tables = self.read();
        Ok(tables
            .contact(tenant, contact_id)
            .map(|(id, row)| row.row(id, &tables.ids)))
    }

    /// The tenant's current contact for an identity, with the identity.
    pub fn membership(
        &self,
        tenant: &str,
        identity_id: &str,
    ) -> anyhow::Result<Option<(ContactRow, Option<IdentityRow>)>> {
        let tables = self.read();
        let contact = tables.ids.find(identity_id).and_then(|identity| {
            let t = tables.tenant(tenant)?;
            let id = *t.memberships.get(&identity)?;
            Some(t.contacts.get(&id)?.row(id, &tables.ids))
        });
        Ok(contact.map(|c| (c, tables.identity(identity_id))))
    }

    /// A contact of a tenant by username (any case).
    pub fn contact_by_username(
        &self,
        tenant: &str,
        username: &str,
    ) -> anyhow::Result<Option<ContactRow>> {
        let tables = self.read();
        let username = username.to_lowercase();
        Ok(tables.tenant(tenant).and_then(|t| {
            let id = *t.usernames.get(username.as_str())?;
            Some(t.contacts.get(&id)?.row(id, &tables.ids))
        }))
    }

    /// Customers of a tenant in id order, after `after` (exclusive), at most `limit`.
    pub fn customers_after(
        &self,
        tenant: &str,
        after: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<CustomerRow>> {
        let tables = self.read();
        let Some(t) = tables.tenant(tenant) else {
            return Ok(Vec::new());
        };
        let from = match after {
            "" => Bound::Unbounded,
            after => Bound::Excluded(after),
        };
        Ok(t.customers
            .range::<str, _>((from, Bound::Unbounded))
            .take(limit)
            .map(|(_, row)| row.clone())
            .collect())
    }

    /// Every contact of one customer, in contact-id (creation) order.
    pub fn contacts_of(&self, tenant: &str, customer_id: &str) -> anyhow::Result<Vec<ContactRow>> {
        let tables = self.read();
        let Some(t) = tables.tenant(tenant) else {
            return Ok(Vec::new());
        };
        let Some(customer) = tables.ids.find(customer_id) else {
            return Ok(Vec::new());
        };
        Ok(t.customer_contacts
            .get(&customer)
            .into_iter()
            .flatten()
            .filter_map(|id| Some(t.contacts.get(id)?.row(*id, &tables.ids)))
            .collect())
    }

    /// A portal link by the SHA-256 of its token.
    pub fn portal_link(&self, token_sha256: &[u8; 32]) -> anyhow::Result<Option<PortalLinkRow>> {
        let tables = self.read();
        Ok(tables
            .globals(token_sha256)
            .portal_links
            .get(token_sha256)
            .cloned())
    }

    /// A global identity.
    pub fn identity(&self, identity_id: &str) -> anyhow::Result<Option<IdentityRow>> {
        Ok(self.read().identity(identity_id))
    }
}
