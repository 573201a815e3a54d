//! Values that can only be built valid: parse, don't validate.
//!
//! Each has one fallible `parse` that names what is wrong in words a caller can
//! act on; the gRPC layer turns those into field violations.

use sha2::{Digest, Sha256};
use std::fmt;

/// What is wrong with one input field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field, as named in the request (`email`, `site_rule.one_site.site`).
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: &str, description: impl Into<String>) -> Self {
        FieldViolation {
            field: field.to_owned(),
            description: description.into(),
        }
    }
}

fn slug_like(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl $name {
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype!(
    /// A tenant's slug: lower-case letters, digits and `-`, 1 to 40 characters.
    TenantId
);
string_newtype!(
    /// A customer's id in the tenant's ERP: letters, digits, `-` and `_`, 1 to 64.
    CustomerId
);
string_newtype!(
    /// A generated id of a contact, invitation or key (32 hex digits).
    GeneratedId
);
string_newtype!(
    /// A normalised email address: trimmed, domain lower-cased.
    Email
);
string_newtype!(
    /// A display name: trimmed, not blank, at most 200 characters.
    Name
);
string_newtype!(
    /// A site name from the tenant's list.
    SiteName
);
string_newtype!(
    /// The personal message of an invitation: not blank, at most 4000 characters.
    Message
);
string_newtype!(
    /// A caller's idempotency key: 1 to 128 printable ASCII characters.
    RequestId
);
string_newtype!(
    /// A login name, unique per tenant regardless of case (often the account
    /// number): letters, digits, '.', '_' and '-', 1 to 63 characters.
    Username
);

impl Username {
    /// Parses a username.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            Err("a username is required".into())
        } else if s.len() > 63
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            Err("use 1 to 63 letters, digits, '.', '_' or '-'".into())
        } else {
            Ok(Username(s.to_owned()))
        }
    }

    /// The staff login's username: this one with `S` appended.
    pub fn staff(&self) -> Result<Self, String> {
        Self::parse(&format!("{}S", self.0))
    }

    /// The id of this username's reservation stream (case-insensitive).
    pub fn slot_id(&self) -> GeneratedId {
        let digest = Sha256::digest(format!("username\0{}", self.0.to_lowercase()).as_bytes());
        GeneratedId(hex::encode(&digest[..16]))
    }
}

impl TenantId {
    /// Wraps a tenant id read back from the service's own log or key store.
    pub(crate) fn trusted(s: &str) -> Self {
        TenantId(s.to_owned())
    }

    /// Parses a tenant slug.
    pub fn parse(s: &str) -> Result<Self, String> {
        if slug_like(s, 40, b"-") && !s.bytes().any(|b| b.is_ascii_uppercase()) {
            Ok(TenantId(s.to_owned()))
        } else {
            Err("use 1 to 40 lower-case letters, digits or '-'".into())
        }
    }
}

impl CustomerId {
    /// Parses a customer id.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if slug_like(s, 64, b"-_") {
            Ok(CustomerId(s.to_owned()))
        } else if s.is_empty() {
            Err("a customer is required".into())
        } else {
            Err("use 1 to 64 letters, digits, '-' or '_'".into())
        }
    }
}

impl GeneratedId {
    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        GeneratedId(uuid::Uuid::now_v7().simple().to_string())
    }

    /// Wraps an id read back from the service's own log, where only valid ids
    /// are ever written.
    pub(crate) fn trusted(s: &str) -> Self {
        GeneratedId(s.to_owned())
    }

    /// Parses an id given back by a caller.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            Ok(GeneratedId(s.to_owned()))
        } else {
            Err("not an id issued by this service (32 lower-case hex digits)".into())
        }
    }
}

impl Email {
    /// Parses and normalises an email address.
    ///
    /// The check is deliberately practical rather than RFC 5322-complete: one
    /// `@`, a non-empty local part without spaces or control characters, and a
    /// domain of dot-separated labels with a dot in it.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("an email address is required".into());
        }
        if s.len() > 254 {
            return Err("an email address has at most 254 characters".into());
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err("not a valid email address (no '@')".into());
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| !c.is_control() && !c.is_whitespace() && !"@<>()[],;:\"\\".contains(c));
        let domain = domain.to_ascii_lowercase();
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if local_ok && domain_ok {
            Ok(Email(format!("{local}@{domain}")))
        } else {
            Err("not a valid email address".into())
        }
    }

    /// The id of the global identity of this email: it is derived, so that the
    /// log itself keeps one identity per email.
    pub fn identity_id(&self) -> GeneratedId {
        GeneratedId(access_catalogue::personal::identity_of(&self.0))
    }
}

impl Name {
    /// Parses a display name.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            Err("a name is required".into())
        } else if s.chars().count() > 200 {
            Err("a name has at most 200 characters".into())
        } else if s.chars().any(char::is_control) {
            Err("a name may not contain control characters".into())
        } else {
            Ok(Name(s.to_owned()))
        }
    }
}

impl SiteName {
    /// Parses a site name.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            Err("a site name is required".into())
        } else if s.chars().count() > 100 || s.chars().any(char::is_control) {
            Err("a site name has at most 100 printable characters".into())
        } else {
            Ok(SiteName(s.to_owned()))
        }
    }
}

impl Message {
    /// Parses an invitation message.
    pub fn parse(s: &str) -> Result<Self, String> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            Err("an invitation message is required and may not be blank".into())
        } else if trimmed.chars().count() > 4000 {
            Err("an invitation message has at most 4000 characters".into())
        } else {
            Ok(Message(trimmed.to_owned()))
        }
    }
}

impl RequestId {
    /// Parses a caller's request id.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            Err("a request id is required (any unique string, e.g. a UUID)".into())
        } else if s.len() > 128 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            Err("a request id has 1 to 128 printable ASCII characters".into())
        } else {
            Ok(RequestId(s.to_owned()))
        }
    }
}

/// A new password that meets the rules. Never printed, never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Shortest password accepted.
pub const PASSWORD_MIN_CHARS: usize = 6;
/// Longest password accepted (bounds the hashing work a caller can ask for).
pub const PASSWORD_MAX_CHARS: usize = 256;

impl Password {
    /// Checks a new password against the rules: at least 6 characters, with at
    /// least one letter and one digit, and no control characters.
    pub fn parse(s: &str) -> Result<Self, String> {
        let chars = s.chars().count();
        if chars < PASSWORD_MIN_CHARS {
            return Err(format!(
                "a password needs at least {PASSWORD_MIN_CHARS} characters"
            ));
        }
        if chars > PASSWORD_MAX_CHARS {
            return Err(format!(
                "a password has at most {PASSWORD_MAX_CHARS} characters"
            ));
        }
        if s.chars().any(char::is_control) {
            return Err("a password cannot contain control characters".into());
        }
        if !s.chars().any(char::is_alphabetic) {
            return Err("a password needs at least one letter".into());
        }
        if !s.chars().any(|c| c.is_ascii_digit()) {
            return Err("a password needs at least one digit".into());
        }
        Ok(Password(s.to_owned()))
    }

    /// The password text, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_need_six_characters_a_letter_and_a_digit() {
        assert!(Password::parse("abc12").unwrap_err().contains("at least 6"));
        assert!(Password::parse("abcdefg").unwrap_err().contains("digit"));
        assert!(Password::parse("1234567").unwrap_err().contains("letter"));
        assert!(Password::parse("abc123").is_ok());
        assert!(Password::parse("pässw0rd").is_ok());
        // No keyboard types a control character; one in a new password is a
        // bug or an attack, and it could never be typed again.
        for c in ['\0', '\n', '\r', '\t', '\u{7f}', '\u{85}'] {
            let text = format!("abc{c}123");
            assert!(Password::parse(&text).unwrap_err().contains("control"));
        }
        assert!(Password::parse(&"a1".repeat(200)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("abc123").unwrap()),
            "Password(<redacted>)"
        );
    }

    #[test]
    fn emails_are_required_valid_and_normalised() {
        assert!(Email::parse("").unwrap_err().contains("required"));
        for bad in [
            "bob",
            "bob@",
            "@acme.example",
            "bob@acme",
            "bo b@acme.example",
            "bob@acme..example",
            "bob@-acme.example",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        let e = Email::parse("  Bob.Smith@ACME.Example ").unwrap();
        assert_eq!(e.as_str(), "Bob.Smith@acme.example");
        assert_eq!(
            e.identity_id(),
            Email::parse("bob.smith@acme.example")
                .unwrap()
                .identity_id()
        );
    }

    #[test]
    fn messages_may_not_be_blank() {
        assert!(Message::parse(" \n\t ").is_err());
        assert_eq!(Message::parse(" Welcome! ").unwrap().as_str(), "Welcome!");
    }

    #[test]
    fn ids_are_checked() {
        assert!(TenantId::parse("acme-ltd").is_ok());
        assert!(TenantId::parse("Acme").is_err());
        assert!(TenantId::parse("").is_err());
        assert!(CustomerId::parse("C-001_a").is_ok());
        assert!(CustomerId::parse("C 001").is_err());
        assert!(GeneratedId::parse(GeneratedId::generate().as_str()).is_ok());
        assert!(GeneratedId::parse("xyz").is_err());
        assert!(RequestId::parse("").is_err());
    }
}
