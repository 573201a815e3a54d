//! Secrets derived from a server key, so that none of them is ever stored.
//!
//! An invitation link token is an HMAC-SHA256, under the server's link key, of
//! the invitation's address (tenant, invitation id, generation). The log records
//! only the invitation and its generation; the service and the mailer, which
//! both hold the key, derive the same token, and a resend bumps the generation
//! so every older token stops verifying. The key id travels in the token so that
//! a rotated key can keep old links alive.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const TOKEN_VERSION: u8 = 1;

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

/// What an invitation link points at, once its token verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkClaims {
    /// The tenant of the invitation.
    pub tenant: String,
    /// What the link is for: the invitation's id, or the contact's id for a
    /// password reset.
    pub subject_id: String,
    /// The generation the token was made for (a newer link kills older ones).
    pub generation: u32,
}

/// Why a presented token is not a link of ours.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("the link is not valid")]
pub struct BadToken;

/// Makes and checks invitation link tokens.
#[derive(Clone, Debug)]
pub struct LinkSigner {
    current: ServerKey,
    older: Vec<ServerKey>,
}

/// A generated temporary password, derived from the server key, the tenant,
/// the request that set it and a label, so that it is never stored anywhere
/// and the mailer can derive it again for a tenant that chose to mail it: 12
/// characters from an alphabet without look-alikes, with at least one letter
/// and one digit (about 66 bits).
pub fn temporary_password(key: &ServerKey, tenant: &str, request_id: &str, label: &str) -> String {
    const ANY: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    const LETTERS: &[u8] = b"abcdefghjkmnpqrstuvwxyz";
    const DIGITS: &[u8] = b"23456789";
    let mac = key.mac(
        "temporary-password",
        &[tenant.as_bytes(), request_id.as_bytes(), label.as_bytes()],
    );
    let mut out: String = mac[..10]
        .iter()
        .map(|b| ANY[*b as usize % ANY.len()] as char)
        .collect();
    out.insert(3, LETTERS[mac[10] as usize % LETTERS.len()] as char);
    out.insert(8, DIGITS[mac[11] as usize % DIGITS.len()] as char);
    out
}

impl LinkSigner {
    /// The generated temporary password of `(tenant, request id, label)`.
    pub fn temporary_password(&self, tenant: &str, request_id: &str, label: &str) -> String {
        temporary_password(&self.current, tenant, request_id, label)
    }

    /// A signer that makes tokens with `current` and also accepts `older` keys.
    pub fn new(current: ServerKey, older: Vec<ServerKey>) -> Self {
        LinkSigner { current, older }
    }

    fn body(claims: &LinkClaims) -> Vec<u8> {
        let mut body = Vec::with_capacity(64);
        body.push(claims.tenant.len() as u8);
        body.extend_from_slice(claims.tenant.as_bytes());
        body.push(claims.subject_id.len() as u8);
        body.extend_from_slice(claims.subject_id.as_bytes());
        body.extend_from_slice(&claims.generation.to_be_bytes());
        body
    }

    /// The token for an invitation link (URL-safe base64, no padding).
    pub fn invitation_token(&self, claims: &LinkClaims) -> String {
        self.token("invitation-link", claims)
    }

    /// Verifies an invitation token in constant time.
    pub fn verify_invitation(&self, token: &str) -> Result<LinkClaims, BadToken> {
        self.verify("invitation-link", token)
    }

    /// The token for a password-reset link; it never verifies as an invitation.
    pub fn reset_token(&self, claims: &LinkClaims) -> String {
        self.token("reset-link", claims)
    }

    /// Verifies a password-reset token in constant time.
    pub fn verify_reset(&self, token: &str) -> Result<LinkClaims, BadToken> {
        self.verify("reset-link", token)
    }

    /// `version, key id, body, HMAC(purpose, version ‖ key id ‖ body)`.
    fn token(&self, purpose: &str, claims: &LinkClaims) -> String {
        let body = Self::body(claims);
        let mac = self
            .current
            .mac(purpose, &[&[TOKEN_VERSION, self.current.id], &body]);
        let mut bytes = vec![TOKEN_VERSION, self.current.id];
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn verify(&self, purpose: &str, token: &str) -> Result<LinkClaims, BadToken> {
        if token.len() > 400 {
            return Err(BadToken);
        }
        let bytes = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| BadToken)?;
        if bytes.len() < 2 + 1 + 1 + 4 + 32 || bytes[0] != TOKEN_VERSION {
            return Err(BadToken);
        }
        let key_id = bytes[1];
        let key = std::iter::once(&self.current)
            .chain(&self.older)
            .find(|k| k.id == key_id)
            .ok_or(BadToken)?;
        let (head, mac) = bytes.split_at(bytes.len() - 32);
        let body = &head[2..];
        let expected = key.mac(purpose, &[&head[..2], body]);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], mac)) {
            return Err(BadToken);
        }
        let tenant_len = body[0] as usize;
        let rest = body.get(1..).ok_or(BadToken)?;
        let tenant = rest.get(..tenant_len).ok_or(BadToken)?;
        let rest = &rest[tenant_len..];
        let inv_len = *rest.first().ok_or(BadToken)? as usize;
        let inv = rest.get(1..1 + inv_len).ok_or(BadToken)?;
        let generation = rest.get(1 + inv_len..).ok_or(BadToken)?;
        let generation: [u8; 4] = generation.try_into().map_err(|_| BadToken)?;
        Ok(LinkClaims {
            tenant: String::from_utf8(tenant.to_vec()).map_err(|_| BadToken)?,
            subject_id: String::from_utf8(inv.to_vec()).map_err(|_| BadToken)?,
            generation: u32::from_be_bytes(generation),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> LinkClaims {
        LinkClaims {
            tenant: "acme".into(),
            subject_id: "0192f0c2a1b27d3e8f9a0b1c2d3e4f50".into(),
            generation: 3,
        }
    }

    #[test]
    fn a_token_verifies_to_its_claims_and_an_altered_one_does_not() {
        let signer = LinkSigner::new(ServerKey::generate(1), vec![]);
        let token = signer.invitation_token(&claims());
        assert_eq!(signer.verify_invitation(&token).unwrap(), claims());
        let mut altered = token.into_bytes();
        let last = altered.len() - 5;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(signer.verify_invitation(&altered), Err(BadToken));
        assert_eq!(signer.verify_invitation("garbage"), Err(BadToken));
        assert_eq!(signer.verify_invitation(""), Err(BadToken));
    }

    #[test]
    fn another_servers_key_or_generation_does_not_verify() {
        let ours = LinkSigner::new(ServerKey::generate(1), vec![]);
        let theirs = LinkSigner::new(ServerKey::generate(1), vec![]);
        assert_eq!(
            ours.verify_invitation(&theirs.invitation_token(&claims())),
            Err(BadToken)
        );
        let next = LinkClaims {
            generation: 4,
            ..claims()
        };
        assert_ne!(
            ours.invitation_token(&next),
            ours.invitation_token(&claims())
        );
    }

    #[test]
    fn a_reset_token_is_not_an_invitation_token() {
        let signer = LinkSigner::new(ServerKey::generate(1), vec![]);
        let reset = signer.reset_token(&claims());
        assert_eq!(signer.verify_reset(&reset).unwrap(), claims());
        assert_eq!(signer.verify_invitation(&reset), Err(BadToken));
        assert_eq!(
            signer.verify_reset(&signer.invitation_token(&claims())),
            Err(BadToken)
        );
    }

    #[test]
    fn a_rotated_key_keeps_old_links_alive() {
        let old = ServerKey::generate(1);
        let before = LinkSigner::new(old.clone(), vec![]);
        let token = before.invitation_token(&claims());
        let after = LinkSigner::new(ServerKey::generate(2), vec![old]);
        assert_eq!(after.verify_invitation(&token).unwrap(), claims());
    }
}
