//! A request's query string, which anyone who can reach the node's HTTP
//! port writes: every handler's decoding and checks refuse or accept,
//! never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A URI's query is ASCII by the time axum reads it; as text, any bytes
    // that are UTF-8 also reach the decoder (percent-escapes included).
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = buildmesh_http::fuzzing::query(text);
    }
});
