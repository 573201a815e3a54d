//! Invitation and password-reset link tokens.
//!
//! A link token is an HMAC-SHA256 of the link's address (tenant, invitation
//! or contact id, generation) with the key id in front. The log records only
//! the invitation and its generation; a resend bumps the generation, so every
//! older token stops verifying.

use crate::Keyring;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const TOKEN_VERSION: u8 = 1;

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

impl Keyring {
    fn link_body(claims: &LinkClaims) -> Vec<u8> {
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
        self.link_token("invitation-link", claims)
    }

    /// Verifies an invitation token in constant time.
    pub fn verify_invitation(&self, token: &str) -> Result<LinkClaims, BadToken> {
        self.verify_link("invitation-link", token)
    }

    /// The token for a password-reset link; it never verifies as an invitation.
    pub fn reset_token(&self, claims: &LinkClaims) -> String {
        self.link_token("reset-link", claims)
    }

    /// Verifies a password-reset token in constant time.
    pub fn verify_reset(&self, token: &str) -> Result<LinkClaims, BadToken> {
        self.verify_link("reset-link", token)
    }

    /// `version, key id, body, HMAC(purpose, version ‖ key id ‖ body)`.
    fn link_token(&self, purpose: &str, claims: &LinkClaims) -> String {
        let body = Self::link_body(claims);
        let mac = self
            .current
            .mac(purpose, &[&[TOKEN_VERSION, self.current.id()], &body]);
        let mut bytes = vec![TOKEN_VERSION, self.current.id()];
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn verify_link(&self, purpose: &str, token: &str) -> Result<LinkClaims, BadToken> {
        if token.len() > 400 {
            return Err(BadToken);
        }
        let bytes = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| BadToken)?;
        if bytes.len() < 2 + 1 + 1 + 4 + 32 || bytes[0] != TOKEN_VERSION {
            return Err(BadToken);
        }
        let key_id = bytes[1];
        let key = self.all().find(|k| k.id() == key_id).ok_or(BadToken)?;
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
    use crate::ServerKey;

    fn claims() -> LinkClaims {
        LinkClaims {
            tenant: "acme".into(),
            subject_id: "0192f0c2a1b27d3e8f9a0b1c2d3e4f50".into(),
            generation: 3,
        }
    }

    #[test]
    fn a_token_verifies_to_its_claims_and_an_altered_one_does_not() {
        let signer = Keyring::new(ServerKey::generate(1), vec![]);
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
        let ours = Keyring::new(ServerKey::generate(1), vec![]);
        let theirs = Keyring::new(ServerKey::generate(1), vec![]);
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
        let signer = Keyring::new(ServerKey::generate(1), vec![]);
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
        let before = Keyring::new(old.clone(), vec![]);
        let token = before.invitation_token(&claims());
        let after = Keyring::new(ServerKey::generate(2), vec![old]);
        assert_eq!(after.verify_invitation(&token).unwrap(), claims());
    }
}
