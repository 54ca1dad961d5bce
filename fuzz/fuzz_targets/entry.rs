//! An entry's wire form (docs/protocol.md §4, §5): decoding refuses or
//! gives an entry whose wire form is exactly the input (one value, one
//! encoding), and that decodes again to the same entry.
#![no_main]

use buildmesh_protocol::Entry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = Entry::from_wire(data) {
        let wire = entry.to_wire();
        assert_eq!(wire, data, "an accepted entry has one wire form");
        let again = Entry::from_wire(&wire).expect("its own wire form decodes");
        assert_eq!(again.id(), entry.id());
    }
});
