//! Secrets: the server key file, the operator key, API keys, session tokens and
//! password hashes. None of them ever enters the log, a log line or an error.

use access_keyring::{LinkSigner, ServerKey};
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// Writes `contents` to a new file readable by its owner only, durably.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The secrets kept in the data directory.
#[derive(Clone, Debug)]
pub struct DataDirSecrets {
    /// The server key: derives link tokens, API key secrets and session MACs.
    pub server_key: ServerKey,
    /// Keys it replaced: links and sessions made with them still verify.
    pub older_keys: Vec<ServerKey>,
    /// SHA-256 of the operator key.
    pub operator_key_sha256: [u8; 32],
    /// Where the operator key is, to tell the operator.
    pub operator_key_path: PathBuf,
    /// Signs the log's checkpoints (`audit.key`, a 32-byte ed25519 seed in
    /// hex). Kept with the other keys, apart from the data: whoever holds it
    /// can sign a checkpoint for a rewritten log.
    pub audit_key: ed25519_dalek::SigningKey,
}

impl DataDirSecrets {
    /// Loads the key files of `dir`, creating them (mode 0600) on first start.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        let key_path = dir.join("server.key");
        if !key_path.exists() {
            write_private(&key_path, ServerKey::generate(1).to_file_text().as_bytes())?;
        }
        let text = std::fs::read_to_string(&key_path)
            .with_context(|| format!("reading {}", key_path.display()))?;
        let (server_key, older_keys) = ServerKey::parse_ring(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", key_path.display()))?;

        let operator_key_path = dir.join("operator.key");
        if !operator_key_path.exists() {
            let secret: [u8; 32] = rand::random();
            let key = format!("cpa_operator_{}", URL_SAFE_NO_PAD.encode(secret));
            write_private(&operator_key_path, format!("{key}\n").as_bytes())?;
        }
        let operator_key = std::fs::read_to_string(&operator_key_path)
            .with_context(|| format!("reading {}", operator_key_path.display()))?;
        let audit_key_path = dir.join("audit.key");
        if !audit_key_path.exists() {
            let seed: [u8; 32] = rand::random();
            write_private(
                &audit_key_path,
                format!("{}\n", hex::encode(seed)).as_bytes(),
            )
            .with_context(|| {
                format!(
                    "{} is missing and cannot be made there; make it with `accessd keys --key-dir DIR` and add it to the deployment's keys",
                    audit_key_path.display()
                )
            })?;
        }
        let audit_seed: [u8; 32] = std::fs::read_to_string(&audit_key_path)
            .with_context(|| format!("reading {}", audit_key_path.display()))
            .and_then(|text| {
                hex::decode(text.trim())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .with_context(|| format!("{} is not 32 bytes of hex", audit_key_path.display()))
            })?;
        Ok(DataDirSecrets {
            server_key,
            older_keys,
            operator_key_sha256: sha256(operator_key.trim()),
            operator_key_path,
            audit_key: access_log::checkpoint::signing_key(&audit_seed),
        })
    }

    /// The link signer for invitation tokens.
    pub fn link_signer(&self) -> LinkSigner {
        LinkSigner::new(self.server_key.clone(), self.older_keys.clone())
    }

    /// Makes a new current server key in `dir`, keeping the current and up to
    /// [`OLDER_KEYS_KEPT`] older ones so that outstanding links and sessions
    /// still verify; returns the new key's id. Replicas pick it up on restart.
    pub fn rotate(dir: &Path) -> anyhow::Result<u8> {
        let key_path = dir.join("server.key");
        let text = std::fs::read_to_string(&key_path)
            .with_context(|| format!("reading {}", key_path.display()))?;
        let (current, mut older) = ServerKey::parse_ring(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", key_path.display()))?;
        let next_id = std::iter::once(&current)
            .chain(&older)
            .map(ServerKey::id)
            .max()
            .unwrap_or(0)
            .checked_add(1)
            .context("every key id up to 255 was used; start a new key file")?;
        older.insert(0, current);
        older.truncate(OLDER_KEYS_KEPT);
        let fresh = ServerKey::generate(next_id);
        let partial = dir.join("server.key.new");
        let _ = std::fs::remove_file(&partial);
        write_private(
            &partial,
            ServerKey::ring_file_text(&fresh, &older).as_bytes(),
        )?;
        std::fs::rename(&partial, &key_path)
            .with_context(|| format!("replacing {}", key_path.display()))?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(next_id)
    }
}

/// Older server keys kept by a rotation (links live a day, sessions hours).
pub const OLDER_KEYS_KEPT: usize = 3;

/// SHA-256 of a key's text.
pub fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Compares two digests in constant time.
pub fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

/// Tenant API keys: `cpa_<key id>_<secret>`, the secret derived from the server
/// key and the key id, so that a retried `CreateTenant` can give the same key
/// back without it ever being stored; only its SHA-256 is in the log.
#[derive(Clone, Debug)]
pub struct ApiKeys {
    key: ServerKey,
}

impl ApiKeys {
    /// API keys derived from `key`.
    pub fn new(key: ServerKey) -> Self {
        ApiKeys { key }
    }

    /// The full key text for a key id.
    pub fn key_text(&self, key_id: &str) -> String {
        let secret = self.key.mac("api-key", &[key_id.as_bytes()]);
        format!("cpa_{key_id}_{}", URL_SAFE_NO_PAD.encode(secret))
    }

    /// The key id of a presented key, if it has the right shape.
    pub fn key_id_of(text: &str) -> Option<&str> {
        let rest = text.strip_prefix("cpa_")?;
        let (id, secret) = rest.split_once('_')?;
        (id.len() == 32 && !secret.is_empty()).then_some(id)
    }
}

/// What a session token carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The tenant.
    pub tenant: String,
    /// The contact.
    pub contact_id: String,
    /// The contact's identity.
    pub identity_id: String,
    /// When it stops working, Unix milliseconds.
    pub expires_at_ms: i64,
    /// The login has a temporary password: only changing it is allowed.
    pub must_change_password: bool,
}

/// What a one-time login code carries: who, until when, and a nonce that
/// the log records when the code is used, so it works once on any replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginCodeClaims {
    /// The tenant.
    pub tenant: String,
    /// The contact it logs in.
    pub contact_id: String,
    /// When it stops working, Unix milliseconds.
    pub expires_at_ms: i64,
    /// 128 random bits, hex.
    pub nonce: String,
}

/// One-time login codes handed to the tenant's portal after a password was
/// set on the pages: `lgc_<claims>.<mac>`, signed with the server key.
#[derive(Clone, Debug)]
pub struct LoginCodes {
    key: ServerKey,
    older: Vec<ServerKey>,
}

impl LoginCodes {
    /// How long a code lives: the browser's redirect and the portal's call.
    pub const TTL_MS: i64 = 120_000;

    /// Codes signed with `key`; ones signed with `older` keys still verify.
    pub fn new(key: ServerKey, older: Vec<ServerKey>) -> Self {
        LoginCodes { key, older }
    }

    /// A fresh code for a contact.
    pub fn issue(&self, tenant: &str, contact_id: &str, now_ms: i64) -> String {
        let claims = LoginCodeClaims {
            tenant: tenant.to_owned(),
            contact_id: contact_id.to_owned(),
            expires_at_ms: now_ms + Self::TTL_MS,
            nonce: hex::encode(rand::random::<[u8; 16]>()),
        };
        let body = postcard::to_stdvec(&claims).unwrap_or_default();
        let mac = self.key.mac("login-code", &[&body]);
        format!(
            "lgc_{}.{}",
            URL_SAFE_NO_PAD.encode(body),
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    /// The claims of a genuine, unexpired code (used or not: the log says).
    pub fn verify(&self, code: &str, now_ms: i64) -> Option<LoginCodeClaims> {
        if code.len() > 512 {
            return None;
        }
        let (body, mac) = code.strip_prefix("lgc_")?.split_once('.')?;
        let body = URL_SAFE_NO_PAD.decode(body).ok()?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let genuine = std::iter::once(&self.key)
            .chain(&self.older)
            .any(|key| bool::from(key.mac("login-code", &[&body])[..].ct_eq(&mac)));
        if !genuine {
            return None;
        }
        let claims: LoginCodeClaims = postcard::from_bytes(&body).ok()?;
        (claims.expires_at_ms > now_ms).then_some(claims)
    }
}

/// Portal link tokens: `pl_` and 256 bits derived from the server key, the
/// tenant and the link id, so that a retried create returns the same link
/// while only the token's SHA-256 is stored.
#[derive(Clone, Debug)]
pub struct PortalLinkTokens {
    key: ServerKey,
}

impl PortalLinkTokens {
    /// Tokens derived from `key`.
    pub fn new(key: ServerKey) -> Self {
        PortalLinkTokens { key }
    }

    /// The token of a link.
    pub fn token(&self, tenant: &str, link_id: &str) -> String {
        let mac = self
            .key
            .mac("portal-link", &[tenant.as_bytes(), link_id.as_bytes()]);
        format!("pl_{}", URL_SAFE_NO_PAD.encode(mac))
    }
}

/// Generated temporary passwords, derived from the server key and the
/// request that asked for them, so that a retried request returns the same
/// password while only its argon2id hash is ever stored.
#[derive(Clone, Debug)]
pub struct TemporaryPasswords {
    key: ServerKey,
}

impl TemporaryPasswords {
    /// Temporary passwords derived from `key`.
    pub fn new(key: ServerKey) -> Self {
        TemporaryPasswords { key }
    }

    /// The password for `(tenant, request id, label)`: 12 characters from an
    /// alphabet without look-alikes, with at least one letter and one digit
    /// (about 66 bits).
    pub fn derive(&self, tenant: &str, request_id: &str, label: &str) -> String {
        access_keyring::temporary_password(&self.key, tenant, request_id, label)
    }
}

/// Signs and checks session tokens (`ses_<claims>.<mac>`); the claims are not
/// secret, the MAC makes them unforgeable.
#[derive(Clone, Debug)]
pub struct Sessions {
    key: ServerKey,
    older: Vec<ServerKey>,
}

impl Sessions {
    /// Sessions signed with `key`; ones signed with `older` keys still verify.
    pub fn new(key: ServerKey, older: Vec<ServerKey>) -> Self {
        Sessions { key, older }
    }

    /// A token for `claims`.
    pub fn issue(&self, claims: &SessionClaims) -> String {
        let body = postcard::to_stdvec(claims).unwrap_or_default();
        let mac = self.key.mac("session", &[&body]);
        format!(
            "ses_{}.{}",
            URL_SAFE_NO_PAD.encode(body),
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    /// The claims of a genuine, unexpired token.
    pub fn verify(&self, token: &str, now_ms: i64) -> Option<SessionClaims> {
        let (body, mac) = token.strip_prefix("ses_")?.split_once('.')?;
        let body = URL_SAFE_NO_PAD.decode(body).ok()?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let genuine = std::iter::once(&self.key)
            .chain(&self.older)
            .any(|key| bool::from(key.mac("session", &[&body])[..].ct_eq(&mac)));
        if !genuine {
            return None;
        }
        let claims: SessionClaims = postcard::from_bytes(&body).ok()?;
        (claims.expires_at_ms > now_ms).then_some(claims)
    }
}

pub use crate::passwords::{HashCost, MAX_PASSWORD_BYTES, Passwords};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_reproducible_from_their_id_and_shaped() {
        let keys = ApiKeys::new(ServerKey::generate(1));
        let id = "0123456789abcdef0123456789abcdef";
        let text = keys.key_text(id);
        assert_eq!(keys.key_text(id), text);
        assert_eq!(ApiKeys::key_id_of(&text), Some(id));
        assert_eq!(ApiKeys::key_id_of("Bearer x"), None);
        assert_ne!(ApiKeys::new(ServerKey::generate(1)).key_text(id), text);
    }

    #[test]
    fn sessions_verify_until_they_expire_and_resist_forgery() {
        let sessions = Sessions::new(ServerKey::generate(1), Vec::new());
        let claims = SessionClaims {
            tenant: "acme".into(),
            contact_id: "c".into(),
            identity_id: "i".into(),
            expires_at_ms: 2_000,
            must_change_password: false,
        };
        let token = sessions.issue(&claims);
        assert_eq!(sessions.verify(&token, 1_000), Some(claims));
        assert_eq!(sessions.verify(&token, 2_000), None);
        let forged = Sessions::new(ServerKey::generate(1), Vec::new()).issue(&SessionClaims {
            tenant: "acme".into(),
            contact_id: "c".into(),
            identity_id: "i".into(),
            expires_at_ms: 9_000,
            must_change_password: false,
        });
        assert_eq!(sessions.verify(&forged, 1_000), None);
    }

    #[test]
    fn temporary_passwords_are_reproducible_per_request_and_meet_the_rules() {
        let t = TemporaryPasswords::new(ServerKey::generate(1));
        let a = t.derive("acme", "r1", "management");
        assert_eq!(a, t.derive("acme", "r1", "management"));
        assert_ne!(a, t.derive("acme", "r1", "staff"));
        assert_ne!(a, t.derive("acme", "r2", "management"));
        assert_eq!(a.chars().count(), 12);
        assert!(crate::domain::values::Password::parse(&a).is_ok());
    }

    #[test]
    fn key_files_are_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirSecrets::load_or_create(dir.path()).unwrap();
        let again = DataDirSecrets::load_or_create(dir.path()).unwrap();
        assert_eq!(first.server_key.bytes(), again.server_key.bytes());
        assert_eq!(first.operator_key_sha256, again.operator_key_sha256);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&first.operator_key_path)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
