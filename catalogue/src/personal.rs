//! Personal data in an immutable log: every personal value (an email, a
//! free-text message, a client address) is stored encrypted under a key of
//! its own person, kept outside the log in a vault. Forgetting a person
//! destroys the key: their events stay, chained and verifiable, with those
//! values unreadable for ever ("crypto-shredding").
//!
//! A sealed value is stored where the plain string was, as a string
//! `"\u{1}pd1:<key ref>:<base64 nonce and ciphertext>"`, so event layouts do
//! not change and events written before sealing existed read as they are.
//! The cipher is XChaCha20-Poly1305 with a random nonce; the key ref is also
//! the associated data, so a value cannot be moved under another person.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// What starts a sealed value (a control character no typed text starts with).
const PREFIX: &str = "\u{1}pd1:";

/// What an erased value reads as.
pub const ERASED: &str = "[erased]";

/// A person's key.
pub type Key = [u8; 32];

/// The key ref of an email's person: the identity id, derived from the email
/// the same way the service derives it.
pub fn identity_of(email: &str) -> String {
    let digest = Sha256::digest(format!("identity\0{}", email.trim().to_lowercase()).as_bytes());
    hex::encode(&digest[..16])
}

/// The key ref of a login without an email: its contact.
pub fn contact_ref(contact_id: &str) -> String {
    format!("c-{contact_id}")
}

/// A personal value: readable, sealed as stored, or erased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Personal(State);

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Readable: as decided, after opening, or written before sealing existed.
    Clear(String),
    /// As stored: the whole sealed text.
    Sealed { key_ref: String, text: String },
    /// Its key is gone.
    Erased { key_ref: String },
}

impl Personal {
    /// A readable value (what a decision puts into an event).
    pub fn clear(text: impl Into<String>) -> Self {
        Personal(State::Clear(text.into()))
    }

    /// The value to read: the text, or [`ERASED`] once its key is gone.
    pub fn text(&self) -> &str {
        match &self.0 {
            State::Clear(t) => t,
            State::Erased { .. } => ERASED,
            // Only a consumer that skipped opening sees this.
            State::Sealed { .. } => "[sealed]",
        }
    }

    /// Whether the value is empty (an absent optional text).
    pub fn is_empty(&self) -> bool {
        matches!(&self.0, State::Clear(t) if t.is_empty())
    }

    /// Whether its key was destroyed.
    pub fn is_erased(&self) -> bool {
        matches!(self.0, State::Erased { .. })
    }

    /// The key ref it is sealed under, if sealed or erased.
    pub fn key_ref(&self) -> Option<&str> {
        match &self.0 {
            State::Sealed { key_ref, .. } | State::Erased { key_ref } => Some(key_ref),
            State::Clear(_) => None,
        }
    }

    /// Whether it may be stored (sealed, erased, or empty: nothing to hide).
    pub fn storable(&self) -> bool {
        !matches!(&self.0, State::Clear(t) if !t.is_empty())
    }

    /// Encrypts a readable value under `key` (nothing to do for an empty one).
    pub fn seal(&mut self, key_ref: &str, key: &Key) {
        let State::Clear(text) = &self.0 else { return };
        if text.is_empty() {
            return;
        }
        let nonce: [u8; 24] = rand::random();
        let cipher = XChaCha20Poly1305::new(key.into());
        // Encryption with a valid key cannot fail; an empty result is refused
        // by `storable` below, never stored as plain text.
        let Ok(ciphertext) = cipher.encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: text.as_bytes(),
                aad: key_ref.as_bytes(),
            },
        ) else {
            return;
        };
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&ciphertext);
        self.0 = State::Sealed {
            key_ref: key_ref.to_owned(),
            text: format!("{PREFIX}{key_ref}:{}", URL_SAFE_NO_PAD.encode(bytes)),
        };
    }

    /// Decrypts with `key`, or marks erased when there is no key. A value
    /// that does not decrypt (tampered) is erased too: it cannot be read.
    pub fn open(&mut self, key: Option<&Key>) {
        let State::Sealed { key_ref, text } = &self.0 else {
            return;
        };
        let key_ref = key_ref.clone();
        let opened = key.and_then(|key| {
            let encoded = text.rsplit(':').next()?;
            let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
            if bytes.len() < 24 {
                return None;
            }
            let (nonce, ciphertext) = bytes.split_at(24);
            let plain = XChaCha20Poly1305::new(key.into())
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: key_ref.as_bytes(),
                    },
                )
                .ok()?;
            String::from_utf8(plain).ok()
        });
        self.0 = match opened {
            Some(text) => State::Clear(text),
            None => State::Erased { key_ref },
        };
    }
}

impl From<&str> for Personal {
    fn from(text: &str) -> Self {
        Personal::clear(text)
    }
}

impl From<String> for Personal {
    fn from(text: String) -> Self {
        Personal::clear(text)
    }
}

impl Default for Personal {
    fn default() -> Self {
        Personal::clear("")
    }
}

impl std::fmt::Display for Personal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

impl Serialize for Personal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            // JSON for people (the audit history): what the value reads as.
            return s.serialize_str(self.text());
        }
        match &self.0 {
            State::Clear(t) => s.serialize_str(t),
            State::Sealed { text, .. } => s.serialize_str(text),
            // An erased value is never written again; keep its ref.
            State::Erased { key_ref } => s.serialize_str(&format!("{PREFIX}{key_ref}:")),
        }
    }
}

impl<'de> Deserialize<'de> for Personal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(match text.strip_prefix(PREFIX) {
            Some(rest) => match rest.split_once(':') {
                Some((key_ref, _)) => Personal(State::Sealed {
                    key_ref: key_ref.to_owned(),
                    text,
                }),
                None => Personal(State::Clear(text)),
            },
            None => Personal(State::Clear(text)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_with_its_key_and_reads_erased_without() {
        let key: Key = [3; 32];
        let mut p = Personal::clear("bob@acme.example");
        p.seal("abc", &key);
        assert!(p.storable());
        let stored = postcard::to_stdvec(&p).expect("encodes");
        assert!(!String::from_utf8_lossy(&stored).contains("bob"));
        let mut back: Personal = postcard::from_bytes(&stored).expect("decodes");
        assert_eq!(back.key_ref(), Some("abc"));
        let mut lost = back.clone();
        back.open(Some(&key));
        assert_eq!(back.text(), "bob@acme.example");
        lost.open(None);
        assert!(lost.is_erased());
        assert_eq!(lost.text(), ERASED);
    }

    #[test]
    fn a_value_moved_under_another_person_or_changed_does_not_open() {
        let key: Key = [3; 32];
        let mut p = Personal::clear("bob@acme.example");
        p.seal("abc", &key);
        let stored = String::from_utf8(postcard::to_stdvec(&p).expect("encodes")[1..].to_vec())
            .expect("text");
        let moved = stored.replacen(":abc:", ":abd:", 1);
        let mut other: Personal =
            postcard::from_bytes(&postcard::to_stdvec(&moved).expect("encodes")).expect("decodes");
        other.open(Some(&key));
        assert!(other.is_erased());
    }

    #[test]
    fn plain_text_written_before_sealing_reads_as_it_is() {
        let old = postcard::to_stdvec("ann@shop.example").expect("encodes");
        let p: Personal = postcard::from_bytes(&old).expect("decodes");
        assert_eq!(p.text(), "ann@shop.example");
        assert!(!p.storable());
        assert!(Personal::clear("").storable());
    }

    #[test]
    fn identity_refs_match_the_services_derivation() {
        assert_eq!(
            identity_of(" Bob@Acme.example "),
            identity_of("bob@acme.example")
        );
        assert_eq!(identity_of("bob@acme.example").len(), 32);
    }
}
