//! What one delivery posts, in the manner of the Standard Webhooks
//! specification: a JSON body `{type, timestamp, data}` whose `data` is the
//! public event in the protobuf JSON mapping, and three headers
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`). The signature
//! is an HMAC-SHA-256 over `id.timestamp.body`; a receiver checks it with
//! any Standard Webhooks library and the `whsec_` secret.

use access_proto::v1::events as pe;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use sha2::Sha256;
use std::sync::LazyLock;

/// The public event's descriptor, for its JSON form.
static EVENT: LazyLock<Option<MessageDescriptor>> = LazyLock::new(|| {
    DescriptorPool::decode(access_proto::FILE_DESCRIPTOR_SET)
        .ok()?
        .get_message_by_name("access.v1.events.Event")
});

/// One delivery, ready to post.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The public event's id: the same on every retry and replay, so a
    /// receiver drops what it has seen.
    pub id: String,
    /// The JSON body.
    pub body: String,
    /// When it was signed, Unix seconds.
    pub timestamp: i64,
    /// `v1,<base64>` for each secret, space-separated.
    pub signature: String,
}

/// The JSON body of a public event.
pub fn body(event: &pe::Event) -> Result<String, String> {
    let descriptor = EVENT
        .as_ref()
        .ok_or("the public event's descriptor is missing")?;
    let message = DynamicMessage::decode(descriptor.clone(), event.encode_to_vec().as_slice())
        .map_err(|e| format!("re-reading the public event: {e}"))?;
    let data = serde_json::to_value(&message).map_err(|e| e.to_string())?;
    let timestamp = time::OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(event.occurred_at_ms) * 1_000_000,
    )
    .ok()
    .and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_default();
    Ok(serde_json::json!({
        "type": event.r#type,
        "timestamp": timestamp,
        "data": data,
    })
    .to_string())
}

/// The signature of `id.timestamp.body` under one key.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        // HMAC takes keys of any length; this is never reached.
        return String::new();
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// A delivery of `event` signed with each of `keys` (the current secret,
/// and the one it replaced while receivers switch).
pub fn delivery(event: &pe::Event, keys: &[[u8; 32]], timestamp: i64) -> Result<Delivery, String> {
    let body = body(event)?;
    let signature = keys
        .iter()
        .map(|k| sign(k, &event.id, timestamp, &body))
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Delivery {
        id: event.id.clone(),
        body,
        timestamp,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_test_vector() {
        // From the specification's reference libraries.
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn the_body_is_the_event_in_the_protobuf_json_mapping() {
        let event = pe::Event {
            id: "e1".into(),
            r#type: "contact.revoked".into(),
            position: 42,
            tenant: "acme".into(),
            ..Default::default()
        };
        let body: serde_json::Value = serde_json::from_str(&body(&event).unwrap()).unwrap();
        assert_eq!(body["type"], "contact.revoked");
        assert_eq!(body["data"]["id"], "e1");
        // 64-bit integers are strings in the mapping.
        assert_eq!(body["data"]["position"], "42");
        let two = delivery(&event, &[[1; 32], [2; 32]], 7).unwrap();
        assert_eq!(two.signature.split(' ').count(), 2);
    }
}
