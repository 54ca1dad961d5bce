//! The platform matrices a log gives, derived with the node's own code.
//!
//! A node derives its matrix from its store with `ProjectLog::load` and
//! `view::matrix` (`node/src/views.rs`); this does the same over the
//! entries of an export, so that what it finds is what any honest node
//! holding those entries would serve.
//!
//! A matrix is a pure function of the entries *and the time*: a claim
//! makes its cell `building` only while its lease has not expired, and a
//! node also extends leases by renewals, which travel by gossip and are
//! never in the log. So each matrix is derived twice, as if every lease
//! were live (at time 0) and as if every lease had lapsed (at the end of
//! time), and a served value is the log's when it is either. Everything
//! else in a matrix does not depend on the time and must match exactly.
//! Derived a third time at a given moment, it is what a person is shown.

use buildmesh_core::log::EntryStore;
use buildmesh_core::view::{Matrix, MatrixOptions, ProjectLog, matrix, projects};
use buildmesh_protocol::{ProjectId, PublicKey, Timestamp};
use serde_json::Value;
use std::collections::BTreeMap;

/// How to derive: the same bounds the node uses for the matrix it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeriveOptions {
    /// Rows of a matrix (the node serves its newest 50 commits when asked
    /// without options: `buildmesh_http::views::MATRIX_ROWS_DEFAULT`).
    pub rows_max: usize,
    /// Announcements read per project (`MATRIX_ROWS_MAX` on a node).
    pub announcements_max: usize,
    /// The moment of the matrix shown to a person ([`DerivedMatrix::at`]).
    pub at: Timestamp,
}

/// One project's matrix as the log gives it, rendered by the caller's
/// function (the node's JSON, so served and derived compare as strings
/// and no status is named here).
#[derive(Debug, Clone, PartialEq)]
pub struct DerivedMatrix {
    /// The project.
    pub project: ProjectId,
    /// Its declared name.
    pub name: String,
    /// Its owner.
    pub owner: PublicKey,
    /// At [`DeriveOptions::at`].
    pub at: Value,
    /// With every claim's lease live (time 0).
    pub live: Value,
    /// With every claim's lease lapsed (time `u64::MAX`).
    pub lapsed: Value,
}

/// The moment at which every lease is still live.
pub const EVERY_LEASE_LIVE: Timestamp = Timestamp(0);

/// The moment at which every lease has lapsed.
pub const EVERY_LEASE_LAPSED: Timestamp = Timestamp(u64::MAX);

/// Every project of `store` whose declaration counts (those a node
/// serves), each derived at the three moments and rendered by `render`.
pub fn derive_matrices<S: EntryStore>(
    store: &S,
    options: &DeriveOptions,
    render: impl Fn(&Matrix<'_>) -> Value,
) -> Result<BTreeMap<ProjectId, DerivedMatrix>, S::Error> {
    let matrix_options = MatrixOptions {
        branch: None,
        rows_max: Some(options.rows_max),
    };
    let mut derived = BTreeMap::new();
    for project in projects(store)? {
        let log = ProjectLog::load(store, &project, options.announcements_max)?;
        let at = |now| matrix(&log, now, &matrix_options);
        let (Some(shown), Some(live), Some(lapsed)) =
            (at(options.at), at(EVERY_LEASE_LIVE), at(EVERY_LEASE_LAPSED))
        else {
            continue;
        };
        derived.insert(
            project,
            DerivedMatrix {
                project,
                name: shown.name.to_owned(),
                owner: shown.owner,
                at: render(&shown),
                live: render(&live),
                lapsed: render(&lapsed),
            },
        );
    }
    Ok(derived)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use buildmesh_core::log::{ChainWriter, MemStore, ingest};
    use buildmesh_protocol::{
        Body, BuildResult, BuilderPolicy, Claim, CommitAnnouncement, CommitId, Outcome,
        ProjectDeclaration,
    };
    use ed25519_dalek::SigningKey;

    fn options() -> DeriveOptions {
        DeriveOptions {
            rows_max: 50,
            announcements_max: 1000,
            at: Timestamp(10_000),
        }
    }

    fn render(matrix: &Matrix<'_>) -> Value {
        serde_json::to_value(matrix).unwrap()
    }

    /// A project whose owner announces a commit and claims it on one
    /// platform (lease to 20 s) and reports a result on the other.
    fn claimed_and_built() -> (MemStore, ProjectId) {
        let key = SigningKey::from_bytes(&[4; 32]);
        let owner = PublicKey::from(key.verifying_key());
        let project = ProjectId::derive(&owner, "demo");
        let commit = CommitId::from_bytes(&[1; 20]).unwrap();
        let mut writer = ChainWriter::new(key);
        let bodies = vec![
            Body::Project(ProjectDeclaration {
                name: "demo".into(),
                repository: "https://example.org/demo.git".into(),
                branches: vec!["main".into()],
                platforms: vec!["a".into(), "b".into()],
                announcers: vec![owner],
                builders: BuilderPolicy::Only(vec![owner]),
                builds_per_cell: 1,
            }),
            Body::Announce(CommitAnnouncement {
                project,
                branch: "main".into(),
                commit: commit.clone(),
                parents: Vec::new(),
                title: "a change".into(),
                author: "Ada".into(),
                committed_at: Timestamp(1),
            }),
            Body::Claim(Claim {
                project,
                commit: commit.clone(),
                platform: "a".into(),
                lease_expires: Timestamp(20_000),
            }),
            Body::Result(BuildResult {
                project,
                commit,
                platform: "b".into(),
                outcome: Outcome::Failed,
                steps: Vec::new(),
                artifacts: Vec::new(),
                metrics: Default::default(),
                environment: Default::default(),
                error: None,
            }),
        ];
        let mut store = MemStore::default();
        for (i, body) in bodies.into_iter().enumerate() {
            let entry = writer
                .write(Timestamp(1_000 * (i as u64 + 1)), body)
                .unwrap();
            ingest(&mut store, entry).unwrap();
        }
        (store, project)
    }

    #[test]
    fn a_lease_is_live_in_one_derivation_and_lapsed_in_the_other() {
        let (store, project) = claimed_and_built();
        let derived = derive_matrices(&store, &options(), render).unwrap();
        let demo = &derived[&project];
        assert_eq!(demo.name, "demo");
        let status = |m: &Value, column: usize| m["rows"][0]["cells"][column]["status"].clone();
        assert_eq!(status(&demo.live, 0), "Claimed");
        assert_eq!(status(&demo.lapsed, 0), "Pending");
        assert_eq!(status(&demo.at, 0), "Claimed", "at 10 s the lease is live");
        for m in [&demo.live, &demo.lapsed, &demo.at] {
            assert_eq!(status(m, 1), "Failed", "a result does not lapse");
        }
    }

    #[test]
    fn an_empty_log_gives_no_matrix() {
        let derived = derive_matrices(&MemStore::default(), &options(), render).unwrap();
        assert!(derived.is_empty());
    }
}
