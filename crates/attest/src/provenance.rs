//! SLSA provenance v1 (`https://slsa.dev/provenance/v1`) of a result's
//! artifacts: which builder made them, from which commit and recipe.

use crate::statement::ResourceDescriptor;
use serde::Serialize;
use std::collections::BTreeMap;

/// The provenance predicate's type URI.
pub const SLSA_PROVENANCE_TYPE: &str = "https://slsa.dev/provenance/v1";

/// What `buildType` names: a buildmesh node ran the steps of the recipe
/// at the commit, on the platform, as `docs/recipe.md` says; the external
/// parameters are [`ExternalParameters`]. Under the project's repository
/// URL, so it moves with the project.
pub const BUILD_TYPE: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/attestations/build/v1");

/// The prefix of `builder.id`, followed by the node's public key in hex:
/// the builder is the node whose key signs the result and this
/// provenance, the identity the project trusts (or not).
pub const BUILDER_ID_PREFIX: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/nodes/");

/// The predicate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// What was built, from what.
    pub build_definition: BuildDefinition,
    /// Who built it.
    pub run_details: RunDetails,
}

/// The inputs of the build.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    /// [`BUILD_TYPE`].
    pub build_type: &'static str,
    /// What the build was asked to do.
    pub external_parameters: ExternalParameters,
    /// The commit and the recipe, by digest.
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// What a buildmesh build is asked: a commit of a project's repository,
/// on a platform. Everything else comes from the recipe at the commit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExternalParameters {
    /// The repository the project declares.
    pub repository: String,
    /// The commit, hex.
    pub commit: String,
    /// The platform label.
    pub platform: String,
    /// The project's id, hex.
    pub project: String,
}

/// The build's run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDetails {
    /// The node that built.
    pub builder: Builder,
    /// The steps' logs, by SHA-256 (blobs any node serves).
    pub byproducts: Vec<ResourceDescriptor>,
}

/// The node that built.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Builder {
    /// [`BUILDER_ID_PREFIX`] and its key.
    pub id: String,
    /// buildmesh's version.
    pub version: BTreeMap<&'static str, &'static str>,
}
