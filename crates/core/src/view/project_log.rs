//! The entries of one project, as views read them.

use super::leases::LiveLeases;
use super::policy::Policy;
use crate::log::{EntryStore, IndexKey};
use buildmesh_protocol::{
    AttestedResult, BlobHash, Body, BuildResult, Claim, CommitId, Entry, EntryId, ForceTarget,
    Outcome, ProjectId, PublicKey, TestSummary, TestedResult, Timestamp,
};
use std::collections::{BTreeMap, BTreeSet};

/// The linked entries about one project, and the authors proven to fork.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectLog {
    /// The project.
    pub project: ProjectId,
    /// Its declarations (one per re-declaration).
    pub declarations: Vec<Entry>,
    /// Its commit announcements.
    pub announcements: Vec<Entry>,
    /// Its pull request announcements and closes: by [`ProjectLog::load`],
    /// the newest ones by trusted announcers, newest first.
    pub pulls: Vec<Entry>,
    /// Its setting entries (anyone's; [`Policy`] keeps the owner's).
    pub settings: Vec<Entry>,
    /// What claims and results say about its cells, by commit.
    pub cells: BTreeMap<CommitId, Vec<CellFact>>,
    /// The platform labels cell facts name, each once; a fact holds an
    /// index into this so deriving views never compares strings.
    pub platforms: Labels,
    /// Trust and revocation entries.
    pub trust: Vec<Entry>,
    /// Force builds: by [`ProjectLog::load`], its owner's newest ones, as
    /// many as announcements are read (an older force is as settled as an
    /// old commit).
    pub forces: Vec<Entry>,
    /// Authors with a fork proof against them: none of their entries count.
    pub forked: BTreeSet<PublicKey>,
    /// The numbers each result states (its metrics and durations), by
    /// result entry: what trends are drawn from.
    pub measures: BTreeMap<EntryId, Measures>,
    /// The metric names measures name, each once.
    pub metric_names: Labels,
    /// The failing tests each result with tests names, by result entry:
    /// what flaky tests are found from.
    pub failing_tests: BTreeMap<EntryId, FailingTests>,
    /// The test names failing tests name, each once.
    pub test_names: Labels,
    /// The artifacts each result with any names, as (name, hash), by
    /// result entry: what reproducibility is judged from.
    pub artifacts: BTreeMap<EntryId, Vec<(String, BlobHash)>>,
}

/// The tests one result says failed, as numbers in
/// [`ProjectLog::test_names`], sorted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FailingTests {
    /// The failing tests it names.
    pub names: Vec<u32>,
    /// Whether that is all of them: a result names at most
    /// `FAILING_TESTS_MAX`, so a test it does not name may still have
    /// failed when it had more.
    pub complete: bool,
}

/// One result's numbers, as (name number in [`ProjectLog::metric_names`],
/// value), sorted by name number.
pub type Measures = Vec<(u32, f64)>;

/// The built-in metric every result has: the build's duration, the sum of
/// its steps', in seconds.
pub const DURATION: &str = "duration_seconds";

/// The prefix of a built-in metric per step: `step_seconds.NAME`.
pub const STEP_DURATION: &str = "step_seconds.";

/// The built-in metrics of a result with tests, from its test summary.
pub const TESTS_PASSED: &str = "tests_passed";
/// See [`TESTS_PASSED`].
pub const TESTS_FAILED: &str = "tests_failed";
/// See [`TESTS_PASSED`].
pub const TESTS_SKIPPED: &str = "tests_skipped";
/// See [`TESTS_PASSED`].
pub const TESTS_ERRORED: &str = "tests_errored";

impl ProjectLog {
    /// Reads `project`'s entries from `store`: its declarations and trust
    /// changes, the newest `announcements_max` announcements by announcers
    /// the project trusts and forces by its owner, and the claims and
    /// results of those commits (a forced commit may be older than the
    /// announcements read: its want and its answers come from one place,
    /// or its force never settles).
    ///
    /// Only trusted announcers' indexes are read, newest first, so however
    /// many announcements others sign (and whatever time they claim), they
    /// cost nothing here and never push trusted ones out of the window.
    pub fn load<S: EntryStore>(
        store: &S,
        project: &ProjectId,
        announcements_max: usize,
    ) -> Result<ProjectLog, S::Error> {
        let all = usize::MAX;
        let mut log = ProjectLog::declared(store, project)?;
        let (owner, mut announcers) = Policy::of(&log)
            .map(|policy| (Some(policy.owner), policy.announcers()))
            .unwrap_or_default();
        announcers.retain(|a| log.in_good_standing(a));
        log.announcements = newest(store, &announcers, announcements_max, |announcer| {
            IndexKey::AnnouncerCommits(project, announcer).prefix()
        })?;
        log.pulls = newest(store, &announcers, announcements_max, |announcer| {
            IndexKey::AnnouncerPulls(project, announcer).prefix()
        })?;
        if let Some(owner) = owner {
            let mut forces = fetch(store, &IndexKey::Forces(project).prefix(), false, all)?;
            forces.retain(|force| force.author() == owner);
            forces.sort_by_key(|force| std::cmp::Reverse((force.timestamp(), force.id())));
            forces.truncate(announcements_max);
            log.forces = forces;
        }
        let forced = log.forces.iter().filter_map(|force| match force.body() {
            Body::Force(f) => log.forced_commit(&f.target),
            _ => None,
        });
        let commits: BTreeSet<CommitId> = log
            .announcements
            .iter()
            .chain(&log.pulls)
            .filter_map(announced_commit)
            .cloned()
            .chain(forced)
            .collect();
        log.load_cells(store, commits)?;
        Ok(log)
    }

    /// Reads what [`ProjectLog::load`] reads of `project` for one pull
    /// request: its declarations, trust and settings, the newest
    /// `heads_max` announcements and closes of pull request `number` by
    /// trusted announcers (newest first), and the heads' cells. No branch
    /// announcement and no force.
    pub fn load_pull<S: EntryStore>(
        store: &S,
        project: &ProjectId,
        number: u64,
        heads_max: usize,
    ) -> Result<ProjectLog, S::Error> {
        let mut log = ProjectLog::declared(store, project)?;
        let mut announcers = Policy::of(&log)
            .map(|policy| policy.announcers())
            .unwrap_or_default();
        announcers.retain(|a| log.in_good_standing(a));
        log.pulls = newest(store, &announcers, heads_max, |announcer| {
            IndexKey::AnnouncerPull(project, number, announcer).prefix()
        })?;
        let commits: BTreeSet<CommitId> = log
            .pulls
            .iter()
            .filter_map(announced_commit)
            .cloned()
            .collect();
        log.load_cells(store, commits)?;
        Ok(log)
    }

    /// The project's declarations, trust changes and settings, and the
    /// authors proven to fork: what decides its [`Policy`].
    fn declared<S: EntryStore>(store: &S, project: &ProjectId) -> Result<ProjectLog, S::Error> {
        let all = usize::MAX;
        Ok(ProjectLog {
            project: *project,
            declarations: fetch(store, &IndexKey::Project(project).prefix(), false, all)?,
            trust: fetch(store, &IndexKey::Trust(project).prefix(), false, all)?,
            settings: fetch(store, &IndexKey::Settings(project).prefix(), false, all)?,
            forked: store
                .forks()?
                .into_iter()
                .map(|(author, _)| author)
                .collect(),
            ..ProjectLog::default()
        })
    }

    /// Reads the claims and results of `commits`.
    fn load_cells<S: EntryStore>(
        &mut self,
        store: &S,
        commits: BTreeSet<CommitId>,
    ) -> Result<(), S::Error> {
        for commit in commits {
            let prefix = IndexKey::Commit(&self.project, &commit).prefix();
            let entries = fetch(store, &prefix, false, usize::MAX)?;
            let mut facts = Vec::with_capacity(entries.len());
            for entry in &entries {
                facts.extend(self.cell_fact(entry));
            }
            self.cells.insert(commit, facts);
        }
        Ok(())
    }

    /// The fact a claim or result states, keeping a result's numbers.
    fn cell_fact(&mut self, entry: &Entry) -> Option<CellFact> {
        if let Some(result) = entry.body().result() {
            let tests = entry.body().tests();
            let measures = measures_of(result, tests, &mut self.metric_names);
            self.measures.insert(entry.id(), measures);
            if let Some(tests) = tests {
                let failing = failing_of(tests, &mut self.test_names);
                self.failing_tests.insert(entry.id(), failing);
            }
            if !result.artifacts.is_empty() {
                let kept = result
                    .artifacts
                    .iter()
                    .map(|a| (a.name.clone(), a.hash))
                    .collect();
                self.artifacts.insert(entry.id(), kept);
            }
        }
        CellFact::of(entry, &mut self.platforms)
    }

    /// The commit a force names: the commit itself, or the newest
    /// announced head of the branch.
    pub fn forced_commit(&self, target: &ForceTarget) -> Option<CommitId> {
        match target {
            ForceTarget::Commit(commit) => Some(commit.clone()),
            ForceTarget::Branch(branch) => self
                .announcements
                .iter()
                .filter_map(|entry| match entry.body() {
                    Body::Announce(a) if a.branch == *branch => {
                        Some((entry.timestamp(), &a.commit))
                    }
                    _ => None,
                })
                .max_by_key(|(at, _)| *at)
                .map(|(_, commit)| commit.clone()),
        }
    }

    /// Builds the log of `project` from any collection of entries (for
    /// tests, audits of an export, and the simulator).
    pub fn from_entries<'a>(
        project: &ProjectId,
        entries: impl IntoIterator<Item = &'a Entry>,
        forked: BTreeSet<PublicKey>,
    ) -> ProjectLog {
        let mut log = ProjectLog {
            project: *project,
            forked,
            ..ProjectLog::default()
        };
        for entry in entries {
            log.add(entry);
        }
        log
    }

    fn add(&mut self, entry: &Entry) {
        let project = &self.project;
        let list = match entry.body() {
            Body::Project(p) if ProjectId::derive(&entry.author(), &p.name) == *project => {
                &mut self.declarations
            }
            Body::Announce(a) if a.project == *project => &mut self.announcements,
            Body::Claim(Claim {
                project: p, commit, ..
            }) if p == project => {
                let fact = self.cell_fact(entry);
                self.cells.entry(commit.clone()).or_default().extend(fact);
                return;
            }
            Body::Result(BuildResult {
                project: p, commit, ..
            })
            | Body::Tested(TestedResult {
                result: BuildResult {
                    project: p, commit, ..
                },
                ..
            })
            | Body::Attested(AttestedResult {
                result: BuildResult {
                    project: p, commit, ..
                },
                ..
            }) if p == project => {
                let fact = self.cell_fact(entry);
                self.cells.entry(commit.clone()).or_default().extend(fact);
                return;
            }
            Body::Trust(t) | Body::Revoke(t) if t.project == *project => &mut self.trust,
            Body::RevokeBuilder(r) if r.project == *project => &mut self.trust,
            Body::Force(f) if f.project == *project => &mut self.forces,
            Body::Setting(p) if p.project == *project => &mut self.settings,
            Body::Pull(p) if p.project == *project => &mut self.pulls,
            Body::PullClosed(c) if c.project == *project => &mut self.pulls,
            _ => return,
        };
        list.push(entry.clone());
    }

    /// Whether `entry`'s author is in good standing (no fork proven).
    pub fn counts(&self, entry: &Entry) -> bool {
        self.in_good_standing(&entry.author())
    }

    /// Extends the claims that `leases` holds renewals of: a claim's lease
    /// becomes the later of its own and its renewals'. A renewal extends
    /// only a claim by the same builder on the same cell; on its own it
    /// claims nothing (`docs/protocol.md` §11.3).
    pub fn apply_leases(&mut self, leases: &LiveLeases) {
        for (commit, platform, builder, renewed) in leases.of_project(&self.project) {
            let Some(platform) = self.platforms.number(platform) else {
                continue;
            };
            let Some(facts) = self.cells.get_mut(commit) else {
                continue;
            };
            let claims = facts
                .iter_mut()
                .filter(|fact| fact.platform == platform && fact.author == *builder);
            for fact in claims {
                if let Fact::Claim {
                    lease_expires,
                    renewed_at,
                } = &mut fact.what
                    && renewed.lease_expires > *lease_expires
                {
                    *lease_expires = renewed.lease_expires;
                    *renewed_at = (*renewed_at).max(renewed.at);
                }
            }
        }
    }

    /// Whether `author` is in good standing (no fork proven).
    pub fn in_good_standing(&self, author: &PublicKey) -> bool {
        !self.forked.contains(author)
    }
}

/// The longest a claim can hold a cell, counted from the claim's own
/// timestamp or its latest renewal's: a builder renews its lease while it
/// works, so a claim that names a later expiry (or the end of time) still
/// lapses.
pub const LEASE_MS_MAX: u64 = 60 * 60 * 1000;

/// What a claim or result says about its cell: all a view needs of it, in
/// a compact record so deriving a matrix touches little memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellFact {
    /// The entry.
    pub id: EntryId,
    /// Its author.
    pub author: PublicKey,
    /// When its author wrote it.
    pub at: Timestamp,
    /// Its place in its author's chain: what decides whether a revoked
    /// builder's result still counts ([`super::Policy::counts_result`]).
    pub seq: u64,
    /// The platform label, as its index in [`ProjectLog::platforms`].
    pub platform: u32,
    /// A claim or a result.
    pub what: Fact,
}

/// The part of a claim or result that decides a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    /// A lease until this time.
    Claim {
        /// When the lease lapses: the claim's own, or a later one its
        /// renewals set ([`ProjectLog::apply_leases`]).
        lease_expires: Timestamp,
        /// When its builder last said it holds the cell: the claim's time,
        /// or its latest renewal's.
        renewed_at: Timestamp,
    },
    /// A verdict.
    Result {
        /// The verdict.
        outcome: Outcome,
    },
}

impl CellFact {
    /// The fact a claim or result states; `None` for other entries.
    pub fn of(entry: &Entry, labels: &mut Labels) -> Option<CellFact> {
        let (platform, what) = match entry.body() {
            Body::Claim(c) => {
                let longest = entry.timestamp().plus_ms(LEASE_MS_MAX);
                (
                    &c.platform,
                    Fact::Claim {
                        lease_expires: c.lease_expires.min(longest),
                        renewed_at: entry.timestamp(),
                    },
                )
            }
            body => match body.result() {
                Some(r) => (&r.platform, Fact::Result { outcome: r.outcome }),
                None => return None,
            },
        };
        let platform = labels.intern(platform);
        Some(CellFact {
            id: entry.id(),
            author: entry.author(),
            at: entry.timestamp(),
            seq: entry.seq(),
            platform,
            what,
        })
    }
}

fn announced_commit(entry: &Entry) -> Option<&CommitId> {
    match entry.body() {
        Body::Announce(a) => Some(&a.commit),
        Body::Pull(p) => Some(&p.commit),
        _ => None,
    }
}

/// The newest `max` entries under each announcer's index (the `prefix` of
/// each), newest first over all of them.
fn newest<S: EntryStore>(
    store: &S,
    announcers: &[PublicKey],
    max: usize,
    prefix: impl Fn(&PublicKey) -> Vec<u8>,
) -> Result<Vec<Entry>, S::Error> {
    let mut entries = Vec::new();
    for announcer in announcers {
        entries.extend(fetch(store, &prefix(announcer), true, max)?);
    }
    entries.sort_by_key(|e| std::cmp::Reverse((e.timestamp(), e.id())));
    entries.truncate(max);
    Ok(entries)
}

pub(super) fn fetch<S: EntryStore>(
    store: &S,
    prefix: &[u8],
    newest_first: bool,
    limit: usize,
) -> Result<Vec<Entry>, S::Error> {
    let ids: Vec<EntryId> = store.scan_index(prefix, newest_first, limit)?;
    let mut entries = Vec::with_capacity(ids.len());
    for id in ids {
        entries.extend(store.get(&id)?.map(|stored| stored.entry));
    }
    Ok(entries)
}

/// Distinct strings, each with a small number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    by_label: BTreeMap<String, u32>,
    labels: Vec<String>,
}

impl Labels {
    /// The number of `label`, adding it if new.
    pub fn intern(&mut self, label: &str) -> u32 {
        if let Some(&number) = self.by_label.get(label) {
            return number;
        }
        let number = u32::try_from(self.labels.len()).unwrap_or(u32::MAX);
        self.by_label.insert(label.to_owned(), number);
        self.labels.push(label.to_owned());
        number
    }

    /// The number of `label`, if known.
    pub fn number(&self, label: &str) -> Option<u32> {
        self.by_label.get(label).copied()
    }

    /// The label with this number.
    pub fn label(&self, number: u32) -> Option<&str> {
        self.labels
            .get(usize::try_from(number).ok()?)
            .map(String::as_str)
    }

    /// How many labels there are.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// A result's metrics and built-in durations, named by `names`: finite
/// values only (a metric is a number a chart can place).
fn measures_of(result: &BuildResult, tests: Option<&TestSummary>, names: &mut Labels) -> Measures {
    let seconds = |ms: u64| ms as f64 / 1000.0;
    let total: u64 = result.steps.iter().map(|s| s.duration_ms).sum();
    let mut measures = Measures::with_capacity(result.metrics.len() + result.steps.len() + 5);
    for (name, value) in &result.metrics {
        measures.push((names.intern(name), *value));
    }
    measures.push((names.intern(DURATION), seconds(total)));
    for step in &result.steps {
        let name = format!("{STEP_DURATION}{}", step.name);
        measures.push((names.intern(&name), seconds(step.duration_ms)));
    }
    if let Some(tests) = tests {
        for (name, count) in [
            (TESTS_PASSED, tests.passed),
            (TESTS_FAILED, tests.failed),
            (TESTS_SKIPPED, tests.skipped),
            (TESTS_ERRORED, tests.errored),
        ] {
            measures.push((names.intern(name), count as f64));
        }
    }
    measures.retain(|(_, value)| value.is_finite());
    measures.sort_by_key(|(name, _)| *name);
    measures.dedup_by_key(|(name, _)| *name);
    measures
}

/// A result's failing tests, interned.
fn failing_of(tests: &TestSummary, names: &mut Labels) -> FailingTests {
    let mut numbers: Vec<u32> = tests.failing.iter().map(|t| names.intern(t)).collect();
    numbers.sort_unstable();
    numbers.dedup();
    let named = u64::try_from(tests.failing.len()).unwrap_or(u64::MAX);
    FailingTests {
        names: numbers,
        complete: named >= tests.failed.saturating_add(tests.errored),
    }
}
