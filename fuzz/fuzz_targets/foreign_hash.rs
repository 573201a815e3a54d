//! Any text an import presents as another system's password hash: refused
//! with a reason or read within the cost bounds, never a panic; a hash read
//! is checked against a password without a panic either.
#![no_main]

use access_service::passwords::foreign::{ForeignHash, Scheme};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(hash) = ForeignHash::parse(text) else {
        return;
    };
    // Costs within the bounds can still take a second: only the cheapest
    // form is run, so the fuzzer keeps its pace.
    let cheap = hash.scheme() == Scheme::Bcrypt && text.get(4..6) == Some("04");
    if cheap {
        let _ = hash.matches(b"password", |_, _| false);
    }
});
