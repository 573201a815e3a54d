//! Password hashes made by the systems a supplier leaves, kept at import and
//! checked at a login until its first success re-hashes the password with
//! our argon2id.
//!
//! Each format is the one its system really stores (bcrypt `$2a$`/`$2b$`/
//! `$2y$`; PBKDF2 as PHC, passlib, Django-style and Werkzeug strings; argon2i and
//! argon2id PHC; scrypt as PHC, passlib, Django and Werkzeug strings). An
//! import refuses what it cannot parse and costs above [`Bounds`]: a stored
//! cost is what every later login with that name pays, so it is a cost the
//! importer controls.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

/// The longest hash string accepted (the longest real one is about 200).
pub const MAX_HASH_CHARS: usize = 512;
/// bcrypt's highest cost accepted (2^14 rounds: about a second a try).
const BCRYPT_MAX_COST: u32 = 14;
/// PBKDF2's most iterations accepted (Django 5 stores 870,000 and more).
const PBKDF2_MAX_ROUNDS: u32 = 2_000_000;
/// scrypt's largest `N·r` accepted: 128 MiB of memory a try.
const SCRYPT_MAX_NR: u64 = 1 << 20;
/// scrypt's largest `N·r·p`: the work of a try.
const SCRYPT_MAX_NRP: u64 = 1 << 22;
/// argon2's largest memory (KiB), passes and lanes accepted.
const ARGON2_MAX: (u32, u32, u32) = (131_072, 10, 16);
/// Salts and outputs accepted, bytes.
const MAX_SALT: usize = 64;
const OUTPUT: std::ops::RangeInclusive<usize> = 16..=64;

/// Which family of hash a stored string is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// bcrypt.
    Bcrypt,
    /// PBKDF2 with HMAC-SHA256.
    Pbkdf2Sha256,
    /// PBKDF2 with HMAC-SHA512.
    Pbkdf2Sha512,
    /// argon2i.
    Argon2i,
    /// argon2id.
    Argon2id,
    /// scrypt.
    Scrypt,
}

impl Scheme {
    /// The scheme's name in reports and histories.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Bcrypt => "bcrypt",
            Scheme::Pbkdf2Sha256 => "pbkdf2-sha256",
            Scheme::Pbkdf2Sha512 => "pbkdf2-sha512",
            Scheme::Argon2i => "argon2i",
            Scheme::Argon2id => "argon2id",
            Scheme::Scrypt => "scrypt",
        }
    }
}

/// A foreign hash, parsed: everything a check of a password needs.
#[derive(Clone, Debug)]
pub struct ForeignHash {
    scheme: Scheme,
    check: Check,
}

#[derive(Clone, Debug)]
enum Check {
    /// The whole string: the bcrypt crate reads its own format.
    Bcrypt(String),
    /// The PHC string: checked like our own hashes.
    Argon2(String),
    Pbkdf2 {
        rounds: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Scrypt {
        log_n: u8,
        r: u32,
        p: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

impl ForeignHash {
    /// Parses a stored hash string; the error says why it is refused.
    pub fn parse(s: &str) -> Result<ForeignHash, String> {
        if s.len() > MAX_HASH_CHARS {
            return Err(format!(
                "a password hash is at most {MAX_HASH_CHARS} characters"
            ));
        }
        let parsed = if s.starts_with("$2a$") || s.starts_with("$2b$") || s.starts_with("$2y$") {
            bcrypt_hash(s)?
        } else if let Some(rest) = s.strip_prefix("$argon2id$") {
            argon2_hash(Scheme::Argon2id, s, rest)?
        } else if let Some(rest) = s.strip_prefix("$argon2i$") {
            argon2_hash(Scheme::Argon2i, s, rest)?
        } else if let Some(rest) = s.strip_prefix("$pbkdf2-sha256$") {
            phc_pbkdf2(Scheme::Pbkdf2Sha256, rest)?
        } else if let Some(rest) = s.strip_prefix("$pbkdf2-sha512$") {
            phc_pbkdf2(Scheme::Pbkdf2Sha512, rest)?
        } else if let Some(rest) = s.strip_prefix("pbkdf2_sha256$") {
            django_pbkdf2(Scheme::Pbkdf2Sha256, rest)?
        } else if let Some(rest) = s.strip_prefix("pbkdf2_sha512$") {
            django_pbkdf2(Scheme::Pbkdf2Sha512, rest)?
        } else if let Some(rest) = s.strip_prefix("pbkdf2:sha256:") {
            werkzeug_pbkdf2(Scheme::Pbkdf2Sha256, rest)?
        } else if let Some(rest) = s.strip_prefix("pbkdf2:sha512:") {
            werkzeug_pbkdf2(Scheme::Pbkdf2Sha512, rest)?
        } else if let Some(rest) = s.strip_prefix("$scrypt$") {
            phc_scrypt(rest)?
        } else if let Some(rest) = s.strip_prefix("scrypt$") {
            django_scrypt(rest)?
        } else if let Some(rest) = s.strip_prefix("scrypt:") {
            werkzeug_scrypt(rest)?
        } else {
            return Err("unknown password hash format (bcrypt, PBKDF2-SHA256/512, argon2i, argon2id and scrypt are read)".into());
        };
        parsed.bounded()
    }

    /// The hash's family.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Whether `password` is the one hashed (in constant time over the
    /// output). Slow on purpose: run it off the async threads.
    pub fn matches(&self, password: &[u8], argon2: impl FnOnce(&str, &[u8]) -> bool) -> bool {
        match &self.check {
            // Truncating to 72 bytes as every other bcrypt does, or hashes
            // made elsewhere from long passwords would never match.
            Check::Bcrypt(s) => bcrypt::verify(password, s).unwrap_or(false),
            Check::Argon2(s) => argon2(s, password),
            Check::Pbkdf2 { rounds, salt, hash } => {
                let mut out = vec![0u8; hash.len()];
                if self.scheme == Scheme::Pbkdf2Sha512 {
                    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, *rounds, &mut out);
                } else {
                    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, *rounds, &mut out);
                }
                bool::from(out.ct_eq(hash))
            }
            Check::Scrypt {
                log_n,
                r,
                p,
                salt,
                hash,
            } => {
                let Ok(params) = scrypt::Params::new(*log_n, *r, *p, hash.len()) else {
                    return false;
                };
                let mut out = vec![0u8; hash.len()];
                scrypt::scrypt(password, salt, &params, &mut out).is_ok()
                    && bool::from(out.ct_eq(hash))
            }
        }
    }

    /// Refuses costs a login should not pay and sizes no system makes.
    fn bounded(self) -> Result<ForeignHash, String> {
        let sizes = |salt: &[u8], hash: &[u8]| {
            if salt.len() > MAX_SALT {
                Err(format!("the salt is over {MAX_SALT} bytes"))
            } else if !OUTPUT.contains(&hash.len()) {
                Err(format!(
                    "the hash is {} bytes; {} to {} are read",
                    hash.len(),
                    OUTPUT.start(),
                    OUTPUT.end()
                ))
            } else {
                Ok(())
            }
        };
        match &self.check {
            Check::Bcrypt(_) | Check::Argon2(_) => {}
            Check::Pbkdf2 { rounds, salt, hash } => {
                sizes(salt, hash)?;
                if *rounds == 0 || *rounds > PBKDF2_MAX_ROUNDS {
                    return Err(format!(
                        "PBKDF2 with {rounds} iterations: 1 to {PBKDF2_MAX_ROUNDS} are accepted"
                    ));
                }
            }
            Check::Scrypt {
                log_n,
                r,
                p,
                salt,
                hash,
            } => {
                sizes(salt, hash)?;
                let n = 1u64.checked_shl(u32::from(*log_n)).unwrap_or(u64::MAX);
                let nr = n.saturating_mul(u64::from(*r));
                if *log_n == 0 || *r == 0 || *p == 0 {
                    return Err("scrypt parameters must be positive".into());
                }
                if nr > SCRYPT_MAX_NR || nr.saturating_mul(u64::from(*p)) > SCRYPT_MAX_NRP {
                    return Err(format!(
                        "scrypt with N=2^{log_n}, r={r}, p={p} costs more than a login may (N·r at most 2^20, N·r·p at most 2^22)"
                    ));
                }
            }
        }
        Ok(self)
    }
}

/// Base64 as these systems write it: the standard alphabet, or passlib's
/// with `.` for `+`, padded or not.
fn b64(s: &str) -> Result<Vec<u8>, String> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT
        .decode(s.replace('.', "+"))
        .map_err(|_| "not valid base64".to_owned())
}

fn number<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("{what} is not a number"))
}

fn parts<'a, const N: usize>(s: &'a str, sep: char, format: &str) -> Result<[&'a str; N], String> {
    let v: Vec<&str> = s.split(sep).collect();
    v.try_into()
        .map_err(|_| format!("not a {format} hash: it has the wrong number of fields"))
}

fn bcrypt_hash(s: &str) -> Result<ForeignHash, String> {
    let parts: bcrypt::HashParts = s
        .parse()
        .map_err(|_| "not a valid bcrypt hash".to_owned())?;
    let cost = parts.get_cost();
    if cost > BCRYPT_MAX_COST {
        return Err(format!(
            "bcrypt cost {cost}: at most {BCRYPT_MAX_COST} is accepted"
        ));
    }
    Ok(ForeignHash {
        scheme: Scheme::Bcrypt,
        check: Check::Bcrypt(s.to_owned()),
    })
}

fn argon2_hash(scheme: Scheme, whole: &str, rest: &str) -> Result<ForeignHash, String> {
    let phc = argon2::password_hash::PasswordHash::new(whole)
        .map_err(|e| format!("not a valid {} hash: {e}", scheme.name()))?;
    let params =
        argon2::Params::try_from(&phc).map_err(|e| format!("{} parameters: {e}", scheme.name()))?;
    let (m, t, p) = ARGON2_MAX;
    if params.m_cost() > m || params.t_cost() > t || params.p_cost() > p {
        return Err(format!(
            "{} with m={}, t={}, p={}: at most m={m}, t={t}, p={p} are accepted",
            scheme.name(),
            params.m_cost(),
            params.t_cost(),
            params.p_cost()
        ));
    }
    let (Some(salt), Some(hash)) = (phc.salt, phc.hash) else {
        return Err(format!(
            "a {} hash without its salt or output",
            scheme.name()
        ));
    };
    if salt.len() > MAX_SALT * 2 || !OUTPUT.contains(&hash.len()) || rest.is_empty() {
        return Err(format!("a {} hash of an unusual size", scheme.name()));
    }
    Ok(ForeignHash {
        scheme,
        check: Check::Argon2(whole.to_owned()),
    })
}

/// `$pbkdf2-sha256$i=600000,l=32$salt$hash` (PHC) or
/// `$pbkdf2-sha256$29000$salt$hash` (passlib).
fn phc_pbkdf2(scheme: Scheme, rest: &str) -> Result<ForeignHash, String> {
    let [params, salt, hash] = parts(rest, '$', scheme.name())?;
    let rounds = match params.strip_prefix("i=") {
        Some(phc) => number(
            phc.split(',').next().unwrap_or_default(),
            "the iteration count",
        )?,
        None => number(params, "the iteration count")?,
    };
    Ok(ForeignHash {
        scheme,
        check: Check::Pbkdf2 {
            rounds,
            salt: b64(salt)?,
            hash: b64(hash)?,
        },
    })
}

/// Django's `pbkdf2_sha256$870000$salt$hash` (and the same layout with
/// SHA-512, as custom hashers store it): the salt is text.
fn django_pbkdf2(scheme: Scheme, rest: &str) -> Result<ForeignHash, String> {
    let [rounds, salt, hash] = parts(rest, '$', "Django PBKDF2")?;
    Ok(ForeignHash {
        scheme,
        check: Check::Pbkdf2 {
            rounds: number(rounds, "the iteration count")?,
            salt: salt.as_bytes().to_vec(),
            hash: b64(hash)?,
        },
    })
}

/// Werkzeug's `pbkdf2:sha256:600000$salt$hex`: the salt is text.
fn werkzeug_pbkdf2(scheme: Scheme, rest: &str) -> Result<ForeignHash, String> {
    let [rounds, salt, hash] = parts(rest, '$', "Werkzeug PBKDF2")?;
    Ok(ForeignHash {
        scheme,
        check: Check::Pbkdf2 {
            rounds: number(rounds, "the iteration count")?,
            salt: salt.as_bytes().to_vec(),
            hash: hex::decode(hash).map_err(|_| "the hash is not hex".to_owned())?,
        },
    })
}

/// `$scrypt$ln=16,r=8,p=1$salt$hash` (PHC and passlib).
fn phc_scrypt(rest: &str) -> Result<ForeignHash, String> {
    let [params, salt, hash] = parts(rest, '$', "scrypt")?;
    let (mut log_n, mut r, mut p) = (None, None, None);
    for param in params.split(',') {
        match param.split_once('=') {
            Some(("ln", v)) => log_n = Some(number::<u8>(v, "ln")?),
            Some(("r", v)) => r = Some(number::<u32>(v, "r")?),
            Some(("p", v)) => p = Some(number::<u32>(v, "p")?),
            _ => return Err(format!("unknown scrypt parameter {param:?}")),
        }
    }
    let (Some(log_n), Some(r), Some(p)) = (log_n, r, p) else {
        return Err("scrypt needs ln, r and p".into());
    };
    Ok(ForeignHash {
        scheme: Scheme::Scrypt,
        check: Check::Scrypt {
            log_n,
            r,
            p,
            salt: b64(salt)?,
            hash: b64(hash)?,
        },
    })
}

/// Django's `scrypt$16384$salt$8$1$hash`: the salt is text.
fn django_scrypt(rest: &str) -> Result<ForeignHash, String> {
    let [n, salt, r, p, hash] = parts(rest, '$', "Django scrypt")?;
    Ok(ForeignHash {
        scheme: Scheme::Scrypt,
        check: Check::Scrypt {
            log_n: log2(number(n, "N")?)?,
            r: number(r, "r")?,
            p: number(p, "p")?,
            salt: salt.as_bytes().to_vec(),
            hash: b64(hash)?,
        },
    })
}

/// Werkzeug's `scrypt:32768:8:1$salt$hex`: the salt is text.
fn werkzeug_scrypt(rest: &str) -> Result<ForeignHash, String> {
    let [params, salt, hash] = parts(rest, '$', "Werkzeug scrypt")?;
    let [n, r, p] = parts(params, ':', "Werkzeug scrypt")?;
    Ok(ForeignHash {
        scheme: Scheme::Scrypt,
        check: Check::Scrypt {
            log_n: log2(number(n, "N")?)?,
            r: number(r, "r")?,
            p: number(p, "p")?,
            salt: salt.as_bytes().to_vec(),
            hash: hex::decode(hash).map_err(|_| "the hash is not hex".to_owned())?,
        },
    })
}

fn log2(n: u64) -> Result<u8, String> {
    if n.is_power_of_two() && n > 1 {
        Ok(n.trailing_zeros() as u8)
    } else {
        Err(format!("scrypt's N must be a power of two, not {n}"))
    }
}

#[cfg(test)]
#[path = "foreign_tests.rs"]
mod tests;
