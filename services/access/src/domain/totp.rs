//! Time-based one-time passwords (RFC 6238) with the parameters every
//! authenticator app reads: HMAC-SHA-1, six digits, thirty-second steps.
//! A code is accepted for the step it names and the one either side (a
//! phone's clock a little off), and only for a step after the last one
//! used, so a code seen over a shoulder cannot be used again.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Seconds per step.
pub const STEP_S: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Bytes of a new secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;

/// The step `now_ms` falls in.
pub fn step_at(now_ms: i64) -> u64 {
    u64::try_from(now_ms.div_euclid(1000 * STEP_S)).unwrap_or(0)
}

/// The code of `step` (RFC 4226's HOTP with the step as the counter).
pub fn code_at(secret: &[u8], step: u64) -> u32 {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return u32::MAX;
    };
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    // Dynamic truncation: the low nibble of the last byte picks four bytes.
    let offset = usize::from(digest[19] & 0x0f);
    let bin = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    bin % 10u32.pow(DIGITS)
}

/// The step `code` is good for at `now_ms`, if any: within one step either
/// way, after `used` (the last step a code was taken for). Every candidate
/// is compared, in constant time, so timing tells nothing of which matched.
pub fn matching_step(secret: &[u8], code: &str, now_ms: i64, used: Option<u64>) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(now_ms);
    let mut found = None;
    for step in [now.saturating_sub(1), now, now + 1] {
        let expected = format!("{:0width$}", code_at(secret, step), width = DIGITS as usize);
        let same = bool::from(expected.as_bytes().ct_eq(code.as_bytes()));
        if same && used.is_none_or(|u| step > u) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://` URI an authenticator app reads from a QR code.
pub fn otpauth_uri(issuer: &str, account: &str, secret_base32: &str) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let issuer = utf8_percent_encode(issuer, NON_ALPHANUMERIC).to_string();
    let account = utf8_percent_encode(account, NON_ALPHANUMERIC).to_string();
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret_base32}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_S}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1, the last six digits of each code.
    #[test]
    fn codes_match_the_rfc_test_vectors() {
        let secret = b"12345678901234567890";
        for (t, code) in [
            (59, 287_082),
            (1_111_111_109, 81_804),
            (1_111_111_111, 50_471),
            (1_234_567_890, 5_924),
            (2_000_000_000, 279_037),
            (20_000_000_000, 353_130),
        ] {
            assert_eq!(code_at(secret, step_at(t * 1000)), code, "T = {t}");
        }
    }

    #[test]
    fn a_code_is_good_one_step_either_way_and_never_twice() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111_000;
        let step = step_at(now);
        let code = |s: u64| format!("{:06}", code_at(secret, s));
        assert_eq!(matching_step(secret, &code(step), now, None), Some(step));
        assert_eq!(
            matching_step(secret, &code(step - 1), now, None),
            Some(step - 1)
        );
        assert_eq!(
            matching_step(secret, &code(step + 1), now, None),
            Some(step + 1)
        );
        assert_eq!(matching_step(secret, &code(step - 2), now, None), None);
        assert_eq!(matching_step(secret, &code(step), now, Some(step)), None);
        assert_eq!(
            matching_step(secret, &code(step + 1), now, Some(step)),
            Some(step + 1)
        );
        for bad in ["", "12345", "1234567", "12345a", " 1 2 3 "] {
            assert_eq!(matching_step(secret, bad, now, None), None, "{bad}");
        }
    }

    #[test]
    fn the_uri_is_what_authenticator_apps_read() {
        assert_eq!(
            otpauth_uri("Acme Portal", "bob@acme.example", "JBSWY3DPEHPK3PXP"),
            "otpauth://totp/Acme%20Portal:bob%40acme%2Eexample?secret=JBSWY3DPEHPK3PXP&issuer=Acme%20Portal&algorithm=SHA1&digits=6&period=30"
        );
    }
}
