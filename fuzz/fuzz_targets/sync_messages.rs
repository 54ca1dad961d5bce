//! The peer protocol's requests and responses (sync and blob fetches,
//! docs/protocol.md §9): decoding refuses or gives a message that encodes
//! and decodes again.
#![no_main]

use buildmesh_protocol::{Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = Request::decode(data) {
        let bytes = request.encode();
        assert!(Request::decode(&bytes).is_ok(), "a request re-encodes");
    }
    if let Ok(response) = Response::decode(data) {
        let bytes = response.encode();
        assert!(Response::decode(&bytes).is_ok(), "a response re-encodes");
    }
});
