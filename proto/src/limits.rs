//! The size limits of requests, read from the `max_bytes` and `max_items`
//! options in the proto, and a check of a request's encoded bytes against
//! them that runs before the request is decoded: an oversized or malformed
//! request costs a walk over its bytes, never an allocation of its size.

use prost_reflect::{DescriptorPool, Kind, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Bytes a request's string or bytes field may hold when it names no maximum.
pub const DEFAULT_MAX_BYTES: u32 = 1024;
/// Items a request's repeated field may hold when it names no maximum.
pub const DEFAULT_MAX_ITEMS: u32 = 100;
/// Bytes of a whole encoded request.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// How deep messages may nest in a request (ours nest three deep).
const MAX_DEPTH: u32 = 8;

/// What a field holds, as far as the check cares.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Text,
    Bytes,
    Message(usize),
    Scalar,
}

#[derive(Clone, Debug)]
struct Field {
    name: String,
    shape: Shape,
    list: bool,
    max_bytes: u32,
    max_items: u32,
}

/// The limits of every message a request may contain.
#[derive(Debug, Default)]
pub struct Limits {
    messages: Vec<HashMap<u32, Field>>,
    by_name: HashMap<String, usize>,
}

/// One thing wrong with a request: the field's path and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The field, as `targets[3].email`; empty for the request as a whole.
    pub field: String,
    /// What is wrong, for the caller.
    pub description: String,
}

fn option_u32(
    options: &prost_reflect::DynamicMessage,
    ext: Option<&prost_reflect::ExtensionDescriptor>,
) -> Option<u32> {
    let ext = ext?;
    if !options.has_extension(ext) {
        return None;
    }
    match options.get_extension(ext).as_ref() {
        Value::U32(v) => Some(*v),
        _ => None,
    }
}

impl Limits {
    /// The limits of the input messages of every RPC in `pool`.
    pub fn of(pool: &DescriptorPool) -> Limits {
        let max_bytes = pool.get_extension_by_name("access.v1.max_bytes");
        let max_items = pool.get_extension_by_name("access.v1.max_items");
        // Every message a request can hold, each given an index first so a
        // field can name the message it nests.
        let mut found: Vec<prost_reflect::MessageDescriptor> = pool
            .services()
            .flat_map(|s| s.methods().map(|m| m.input()).collect::<Vec<_>>())
            .collect();
        let mut by_name = HashMap::new();
        let mut next = 0;
        while next < found.len() {
            let message = found[next].clone();
            next += 1;
            if by_name.contains_key(message.full_name()) {
                continue;
            }
            by_name.insert(message.full_name().to_owned(), by_name.len());
            for field in message.fields() {
                if let Kind::Message(inner) = field.kind() {
                    found.push(inner);
                }
            }
        }
        let mut messages = vec![HashMap::new(); by_name.len()];
        for message in found {
            let index = by_name[message.full_name()];
            if !messages[index].is_empty() {
                continue;
            }
            for field in message.fields() {
                let options = field.options();
                let shape = match field.kind() {
                    Kind::String => Shape::Text,
                    Kind::Bytes => Shape::Bytes,
                    Kind::Message(inner) => Shape::Message(by_name[inner.full_name()]),
                    _ => Shape::Scalar,
                };
                messages[index].insert(
                    field.number(),
                    Field {
                        name: field.name().to_owned(),
                        shape,
                        list: field.is_list(),
                        max_bytes: option_u32(&options, max_bytes.as_ref())
                            .unwrap_or(DEFAULT_MAX_BYTES),
                        max_items: option_u32(&options, max_items.as_ref())
                            .unwrap_or(DEFAULT_MAX_ITEMS),
                    },
                );
            }
        }
        Limits { messages, by_name }
    }

    /// The limits of this crate's own protocol.
    pub fn access_v1() -> &'static Limits {
        static LIMITS: OnceLock<Limits> = OnceLock::new();
        LIMITS.get_or_init(|| {
            DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET)
                .map(|pool| Limits::of(&pool))
                .unwrap_or_default()
        })
    }

    /// Whether `message` (a full name) is one the limits cover.
    pub fn covers(&self, message: &str) -> bool {
        self.by_name.contains_key(message)
    }

    /// The maximum bytes of the field at `path` (`message` then field names),
    /// for tools that build requests at the limit.
    pub fn max_bytes(&self, message: &str, field: &str) -> Option<u32> {
        let index = *self.by_name.get(message)?;
        self.messages[index]
            .values()
            .find(|f| f.name == field)
            .map(|f| f.max_bytes)
    }

    /// The maximum items of a repeated field of `message`.
    pub fn max_items(&self, message: &str, field: &str) -> Option<u32> {
        let index = *self.by_name.get(message)?;
        self.messages[index]
            .values()
            .find(|f| f.name == field && f.list)
            .map(|f| f.max_items)
    }

    /// Checks the encoded `bytes` of a `message`: every violation of a limit,
    /// invalid UTF-8 or malformed protobuf. Messages it does not cover pass.
    pub fn check(&self, message: &str, bytes: &[u8]) -> Result<(), Vec<Violation>> {
        let Some(&index) = self.by_name.get(message) else {
            return Ok(());
        };
        if bytes.len() > MAX_REQUEST_BYTES {
            return Err(vec![Violation {
                field: String::new(),
                description: format!("a request is at most {MAX_REQUEST_BYTES} bytes"),
            }]);
        }
        let mut out = Vec::new();
        if let Err(e) = self.walk(index, bytes, "", 0, &mut out) {
            out.push(Violation {
                field: String::new(),
                description: format!("not a valid protobuf {message}: {e}"),
            });
        }
        if out.is_empty() { Ok(()) } else { Err(out) }
    }

    fn walk(
        &self,
        index: usize,
        mut buf: &[u8],
        prefix: &str,
        depth: u32,
        out: &mut Vec<Violation>,
    ) -> Result<(), &'static str> {
        if depth > MAX_DEPTH {
            return Err("nested too deep");
        }
        let fields = &self.messages[index];
        let mut counts: HashMap<u32, u32> = HashMap::new();
        while !buf.is_empty() {
            let key = varint(&mut buf)?;
            let number = u32::try_from(key >> 3).map_err(|_| "a field number out of range")?;
            if number == 0 {
                return Err("field number 0");
            }
            let payload: &[u8] = match key & 7 {
                0 => {
                    varint(&mut buf)?;
                    &[]
                }
                1 => take(&mut buf, 8)?,
                5 => take(&mut buf, 4)?,
                2 => {
                    let len =
                        usize::try_from(varint(&mut buf)?).map_err(|_| "a length out of range")?;
                    take(&mut buf, len)?
                }
                _ => return Err("an unsupported wire type"),
            };
            let Some(field) = fields.get(&number) else {
                continue;
            };
            let count = counts.entry(number).or_default();
            let at = *count;
            let path = if field.list {
                format!("{prefix}{}[{at}]", field.name)
            } else {
                format!("{prefix}{}", field.name)
            };
            let wire_len = key & 7 == 2;
            match field.shape {
                Shape::Text | Shape::Bytes if wire_len => {
                    *count += 1;
                    if payload.len() > field.max_bytes as usize {
                        out.push(Violation {
                            field: path,
                            description: format!("at most {} bytes", field.max_bytes),
                        });
                    } else if matches!(field.shape, Shape::Text)
                        && std::str::from_utf8(payload).is_err()
                    {
                        out.push(Violation {
                            field: path,
                            description: "not valid UTF-8".into(),
                        });
                    }
                }
                Shape::Message(inner) if wire_len => {
                    *count += 1;
                    self.walk(inner, payload, &format!("{path}."), depth + 1, out)?;
                }
                Shape::Scalar if wire_len && field.list => {
                    // A packed list: count its varints.
                    let mut packed = payload;
                    while !packed.is_empty() {
                        varint(&mut packed)?;
                        *count += 1;
                    }
                }
                Shape::Scalar => *count += 1,
                _ => return Err("a field with the wrong wire type"),
            }
        }
        for (number, count) in counts {
            if let Some(field) = fields.get(&number)
                && field.list
                && count > field.max_items
            {
                out.push(Violation {
                    field: format!("{prefix}{}", field.name),
                    description: format!("at most {} items", field.max_items),
                });
            }
        }
        Ok(())
    }
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], &'static str> {
    if buf.len() < n {
        return Err("cut short");
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

fn varint(buf: &mut &[u8]) -> Result<u64, &'static str> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or("cut short")?;
        *buf = rest;
        if shift == 63 && byte > 1 {
            return Err("a varint out of range");
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("a varint out of range")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1 as pb;
    use prost::Message;

    fn check<M: Message + prost::Name>(m: &M) -> Result<(), Vec<Violation>> {
        Limits::access_v1().check(&M::full_name(), &m.encode_to_vec())
    }

    #[test]
    fn requests_within_their_limits_pass_and_each_limit_is_named() {
        let limits = Limits::access_v1();
        assert!(limits.covers("access.v1.LoginRequest"));
        assert_eq!(
            limits.max_bytes("access.v1.SetEmailTemplateRequest", "html"),
            Some(131_072)
        );
        assert_eq!(
            limits.max_bytes("access.v1.LoginRequest", "password"),
            Some(DEFAULT_MAX_BYTES)
        );
        assert_eq!(
            limits.max_items("access.v1.BulkInviteRequest", "targets"),
            Some(1000)
        );
        let ok = pb::LoginRequest {
            request_id: "r".into(),
            login: "bob@example.com".into(),
            password: "x".repeat(1024),
            client_address: String::new(),
        };
        assert_eq!(check(&ok), Ok(()));
    }

    #[test]
    fn oversized_fields_and_lists_are_named_with_their_path() {
        let long = pb::LoginRequest {
            password: "x".repeat(1025),
            ..Default::default()
        };
        let v = check(&long).unwrap_err();
        assert_eq!(v[0].field, "password");
        let bulk = pb::BulkInviteRequest {
            targets: (0..1001)
                .map(|i| pb::BulkInviteTarget {
                    customer_id: if i == 7 { "c".repeat(2000) } else { "c".into() },
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let v = check(&bulk).unwrap_err();
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert!(fields.contains(&"targets[7].customer_id"), "{fields:?}");
        assert!(fields.contains(&"targets"), "{fields:?}");
    }

    #[test]
    fn malformed_bytes_and_bad_utf8_are_refused_not_panicked_on() {
        let limits = Limits::access_v1();
        let name = "access.v1.LoginRequest";
        // Field 2 (login), length 3, invalid UTF-8.
        let v = limits
            .check(name, &[0x12, 3, 0xff, 0xfe, 0xfd])
            .unwrap_err();
        assert_eq!(v[0].field, "login");
        for bytes in [&[0x12, 10, 1][..], &[0xff; 11], &[0x0b], &[0x00], &[0x12]] {
            assert!(limits.check(name, bytes).is_err(), "{bytes:?}");
        }
        // Random bytes never panic.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let len = (x % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = limits.check("access.v1.BulkInviteRequest", &bytes);
        }
    }
}
