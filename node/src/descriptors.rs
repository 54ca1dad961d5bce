//! File descriptors: how many HTTP connections this process can afford.
//!
//! Every connection holds a descriptor, and so do the store, the peers and
//! each build's pipes. A node that ran out would stop accepting anyone, its
//! operator included, so the HTTP connection cap is fitted under the limit
//! the process has, after raising its soft limit as far as it may.

use buildmesh_http::{CONNECTIONS_MAX, Limits};
use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Descriptors kept for everything but HTTP clients: the store's files,
/// peers' connections, builds' pipes and logs.
pub const RESERVED: u64 = 256;

/// How far the soft limit is raised toward the hard one.
pub const SOFT_TARGET: u64 = 65_536;

/// The HTTP limits for this process: the defaults, with the connection
/// caps lowered if the descriptor limit cannot hold them.
pub fn http_limits() -> Limits {
    let defaults = Limits::default();
    let Some(soft) = raised_soft_limit() else {
        return defaults;
    };
    let room = usize::try_from(soft.saturating_sub(RESERVED) / 2).unwrap_or(usize::MAX);
    if room >= CONNECTIONS_MAX {
        return defaults;
    }
    let connections = room.max(16);
    tracing::warn!(
        soft_limit = soft,
        connections,
        "few file descriptors: HTTP connections capped at {connections} (raise `ulimit -n` to \
         {} or more for the default {CONNECTIONS_MAX})",
        RESERVED + 2 * CONNECTIONS_MAX as u64
    );
    Limits {
        connections,
        connections_per_client: (connections / 8).max(4),
        ..defaults
    }
}

/// Raises the soft descriptor limit toward the hard one; returns the soft
/// limit in force (`None`: it cannot be read).
fn raised_soft_limit() -> Option<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let wanted = hard.min(SOFT_TARGET);
    if wanted > soft && setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).is_ok() {
        return Some(wanted);
    }
    Some(soft)
}
