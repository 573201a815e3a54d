//! What a tenant asks of a new password, beyond the floor every password
//! meets (at least 6 characters, a letter and a digit: [`Password::parse`]).
//!
//! Against NIST SP 800-63B: a password chosen by a person is checked against
//! a list of common and compromised passwords (here the 30,000 most common)
//! and against the account's own names; every printable character, spaces
//! and Unicode included, is allowed up to 256 characters; nothing expires by
//! age; failed tries are rate limited (`lockout.rs`). Where the seeds differ
//! from NIST, the seeds' 6-character floor and letter-and-digit rule hold
//! (NIST asks 8, or 15 when the password is the only factor, and no
//! composition rules): a tenant can raise the length and ask for mixed case
//! or a symbol, never go below the floor.

use super::values::{PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS, Password};
use std::collections::HashSet;
use std::sync::LazyLock;

/// The common passwords, most common first (see `data/README.md`).
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt")
        .lines()
        .filter(|l| !l.is_empty())
        .collect()
});

/// Names shorter than this are not looked for inside a password: "ann" is
/// in "annual", and a three-letter name adds little to a guesser's list.
const MIN_NAME_CHARS: usize = 4;

/// A tenant's rules for new passwords.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PasswordPolicy {
    /// Shortest accepted, in characters (never below the floor of 6).
    pub min_length: u32,
    /// Needs an upper-case and a lower-case letter.
    pub require_mixed_case: bool,
    /// Needs a character that is neither a letter, a digit nor a space.
    pub require_symbol: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: PASSWORD_MIN_CHARS as u32,
            require_mixed_case: false,
            require_symbol: false,
        }
    }
}

impl PasswordPolicy {
    /// A policy as asked for, if it is one a tenant may set.
    pub fn new(
        min_length: u32,
        require_mixed_case: bool,
        require_symbol: bool,
    ) -> Result<Self, String> {
        if (min_length as usize) < PASSWORD_MIN_CHARS || (min_length as usize) > 64 {
            return Err(format!(
                "the minimum length is between {PASSWORD_MIN_CHARS} and 64 characters"
            ));
        }
        Ok(PasswordPolicy {
            min_length,
            require_mixed_case,
            require_symbol,
        })
    }

    /// The rules in words, in the order they are checked (for forms and errors).
    pub fn describe(&self) -> Vec<String> {
        let mut rules = vec![
            format!("at least {} characters", self.min_length),
            "at least one letter and one digit".to_owned(),
        ];
        if self.require_mixed_case {
            rules.push("an upper-case and a lower-case letter".into());
        }
        if self.require_symbol {
            rules.push("a symbol (neither a letter, a digit nor a space)".into());
        }
        rules.push("not one of the most common passwords".into());
        rules.push("not containing your email or username".into());
        rules
    }

    /// Checks a new password (which met the floor) against the tenant's rules
    /// and the login's own names (email, username).
    pub fn check(&self, password: &Password, names: &[&str]) -> Result<(), String> {
        let text = password.expose();
        if text.chars().count() < self.min_length as usize {
            return Err(format!(
                "a password needs at least {} characters",
                self.min_length
            ));
        }
        if self.require_mixed_case
            && !(text.chars().any(char::is_uppercase) && text.chars().any(char::is_lowercase))
        {
            return Err("a password needs an upper-case and a lower-case letter".into());
        }
        if self.require_symbol
            && !text
                .chars()
                .any(|c| !c.is_alphanumeric() && !c.is_whitespace())
        {
            return Err("a password needs a symbol (neither a letter, a digit nor a space)".into());
        }
        let lower = text.to_lowercase();
        if is_common(&lower) {
            return Err("this password is one of the most common ones; choose another".into());
        }
        for name in names.iter().flat_map(|n| parts(n)) {
            if name.chars().count() >= MIN_NAME_CHARS && lower.contains(&name) {
                return Err("a password must not contain your email or username".into());
            }
        }
        Ok(())
    }
}

/// Whether a lower-cased password is on the common list.
pub fn is_common(lower: &str) -> bool {
    lower.chars().count() <= PASSWORD_MAX_CHARS && COMMON.contains(lower)
}

/// A name and, for an email, its local part: what a password must not contain.
fn parts(name: &str) -> Vec<String> {
    let lower = name.trim().to_lowercase();
    match lower.split_once('@') {
        Some((local, _)) => vec![lower.clone(), local.to_owned()],
        None => vec![lower],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::parse(s).expect("meets the floor")
    }

    #[test]
    fn the_list_is_loaded_and_ranked_passwords_are_on_it() {
        assert_eq!(COMMON.len(), 30_000);
        for p in ["password1", "abc123", "qwerty123", "secret123", "passw0rd"] {
            assert!(is_common(p), "{p}");
        }
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        let policy = PasswordPolicy::default();
        assert!(policy.check(&pw("Password1"), &[]).is_err());
        assert!(policy.check(&pw("ABC123"), &[]).is_err());
        assert!(policy.check(&pw("tulip42harbour"), &[]).is_ok());
    }

    #[test]
    fn a_password_may_not_contain_the_email_or_username() {
        let policy = PasswordPolicy::default();
        let names = ["Bob.Smith@hardware.example", "BSMITH"];
        for p in ["bob.smith99", "xbsmith42x", "bob.smith@hardware.example1"] {
            let e = policy.check(&pw(p), &names).expect_err(p);
            assert!(e.contains("email or username"), "{e}");
        }
        assert!(policy.check(&pw("tulip42harbour"), &names).is_ok());
        // Names under four characters are not looked for.
        assert!(
            policy
                .check(&pw("annual42harbour"), &["ann@shop.example"])
                .is_ok()
        );
    }

    #[test]
    fn tenants_can_raise_length_and_ask_for_classes() {
        let policy = PasswordPolicy::new(12, true, true).expect("valid");
        assert!(
            policy
                .check(&pw("tulip42harb"), &[])
                .unwrap_err()
                .contains("12")
        );
        assert!(
            policy
                .check(&pw("tulip42harbour"), &[])
                .unwrap_err()
                .contains("upper-case")
        );
        assert!(
            policy
                .check(&pw("Tulip42harbour"), &[])
                .unwrap_err()
                .contains("symbol")
        );
        assert!(policy.check(&pw("Tulip42harbour!"), &[]).is_ok());
        assert!(
            policy.check(&pw("Tulip42 harbour"), &[]).is_err(),
            "a space is no symbol"
        );
    }

    #[test]
    fn the_floor_cannot_be_lowered() {
        assert!(PasswordPolicy::new(5, false, false).is_err());
        assert!(PasswordPolicy::new(65, false, false).is_err());
        assert!(PasswordPolicy::new(6, false, false).is_ok());
    }

    #[test]
    fn the_rules_read_as_a_list() {
        let words = PasswordPolicy::new(10, true, false)
            .expect("valid")
            .describe();
        assert_eq!(words[0], "at least 10 characters");
        assert!(words.iter().any(|w| w.contains("upper-case")));
        assert!(!words.iter().any(|w| w.contains("symbol")));
    }
}
