//! The one place the binary reads the wall clock for a time: the driver
//! calls [`now`] (and its executor, to date the builds live pages
//! follow), and the HTTP server is handed it (`Backend::clock`).
//! Elsewhere only monotonic `Instant`s are read (timeouts, rate limits),
//! and the runner's sandbox trial names a temporary directory after the
//! system time, which no decision reads.

use buildmesh_protocol::Timestamp;
use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in ms since the Unix epoch (0 if the clock is before 1970).
pub fn now() -> Timestamp {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
}
