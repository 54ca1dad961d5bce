//! The recipe exactly as TOML spells it; [`super::check`] makes it a
//! [`super::Recipe`]. Unknown keys are errors, so a typo (`comand`) is
//! reported with its line instead of silently ignored.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRecipe {
    #[serde(default)]
    pub step: Vec<RawStep>,
    #[serde(default)]
    pub metrics: BTreeMap<String, RawMetric>,
    #[serde(default)]
    pub environment: RawEnvironment,
    #[serde(default)]
    pub artifacts: RawArtifacts,
    /// `None` when the recipe has no `[reports]` table: then no `reports`
    /// step is added to the result.
    pub reports: Option<RawReports>,
    #[serde(default = "default_network")]
    pub network: bool,
    /// `None`: every platform builds it.
    pub platforms: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStep {
    pub name: String,
    pub command: String,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub on_failure: RawOnFailure,
}

/// What a step's failure does to the build (Buildbot's `flunkOnFailure`
/// and `warnOnFailure`, as one choice).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawOnFailure {
    /// The build fails and later steps are skipped.
    #[default]
    Fail,
    /// The build goes on, and ends in `warnings` if nothing else failed.
    Warn,
}

/// Either `{ step, regex }` (with an optional `take`) or `{ file }`. Not
/// an untagged enum: serde's message for that ("did not match any
/// variant") would not say which key is missing. `take` is a string here,
/// checked in [`super::check`], so an unknown choice is named with the
/// metric and the choices there are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetric {
    pub step: Option<String>,
    pub regex: Option<String>,
    pub take: Option<String>,
    pub file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEnvironment {
    #[serde(default)]
    pub tools: Vec<String>,
    #[serde(default)]
    pub inherit: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawArtifacts {
    #[serde(default)]
    pub paths: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReports {
    #[serde(default)]
    pub junit: Vec<String>,
    pub coverage: Option<String>,
    pub metrics: Option<String>,
}

fn default_network() -> bool {
    true
}

fn default_timeout() -> u64 {
    super::TIMEOUT_SECS_DEFAULT
}
