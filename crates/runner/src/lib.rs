//! buildmesh's build runner: it turns one job (project, repository, commit,
//! platform) into one [`BuildResult`](buildmesh_protocol::BuildResult).
//!
//! This crate is the edge where git, processes and files live. It decides
//! nothing about who builds what (that is `buildmesh-core`); it only runs
//! the build it is handed, as faithfully and as safely as it can:
//!
//! 1. keep a bare mirror of the repository ([`Mirror`]) and fetch it only
//!    when the commit is not there yet;
//! 2. read `.buildmesh.toml` at the commit, without a checkout ([`Recipe`]);
//! 3. write the commit's tree into a fresh work dir, removed afterwards
//!    whatever happens (after the step's processes are killed); one that a
//!    SIGKILLed process left is removed at the next start by
//!    [`remove_leftover_work_dirs`];
//! 4. run each step with `/bin/sh -c`, with a cleared environment and a
//!    timeout, in a bubblewrap sandbox when the context has one
//!    ([`Sandbox`]: the step sees its work dir, a private `/tmp` and
//!    `HOME`, the project's cache and the system read-only, under resource
//!    limits) and otherwise in its own process group; whatever it started
//!    is killed when the step ends ([`run_step`]);
//! 5. store every step's output (stdout and stderr interleaved) as a
//!    content-addressed blob ([`BlobDir`]);
//! 6. after a passing build, copy the files `[artifacts]` names into blobs
//!    too, and list them by name, hash and size: only regular files with a
//!    single link, opened beneath the work dir, ever leave it;
//! 7. read what the steps reported, whatever the outcome: `[reports]`
//!    JUnit, coverage and metrics files (refused, with a reason in an added
//!    `reports` step, when hostile), or without a JUnit report the summary
//!    lines of `cargo test`, cargo-nextest, pytest and `go test`, into the
//!    report's [`TestSummary`](buildmesh_protocol::TestSummary);
//! 8. capture metrics and the builder's environment, and fit every string
//!    into the protocol's limits so the result (with its tests) can be
//!    signed.
//!
//! The API is blocking and owns no async runtime: the node calls
//! [`run_build`] from a thread (or `spawn_blocking`) and bounds how many run
//! at once with [`BuildSlots`]. A [`Cancel`] handle aborts a running build.
//!
//! ```no_run
//! use buildmesh_runner::{BlobDir, BuildJob, RunnerContext, run_build};
//! use buildmesh_protocol::{Body, ProjectId};
//!
//! let context = RunnerContext::new(
//!     "/var/lib/buildmesh/mirrors".into(),
//!     "/var/lib/buildmesh/work".into(),
//!     BlobDir::open("/var/lib/buildmesh/blobs").unwrap(),
//! );
//! let job = BuildJob {
//!     project: ProjectId([0; 32]),
//!     repository: "https://example.invalid/demo.git".into(),
//!     commit: "00".repeat(20).parse().unwrap(),
//!     platform: "linux-x86_64".into(),
//! };
//! let report = run_build(&job, &context);
//! assert!(Body::Result(report.result).validate().is_ok());
//! ```

#![deny(missing_docs)]

mod artifacts;
mod blobs;
mod build;
mod cancel;
mod environment;
mod fit;
mod inside;
mod limits;
mod metrics;
mod mirror;
mod process;
mod recipe;
mod reports;
mod sandbox;
mod step;
mod workdir;

pub use artifacts::{ARTIFACT_BYTES_MAX_DEFAULT, ARTIFACT_NAME_BYTES_MAX, ARTIFACTS_MAX};
pub use blobs::{BlobDir, BlobWriter, LOG_BYTES_MAX_DEFAULT, StoredBlob};
pub use build::{
    BuildJob, BuildReport, OutputCallback, RunnerContext, StepCallback, StepEvent, run_build,
};
pub use cancel::Cancel;
pub use environment::{TOOL_TIMEOUT, capture_environment};
pub use limits::{BuildSlots, SlotGuard};
pub use metrics::{METRIC_FILE_BYTES_MAX, METRIC_LOG_BYTES_MAX};
pub use mirror::{
    BranchHead, CommitInfo, LocalCommit, Mirror, MirrorError, describe_local, is_local,
};
pub use process::PATH_DEFAULT;
pub use recipe::{
    ARTIFACT_PATTERN_BYTES_MAX, ARTIFACT_PATTERNS_MAX, ArtifactPattern, COMMAND_BYTES_MAX,
    METRICS_MAX, MetricSource, MetricTake, NAME_BYTES_MAX, RECIPE_BYTES_MAX, RECIPE_PATH,
    REPORT_PATTERNS_MAX, REPORTS_STEP, Recipe, RecipeError, Reports, STEP_ENV_MAX, STEPS_MAX, Step,
    TIMEOUT_SECS_DEFAULT, TIMEOUT_SECS_MAX, TOOL_BYTES_MAX, TOOLS_MAX,
};
pub use reports::{
    REPORT_BYTES_MAX, REPORT_FILE_BYTES_MAX, REPORT_FILES_MAX, REPORTS_COMMAND,
    SUMMARY_LOG_BYTES_MAX,
};
pub use sandbox::{
    Limits, SANDBOX_CACHE, SANDBOX_HOME, SANDBOX_WORK_DIR, Sandbox, SandboxConfig, SandboxError,
};
pub use step::{OnOutput, StepOptions, StepRun, run_step};
pub use workdir::{is_work_dir_name, remove_leftover_work_dirs};

/// The parsers of what a build writes and prints, for the fuzz targets in
/// `fuzz/` (not an API: each answers only whether its input was taken).
/// They read bytes a stranger's build controls, so they must refuse, never
/// panic nor loop, whatever they are given.
#[doc(hidden)]
pub mod fuzzing {
    /// A JUnit file's text.
    pub fn junit(text: &str) -> bool {
        crate::reports::junit::read(text).is_ok()
    }
    /// An LCOV or Cobertura file's text.
    pub fn coverage(text: &str) -> bool {
        crate::reports::coverage::read(text).is_ok()
    }
    /// A Hydra metrics file's text.
    pub fn metrics_file(text: &str) -> bool {
        !crate::reports::hydra::read(text).metrics.is_empty()
    }
    /// A step's output, for test runners' summary lines.
    pub fn summary(log: &str) -> bool {
        crate::reports::summary::read(log).is_some()
    }
}
