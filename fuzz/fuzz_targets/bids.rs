//! Signed bids and lease renewals (docs/protocol.md §10, §11): decoding
//! refuses or gives a message whose wire form is exactly the input.
#![no_main]

use buildmesh_protocol::{SignedBid, SignedRenewal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(bid) = SignedBid::from_wire(data) {
        assert_eq!(bid.to_wire(), data, "an accepted bid has one wire form");
    }
    if let Ok(renewal) = SignedRenewal::from_wire(data) {
        assert_eq!(
            renewal.to_wire(),
            data,
            "an accepted renewal has one wire form"
        );
    }
});
