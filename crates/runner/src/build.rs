//! One whole build: mirror, recipe, checkout, steps, artifacts, metrics,
//! environment.

mod steps;

use crate::artifacts::{ARTIFACT_BYTES_MAX_DEFAULT, capture_artifacts};
use crate::blobs::{BlobDir, LOG_BYTES_MAX_DEFAULT};
use crate::cancel::Cancel;
use crate::environment::{capture_environment, capture_environment_in};
use crate::fit;
use crate::inside::Refused;
use crate::metrics::capture_metrics;
use crate::mirror::{self, Mirror, MirrorError};
use crate::recipe::{RECIPE_BYTES_MAX, RECIPE_PATH, Recipe, RecipeError};
use crate::reports;
use crate::sandbox::{DiskWatch, Jail, JailDirs, SANDBOX_CACHE, Sandbox};
use crate::workdir::WorkDir;
use buildmesh_protocol::{BuildResult, CommitId, Outcome, ProjectId, StepStatus, TestSummary};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildJob {
    /// The project (copied into the result).
    pub project: ProjectId,
    /// Where to fetch the code: a URL or a local path git understands.
    pub repository: String,
    /// The commit to build.
    pub commit: CommitId,
    /// The platform label this node builds for (copied into the result).
    pub platform: String,
}

/// Live output: step index (0-based), step name and the bytes just read.
/// Called on the build's thread, so it must be quick (hand bytes to a
/// channel rather than to the network).
pub type OutputCallback = dyn Fn(usize, &str, &[u8]) + Send + Sync;

/// A build's progress: what a terminal or page following it shows
/// between "building" and the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepEvent<'a> {
    /// The commit is not in the mirror yet: fetching the repository (the
    /// first build of a project is mostly this).
    Fetching,
    /// The commit is checked out in a fresh work dir, this long after the
    /// build began (fetch included).
    CheckedOut {
        /// Since the build began.
        duration_ms: u64,
    },
    /// Step `index` (0-based) of `count` starts.
    Started {
        /// Its place in the recipe.
        index: usize,
        /// How many steps the recipe has.
        count: usize,
        /// Its name.
        name: &'a str,
    },
    /// Step `index` ended.
    Ended {
        /// Its place in the recipe.
        index: usize,
        /// How many steps the recipe has.
        count: usize,
        /// Its name.
        name: &'a str,
        /// How it ended.
        status: StepStatus,
        /// How long it ran.
        duration_ms: u64,
    },
}

/// Called as steps start and end, on the build's thread (quick, like
/// [`OutputCallback`]).
pub type StepCallback = dyn Fn(StepEvent<'_>) + Send + Sync;

/// Where a build keeps things, and how it can be watched and stopped.
/// Cheap to clone; give each build its own [`Cancel`].
#[derive(Clone)]
pub struct RunnerContext {
    /// One bare mirror per repository lives here.
    pub mirrors: PathBuf,
    /// Work dirs are made (and removed) here.
    pub work: PathBuf,
    /// Step logs and artifacts go here.
    pub blobs: BlobDir,
    /// Per-step log cap, bytes.
    pub log_bytes_max: u64,
    /// Largest artifact kept, bytes: a larger file is left out (with a
    /// warning), never cut.
    pub artifact_bytes_max: u64,
    /// Set to abort the build.
    pub cancel: Cancel,
    /// Called with output as steps print it.
    pub on_output: Option<Arc<OutputCallback>>,
    /// Called as each step starts and ends.
    pub on_step: Option<Arc<StepCallback>>,
    /// Whether a job may name a path or `file://` URL on this machine.
    /// Off by default: a project declaration is signed by whoever declares
    /// it, and must not make a donor's node build (and publish the logs
    /// of) a private repository that happens to sit on its disk. A node
    /// building its own checkout (`buildmesh up`) turns it on.
    pub allow_local_repositories: bool,
    /// Each project's cache (a directory kept between its builds, in
    /// `BUILDMESH_CACHE`) is made here; `None`: no cache.
    pub caches: Option<PathBuf>,
    /// Where steps run: in this sandbox, or (`None`) as the node's own
    /// user with the node's view of the machine, which only a node
    /// building its own maintainer's projects should do.
    pub sandbox: Option<Arc<Sandbox>>,
}

impl std::fmt::Debug for RunnerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerContext")
            .field("mirrors", &self.mirrors)
            .field("work", &self.work)
            .field("blobs", &self.blobs)
            .field("log_bytes_max", &self.log_bytes_max)
            .field("artifact_bytes_max", &self.artifact_bytes_max)
            .field("cancel", &self.cancel)
            .field("on_output", &self.on_output.is_some())
            .field("on_step", &self.on_step.is_some())
            .field("allow_local_repositories", &self.allow_local_repositories)
            .field("sandbox", &self.sandbox.is_some())
            .finish()
    }
}

/// What [`run_build`] hands back.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildReport {
    /// Ready to sign: it passes `Body::validate` and fits in one entry.
    pub result: BuildResult,
    /// What the build's tests said, when it reported tests: signed with
    /// the result (as one [`buildmesh_protocol::Body::Attested`]).
    pub tests: Option<TestSummary>,
    /// The SHA-256 of the recipe's bytes (`.buildmesh.toml` at the
    /// commit), when the build got as far as reading it: the configuration
    /// its attestations name, which anyone can check against the commit.
    pub recipe_sha256: Option<[u8; 32]>,
    /// Things a person should know that are not failures: metrics not
    /// captured, artifacts left out, strings cut to fit the protocol.
    pub warnings: Vec<String>,
}

/// Why a build could not be judged; its text becomes the result's `error`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    #[error(
        "repository {0} is on this machine; this node builds only remote repositories \
         (allow_local_repositories is off)"
    )]
    LocalRepository(String),
    #[error("no {RECIPE_PATH} at commit {0}; add one to the repository (see docs/recipe.md)")]
    NoRecipe(CommitId),
    #[error("recipe {RECIPE_PATH} at {commit}: {source}")]
    Recipe {
        commit: CommitId,
        source: RecipeError,
    },
    #[error("creating a work dir under {}: {source}", path.display())]
    WorkDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("storing the log of step {step:?}: {source}")]
    Log {
        step: String,
        source: std::io::Error,
    },
    #[error("build cancelled")]
    Cancelled,
    #[error("{0}")]
    Refused(Refused),
}

impl RunnerContext {
    /// A context with the default log and artifact caps, a fresh
    /// [`Cancel`], no output callback, and local repositories refused.
    pub fn new(mirrors: PathBuf, work: PathBuf, blobs: BlobDir) -> RunnerContext {
        RunnerContext {
            mirrors,
            work,
            blobs,
            log_bytes_max: LOG_BYTES_MAX_DEFAULT,
            artifact_bytes_max: ARTIFACT_BYTES_MAX_DEFAULT,
            cancel: Cancel::new(),
            on_output: None,
            on_step: None,
            allow_local_repositories: false,
            caches: None,
            sandbox: None,
        }
    }
}

/// Runs `job` to the end and reports it. Never fails: anything that keeps
/// the build from being judged is an [`Outcome::Error`] result whose
/// `error` says why. The work dir is removed before this returns, also when
/// it unwinds from a panic.
pub fn run_build(job: &BuildJob, context: &RunnerContext) -> BuildReport {
    let span = tracing::info_span!("build", commit = %job.commit.short(), platform = %job.platform);
    let _entered = span.enter();
    let mut result = empty_result(job.project, &job.commit, &job.platform);
    let mut warnings = Vec::new();
    let mut tests = None;
    let mut recipe_sha256 = None;
    let outputs = Outputs {
        result: &mut result,
        tests: &mut tests,
        recipe_sha256: &mut recipe_sha256,
        warnings: &mut warnings,
    };
    if let Err(error) = build(job, context, outputs) {
        tracing::warn!("build not judged: {error}");
        result.outcome = Outcome::Error;
        result.error = Some(error.to_string());
        // Only a passing build keeps artifacts (one cancelled while they
        // were copied is not one), and one that tried to publish what it
        // must not keeps none, not even its reports.
        result.artifacts.clear();
    }
    if result.environment.is_empty() {
        result.environment =
            capture_environment(&[], &BTreeMap::new(), &context.work, &context.cancel);
    }
    tracing::info!(outcome = ?result.outcome, "build finished");
    let mut report = finish(result, tests, warnings);
    report.recipe_sha256 = recipe_sha256;
    report
}

/// What a build fills in as it goes, kept when it stops early.
struct Outputs<'a> {
    result: &'a mut BuildResult,
    tests: &'a mut Option<TestSummary>,
    recipe_sha256: &'a mut Option<[u8; 32]>,
    warnings: &'a mut Vec<String>,
}

fn build(job: &BuildJob, context: &RunnerContext, out: Outputs<'_>) -> Result<(), BuildError> {
    let Outputs {
        result,
        tests,
        recipe_sha256,
        warnings,
    } = out;
    let began = std::time::Instant::now();
    let mirror = mirror_with(job, context)?;
    let bytes = recipe_at(&mirror, &job.commit)?;
    // Also when the recipe does not parse: the result's attestations then
    // name the bytes that were read.
    *recipe_sha256 = Some(buildmesh_protocol::sha256(&[&bytes]));
    let recipe = Recipe::parse(&bytes).map_err(|source| BuildError::Recipe {
        commit: job.commit.clone(),
        source,
    })?;
    if !recipe.builds_platform(&job.platform) {
        tracing::info!("the recipe does not build this platform: skipped");
        result.outcome = Outcome::Skipped;
        result.error = Some(format!(
            "{RECIPE_PATH} lists platforms = {:?}, which leaves out {}",
            recipe.platforms.as_deref().unwrap_or_default(),
            job.platform
        ));
        return Ok(());
    }
    let work =
        WorkDir::create(&context.work, &job.commit).map_err(|source| BuildError::WorkDir {
            path: context.work.clone(),
            source,
        })?;
    mirror.checkout(&job.commit, work.path())?;
    drop(mirror); // no need to hold the repository open while steps run
    tell(
        context,
        StepEvent::CheckedOut {
            duration_ms: u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX),
        },
    );
    let cache = project_cache(context, &job.project, warnings)?;
    let jail = context.sandbox.as_ref().map(|sandbox| {
        let (tmp, home) = work.scratch();
        let dirs = JailDirs {
            work: work.path().to_owned(),
            tmp,
            home,
            cache: cache.clone(),
        };
        Jail::new(
            Arc::clone(sandbox),
            dirs,
            recipe.network,
            &recipe.inherited(),
        )
    });
    let cache_env = match (&jail, &cache) {
        (Some(_), Some(_)) => Some(SANDBOX_CACHE.to_owned()),
        (None, Some(path)) => Some(path.display().to_string()),
        (_, None) => None,
    };
    if let Some(jail) = &jail {
        jail.hand_over().map_err(|source| BuildError::WorkDir {
            path: work.path().to_owned(),
            source,
        })?;
    }
    let place = steps::Place {
        dir: work.path(),
        jail: jail.as_ref(),
        cache: cache_env.as_deref(),
    };
    let logs = steps::run_all(&recipe, &place, context, result)?;
    let mut refused = Refused::default();
    if matches!(result.outcome, Outcome::Passed | Outcome::Warnings) {
        result.artifacts = capture_artifacts(
            &recipe.artifacts,
            work.path(),
            &context.blobs,
            context.artifact_bytes_max,
            &context.cancel,
            warnings,
            &mut refused,
        );
    }
    result.metrics = capture_metrics(
        &recipe.metrics,
        &logs,
        work.path(),
        &context.blobs,
        warnings,
        &mut refused,
    );
    // Read whatever the outcome: failing tests are the point of a report.
    *tests = reports::read(&recipe, result, work.path(), &context.blobs, warnings).apply(result);
    result.environment = capture_environment_in(
        &recipe.tools,
        &recipe.inherited(),
        work.path(),
        jail.as_ref(),
        &context.cancel,
    );
    if context.cancel.is_cancelled() {
        return Err(BuildError::Cancelled);
    }
    if !refused.is_empty() {
        // A build that tried to publish what it must not publishes nothing.
        result.metrics.clear();
        return Err(BuildError::Refused(refused));
    }
    Ok(())
}

/// The project's cache dir, made if new. In a sandbox the cache counts
/// against the work-area cap, so one that holds more than half of it is
/// emptied first: a cache that grew too big must not fail every build.
fn project_cache(
    context: &RunnerContext,
    project: &ProjectId,
    warnings: &mut Vec<String>,
) -> Result<Option<PathBuf>, BuildError> {
    let Some(root) = &context.caches else {
        return Ok(None);
    };
    let path = root.join(project.to_string());
    let failed = |source| BuildError::WorkDir {
        path: path.clone(),
        source,
    };
    crate::workdir::private_dir(root).map_err(failed)?;
    if let Some(sandbox) = &context.sandbox {
        let cap = sandbox.limits().work_bytes / 2;
        let used = DiskWatch::new(vec![path.clone()], cap).measure();
        if used.is_none_or(|used| used > cap) {
            crate::workdir::remove(&path).map_err(failed)?;
            warnings.push(format!(
                "the project's cache held more than half the work-area cap ({} MiB), or could not \
                 be measured; emptied",
                cap / (1024 * 1024)
            ));
        }
    }
    std::fs::create_dir_all(&path).map_err(failed)?;
    Ok(Some(path))
}

/// Tells whoever follows the build (the `on_step` callback) of `event`.
pub(crate) fn tell(context: &RunnerContext, event: StepEvent<'_>) {
    if let Some(on_step) = &context.on_step {
        on_step(event);
    }
}

/// The repository's mirror, fetched only if it lacks the commit.
fn mirror_with(job: &BuildJob, context: &RunnerContext) -> Result<Mirror, BuildError> {
    if !context.allow_local_repositories && mirror::is_local(&job.repository) {
        return Err(BuildError::LocalRepository(job.repository.clone()));
    }
    let mirror = Mirror::open_or_create(&context.mirrors, &job.repository)?;
    if !mirror.has_commit(&job.commit) {
        tell(context, StepEvent::Fetching);
        mirror.fetch(&context.cancel)?;
    }
    if !mirror.has_commit(&job.commit) {
        // On no branch or tag: a pull request's head, perhaps.
        mirror.fetch_pulls(&context.cancel)?;
    }
    Ok(mirror)
}

/// The recipe's bytes at `commit`.
fn recipe_at(mirror: &Mirror, commit: &CommitId) -> Result<Vec<u8>, BuildError> {
    mirror
        .read_file_at(commit, RECIPE_PATH, RECIPE_BYTES_MAX)?
        .ok_or_else(|| BuildError::NoRecipe(commit.clone()))
}

/// A result with no steps, judged `Error` until the steps say otherwise.
fn empty_result(project: ProjectId, commit: &CommitId, platform: &str) -> BuildResult {
    BuildResult {
        project,
        commit: commit.clone(),
        platform: platform.to_owned(),
        outcome: Outcome::Error,
        steps: Vec::new(),
        artifacts: Vec::new(),
        metrics: BTreeMap::new(),
        environment: BTreeMap::new(),
        error: None,
    }
}

/// Fits the result to the protocol; should that ever fail, replaces it with
/// an error result that certainly fits, so the build is never lost.
fn finish(
    mut result: BuildResult,
    mut tests: Option<TestSummary>,
    mut warnings: Vec<String>,
) -> BuildReport {
    fit::fit_texts(&mut result);
    if let Some(tests) = &mut tests {
        fit::fit_tests(tests);
    }
    fit::fit_entry(&mut result, &mut tests, &mut warnings);
    if !fit::fits(&result, tests.as_ref()) {
        warnings.push("result could not be made to fit in one entry; steps left out".into());
        let mut bare = empty_result(result.project, &result.commit, &result.platform);
        bare.error = Some("the build's result was too large to sign".into());
        fit::fit_texts(&mut bare);
        result = bare;
        tests = None;
    }
    BuildReport {
        result,
        tests,
        recipe_sha256: None,
        warnings,
    }
}
