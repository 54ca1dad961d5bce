//! Signed entries for the store's tests and benches: chains of varied
//! bodies (so every index is exercised), forks of both kinds.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use buildmesh_protocol::{
    Body, BuildResult, BuilderPolicy, Claim, CommitAnnouncement, CommitId, Entry, EntryContent,
    EntryId, ForceBuild, ForceTarget, Outcome, ProjectDeclaration, ProjectId, PublicKey, Role,
    Timestamp, TrustChange,
};
use ed25519_dalek::SigningKey;
use std::collections::BTreeMap;

/// The project every generated body names.
pub const PROJECT: ProjectId = ProjectId([7; 32]);
/// Platforms cycled through by claims and results.
pub const PLATFORMS: [&str; 2] = ["linux-x86_64", "macos-aarch64"];
/// Branches cycled through by announcements.
pub const BRANCHES: [&str; 2] = ["main", "dev"];

/// The deterministic key number `n`.
pub fn key(n: u16) -> SigningKey {
    let mut seed = [0x5a; 32];
    seed[..2].copy_from_slice(&n.to_be_bytes());
    SigningKey::from_bytes(&seed)
}

/// Author of [`key`]`(n)`.
pub fn author(n: u16) -> PublicKey {
    key(n).verifying_key().into()
}

/// One of four commits, so several entries share a cell.
pub fn commit(n: u64) -> CommitId {
    CommitId::from_bytes(&[u8::try_from(n % 4).unwrap() + 1; 20]).unwrap()
}

/// A body of a kind chosen by `n` (all seven kinds in turn); `variant`
/// changes a text field so the same `n` can make a different entry.
pub fn body(author: PublicKey, n: u64, variant: u32) -> Body {
    let platform = PLATFORMS[usize::try_from(n % 2).unwrap()].to_owned();
    let branch = BRANCHES[usize::try_from(n / 7 % 2).unwrap()].to_owned();
    match n % 7 {
        0 => Body::Announce(CommitAnnouncement {
            project: PROJECT,
            branch,
            commit: commit(n),
            parents: vec![commit(n + 1)],
            title: format!("commit {n} v{variant}"),
            author: "A. Dev <a@example.org>".into(),
            committed_at: Timestamp(n),
        }),
        1 => Body::Claim(Claim {
            project: PROJECT,
            commit: commit(n),
            platform,
            lease_expires: Timestamp(1_000_000 + n + u64::from(variant)),
        }),
        2 => Body::Result(BuildResult {
            project: PROJECT,
            commit: commit(n),
            platform,
            outcome: Outcome::Passed,
            steps: Vec::new(),
            artifacts: Vec::new(),
            metrics: BTreeMap::from([("tests".to_owned(), n as f64)]),
            environment: BTreeMap::from([("os".to_owned(), format!("linux v{variant}"))]),
            error: None,
        }),
        3 => Body::Trust(TrustChange {
            project: PROJECT,
            subject: author,
            role: Role::Builder,
        }),
        4 => Body::Force(ForceBuild {
            project: PROJECT,
            target: ForceTarget::Branch(branch),
            platforms: Vec::new(),
            reason: format!("flaky v{variant}"),
        }),
        5 => Body::Project(ProjectDeclaration {
            name: format!("demo{}", n % 3),
            repository: format!("https://example.org/demo.git#v{variant}"),
            branches: BRANCHES.iter().map(|b| (*b).to_owned()).collect(),
            platforms: PLATFORMS.iter().map(|p| (*p).to_owned()).collect(),
            announcers: Vec::new(),
            builders: BuilderPolicy::Open,
            builds_per_cell: 1,
        }),
        _ => Body::Revoke(TrustChange {
            project: PROJECT,
            subject: author,
            role: Role::Announcer,
        }),
    }
}

fn content(author: PublicKey, seq: u64, prev: EntryId, variant: u32) -> EntryContent {
    EntryContent {
        author,
        seq,
        prev,
        timestamp: Timestamp(1_700_000_000_000 + seq * 1000 + u64::from(variant)),
        body: body(author, seq, variant),
    }
}

/// The first `len` entries of key `n`'s honest chain.
pub fn chain(n: u16, len: u64) -> Vec<Entry> {
    let (key, author) = (key(n), author(n));
    let mut entries: Vec<Entry> = Vec::with_capacity(usize::try_from(len).unwrap());
    for seq in 1..=len {
        let prev = entries.last().map_or(EntryId::ZERO, Entry::id);
        entries.push(Entry::sign(&key, content(author, seq, prev, 0)).unwrap());
    }
    entries
}

/// A second entry at `chain[seq - 1]`'s place (same predecessor, other
/// body): an equivocation.
pub fn equivocation(n: u16, chain: &[Entry], seq: u64, variant: u32) -> Entry {
    assert!(variant > 0, "variant 0 is the honest chain");
    let prev = if seq == 1 {
        EntryId::ZERO
    } else {
        chain[usize::try_from(seq - 2).unwrap()].id()
    };
    Entry::sign(&key(n), content(author(n), seq, prev, variant)).unwrap()
}

/// An entry at `seq` whose `prev` is not the chain's entry `seq - 1`: a
/// broken link (`seq` must be at least 2).
pub fn broken_link(n: u16, seq: u64, variant: u32) -> Entry {
    Entry::sign(
        &key(n),
        content(author(n), seq, EntryId([0xee; 32]), variant),
    )
    .unwrap()
}

/// Root's declaration naming keys 0 to 255 as announcers: with it held,
/// those keys have a role (docs/protocol.md §6.1) and tests of the chain
/// rules may offer their entries in any order.
pub fn roles() -> Entry {
    let root = key(u16::MAX);
    let content = EntryContent {
        author: author(u16::MAX),
        seq: 1,
        prev: EntryId::ZERO,
        timestamp: Timestamp(1_700_000_000_000),
        body: Body::Project(ProjectDeclaration {
            name: "roles".into(),
            repository: "https://example.org/roles.git".into(),
            branches: vec!["main".into()],
            platforms: vec![PLATFORMS[0].into()],
            announcers: (0..256).map(author).collect(),
            builders: BuilderPolicy::Only(Vec::new()),
            builds_per_cell: 1,
        }),
    };
    Entry::sign(&root, content).unwrap()
}

/// `store` with [`roles`] ingested.
pub fn granted<S: buildmesh_core::log::ChainStore>(mut store: S) -> S {
    buildmesh_core::log::ingest(&mut store, roles()).unwrap();
    store
}
