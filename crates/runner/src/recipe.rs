//! `.buildmesh.toml`: what a build runs, read at the announced commit.
//!
//! The file is parsed into plain serde structs first ([`raw`]), then checked
//! and turned into a [`Recipe`] ([`check`]), so a recipe that exists is one
//! the runner can execute without further checks. Every bound here exists
//! because the file comes from the repository, which anyone can push to:
//! the recipe must not be able to make the result unsignable (too many or
//! too long strings) or the node unresponsive (huge files, runaway regexes).

mod check;
mod raw;
mod reports;
mod take;

pub use take::MetricTake;

use regex::bytes::Regex;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Where the recipe lives in a repository.
pub const RECIPE_PATH: &str = ".buildmesh.toml";
/// Largest recipe file read, bytes.
pub const RECIPE_BYTES_MAX: usize = 64 * 1024;
/// Most steps a recipe may declare.
pub const STEPS_MAX: usize = 64;
/// Most metrics a recipe may declare.
pub const METRICS_MAX: usize = 64;
/// Most tool-version commands in `[environment]`.
pub const TOOLS_MAX: usize = 16;
/// Most environment variables one step may declare.
pub const STEP_ENV_MAX: usize = 64;
/// Longest step or metric name, bytes: names are labels on a dashboard,
/// and 64 of each must still fit in one signed entry.
pub const NAME_BYTES_MAX: usize = 64;
/// Longest step command, bytes (the protocol's long-text limit).
pub const COMMAND_BYTES_MAX: usize = buildmesh_protocol::LONG_TEXT_BYTES_MAX;
/// Longest tool command, bytes: it becomes an environment key, which the
/// protocol bounds as short text.
pub const TOOL_BYTES_MAX: usize = buildmesh_protocol::SHORT_TEXT_BYTES_MAX;
/// Most patterns in `[artifacts] paths`.
pub const ARTIFACT_PATTERNS_MAX: usize = 32;
/// Most labels in `platforms`.
pub const PLATFORMS_MAX: usize = 64;
/// Longest artifact pattern, bytes: a file it names must fit the protocol's
/// long-text limit, or it could not be listed.
pub const ARTIFACT_PATTERN_BYTES_MAX: usize = buildmesh_protocol::LONG_TEXT_BYTES_MAX;
/// Most patterns in `[reports] junit`.
pub const REPORT_PATTERNS_MAX: usize = 16;
/// The name of the step the runner adds to a result whose recipe has
/// `[reports]`: its log says what was read and what was refused. A recipe
/// with `[reports]` may not name a step so.
pub const REPORTS_STEP: &str = "reports";
/// Step timeout when the recipe gives none.
pub const TIMEOUT_SECS_DEFAULT: u64 = 3600;
/// Longest step timeout accepted: one day.
pub const TIMEOUT_SECS_MAX: u64 = 86_400;

/// A checked recipe.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// The steps, in the order they run.
    pub steps: Vec<Step>,
    /// Numbers to capture after the steps, by metric name.
    pub metrics: BTreeMap<String, MetricSource>,
    /// Commands whose first output line describes the builder
    /// (`cc --version`); each becomes an environment entry.
    pub tools: Vec<String>,
    /// Variables of the node's own environment every step gets (a step's
    /// `env` still wins): for toolchains found through `PATH` or `HOME`.
    pub inherit: Vec<String>,
    /// Files kept after a passing build: paths relative to the work dir,
    /// each component possibly a `*`/`?` glob ([`ArtifactPattern`]).
    pub artifacts: Vec<ArtifactPattern>,
    /// Test reports, coverage and metrics files to read after the steps;
    /// `None` when the recipe has no `[reports]` table.
    pub reports: Option<Reports>,
    /// Whether steps may reach the network (`network = false` at the top
    /// of the recipe turns it off; a node's operator may turn it off for
    /// every build). Only a sandboxed step can be kept off the network.
    pub network: bool,
    /// The platforms the recipe builds at this commit (`platforms = [...]`
    /// at the top); `None`: all. A builder of another platform runs no
    /// step and reports [`buildmesh_protocol::Outcome::Skipped`].
    pub platforms: Option<Vec<String>>,
}

impl Recipe {
    /// Whether a builder of `platform` runs this recipe.
    pub fn builds_platform(&self, platform: &str) -> bool {
        self.platforms
            .as_ref()
            .is_none_or(|list| list.iter().any(|p| p == platform))
    }

    /// `step`'s environment: the inherited variables the node has, then
    /// the step's own.
    pub fn environment_of(&self, step: &Step) -> BTreeMap<String, String> {
        let mut env = self.inherited();
        env.extend(step.env.clone());
        env
    }

    /// The inherited variables the node has, with its values.
    pub fn inherited(&self) -> BTreeMap<String, String> {
        self.inherit
            .iter()
            .filter_map(|name| {
                let value = std::env::var(name).ok().or_else(|| implied(name))?;
                Some((name.clone(), value))
            })
            .collect()
    }
}

/// What rustup and cargo use when `CARGO_HOME` or `RUSTUP_HOME` is not
/// set: `$HOME/.cargo` and `$HOME/.rustup`, if they exist. A step has a
/// home of its own (in a sandbox), so inheriting these names must give it
/// the node's toolchain wherever the node found it.
fn implied(name: &str) -> Option<String> {
    let dir = match name {
        "CARGO_HOME" => ".cargo",
        "RUSTUP_HOME" => ".rustup",
        _ => return None,
    };
    let path = std::path::Path::new(&std::env::var_os("HOME")?).join(dir);
    path.is_dir().then(|| path.display().to_string())
}

/// One step of a recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Unique, non-empty name.
    pub name: String,
    /// Run with `/bin/sh -c`.
    pub command: String,
    /// Killed with its process group past this.
    pub timeout: Duration,
    /// Variables added to the step's (otherwise cleared) environment.
    pub env: BTreeMap<String, String>,
    /// `on_failure = "warn"`: its failure does not fail the build, which
    /// goes on and ends in [`buildmesh_protocol::Outcome::Warnings`] (a
    /// linter a project is not ready to enforce).
    pub warn_on_failure: bool,
}

/// One entry of `[artifacts] paths`: a relative path whose components may
/// hold `*` (any run of characters) and `?` (one character). Neither
/// crosses a `/`, neither matches a leading `.`, and every other character
/// (including `[`) stands for itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactPattern {
    /// As written in the recipe.
    pub text: String,
    /// Its components, without `.` ones; never empty, never `..`.
    pub components: Vec<String>,
}

impl ArtifactPattern {
    /// Whether any component is a glob rather than a plain name.
    pub fn is_glob(&self) -> bool {
        self.components.iter().any(|c| is_glob(c))
    }
}

/// Whether one path component holds a wildcard.
pub(crate) fn is_glob(component: &str) -> bool {
    component.contains(['*', '?'])
}

/// A recipe's `[reports]`: files the steps write, read after them (also
/// when a step failed) into the result's tests and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reports {
    /// JUnit XML files: paths relative to the work dir, globs as in
    /// `[artifacts] paths`.
    pub junit: Vec<ArtifactPattern>,
    /// One LCOV or Cobertura file (told apart by content): line and branch
    /// coverage.
    pub coverage: Option<ArtifactPattern>,
    /// One file of `name value [unit]` lines (Hydra's convention).
    pub metrics: Option<ArtifactPattern>,
}

/// Where a metric's number comes from.
#[derive(Debug, Clone)]
pub enum MetricSource {
    /// In a step's output, each match's first capture group that took
    /// part, made one number as `take` says.
    Output {
        /// The step whose log is searched.
        step: String,
        /// Has at least one capture group.
        regex: Regex,
        /// Which matches count (`first` unless the recipe says).
        take: MetricTake,
    },
    /// The trimmed content of a file in the work dir.
    File {
        /// Relative to the work dir, without `..`.
        path: PathBuf,
    },
}

/// Why a recipe was refused. Each message says where the problem is
/// (TOML errors carry line and column) and what would fix it.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// Larger than [`RECIPE_BYTES_MAX`].
    #[error("{RECIPE_PATH} is {bytes} bytes; the limit is {RECIPE_BYTES_MAX}")]
    TooLarge {
        /// Its size.
        bytes: usize,
    },
    /// Not UTF-8, so not TOML.
    #[error("{RECIPE_PATH} is not UTF-8: {0}")]
    NotUtf8(#[from] std::str::Utf8Error),
    /// Not valid TOML, or a key that is unknown or of the wrong type.
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    /// No `[[step]]` table.
    #[error("{RECIPE_PATH} declares no steps; add a [[step]] with a name and a command")]
    NoSteps,
    /// More of something than the runner accepts.
    #[error("{RECIPE_PATH} declares {count} {what}; the limit is {max}")]
    TooMany {
        /// Steps, metrics or tools.
        what: &'static str,
        /// How many it declares.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A `platforms` label is wrong.
    #[error("platforms[{index}]: {problem}")]
    Platform {
        /// 0-based index in the list.
        index: usize,
        /// What is wrong.
        problem: String,
    },
    /// A step is wrong.
    #[error("step {number} ({name:?}): {problem}")]
    Step {
        /// 1-based position in the file.
        number: usize,
        /// Its name, as written.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// A metric is wrong.
    #[error("metrics.{name}: {problem}")]
    Metric {
        /// Its name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// A tool command is wrong.
    #[error("environment.tools[{index}]: {problem}")]
    Tool {
        /// 0-based index in the list, as TOML arrays are written.
        index: usize,
        /// What is wrong.
        problem: String,
    },
    /// An artifact pattern is wrong.
    #[error("artifacts.paths[{index}]: {problem}")]
    Artifact {
        /// 0-based index in the list.
        index: usize,
        /// What is wrong.
        problem: String,
    },
    /// `[reports]` is there but names no file.
    #[error(
        "[reports] names no file; give junit = [\"...\"], coverage = \"...\" or \
         metrics = \"...\", or remove the table"
    )]
    NoReports,
    /// A `[reports]` entry is wrong.
    #[error("reports.{field}: {problem}")]
    Report {
        /// `junit`, `junit[0]`, `coverage` or `metrics`.
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// An inherited variable's name is wrong.
    #[error("environment.inherit[{index}]: {problem}")]
    Inherit {
        /// 0-based index in the list.
        index: usize,
        /// What is wrong.
        problem: String,
    },
}

impl Recipe {
    /// Parses and checks a recipe file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Recipe, RecipeError> {
        if bytes.len() > RECIPE_BYTES_MAX {
            return Err(RecipeError::TooLarge { bytes: bytes.len() });
        }
        let text = std::str::from_utf8(bytes)?;
        let raw: raw::RawRecipe = toml::from_str(text)?;
        check::recipe(raw)
    }

    /// The step called `name`.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests;
