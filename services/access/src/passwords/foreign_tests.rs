//! Foreign hashes made by independent implementations (Python's bcrypt,
//! passlib, Django and Werkzeug: `scripts/foreign-hash-vectors.py`) match
//! their passwords and nothing else; costs and formats outside the bounds
//! are refused with a reason.

use super::*;

#[derive(serde::Deserialize)]
struct Vector {
    scheme: String,
    made_by: String,
    password: String,
    hash: String,
}

fn vectors() -> Vec<Vector> {
    serde_json::from_str(include_str!("foreign_vectors.json")).expect("the vectors")
}

fn argon2(phc: &str, password: &[u8]) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password, &h)
            .is_ok()
    })
}

#[test]
fn every_vector_matches_its_password_and_no_other() {
    let vectors = vectors();
    assert!(vectors.len() >= 30);
    for v in &vectors {
        let parsed = ForeignHash::parse(&v.hash)
            .unwrap_or_else(|e| panic!("{} ({}): {e}", v.made_by, v.hash));
        assert_eq!(parsed.scheme().name(), v.scheme, "{}", v.made_by);
        assert!(
            parsed.matches(v.password.as_bytes(), argon2),
            "{} did not match: {}",
            v.made_by,
            v.hash
        );
        let wrong = format!("{}!", v.password);
        // bcrypt reads 72 bytes: past them, a longer password is the same.
        if !(v.scheme == "bcrypt" && v.password.len() >= 72) {
            assert!(!parsed.matches(wrong.as_bytes(), argon2), "{}", v.made_by);
        }
        assert!(!parsed.matches(b"", argon2), "{}", v.made_by);
    }
}

#[test]
fn a_damaged_hash_matches_nothing_or_is_refused() {
    for v in vectors() {
        // One output character changed: refused as malformed or wrong.
        let mut chars: Vec<char> = v.hash.chars().collect();
        let last = chars.len() - 2;
        chars[last] = if chars[last] == '0' { '1' } else { '0' };
        let damaged: String = chars.into_iter().collect();
        if let Ok(parsed) = ForeignHash::parse(&damaged) {
            assert!(
                !parsed.matches(v.password.as_bytes(), argon2),
                "{}: {damaged}",
                v.made_by
            );
        }
        // Cut short: never a panic.
        for cut in 0..v.hash.len() {
            if v.hash.is_char_boundary(cut) {
                let _ = ForeignHash::parse(&v.hash[..cut]);
            }
        }
    }
}

#[test]
fn unknown_formats_and_costs_over_the_bounds_are_refused_with_why() {
    let refused = |s: &str, why: &str| {
        let e = ForeignHash::parse(s).expect_err(s);
        assert!(e.contains(why), "{s}: {e}");
    };
    refused(
        "5f4dcc3b5aa765d61d8327deb882cf99",
        "unknown password hash format",
    );
    refused("{SSHA}abcdef", "unknown password hash format");
    refused("$1$salt$hash", "unknown password hash format");
    refused(
        "$argon2d$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "unknown",
    );
    refused(
        "$2b$15$VoRRRugsA98reyI4dnnMNeMTwQcQ1cg9xQE6vNQ5SpDQc1XWhCb9a",
        "bcrypt cost 15",
    );
    refused("$2b$10$short", "not a valid bcrypt hash");
    refused(
        "pbkdf2_sha256$5000000$salt$S8fcAurcdpsc80NFLQXWgu5cv/R7aHtjIucz62BZ1BU=",
        "5000000 iterations",
    );
    refused(
        "pbkdf2_sha256$0$salt$S8fcAurcdpsc80NFLQXWgu5cv/R7aHtjIucz62BZ1BU=",
        "0 iterations",
    );
    refused("pbkdf2_sha256$1000$salt$c2hvcnQ=", "the hash is 5 bytes");
    refused("pbkdf2_sha256$1000$salt", "wrong number of fields");
    refused(
        "pbkdf2_sha256$many$salt$S8fcAurcdpsc80NFLQXWgu5cv/R7aHtjIucz62BZ1BU=",
        "not a number",
    );
    refused(
        "$scrypt$ln=20,r=8,p=1$5PyfM6YUgjDGOOd8DwHAOA$7kgXQpNhYM5K44CJg1TCGTk2xuKpuwNcv9lLklVbt3g",
        "costs more than a login may",
    );
    refused(
        "$scrypt$ln=14,r=8,p=64$5PyfM6YUgjDGOOd8DwHAOA$7kgXQpNhYM5K44CJg1TCGTk2xuKpuwNcv9lLklVbt3g",
        "costs more than a login may",
    );
    refused(
        "$scrypt$ln=14,r=8$5PyfM6YUgjDGOOd8DwHAOA$7kgXQpNhYM5K44CJg1TCGTk2xuKpuwNcv9lLklVbt3g",
        "needs ln, r and p",
    );
    refused(
        "scrypt$1000$salt$8$1$7kgXQpNhYM5K44CJg1TCGTk2xuKpuwNcv9lLklVbt3g=",
        "power of two",
    );
    refused(
        "$argon2id$v=19$m=1048576,t=1,p=1$23svJURobY2Rco7ROqeUEg$uHNH1EaBo9HdDOy6tnomMz7o8cdzIaB4Ww8h9YRKOe8",
        "at most m=131072",
    );
    refused(
        &format!("$2b${}", "a".repeat(600)),
        "at most 512 characters",
    );
}
