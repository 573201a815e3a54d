//! A server key: 256 random bits with an id, kept in the data directory's
//! `server.key` file (the current key first, older keys after it).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A 256-bit server secret with its id.
#[derive(Clone)]
pub struct ServerKey {
    id: u8,
    bytes: [u8; 32],
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerKey(id {}, <redacted>)", self.id)
    }
}

impl ServerKey {
    /// Wraps key material read from the key file.
    pub fn new(id: u8, bytes: [u8; 32]) -> Self {
        ServerKey { id, bytes }
    }

    /// Reads a key file's current key: its first line, `<id>:<64 hex digits>`.
    pub fn parse(text: &str) -> Result<ServerKey, String> {
        Self::parse_ring(text).map(|(current, _)| current)
    }

    /// Reads every key of a key file: the first line is the current key,
    /// later lines are older keys still accepted on links made with them.
    pub fn parse_ring(text: &str) -> Result<(ServerKey, Vec<ServerKey>), String> {
        let mut keys = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(Self::parse_line);
        let current = keys.next().ok_or("the server key file is empty")??;
        let older = keys.collect::<Result<Vec<_>, _>>()?;
        if older.iter().any(|k| k.id == current.id) {
            return Err("two server keys share an id".into());
        }
        Ok((current, older))
    }

    /// The text of a key file holding `current` and then `older`.
    pub fn ring_file_text(current: &ServerKey, older: &[ServerKey]) -> String {
        std::iter::once(current)
            .chain(older)
            .map(ServerKey::to_file_text)
            .collect()
    }

    fn parse_line(line: &str) -> Result<ServerKey, String> {
        let (id, hex_key) = line
            .trim()
            .split_once(':')
            .ok_or("the server key must read '<id>:<64 hex digits>'")?;
        let id: u8 = id
            .parse()
            .map_err(|_| "the server key's id is not a number 0-255")?;
        let bytes: [u8; 32] = hex::decode(hex_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("the server key must be 64 hex digits")?;
        Ok(ServerKey { id, bytes })
    }

    /// The text of its key file (what [`ServerKey::parse`] reads).
    pub fn to_file_text(&self) -> String {
        format!("{}:{}\n", self.id, hex::encode(self.bytes))
    }

    /// A fresh random key.
    pub fn generate(id: u8) -> Self {
        ServerKey {
            id,
            bytes: rand::random(),
        }
    }

    /// The raw bytes, for writing the key file.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The key id carried by tokens.
    pub fn id(&self) -> u8 {
        self.id
    }

    /// HMAC-SHA256 of `parts` under a sub-key for `purpose`, so one key never
    /// signs two kinds of thing.
    pub fn mac(&self, purpose: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut sub = HmacSha256::new_from_slice(&self.bytes).expect("HMAC takes any key length");
        sub.update(purpose.as_bytes());
        let sub_key = sub.finalize().into_bytes();
        let mut mac = HmacSha256::new_from_slice(&sub_key).expect("HMAC takes any key length");
        for part in parts {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}
