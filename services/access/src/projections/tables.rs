//! The read models' tables in memory: one set per tenant, and the rows found
//! by a key of their own (identities, API keys, portal links) in shards.
//!
//! Shards keep every map small enough that growing it never holds the
//! projector (and the readers behind it) for long, and give the snapshot
//! chunks of a bounded size.

use super::dense::Dense;
use super::rows::{
    ContactFacts, ContactRow, CustomerRow, IdentityRow, KeyRow, LastEmail, OidcClientRow,
    OidcGrantRow, PendingLogout, PortalLinkRow, SigningKeyRow, TenantRow,
};
use crate::domain::contact::Lifecycle;
use access_catalogue::catalogue::{LoginKind, SiteRule};
use access_mailer::templates::Kind;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};

pub(super) use super::ids::{Id, Ids};

/// The last email about a contact as the tables keep it. One the mail
/// server accepted, of a kind the service sends, is a byte in the row: a
/// million invited contacts each have one, and its words as text cost a
/// box and two strings each. Anything else keeps its words.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) enum StoredEmail {
    /// Accepted by the mail server.
    Sent(#[serde(with = "kind_word")] Kind),
    /// Failed (with its reason), or of a kind this build does not name.
    Other(Box<LastEmail>),
}

impl StoredEmail {
    /// The compact form of `email`.
    pub fn new(email: LastEmail) -> Self {
        match Kind::parse(&email.kind) {
            Some(kind) if email.sent && email.reason.is_empty() => StoredEmail::Sent(kind),
            _ => StoredEmail::Other(Box::new(email)),
        }
    }

    /// The email in words, as the queries answer.
    pub fn words(&self) -> LastEmail {
        match self {
            StoredEmail::Sent(kind) => LastEmail {
                kind: kind.as_str().to_owned(),
                sent: true,
                reason: String::new(),
            },
            StoredEmail::Other(email) => (**email).clone(),
        }
    }
}

/// A mail kind in the snapshot by its name, not by its place in the
/// mailer's list, so that the list may change without changing the layout.
mod kind_word {
    use access_mailer::templates::Kind;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(kind: &Kind, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_str(kind.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<Kind, D::Error> {
        input.deserialize_str(Word)
    }

    /// Reads the name in place, borrowed or not: no copy per contact.
    struct Word;

    impl serde::de::Visitor<'_> for Word {
        type Value = Kind;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a mail kind's name")
        }

        fn visit_str<E: serde::de::Error>(self, word: &str) -> Result<Kind, E> {
            Kind::parse(word).ok_or_else(|| E::custom(format!("unknown mail kind {word:?}")))
        }
    }
}

/// A global identity as the tables keep it: text boxed (a string's
/// capacity is a word more, twice, for each of a million identities).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct StoredIdentity {
    /// The email.
    pub email: Box<str>,
    /// The argon2id PHC string, once a password was set.
    pub password_hash: Option<Box<str>>,
}

/// A contact as the tables keep it: ids by number, text boxed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct StoredContact {
    pub customer: Id,
    pub email: Box<str>,
    pub identity: Option<Id>,
    pub site_rule: SiteRule,
    pub lifecycle: Lifecycle,
    pub disabled: bool,
    pub invitation: Option<Id>,
    pub username: Option<Box<str>>,
    pub kind: LoginKind,
    pub local_password_hash: Option<Box<str>>,
    pub password_imported: bool,
    pub temporary: bool,
    pub logged_in: bool,
    pub invitation_expires_at_ms: i64,
    pub last_email: Option<StoredEmail>,
    pub failed_logins: Vec<i64>,
    pub locked_until_ms: i64,
}

impl StoredContact {
    /// A contact's first row.
    pub fn new(customer: Id, site_rule: SiteRule) -> Self {
        StoredContact {
            customer,
            email: "".into(),
            identity: None,
            site_rule,
            lifecycle: Lifecycle::Invited,
            disabled: false,
            invitation: None,
            username: None,
            kind: LoginKind::Management,
            local_password_hash: None,
            password_imported: false,
            temporary: false,
            logged_in: false,
            invitation_expires_at_ms: 0,
            last_email: None,
            failed_logins: Vec::new(),
            locked_until_ms: 0,
        }
    }

    /// The row the queries answer with.
    pub fn row(&self, id: Id, ids: &Ids) -> ContactRow {
        let name = |id: Option<Id>| id.map_or_else(String::new, |id| ids.name(id).to_owned());
        ContactRow {
            contact_id: ids.name(id).to_owned(),
            customer_id: ids.name(self.customer).to_owned(),
            email: self.email.to_string(),
            identity_id: name(self.identity),
            site_rule: self.site_rule.clone(),
            lifecycle: self.lifecycle,
            disabled: self.disabled,
            invitation_id: name(self.invitation),
            username: self.username.as_deref().map(str::to_owned),
            kind: self.kind,
            local_password_hash: self.local_password_hash.as_deref().map(str::to_owned),
            password_imported: self.password_imported,
            temporary: self.temporary,
            logged_in: self.logged_in,
            invitation_expires_at_ms: self.invitation_expires_at_ms,
            last_email: self.last_email.as_ref().map(StoredEmail::words),
            failed_logins: self.failed_logins.clone(),
            locked_until_ms: self.locked_until_ms,
        }
    }

    /// What a check needs of it.
    pub fn facts(&self) -> ContactFacts<'_> {
        ContactFacts {
            lifecycle: self.lifecycle,
            disabled: self.disabled,
            kind: self.kind,
            temporary: self.temporary,
            site_rule: &self.site_rule,
        }
    }
}

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
    pub contacts: Dense<Id, StoredContact>,
    /// A customer's contacts, in id (creation) order.
    pub customer_contacts: HashMap<Id, Vec<Id>>,
    /// Contacts by lower-case username.
    pub usernames: HashMap<Box<str>, Id>,
    /// The tenant's contact of an identity.
    pub memberships: HashMap<Id, Id>,
    /// An invitation's contact.
    pub invitations: HashMap<Id, Id>,
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
    /// Webhooks in id order.
    pub webhooks: BTreeMap<Box<str>, super::webhooks::WebhookRow>,
    /// The second factors of each contact that has one (kept apart from the
    /// contacts' rows, which most contacts would fill with nothing).
    pub second_factors: HashMap<Id, Vec<FactorRow>>,
    /// When a second factor of a contact was last removed, Unix
    /// milliseconds: sessions signed in before it end.
    pub factors_removed_at: HashMap<Id, i64>,
}

/// What a second factor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FactorKind {
    /// An authenticator app (TOTP).
    Totp,
    /// A passkey (WebAuthn).
    Passkey,
}

impl FactorKind {
    /// The word the API and the feed use.
    pub fn as_str(self) -> &'static str {
        match self {
            FactorKind::Totp => "totp",
            FactorKind::Passkey => "passkey",
        }
    }
}

/// A contact's second factor, as lists show it (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorRow {
    /// Its id.
    pub factor_id: Box<str>,
    /// What it is.
    pub kind: FactorKind,
    /// What the contact called it (a passkey's; empty for an app).
    pub name: Box<str>,
}

/// One shard of the rows found by a key of their own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Globals {
    /// Global identities by id (kept in [`Tables::ids`]).
    pub identities: Dense<Id, StoredIdentity>,
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
    /// The ids the tables refer to by number.
    pub ids: Ids,
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
            ids: Ids::default(),
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
        tenant_mut(&mut self.tenants, tenant)
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
    pub fn identity(&self, id: &str) -> Option<IdentityRow> {
        let key = self.ids.find(id)?;
        let stored = self.globals(id.as_bytes()).identities.get(&key)?;
        Some(IdentityRow {
            email: stored.email.to_string(),
            password_hash: stored.password_hash.as_deref().map(str::to_owned),
        })
    }

    /// A contact's row, with its number.
    pub fn contact(&self, tenant: &str, id: &str) -> Option<(Id, &StoredContact)> {
        let id = self.ids.find(id)?;
        Some((id, self.tenant(tenant)?.contacts.get(&id)?))
    }
}

/// A tenant's tables to change, made on first use.
pub(super) fn tenant_mut<'a>(
    tenants: &'a mut BTreeMap<Box<str>, TenantTables>,
    tenant: &str,
) -> &'a mut TenantTables {
    if !tenants.contains_key(tenant) {
        tenants.insert(tenant.into(), TenantTables::default());
    }
    tenants
        .get_mut(tenant)
        .unwrap_or_else(|| unreachable!("inserted above"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sent_email_is_kept_as_its_kind_and_any_other_in_words() {
        let email = |kind: &str, sent: bool, reason: &str| LastEmail {
            kind: kind.into(),
            sent,
            reason: reason.into(),
        };
        let cases = [
            email("invitation", true, ""),
            email("password_reset", false, "mailbox full"),
            email("a_kind_from_a_later_build", true, ""),
        ];
        for case in cases {
            let stored = StoredEmail::new(case.clone());
            assert_eq!(
                matches!(stored, StoredEmail::Sent(_)),
                case.kind == "invitation"
            );
            assert_eq!(stored.words(), case);
            let bytes = postcard::to_stdvec(&stored).expect("encoded");
            // The kind is stored by its name, not its place in a list.
            if case.kind == "invitation" {
                assert!(bytes.windows(10).any(|w| w == b"invitation"));
            }
            let back: StoredEmail = postcard::from_bytes(&bytes).expect("decoded");
            assert_eq!(back, stored);
        }
        assert!(postcard::from_bytes::<StoredEmail>(&[0, 3, b'x', b'y', b'z']).is_err());
    }
}
