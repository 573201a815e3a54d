//! Payloads as auditors see them: credentials and their digests redacted.

use access_catalogue::catalogue::Event;

/// Fields whose values are credential material, never shown.
const REDACTED_SUFFIXES: [&str; 3] = ["_hash", "_sha256", "secret"];

/// The payload as JSON, with every credential field replaced by "[redacted]".
pub fn redacted_json(event: &Event) -> String {
    let value = match event {
        Event::Tenant(e) => serde_json::to_value(e),
        Event::Customer(e) => serde_json::to_value(e),
        Event::Contact(e) => serde_json::to_value(e),
        Event::Invitation(e) => serde_json::to_value(e),
        Event::Identity(e) => serde_json::to_value(e),
        Event::EmailSlot(e) => serde_json::to_value(e),
        Event::UsernameSlot(e) => serde_json::to_value(e),
        Event::PortalLink(e) => serde_json::to_value(e),
        Event::OidcClient(e) => serde_json::to_value(e),
        Event::OidcGrant(e) => serde_json::to_value(e),
        Event::System(e) => serde_json::to_value(e),
        Event::Webhook(e) => serde_json::to_value(e),
    };
    let mut value = match value {
        // Externally tagged: {"Variant": {...}}; the type is said elsewhere.
        Ok(serde_json::Value::Object(mut outer)) if outer.len() == 1 => outer
            .values_mut()
            .next()
            .map(std::mem::take)
            .unwrap_or_default(),
        Ok(other) => other,
        Err(_) => serde_json::Value::Null,
    };
    redact(&mut value);
    value.to_string()
}

fn redact(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if REDACTED_SUFFIXES.iter().any(|s| k.ends_with(s)) {
                    *v = serde_json::Value::String("[redacted]".into());
                } else {
                    redact(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}
