//! Any text presented as an invitation or reset link token: refused or
//! verified, never a panic; a forged token never verifies.
#![no_main]

use access_keyring::{Keyring, ServerKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let signer = Keyring::new(ServerKey::new(1, [7; 32]), vec![ServerKey::new(0, [9; 32])]);
    assert!(signer.verify_invitation(text).is_err(), "forged: {text:?}");
    assert!(signer.verify_reset(text).is_err(), "forged: {text:?}");
});
