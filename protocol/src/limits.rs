//! Sizes a peer controls, bounded here so every decoder enforces them.

/// Largest accepted wire form of one entry (signature plus content), bytes.
///
/// Small enough to travel in one gossipsub message (65,536 bytes) with room
/// for framing; build logs never travel inside entries, only their hashes.
pub const ENTRY_BYTES_MAX: usize = 48 * 1024;

/// Longest name, branch, platform label or other short text, in bytes.
pub const SHORT_TEXT_BYTES_MAX: usize = 256;

/// Longest free text (repository URL, commit title, error message), bytes.
pub const LONG_TEXT_BYTES_MAX: usize = 4096;

/// Most items in any list inside a body (branches, platforms, steps, ...).
pub const LIST_ITEMS_MAX: usize = 256;

/// Most failing tests a result names. With names of up to
/// [`SHORT_TEXT_BYTES_MAX`] bytes they take at most 8 KiB of an entry;
/// the full list stays in the result's details blob.
pub const FAILING_TESTS_MAX: usize = 32;

/// Most thresholds one project sets.
pub const THRESHOLDS_MAX: usize = 64;

/// Most parents a commit announcement may name.
pub const COMMIT_PARENTS_MAX: usize = 16;
