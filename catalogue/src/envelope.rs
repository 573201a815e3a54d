//! The envelope: a fixed outer struct that never changes shape, so any reader of
//! any age can find out what an event is before it decodes the payload.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Version of the envelope's own layout; bumped only with a new outer struct.
pub const ENVELOPE_VERSION: u16 = 1;

/// The tenant segment of streams that belong to no tenant (global identities).
pub const GLOBAL_TENANT: &str = "_";

/// Which aggregate a stream belongs to. Never reorder: postcard stores the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Aggregate {
    /// A supplier running a portal.
    Tenant,
    /// A customer account of a tenant.
    Customer,
    /// A customer contact's login (membership of an identity in a tenant).
    Contact,
    /// One invitation and its link generations.
    Invitation,
    /// A global identity: an email with one password across tenants.
    Identity,
    /// The per-tenant reservation of an email, so that it is unique.
    EmailSlot,
    /// The per-tenant reservation of a username, so that it is unique.
    UsernameSlot,
    /// A per-customer capability link to view documents.
    PortalLink,
    /// A portal a tenant lets sign its contacts in with OpenID Connect.
    OidcClient,
    /// The log's own record of what operators did to it (repairs).
    System,
    /// One contact signed in to one OpenID Connect client: its code and
    /// refresh tokens.
    OidcGrant,
    /// Where a tenant's public events are posted, and how far they went.
    Webhook,
}

impl Aggregate {
    /// The stream-name segment of this aggregate.
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Tenant => "tenant",
            Aggregate::Customer => "customer",
            Aggregate::Contact => "contact",
            Aggregate::Invitation => "invitation",
            Aggregate::Identity => "identity",
            Aggregate::EmailSlot => "emailslot",
            Aggregate::UsernameSlot => "usernameslot",
            Aggregate::PortalLink => "portallink",
            Aggregate::OidcClient => "oidcclient",
            Aggregate::System => "system",
            Aggregate::OidcGrant => "oidcgrant",
            Aggregate::Webhook => "webhook",
        }
    }

    /// Parses a stream-name segment.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "tenant" => Aggregate::Tenant,
            "customer" => Aggregate::Customer,
            "contact" => Aggregate::Contact,
            "invitation" => Aggregate::Invitation,
            "identity" => Aggregate::Identity,
            "emailslot" => Aggregate::EmailSlot,
            "usernameslot" => Aggregate::UsernameSlot,
            "portallink" => Aggregate::PortalLink,
            "oidcclient" => Aggregate::OidcClient,
            "system" => Aggregate::System,
            "oidcgrant" => Aggregate::OidcGrant,
            "webhook" => Aggregate::Webhook,
            _ => return None,
        })
    }
}

/// Names one stream: `<aggregate>.<tenant>.<id>`.
///
/// Every segment is limited to ASCII letters, digits, `-` and `_`, so the name maps
/// one-to-one onto a NATS subject and never needs escaping.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamId(String);

/// A stream name with a segment that is empty, too long or has a forbidden character.
#[derive(Debug, thiserror::Error)]
#[error("invalid stream segment {0:?}: use 1 to 64 ASCII letters, digits, '-' or '_'")]
pub struct InvalidStreamId(pub String);

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl StreamId {
    /// Builds a stream id from its parts, refusing unsafe segments.
    pub fn new(aggregate: Aggregate, tenant: &str, id: &str) -> Result<Self, InvalidStreamId> {
        for segment in [tenant, id] {
            if !valid_segment(segment) {
                return Err(InvalidStreamId(segment.to_owned()));
            }
        }
        Ok(StreamId(format!("{}.{tenant}.{id}", aggregate.as_str())))
    }

    /// A stream of `aggregate` that no command ever writes (`<aggregate>._._`):
    /// reading it finds nothing. Stands in for a name built from a bad id.
    pub fn placeholder(aggregate: Aggregate) -> Self {
        StreamId(format!("{}._._", aggregate.as_str()))
    }

    /// Parses the text form produced by `Display`.
    pub fn parse(s: &str) -> Result<Self, InvalidStreamId> {
        let mut parts = s.splitn(3, '.');
        let (Some(a), Some(t), Some(i)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(InvalidStreamId(s.to_owned()));
        };
        let aggregate = Aggregate::parse(a).ok_or_else(|| InvalidStreamId(a.to_owned()))?;
        Self::new(aggregate, t, i)
    }

    /// The full text of the stream name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The aggregate segment.
    pub fn aggregate(&self) -> Aggregate {
        self.0
            .split('.')
            .next()
            .and_then(Aggregate::parse)
            .unwrap_or(Aggregate::Tenant)
    }

    /// The tenant segment ([`GLOBAL_TENANT`] for global streams).
    pub fn tenant(&self) -> &str {
        self.0.split('.').nth(1).unwrap_or_default()
    }

    /// The id segment.
    pub fn id(&self) -> &str {
        self.0.splitn(3, '.').nth(2).unwrap_or_default()
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who caused an event. Never reorder variants: postcard stores the index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    /// The operator, through the operator key of the data directory.
    Operator,
    /// Tenant staff or a service, through an API key.
    ApiKey {
        /// The key's public id (never the secret).
        key_id: String,
        /// The key's role when it acted.
        role: String,
    },
    /// A customer contact acting for themselves (a link or a session).
    Contact {
        /// The contact's id.
        contact_id: String,
    },
    /// A component of the service acting on its own (for example the mailer).
    System {
        /// Which component.
        component: String,
    },
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Operator => f.write_str("operator"),
            Actor::ApiKey { key_id, role } => write!(f, "{role} key {key_id}"),
            Actor::Contact { contact_id } => write!(f, "contact {contact_id}"),
            Actor::System { component } => write!(f, "system {component}"),
        }
    }
}

/// One stored event with everything an auditor or consumer needs to place it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Layout version of this struct ([`ENVELOPE_VERSION`]).
    pub envelope_version: u16,
    /// Position in the global order, from 1, increasing (without gaps in the
    /// embedded log).
    pub position: u64,
    /// The stream the event belongs to.
    pub stream: StreamId,
    /// Version of the stream after this event, from 1, without gaps.
    pub stream_version: u64,
    /// Unique id of the event; also the NATS message id and the mail ledger key.
    pub event_id: Uuid,
    /// Name of the payload type, e.g. `InvitationIssued`.
    pub event_type: String,
    /// Version of the payload type's layout, for upcasting.
    pub schema_version: u16,
    /// When the command that caused it was decided, in Unix milliseconds.
    pub occurred_at_ms: i64,
    /// The tenant it concerns, if any.
    pub tenant: Option<String>,
    /// Who caused it.
    pub actor: Actor,
    /// Groups every event of one business flow.
    pub correlation_id: Uuid,
    /// The event or command that caused this one, if known.
    pub causation_id: Option<Uuid>,
    /// The caller's request id of the command that appended it.
    pub request_id: String,
    /// Hash of the previous event of the same stream (zeros for the first).
    pub prev_hash: [u8; 32],
    /// Hash of this event's fields and `prev_hash` (see [`crate::chain`]).
    pub hash: [u8; 32],
    /// The postcard-encoded payload.
    pub payload: Vec<u8>,
}

impl Envelope {
    /// Encodes the envelope for storage.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain owned data into a Vec cannot fail.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Decodes stored bytes, refusing envelope layouts this build does not know.
    pub fn decode(bytes: &[u8]) -> Result<Self, crate::codec::CodecError> {
        let envelope: Envelope = postcard::from_bytes(bytes)?;
        if envelope.envelope_version != ENVELOPE_VERSION {
            return Err(crate::codec::CodecError::UnknownEnvelope(
                envelope.envelope_version,
            ));
        }
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_round_trip_and_refuse_subject_breaking_characters() {
        let id = StreamId::new(Aggregate::Customer, "acme", "C-001").unwrap();
        assert_eq!(id.as_str(), "customer.acme.C-001");
        assert_eq!(StreamId::parse(id.as_str()).unwrap(), id);
        assert_eq!(id.tenant(), "acme");
        assert_eq!(id.id(), "C-001");
        assert_eq!(id.aggregate(), Aggregate::Customer);
        for bad in ["", "a.b", "a b", "a*", ">", &"x".repeat(65)] {
            assert!(
                StreamId::new(Aggregate::Customer, "acme", bad).is_err(),
                "{bad}"
            );
        }
    }
}
