//! Any file given to the offline archive verifier: a report or an error
//! naming a line, never a panic.
#![no_main]

use access_log::archive;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = archive::verify(data);
});
