//! The key files of the data directory (server keys, the operator key, the
//! audit key) and digests of presented keys. What is derived from the server
//! key is in `access_keyring`; password hashing in `passwords.rs`. None of it
//! ever enters the log, a log line or an error.

use access_keyring::{Keyring, ServerKey};
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
    /// The server key and the keys it replaced: every derived secret.
    pub keyring: Keyring,
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
        let keyring =
            Keyring::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", key_path.display()))?;

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
            keyring,
            operator_key_sha256: sha256(operator_key.trim()),
            operator_key_path,
            audit_key: access_log::checkpoint::signing_key(&audit_seed),
        })
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

pub use crate::passwords::{HashCost, MAX_PASSWORD_BYTES, Passwords};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_passwords_meet_the_password_floor() {
        let ring = Keyring::new(ServerKey::generate(1), Vec::new());
        for n in 0..200 {
            let p = ring.temporary_password("acme", &format!("r{n}"), "management");
            assert!(crate::domain::values::Password::parse(&p).is_ok(), "{p}");
        }
    }

    #[test]
    fn key_files_are_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirSecrets::load_or_create(dir.path()).unwrap();
        let again = DataDirSecrets::load_or_create(dir.path()).unwrap();
        assert_eq!(
            first.keyring.current().bytes(),
            again.keyring.current().bytes()
        );
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
