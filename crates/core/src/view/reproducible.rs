//! Reproducibility: whether the trusted builders of one cell built the
//! same bytes.
//!
//! A passing vote says the steps exited zero; it does not say what the
//! builder shipped. Two builders that report one artifact name with two
//! hashes built different files from one commit: a non-reproducible build,
//! a differing toolchain, or a builder that tampered with what it kept.
//! Anyone can compare, since the hashes are in the signed results.

use super::cell::CellResult;
use super::project_log::ProjectLog;
use buildmesh_protocol::{BlobHash, EntryId, PublicKey, Timestamp, Vote};
use serde::Serialize;
use std::collections::BTreeMap;

/// How the builders of one artifact compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Agreement {
    /// Two builders or more, one hash.
    Reproducible,
    /// Two builders or more passed the cell, and their copies differ: more
    /// than one hash, or some kept no copy at all.
    Differs,
    /// Only one builder passed the cell so far.
    Unchecked,
}

impl Agreement {
    /// Its name in the API and pages.
    pub fn name(self) -> &'static str {
        match self {
            Agreement::Reproducible => "reproducible",
            Agreement::Differs => "differs",
            Agreement::Unchecked => "unchecked",
        }
    }
}

/// One builder's copy of an artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ArtifactBuild {
    /// Who built it.
    pub builder: PublicKey,
    /// Its content hash.
    pub hash: BlobHash,
    /// The result that names it.
    pub result: EntryId,
}

/// One artifact name of a cell and how its builders compare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactCheck {
    /// The artifact's name (its path in the work dir).
    pub name: String,
    /// How its copies compare.
    pub agreement: Agreement,
    /// Each builder's copy, in builder order.
    pub builds: Vec<ArtifactBuild>,
    /// The passing builders that kept no copy of it, in key order.
    pub missing: Vec<PublicKey>,
}

/// The artifacts of a cell whose counted results are `results`, by name:
/// those of each builder whose newest vote is a pass, from that result.
/// Failed builds keep no artifacts, and a builder's older build is not a
/// second witness.
pub fn artifact_checks(log: &ProjectLog, results: &[CellResult]) -> Vec<ArtifactCheck> {
    // Each builder's newest vote, as the quorum counts it; only a pass
    // brings its artifacts.
    let mut votes: BTreeMap<PublicKey, (Timestamp, EntryId, Option<Vote>)> = BTreeMap::new();
    for r in results.iter().filter(|r| r.outcome.vote().is_some()) {
        let this = (r.at, r.id, r.outcome.vote());
        let slot = votes.entry(r.builder).or_insert(this);
        if (this.0, this.1) > (slot.0, slot.1) {
            *slot = this;
        }
    }
    let newest: BTreeMap<PublicKey, (Timestamp, EntryId)> = votes
        .into_iter()
        .filter(|(_, (_, _, vote))| *vote == Some(Vote::Pass))
        .map(|(builder, (at, id, _))| (builder, (at, id)))
        .collect();
    let mut by_name: BTreeMap<&str, Vec<ArtifactBuild>> = BTreeMap::new();
    for (builder, (_, result)) in &newest {
        for (name, hash) in log.artifacts.get(result).into_iter().flatten() {
            by_name.entry(name).or_default().push(ArtifactBuild {
                builder: *builder,
                hash: *hash,
                result: *result,
            });
        }
    }
    by_name
        .into_iter()
        .map(|(name, builds)| {
            let missing: Vec<PublicKey> = newest
                .keys()
                .filter(|k| !builds.iter().any(|b| b.builder == **k))
                .copied()
                .collect();
            ArtifactCheck {
                name: name.to_owned(),
                agreement: agreement(&builds, &missing),
                builds,
                missing,
            }
        })
        .collect()
}

/// A builder that passed without a copy built something else as much as
/// one with another hash did; and if a missing copy left the artifact
/// unchecked, a builder that keeps nothing could hold back every cell.
fn agreement(builds: &[ArtifactBuild], missing: &[PublicKey]) -> Agreement {
    match builds {
        _ if !missing.is_empty() => Agreement::Differs,
        [] | [_] => Agreement::Unchecked,
        [first, rest @ ..] if rest.iter().all(|b| b.hash == first.hash) => Agreement::Reproducible,
        _ => Agreement::Differs,
    }
}

/// The cell's artifacts as one: any that differs, else any unchecked,
/// else reproducible; `None` when it has none.
pub fn overall_agreement(checks: &[ArtifactCheck]) -> Option<Agreement> {
    [
        Agreement::Differs,
        Agreement::Unchecked,
        Agreement::Reproducible,
    ]
    .into_iter()
    .find(|a| checks.iter().any(|c| c.agreement == *a))
}
