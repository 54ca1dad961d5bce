//! `.buildmesh.toml`, which anyone who can push writes: parsing refuses or
//! accepts, never panics, whatever the bytes.
#![no_main]

use buildmesh_runner::Recipe;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Recipe::parse(data);
});
