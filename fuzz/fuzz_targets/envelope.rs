//! Any bytes given to the envelope decoder: an error or an envelope that
//! encodes back to a decodable equal, never a panic.
#![no_main]

use access_catalogue::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::decode(data) {
        let again = Envelope::decode(&envelope.encode()).expect("a decoded envelope encodes back");
        assert_eq!(again, envelope);
    }
});
