//! Signed checkpoints: tamper evidence that needs a key.
//!
//! The hash chains prove that each stream is consistent with itself, but
//! they are unkeyed: whoever can write the files can change an event and
//! recompute every later hash of its stream. A checkpoint closes that gap.
//! It commits to the whole log up to a position through a running digest
//! over every event's hash, in log order (positions are left out, like the
//! chain leaves them out: a restore may number them anew), and is signed with an
//! ed25519 key the service keeps in its key directory, apart from the data.
//! An auditor keeps checkpoints off the host; later, an edit, insertion or
//! deletion at or before a checkpoint's position changes the digest there,
//! and nobody without the key can sign a checkpoint for the changed log.
//!
//! What it cannot show: a log cut short after the last checkpoint an
//! auditor holds, or a rewrite by someone who holds the key.
//!
//! One line, for mail, tickets and files:
//! `access-checkpoint v1 position=<p> events=<n> digest=<hex> at=<unix ms> key=<hex public key> sig=<hex>`

use access_catalogue::envelope::Envelope;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

const DOMAIN: &[u8] = b"access-events/log-digest/v1\0";
const SIGNED: &[u8] = b"access-events/checkpoint/v1\0";
const MAGIC: &str = "access-checkpoint v1";

/// The running digest of a log read in order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogDigest {
    /// The last position taken in.
    pub position: u64,
    /// Events taken in.
    pub events: u64,
    /// The digest so far (zeros for an empty log).
    pub digest: [u8; 32],
}

impl LogDigest {
    /// Takes in the next event of the log.
    pub fn add(&mut self, e: &Envelope) {
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update(self.digest);
        h.update(e.hash);
        self.digest = h.finalize().into();
        self.position = e.position;
        self.events += 1;
    }
}

/// Why a checkpoint line or its check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The line is not a checkpoint.
    #[error("not a checkpoint line: {0}")]
    Malformed(String),
    /// The signature does not verify under the key it names, or the key is
    /// not the one expected.
    #[error("the checkpoint's signature does not verify: {0}")]
    BadSignature(String),
    /// The log differs from what the checkpoint committed to.
    #[error("the log does not match the checkpoint: {0}")]
    Mismatch(String),
}

/// A signed commitment to the log up to a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// What it covers.
    pub state: LogDigest,
    /// When it was signed, Unix milliseconds.
    pub at_ms: i64,
    /// The public key it was signed with.
    pub key: [u8; 32],
    /// The ed25519 signature.
    pub signature: [u8; 64],
}

fn signed_bytes(state: &LogDigest, at_ms: i64) -> Vec<u8> {
    let mut out = SIGNED.to_vec();
    out.extend_from_slice(&state.position.to_be_bytes());
    out.extend_from_slice(&state.events.to_be_bytes());
    out.extend_from_slice(&state.digest);
    out.extend_from_slice(&at_ms.to_be_bytes());
    out
}

fn hex_array<const N: usize>(field: &str, text: &str) -> Result<[u8; N], CheckpointError> {
    hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| CheckpointError::Malformed(format!("{field} is not {N} bytes of hex")))
}

impl Checkpoint {
    /// Signs `state` at `at_ms` with `key`.
    pub fn sign(state: LogDigest, at_ms: i64, key: &SigningKey) -> Self {
        Checkpoint {
            state,
            at_ms,
            key: key.verifying_key().to_bytes(),
            signature: key.sign(&signed_bytes(&state, at_ms)).to_bytes(),
        }
    }

    /// The one-line form.
    pub fn to_line(&self) -> String {
        format!(
            "{MAGIC} position={} events={} digest={} at={} key={} sig={}",
            self.state.position,
            self.state.events,
            hex::encode(self.state.digest),
            self.at_ms,
            hex::encode(self.key),
            hex::encode(self.signature)
        )
    }

    /// Reads the one-line form.
    pub fn parse(line: &str) -> Result<Self, CheckpointError> {
        let rest = line.trim().strip_prefix(MAGIC).ok_or_else(|| {
            CheckpointError::Malformed(format!("it does not start with {MAGIC:?}"))
        })?;
        let mut fields = std::collections::HashMap::new();
        for part in rest.split_whitespace() {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| CheckpointError::Malformed(format!("{part:?} is not key=value")))?;
            fields.insert(k, v);
        }
        let field = |k: &str| {
            fields
                .get(k)
                .copied()
                .ok_or_else(|| CheckpointError::Malformed(format!("{k}= is missing")))
        };
        let number = |k: &str| {
            field(k)?
                .parse::<i64>()
                .map_err(|_| CheckpointError::Malformed(format!("{k}= is not a number")))
        };
        let unsigned = |k: &str| {
            u64::try_from(number(k)?)
                .map_err(|_| CheckpointError::Malformed(format!("{k}= is negative")))
        };
        Ok(Checkpoint {
            state: LogDigest {
                position: unsigned("position")?,
                events: unsigned("events")?,
                digest: hex_array("digest", field("digest")?)?,
            },
            at_ms: number("at")?,
            key: hex_array("key", field("key")?)?,
            signature: hex_array("sig", field("sig")?)?,
        })
    }

    /// Checks the signature, under `trusted` when given (the key an auditor
    /// pinned), else under the key the checkpoint names.
    pub fn verify_signature(&self, trusted: Option<&[u8; 32]>) -> Result<(), CheckpointError> {
        if trusted.is_some_and(|t| *t != self.key) {
            return Err(CheckpointError::BadSignature(format!(
                "signed with key {}, not the trusted one",
                hex::encode(self.key)
            )));
        }
        let key = VerifyingKey::from_bytes(&self.key)
            .map_err(|e| CheckpointError::BadSignature(e.to_string()))?;
        key.verify(
            &signed_bytes(&self.state, self.at_ms),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|e| CheckpointError::BadSignature(e.to_string()))
    }

    /// Checks a log's digest over its first events (as many as this
    /// checkpoint covers) against the checkpoint.
    pub fn matches(&self, at: &LogDigest) -> Result<(), CheckpointError> {
        if at.events < self.state.events {
            return Err(CheckpointError::Mismatch(format!(
                "the log holds {} events, fewer than the checkpoint's {} (up to position {}): it was cut short or events were removed",
                at.events, self.state.events, self.state.position
            )));
        }
        if at.digest != self.state.digest {
            return Err(CheckpointError::Mismatch(format!(
                "over its first {} events the log's digest is {}, the checkpoint's {}: an event up to position {} was changed, added or removed",
                self.state.events,
                hex::encode(at.digest),
                hex::encode(self.state.digest),
                self.state.position
            )));
        }
        Ok(())
    }
}

/// Checks events of a whole log, in order, against a checkpoint: its
/// signature, then the digest over as many events as it covers.
pub fn verify_log<'a>(
    checkpoint: &Checkpoint,
    trusted: Option<&[u8; 32]>,
    events: impl IntoIterator<Item = &'a Envelope>,
) -> Result<LogDigest, CheckpointError> {
    checkpoint.verify_signature(trusted)?;
    let mut digest = LogDigest::default();
    for e in events
        .into_iter()
        .take(usize::try_from(checkpoint.state.events).unwrap_or(usize::MAX))
    {
        digest.add(e);
    }
    checkpoint.matches(&digest)?;
    Ok(digest)
}

/// An audit signing key from its 32-byte seed.
pub fn signing_key(seed: &[u8; 32]) -> SigningKey {
    SigningKey::from_bytes(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{request, stream};

    fn log(n: u64) -> Vec<Envelope> {
        (1..=n)
            .map(|p| {
                let r = request(&format!("r{p}"), &stream("a"), p - 1, 1);
                r.seal(&r.streams[0].stream, &r.streams[0].events[0], p, [0; 32], p)
                    .expect("seal")
            })
            .collect()
    }

    #[test]
    fn a_checkpoint_round_trips_and_verifies_the_log_it_was_made_of() {
        let key = signing_key(&[7; 32]);
        let events = log(10);
        let mut digest = LogDigest::default();
        events[..6].iter().for_each(|e| digest.add(e));
        let checkpoint = Checkpoint::sign(digest, 1_700_000_000_000, &key);
        let parsed = Checkpoint::parse(&checkpoint.to_line()).expect("parse");
        assert_eq!(parsed, checkpoint);
        let pinned = key.verifying_key().to_bytes();
        assert!(verify_log(&parsed, Some(&pinned), &events).is_ok());
    }

    #[test]
    fn an_edit_a_deletion_a_cut_or_a_forged_signature_is_found() {
        let key = signing_key(&[7; 32]);
        let events = log(10);
        let mut digest = LogDigest::default();
        events[..8].iter().for_each(|e| digest.add(e));
        let checkpoint = Checkpoint::sign(digest, 1, &key);
        // An event rewritten with its hash recomputed: every chain check
        // passes, the checkpoint does not.
        let mut edited = events.clone();
        edited[3].payload.push(1);
        edited[3].hash = access_catalogue::chain::hash_of(&edited[3]);
        assert!(matches!(
            verify_log(&checkpoint, None, &edited),
            Err(CheckpointError::Mismatch(_))
        ));
        let mut deleted = events.clone();
        deleted.remove(2);
        assert!(verify_log(&checkpoint, None, &deleted).is_err());
        assert!(verify_log(&checkpoint, None, &events[..5]).is_err());
        // Someone without the key signs the edited log with their own.
        let mut forged_digest = LogDigest::default();
        edited[..8].iter().for_each(|e| forged_digest.add(e));
        let forged = Checkpoint::sign(forged_digest, 1, &signing_key(&[9; 32]));
        let pinned = key.verifying_key().to_bytes();
        assert!(matches!(
            verify_log(&forged, Some(&pinned), &edited),
            Err(CheckpointError::BadSignature(_))
        ));
        let mut tampered = checkpoint.clone();
        tampered.state.position = 9;
        assert!(tampered.verify_signature(None).is_err());
        assert!(Checkpoint::parse("access-checkpoint v1 position=1").is_err());
    }
}
