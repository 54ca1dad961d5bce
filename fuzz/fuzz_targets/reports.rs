//! What a build writes and prints (docs/recipe.md, `[reports]`): JUnit,
//! LCOV/Cobertura, Hydra metrics files and test runners' summary lines.
//! The first byte picks the parser, the rest is its text.
#![no_main]

use buildmesh_runner::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let _ = match which % 4 {
        0 => fuzzing::junit(&text),
        1 => fuzzing::coverage(&text),
        2 => fuzzing::metrics_file(&text),
        _ => fuzzing::summary(&text),
    };
});
