//! A forge's pull request webhook body, which anyone who can reach the
//! node's HTTP port sends (after its signature is checked, but the parser
//! must not trust even a signed one).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = buildmesh_http::fuzzing::webhook(data);
});
