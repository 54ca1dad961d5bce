//! Who may write to the log, and how much (docs/protocol.md §6.1).
//!
//! Any node takes entries for the whole mesh, so without these rules the
//! log would be free storage for anyone with a key: a stranger could fill
//! every node's disk and every node would pass the flood on. An author's
//! entries are kept only when the author has a *role* in a project the log
//! holds, and every author's chain has a quota.
//!
//! Both rules are functions of the entries held, never of arrival order,
//! so the log stays a CRDT: roles only ever grow (an entry that gives one
//! is never taken back, and a revocation changes what counts in views, not
//! what is stored), and quotas are counted along the author's own chain,
//! whose order the author fixed when signing.

use super::index::IndexKey;
use super::ingest::Quota;
use super::store::ChainStore;
use buildmesh_protocol::{AttestedResult, Body, ENTRY_BYTES_MAX, Entry, TestedResult};

/// Most entries in one author's chain: a node key that claims and reports
/// a thousand builds a day reaches it after about 500 days and must then
/// take a new key.
pub const AUTHOR_ENTRIES_MAX: u64 = 1 << 20;

/// Most wire bytes in one author's linked chain (1 GiB).
pub const AUTHOR_BYTES_MAX: u64 = 1 << 30;

/// Most declarations (project, trust and revocation entries) in one
/// author's chain. A declaration gives up to 512 keys a role, so this
/// bounds how many keys one author can let in.
pub const AUTHOR_DECLARATIONS_MAX: u32 = 1024;

/// What an author's linked chain has used of its quota.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Wire bytes of the linked entries.
    pub bytes: u64,
    /// Project, trust and revocation entries among them.
    pub declarations: u32,
}

impl Usage {
    /// With `entry` added.
    pub fn plus(self, entry: &Entry) -> Usage {
        let declaration = is_declaration(entry);
        Usage {
            bytes: self.bytes.saturating_add(entry.wire_len() as u64),
            declarations: self.declarations.saturating_add(u32::from(declaration)),
        }
    }

    /// With `entry` taken away again: a linked entry forgotten because its
    /// author forked before it (docs/protocol.md §6, "Freezing").
    pub fn minus(self, entry: &Entry) -> Usage {
        let declaration = is_declaration(entry);
        Usage {
            bytes: self.bytes.saturating_sub(entry.wire_len() as u64),
            declarations: self.declarations.saturating_sub(u32::from(declaration)),
        }
    }

    /// The most `entries` more entries could add, whatever they are: an
    /// entry held out of order is kept only if its gap, filled with the
    /// largest declarations, would still fit, so that it can always link.
    pub fn at_worst(self, entries: u64) -> Usage {
        let entry_bytes = ENTRY_BYTES_MAX as u64;
        Usage {
            bytes: self
                .bytes
                .saturating_add(entries.saturating_mul(entry_bytes)),
            declarations: self
                .declarations
                .saturating_add(u32::try_from(entries).unwrap_or(u32::MAX)),
        }
    }

    /// The first quota this is past, if any.
    pub fn past_quota(self) -> Option<Quota> {
        if self.bytes > AUTHOR_BYTES_MAX {
            Some(Quota::Bytes)
        } else if self.declarations > AUTHOR_DECLARATIONS_MAX {
            Some(Quota::Declarations)
        } else {
            None
        }
    }

    /// Whether this is within every quota.
    pub fn within_quota(self) -> bool {
        self.past_quota().is_none()
    }
}

/// Whether `entry` counts against [`AUTHOR_DECLARATIONS_MAX`].
fn is_declaration(entry: &Entry) -> bool {
    matches!(
        entry.body(),
        Body::Project(_) | Body::Trust(_) | Body::Revoke(_) | Body::RevokeBuilder(_)
    )
}

/// Whether the log may hold `entry` as far as roles go: its author has a
/// role in a project the log holds, or the entry gives it one (a project
/// declaration makes its author the owner; a claim or result for an open
/// project makes its author one of its builders).
pub fn has_role<S: ChainStore>(store: &S, entry: &Entry) -> Result<bool, S::Error> {
    let opens = |project| store.has_index(&IndexKey::Open(project).prefix());
    match entry.body() {
        Body::Project(_) => return Ok(true),
        Body::Claim(c) if opens(&c.project)? => return Ok(true),
        Body::Result(r)
        | Body::Tested(TestedResult { result: r, .. })
        | Body::Attested(AttestedResult { result: r, .. })
            if opens(&r.project)? =>
        {
            return Ok(true);
        }
        _ => {}
    }
    store.has_index(&IndexKey::Role(&entry.author()).prefix())
}
