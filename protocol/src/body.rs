//! The typed bodies an entry can carry.
//!
//! Every enum here is externally tagged (bincode writes a `u32` variant index
//! first) and every map is a `BTreeMap`, so one value has one encoding. New
//! variants are only ever appended: old bytes keep decoding.

use crate::error::InvalidBody;
use crate::ids::{BlobHash, CommitId, ProjectId, PublicKey};
use crate::limits::{
    COMMIT_PARENTS_MAX, FAILING_TESTS_MAX, LIST_ITEMS_MAX, LONG_TEXT_BYTES_MAX,
    SHORT_TEXT_BYTES_MAX, THRESHOLDS_MAX,
};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What an entry says. The variant order is part of the wire format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Body {
    /// A maintainer declares (or re-declares) a project.
    Project(ProjectDeclaration),
    /// A commit appeared on a watched branch.
    Announce(CommitAnnouncement),
    /// A builder takes a cell (commit × platform) for a while.
    Claim(Claim),
    /// A builder reports what happened.
    Result(BuildResult),
    /// A maintainer asks for a build again.
    Force(ForceBuild),
    /// A maintainer grants a key a role in a project.
    Trust(TrustChange),
    /// A maintainer withdraws a role.
    Revoke(TrustChange),
    /// A maintainer sets one of a project's settings.
    Setting(ProjectSetting),
    /// A pull request's head, to build apart from every branch.
    Pull(PullAnnouncement),
    /// A pull request was closed (merged or not): its heads are no
    /// longer work, until a newer `Pull` reopens it.
    PullClosed(PullClosed),
    /// A result with what its tests said. Builders write it when a build
    /// reported tests and [`Body::Result`] otherwise; appended rather than
    /// added to [`BuildResult`] so every result signed before keeps
    /// decoding.
    Tested(TestedResult),
    /// A result, its tests when the build reported any, and the hash of
    /// the blob of standard attestations (in-toto statements in DSSE
    /// envelopes) its builder signed for it. Builders write it for every
    /// result once they make attestations; appended so every result signed
    /// before keeps decoding.
    Attested(AttestedResult),
    /// A maintainer withdraws a builder's role from a point of the
    /// builder's own chain on: its results up to that entry keep counting,
    /// none after it. Anchored to the chain, not to a time, because a key
    /// dates its entries as it likes but cannot add one below that point
    /// without forking (docs/protocol.md §6.3). Appended: older nodes
    /// hold the owner's chain as far as the entry before it.
    RevokeBuilder(BuilderRevocation),
}

/// The kind of a body, for indexes and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BodyKind {
    /// [`Body::Project`]
    Project,
    /// [`Body::Announce`]
    Announce,
    /// [`Body::Claim`]
    Claim,
    /// [`Body::Result`]
    Result,
    /// [`Body::Force`]
    Force,
    /// [`Body::Trust`]
    Trust,
    /// [`Body::Revoke`]
    Revoke,
    /// [`Body::Setting`]
    Setting,
    /// [`Body::Pull`]
    Pull,
    /// [`Body::PullClosed`]
    PullClosed,
    /// [`Body::Tested`]
    Tested,
    /// [`Body::Attested`]
    Attested,
    /// [`Body::RevokeBuilder`]
    RevokeBuilder,
}

/// A project as its maintainer declares it. The latest declaration by the
/// same maintainer (highest sequence number) replaces earlier ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectDeclaration {
    /// Short name, unique per maintainer; the project id derives from it.
    pub name: String,
    /// Where builders fetch the code (any URL git understands).
    pub repository: String,
    /// Branches whose new commits get built.
    pub branches: Vec<String>,
    /// Platform labels wanted, such as `linux-x86_64`.
    pub platforms: Vec<String>,
    /// Keys besides the maintainer's that may announce commits.
    pub announcers: Vec<PublicKey>,
    /// Whose results count.
    pub builders: BuilderPolicy,
    /// Independent passing builds a cell needs before it shows as passed.
    pub builds_per_cell: u8,
}

/// Which builders a project trusts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BuilderPolicy {
    /// Any key's results count.
    Open,
    /// Only these keys (plus later `Trust` entries) count.
    Only(Vec<PublicKey>),
}

/// A new commit on a watched branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitAnnouncement {
    /// The project.
    pub project: ProjectId,
    /// The branch the commit is the head of.
    pub branch: String,
    /// The commit.
    pub commit: CommitId,
    /// Its parents, for blamelists.
    pub parents: Vec<CommitId>,
    /// First line of the commit message.
    pub title: String,
    /// Commit author, as git records it.
    pub author: String,
    /// Commit time, as git records it.
    pub committed_at: Timestamp,
}

/// A builder takes one cell until `lease_expires`; renewing writes a new claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// The project.
    pub project: ProjectId,
    /// The commit.
    pub commit: CommitId,
    /// The platform label.
    pub platform: String,
    /// After this the cell is open again unless a result or renewal came.
    pub lease_expires: Timestamp,
}

/// What a build did, step by step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildResult {
    /// The project.
    pub project: ProjectId,
    /// The commit.
    pub commit: CommitId,
    /// The platform label.
    pub platform: String,
    /// The verdict.
    pub outcome: Outcome,
    /// Each step, in recipe order.
    pub steps: Vec<StepResult>,
    /// Files the build kept, by hash.
    pub artifacts: Vec<Artifact>,
    /// Numbers the recipe asked for (coverage, test counts, ...).
    pub metrics: BTreeMap<String, f64>,
    /// The builder's environment: os, arch, kernel, tool versions.
    pub environment: BTreeMap<String, String>,
    /// Why the build has no verdict of its own: when the outcome is
    /// [`Outcome::Error`], [`Outcome::Skipped`], [`Outcome::Retry`] or
    /// [`Outcome::Cancelled`].
    pub error: Option<String>,
}

/// A build's verdict, in Buildbot's vocabulary where it fits: `Passed` is
/// its `success`, `Failed` its `failure`, `Error` its `exception`. Only
/// `Passed`, `Warnings` and `Failed` are votes on whether the commit
/// works ([`Outcome::vote`]); the others say why a build has no verdict.
/// Variants after `Error` were appended: a node older than them refuses
/// a result that carries one (docs/protocol.md §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// Every step exited zero.
    Passed,
    /// A step failed: the code is broken.
    Failed,
    /// The build could not be judged (no recipe, checkout failed, ...).
    Error,
    /// Every step that must pass passed; a step the recipe marks
    /// `on_failure = "warn"` failed.
    Warnings,
    /// The recipe at this commit does not build this platform.
    Skipped,
    /// The builder stopped before a verdict (its node was stopping): the
    /// cell is open to any builder again, this one included.
    Retry,
    /// The build was stopped because the cell needed it no more (enough
    /// builders reported first).
    Cancelled,
}

/// What a verdict says of the commit, when it says anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Vote {
    /// The commit works on the platform (`success` or `warnings`).
    Pass,
    /// It does not (`failure`).
    Fail,
}

impl Outcome {
    /// Every outcome, in wire order.
    pub const ALL: [Outcome; 7] = [
        Outcome::Passed,
        Outcome::Failed,
        Outcome::Error,
        Outcome::Warnings,
        Outcome::Skipped,
        Outcome::Retry,
        Outcome::Cancelled,
    ];

    /// The vote this verdict casts on a cell's quorum: only a build that
    /// ran the recipe to its end says whether the commit works.
    pub fn vote(self) -> Option<Vote> {
        match self {
            Outcome::Passed | Outcome::Warnings => Some(Vote::Pass),
            Outcome::Failed => Some(Vote::Fail),
            Outcome::Error | Outcome::Skipped | Outcome::Retry | Outcome::Cancelled => None,
        }
    }

    /// Whether the builder is done with the cell: its result settles its
    /// part. A `Retry` or a `Cancelled` does not; the cell still wants
    /// a build.
    pub fn settles(self) -> bool {
        !matches!(self, Outcome::Retry | Outcome::Cancelled)
    }

    /// Buildbot's name for it (`success`, `warnings`, `failure`,
    /// `skipped`, `exception`, `retry`, `cancelled`).
    pub fn buildbot_name(self) -> &'static str {
        match self {
            Outcome::Passed => "success",
            Outcome::Warnings => "warnings",
            Outcome::Failed => "failure",
            Outcome::Skipped => "skipped",
            Outcome::Error => "exception",
            Outcome::Retry => "retry",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// One step of a build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// Step name from the recipe.
    pub name: String,
    /// The command line run.
    pub command: String,
    /// How it ended.
    pub status: StepStatus,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
    /// Its output, stored as a blob.
    pub log: BlobHash,
    /// Size of that blob, bytes.
    pub log_bytes: u64,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepStatus {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal.
    Signalled(i32),
    /// Ran past its timeout and was killed with its process group.
    TimedOut,
    /// Not run because an earlier step failed.
    Skipped,
    /// Could not be started.
    FailedToStart,
}

/// A file a build produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// Path relative to the work dir.
    pub name: String,
    /// Content hash.
    pub hash: BlobHash,
    /// Size, bytes.
    pub bytes: u64,
}

/// A maintainer asks for a build again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForceBuild {
    /// The project.
    pub project: ProjectId,
    /// What to build.
    pub target: ForceTarget,
    /// Which platforms; empty means all the project wants.
    pub platforms: Vec<String>,
    /// Why, for the record.
    pub reason: String,
}

/// What a force build targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ForceTarget {
    /// This commit.
    Commit(CommitId),
    /// Whatever is the head of this branch.
    Branch(String),
}

/// A role granted or withdrawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustChange {
    /// The project.
    pub project: ProjectId,
    /// The key concerned.
    pub subject: PublicKey,
    /// The role.
    pub role: Role,
}

/// A builder's role withdrawn from a point of its chain on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuilderRevocation {
    /// The project.
    pub project: ProjectId,
    /// The builder's key.
    pub subject: PublicKey,
    /// The subject's entries with a sequence number up to this one keep
    /// counting as they did while it was trusted; 0: none does (a key the
    /// maintainer thinks stolen before it ever built honestly).
    pub kept_through: u64,
}

/// What a key may do in a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Its results count.
    Builder,
    /// It may announce commits.
    Announcer,
}

/// One setting of a project, written by its maintainer. The latest one of
/// each [`SettingKind`] by the project's owner wins, as declarations do;
/// a setting never written has its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectSetting {
    /// The project.
    pub project: ProjectId,
    /// What is set.
    pub setting: Setting,
}

/// A project setting and its value. Variants are only ever appended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Setting {
    /// Whether pull requests' heads are built (default: no). Off by
    /// default because a pull request is anyone's code, and builders run
    /// it on their own machines.
    PullRequests(bool),
    /// The project's thresholds on its metrics, the whole list (an empty
    /// one clears them): a commit whose value crosses one is a regression,
    /// told as an event of its own and marked on the metric's chart.
    Thresholds(Vec<Threshold>),
    /// Whether a cell passes only when two trusted builders or more
    /// report the same hash for every artifact (default: no). Off by
    /// default because most builds are not bit-for-bit reproducible.
    Reproducible(bool),
}

/// Which setting a [`Setting`] sets, whatever its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SettingKind {
    /// [`Setting::PullRequests`]
    PullRequests,
    /// [`Setting::Thresholds`]
    Thresholds,
    /// [`Setting::Reproducible`]
    Reproducible,
}

impl Setting {
    /// Which setting this sets.
    pub fn kind(&self) -> SettingKind {
        match self {
            Setting::PullRequests(_) => SettingKind::PullRequests,
            Setting::Thresholds(_) => SettingKind::Thresholds,
            Setting::Reproducible(_) => SettingKind::Reproducible,
        }
    }

    fn validate(&self) -> Result<(), InvalidBody> {
        match self {
            Setting::PullRequests(_) | Setting::Reproducible(_) => Ok(()),
            Setting::Thresholds(list) => {
                list_of("thresholds", list, THRESHOLDS_MAX, Threshold::validate)
            }
        }
    }
}

/// A bound on one metric of a project, per platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// The metric's name, as results and the trends page name it.
    pub metric: String,
    /// What crossing it means.
    pub rule: ThresholdRule,
}

/// When a commit's value of a metric is a regression.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ThresholdRule {
    /// The value rose above this where the previous commit's did not
    /// (`tests_failed` above 0).
    Above(f64),
    /// The value fell below this where the previous commit's did not
    /// (`coverage_lines` below 80).
    Below(f64),
    /// The value is lower than the previous commit's by more than this
    /// (`coverage_lines` must not drop by more than 1 point).
    DropsBy(f64),
    /// The value is higher than the previous commit's by more than this
    /// (`duration_seconds` must not grow by more than 60).
    RisesBy(f64),
}

impl ThresholdRule {
    /// The rule's number.
    pub fn value(self) -> f64 {
        match self {
            ThresholdRule::Above(v)
            | ThresholdRule::Below(v)
            | ThresholdRule::DropsBy(v)
            | ThresholdRule::RisesBy(v) => v,
        }
    }
}

impl Threshold {
    fn validate(&self) -> Result<(), InvalidBody> {
        short("metric", &self.metric)?;
        let value = self.rule.value();
        if !value.is_finite() {
            return Err(InvalidBody::NotFinite("threshold"));
        }
        // A drop or rise is an amount: a negative one would make every
        // commit a regression.
        if matches!(
            self.rule,
            ThresholdRule::DropsBy(_) | ThresholdRule::RisesBy(_)
        ) && value < 0.0
        {
            return Err(InvalidBody::Negative("threshold amount"));
        }
        Ok(())
    }
}

/// The head of a pull request, as a trusted announcer fetched it. Its cells
/// are built (when the project's [`Setting::PullRequests`] is on) but never
/// shown on a branch's row: the commit is not on the branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullAnnouncement {
    /// The project.
    pub project: ProjectId,
    /// The pull request's number on the forge, from 1.
    pub number: u64,
    /// The branch it asks to merge into.
    pub base: String,
    /// Its head commit.
    pub commit: CommitId,
    /// The head's parents, for blamelists.
    pub parents: Vec<CommitId>,
    /// First line of the head's commit message.
    pub title: String,
    /// Who opened the pull request (the forge's login).
    pub author: String,
    /// Commit time of the head, as git records it.
    pub committed_at: Timestamp,
}

/// A result and its tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestedResult {
    /// The result, as [`Body::Result`] carries it.
    pub result: BuildResult,
    /// What the build's test reports (or its test runner's summary) said.
    pub tests: TestSummary,
}

/// A result, its tests, and its attestations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttestedResult {
    /// The result, as [`Body::Result`] carries it.
    pub result: BuildResult,
    /// What the build's tests said, when it reported tests.
    pub tests: Option<TestSummary>,
    /// The blob of the builder's attestations of this result: an in-toto
    /// bundle (JSON Lines of DSSE envelopes, signed with the builder's
    /// node key), served by `GET /api/v1/results/{id}/attestation`. The
    /// entry names it by hash, so the attestations are as authentic as
    /// the entry; they cannot name the entry, signed after them.
    pub attestation: BlobHash,
}

/// What a build's tests said: counts, and the failing tests by name so
/// that every node can tell which tests fail since when, and which are
/// flaky, from signed entries alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestSummary {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed (an assertion did not hold).
    pub failed: u64,
    /// Tests that were skipped or ignored.
    pub skipped: u64,
    /// Tests that could not run to a verdict (JUnit's `error`).
    pub errored: u64,
    /// Failed and errored tests by name, at most [`FAILING_TESTS_MAX`]:
    /// fewer than `failed + errored` when a build had more.
    pub failing: Vec<String>,
    /// Where the numbers came from: `junit` for report files, or the test
    /// runner whose summary lines were read (`cargo test`, `pytest`, ...).
    pub source: String,
    /// The failing tests with their output, as JSON (`docs/recipe.md`),
    /// when a report had them.
    pub details: Option<BlobHash>,
}

/// A pull request closed on its forge, as a trusted announcer heard. The
/// pull request stays listed but its heads are not built any more: a
/// closed pull request's head is nobody's next merge. A [`Body::Pull`]
/// newer than the close (by entry time, then id) reopens it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullClosed {
    /// The project.
    pub project: ProjectId,
    /// The pull request's number on the forge, from 1.
    pub number: u64,
}

impl Body {
    /// The kind of body.
    pub fn kind(&self) -> BodyKind {
        match self {
            Body::Project(_) => BodyKind::Project,
            Body::Announce(_) => BodyKind::Announce,
            Body::Claim(_) => BodyKind::Claim,
            Body::Result(_) => BodyKind::Result,
            Body::Force(_) => BodyKind::Force,
            Body::Trust(_) => BodyKind::Trust,
            Body::Revoke(_) => BodyKind::Revoke,
            Body::Setting(_) => BodyKind::Setting,
            Body::Pull(_) => BodyKind::Pull,
            Body::PullClosed(_) => BodyKind::PullClosed,
            Body::Tested(_) => BodyKind::Tested,
            Body::Attested(_) => BodyKind::Attested,
            Body::RevokeBuilder(_) => BodyKind::RevokeBuilder,
        }
    }

    /// The body a builder writes for `result`: [`Body::Attested`] when it
    /// signed attestations of it (their blob's hash), otherwise
    /// [`Body::Tested`] when the build reported tests and [`Body::Result`]
    /// when it did not.
    pub fn of_result(
        result: BuildResult,
        tests: Option<TestSummary>,
        attestation: Option<BlobHash>,
    ) -> Body {
        match (attestation, tests) {
            (Some(attestation), tests) => Body::Attested(AttestedResult {
                result,
                tests,
                attestation,
            }),
            (None, Some(tests)) => Body::Tested(TestedResult { result, tests }),
            (None, None) => Body::Result(result),
        }
    }

    /// The result this body carries, with or without tests.
    pub fn result(&self) -> Option<&BuildResult> {
        match self {
            Body::Result(result)
            | Body::Tested(TestedResult { result, .. })
            | Body::Attested(AttestedResult { result, .. }) => Some(result),
            _ => None,
        }
    }

    /// What the result's tests said, when it carries them.
    pub fn tests(&self) -> Option<&TestSummary> {
        match self {
            Body::Tested(tested) => Some(&tested.tests),
            Body::Attested(attested) => attested.tests.as_ref(),
            _ => None,
        }
    }

    /// The hash of the result's attestations blob, when its builder
    /// signed some (results written before attestations have none).
    pub fn attestation(&self) -> Option<BlobHash> {
        match self {
            Body::Attested(attested) => Some(attested.attestation),
            _ => None,
        }
    }

    /// Checks the limits no encoding can express (text lengths, list sizes,
    /// commit id lengths). A body that fails is never accepted.
    pub fn validate(&self) -> Result<(), InvalidBody> {
        match self {
            Body::Project(p) => p.validate(),
            Body::Announce(a) => a.validate(),
            Body::Claim(c) => {
                commit(&c.commit)?;
                short("platform", &c.platform)
            }
            Body::Result(r) => r.validate(),
            Body::Force(f) => f.validate(),
            Body::Trust(_) | Body::Revoke(_) | Body::RevokeBuilder(_) => Ok(()),
            Body::Setting(s) => s.setting.validate(),
            Body::Pull(p) => p.validate(),
            Body::PullClosed(c) if c.number == 0 => Err(InvalidBody::Empty("number")),
            Body::PullClosed(_) => Ok(()),
            Body::Tested(t) => {
                t.result.validate()?;
                t.tests.validate()
            }
            Body::Attested(a) => {
                a.result.validate()?;
                a.tests.as_ref().map_or(Ok(()), TestSummary::validate)
            }
        }
    }
}

impl ProjectDeclaration {
    fn validate(&self) -> Result<(), InvalidBody> {
        short("name", &self.name)?;
        if self.name.is_empty() {
            return Err(InvalidBody::Empty("name"));
        }
        long("repository", &self.repository)?;
        list("branches", &self.branches, |b| short("branch", b))?;
        list("platforms", &self.platforms, |p| short("platform", p))?;
        list("announcers", &self.announcers, |_| Ok(()))?;
        if let BuilderPolicy::Only(keys) = &self.builders {
            list("builders", keys, |_| Ok(()))?;
        }
        if self.builds_per_cell == 0 {
            return Err(InvalidBody::Empty("builds_per_cell"));
        }
        Ok(())
    }
}

impl CommitAnnouncement {
    fn validate(&self) -> Result<(), InvalidBody> {
        short("branch", &self.branch)?;
        commit(&self.commit)?;
        if self.parents.len() > COMMIT_PARENTS_MAX {
            return Err(InvalidBody::TooMany("parents", COMMIT_PARENTS_MAX));
        }
        self.parents.iter().try_for_each(commit)?;
        long("title", &self.title)?;
        short("author", &self.author)
    }
}

impl PullAnnouncement {
    fn validate(&self) -> Result<(), InvalidBody> {
        if self.number == 0 {
            return Err(InvalidBody::Empty("number"));
        }
        short("base", &self.base)?;
        commit(&self.commit)?;
        if self.parents.len() > COMMIT_PARENTS_MAX {
            return Err(InvalidBody::TooMany("parents", COMMIT_PARENTS_MAX));
        }
        self.parents.iter().try_for_each(commit)?;
        long("title", &self.title)?;
        short("author", &self.author)
    }
}

impl StepStatus {
    /// Whether the step failed: it ran and did not exit 0, or could not
    /// start. A skipped step did not fail; an earlier one did.
    pub fn failed(self) -> bool {
        !matches!(self, StepStatus::Exited(0) | StepStatus::Skipped)
    }
}

impl BuildResult {
    /// The first step that failed: where a person looks first. A passing
    /// build has none, even when a step after the recipe's own (the
    /// runner's informational `reports` step, which cannot change the
    /// outcome) says it could not read everything.
    pub fn failing_step(&self) -> Option<&StepResult> {
        if self.outcome == Outcome::Passed {
            return None;
        }
        self.steps.iter().find(|s| s.status.failed())
    }

    fn validate(&self) -> Result<(), InvalidBody> {
        commit(&self.commit)?;
        short("platform", &self.platform)?;
        list("steps", &self.steps, |s| {
            short("step name", &s.name)?;
            long("command", &s.command)
        })?;
        list("artifacts", &self.artifacts, |a| {
            long("artifact name", &a.name)
        })?;
        list(
            "metrics",
            &self.metrics.iter().collect::<Vec<_>>(),
            |(k, v)| {
                short("metric", k)?;
                if v.is_finite() {
                    Ok(())
                } else {
                    Err(InvalidBody::NotFinite("metric value"))
                }
            },
        )?;
        list(
            "environment",
            &self.environment.iter().collect::<Vec<_>>(),
            |(k, v)| {
                short("environment key", k)?;
                long("environment value", v)
            },
        )?;
        self.error.as_deref().map_or(Ok(()), |e| long("error", e))
    }
}

impl TestSummary {
    fn validate(&self) -> Result<(), InvalidBody> {
        if self.failing.len() > FAILING_TESTS_MAX {
            return Err(InvalidBody::TooMany("failing tests", FAILING_TESTS_MAX));
        }
        self.failing
            .iter()
            .try_for_each(|t| short("test name", t))?;
        short("test source", &self.source)
    }
}

impl ForceBuild {
    fn validate(&self) -> Result<(), InvalidBody> {
        match &self.target {
            ForceTarget::Commit(c) => commit(c)?,
            ForceTarget::Branch(b) => short("branch", b)?,
        }
        list("platforms", &self.platforms, |p| short("platform", p))?;
        long("reason", &self.reason)
    }
}

fn short(field: &'static str, text: &str) -> Result<(), InvalidBody> {
    text_within(field, text, SHORT_TEXT_BYTES_MAX)
}

fn long(field: &'static str, text: &str) -> Result<(), InvalidBody> {
    text_within(field, text, LONG_TEXT_BYTES_MAX)
}

fn text_within(field: &'static str, text: &str, max: usize) -> Result<(), InvalidBody> {
    if text.len() > max {
        return Err(InvalidBody::TooLong(field, max));
    }
    Ok(())
}

fn list<T>(
    field: &'static str,
    items: &[T],
    check: impl Fn(&T) -> Result<(), InvalidBody>,
) -> Result<(), InvalidBody> {
    list_of(field, items, LIST_ITEMS_MAX, check)
}

fn list_of<T>(
    field: &'static str,
    items: &[T],
    max: usize,
    check: impl Fn(&T) -> Result<(), InvalidBody>,
) -> Result<(), InvalidBody> {
    if items.len() > max {
        return Err(InvalidBody::TooMany(field, max));
    }
    items.iter().try_for_each(check)
}

fn commit(id: &CommitId) -> Result<(), InvalidBody> {
    if id.is_valid() {
        Ok(())
    } else {
        Err(InvalidBody::CommitId(id.as_bytes().len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_failed_if_it_ran_and_did_not_exit_0_or_could_not_start() {
        assert!(!StepStatus::Exited(0).failed());
        assert!(!StepStatus::Skipped.failed());
        for failed in [
            StepStatus::Exited(1),
            StepStatus::Signalled(9),
            StepStatus::TimedOut,
            StepStatus::FailedToStart,
        ] {
            assert!(failed.failed(), "{failed:?}");
        }
    }

    fn step(name: &str, status: StepStatus) -> StepResult {
        StepResult {
            name: name.into(),
            command: "x".into(),
            status,
            duration_ms: 0,
            log: BlobHash::of(b""),
            log_bytes: 0,
        }
    }

    /// The runner's `reports` step comes after the recipe's and may say
    /// `Exited(1)` (a report it could not read) without failing the build.
    #[test]
    fn the_failing_step_is_the_first_that_failed_and_a_passing_build_has_none() {
        let mut result = BuildResult {
            project: ProjectId([1; 32]),
            commit: "ab".repeat(20).parse().unwrap_or_else(|e| panic!("{e:?}")),
            platform: "linux".into(),
            outcome: Outcome::Failed,
            steps: vec![
                step("build", StepStatus::Exited(0)),
                step("test", StepStatus::Exited(101)),
                step("after", StepStatus::Skipped),
                step("reports", StepStatus::Exited(1)),
            ],
            artifacts: Vec::new(),
            metrics: BTreeMap::new(),
            environment: BTreeMap::new(),
            error: None,
        };
        let name = |r: &BuildResult| r.failing_step().map(|s| s.name.clone());
        assert_eq!(name(&result).as_deref(), Some("test"));
        result.steps.remove(1);
        result.outcome = Outcome::Passed;
        assert_eq!(name(&result), None);
        result.outcome = Outcome::Error;
        assert_eq!(name(&result).as_deref(), Some("reports"));
    }
}
