//! What the log asks of one node: repositories to watch, cells to build,
//! and the claims and results that decide who builds them.
//!
//! A pure function of the entry set, the node's key and its platforms. The
//! node feeds what it finds to its claimer and its poller; any node given
//! the same entries finds the same work.

use super::acceptance::{Acceptance, Verdict};
use super::leases::LiveLeases;
use super::policy::{Builders, Policy};
use super::project_log::{Fact, ProjectLog, fetch};
use super::pulls::{closes, is_open};
use super::quorum::Tally;
use crate::log::{EntryStore, IndexKey};
use buildmesh_protocol::{Body, CommitId, EntryId, ProjectId, PublicKey, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

/// A repository this node announces commits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// The project.
    pub project: ProjectId,
    /// Where its code is.
    pub repository: String,
    /// Branches whose new commits are announced.
    pub branches: Vec<String>,
    /// Commits already announced by a trusted announcer (the newest ones).
    pub announced: BTreeSet<CommitId>,
    /// Whether the project builds pull requests: only then are their
    /// heads announced (docs/protocol.md §6.2).
    pub pull_requests: bool,
    /// Heads of open pull requests already announced by a trusted
    /// announcer (the newest ones), as (number, head). A closed pull
    /// request's heads are not here, so reopening it announces its head
    /// again, and that newer announcement is what reopens it.
    pub announced_pulls: BTreeSet<(u64, CommitId)>,
}

impl Watch {
    /// Whether a forge's word that pull request `number` of `repository`
    /// now has head `head` should be checked and announced for this watch:
    /// the repository is this project's, the project builds pull
    /// requests, and that head is not announced yet.
    pub fn wants_pull(&self, repository: &str, number: u64, head: &CommitId) -> bool {
        self.pull_requests
            && same_repository(&self.repository, repository)
            && !self.announced_pulls.contains(&(number, head.clone()))
    }

    /// Whether a forge's word that pull request `number` of `repository`
    /// was closed should be signed for this watch: the repository is this
    /// project's, the project builds pull requests, and the pull request
    /// is open with a head announced (closing one never announced, or
    /// already closed, says nothing new).
    pub fn wants_close(&self, repository: &str, number: u64) -> bool {
        self.pull_requests
            && same_repository(&self.repository, repository)
            && self.announced_pulls.iter().any(|(n, _)| *n == number)
    }
}

/// Whether two repository locations name the same repository: equal once
/// the scheme, a `user@`, a trailing `/` and a `.git` suffix are dropped
/// and the host is lower-cased (a forge's `clone_url` and `html_url`, and
/// the URL a maintainer declared, differ in exactly these). A local path
/// and its `file://` URL are the same.
pub fn same_repository(a: &str, b: &str) -> bool {
    let (a, b) = (normalized(a), normalized(b));
    !a.is_empty() && a == b
}

fn normalized(url: &str) -> String {
    let url = url.trim();
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.trim_end_matches('/');
    let rest = rest
        .strip_suffix(".git")
        .unwrap_or(rest)
        .trim_end_matches('/');
    if url.contains("://") && !rest.starts_with('/') {
        // host[:port]/path: the host is case-insensitive, the path is not.
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
        return format!("{}/{path}", host.to_ascii_lowercase());
    }
    rest.to_owned()
}

/// One cell (commit × platform) and what it needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WantedCell {
    /// The project.
    pub project: ProjectId,
    /// Where its code is.
    pub repository: String,
    /// The commit.
    pub commit: CommitId,
    /// The platform.
    pub platform: String,
    /// Results from distinct builders it needs.
    pub builds: u8,
    /// Results written before this do not count: a force build moved it.
    pub since: Timestamp,
}

/// A trusted builder's claim or result on a cell this node could build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellEvent {
    /// The project.
    pub project: ProjectId,
    /// The commit.
    pub commit: CommitId,
    /// The platform.
    pub platform: String,
    /// Who.
    pub builder: PublicKey,
    /// When it was written; for a claim, when its builder last renewed it.
    pub at: Timestamp,
    /// A claim's lease expiry, renewals counted; `None` for a result.
    pub lease_expires: Option<Timestamp>,
    /// A result without a verdict (`Retry`, `Cancelled`): its builder's
    /// claim ends, but the cell is not built.
    pub stopped: bool,
}

/// Everything the log asks of one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Work {
    /// Repositories to watch.
    pub watches: Vec<Watch>,
    /// Cells on this node's platforms, in the order they were first wanted
    /// (announced commits oldest first, then forced ones): the claimer
    /// takes cells that wait alike in this order.
    pub wanted: Vec<WantedCell>,
    /// Claims and results on those cells.
    pub events: Vec<CellEvent>,
    /// Whose claims, results, bids and renewals count, per declared
    /// project, built here or not (authors proven to fork count nowhere:
    /// see `forked`).
    pub builders: BTreeMap<ProjectId, Builders>,
    /// Authors with a fork proof against them.
    pub forked: BTreeSet<PublicKey>,
    /// Per project and author, which of its claims and results on wanted cells do not
    /// count (a fork, a revocation, no role in the project), as a
    /// fingerprint: when one author's changes, facts of it the claimer was
    /// fed may have stopped counting ([`crate::claim::ClaimInput::Withdrawn`]).
    pub uncounted: BTreeMap<(ProjectId, PublicKey), Uncounted>,
    /// Projects that want one of this node's platforms but are not built
    /// here, and why.
    pub declined: Vec<Declined>,
    /// When the reading began (set by whoever reads; 0 if unknown): work
    /// read after a sync completed holds what that sync brought.
    pub read_at: Timestamp,
}

/// A project that wants this node's platform and that it does not build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declined {
    /// The project.
    pub project: ProjectId,
    /// Its name.
    pub name: String,
    /// The maintainer who declared it.
    pub owner: PublicKey,
    /// Why it is not built.
    pub verdict: Verdict,
}

/// A cell named by borrowed parts.
type CellRef<'a> = (&'a ProjectId, &'a CommitId, &'a str);

impl Work {
    /// How many wanted cells still lack the results they need (counting
    /// results written since each cell's `since`): the build queue as this
    /// node sees it.
    pub fn waiting(&self) -> usize {
        let mut results: BTreeMap<CellRef<'_>, Vec<(&PublicKey, Timestamp)>> = BTreeMap::new();
        for event in self
            .events
            .iter()
            .filter(|e| e.lease_expires.is_none() && !e.stopped)
        {
            results
                .entry((&event.project, &event.commit, event.platform.as_str()))
                .or_default()
                .push((&event.builder, event.at));
        }
        self.wanted
            .iter()
            .filter(|cell| {
                let key = (&cell.project, &cell.commit, cell.platform.as_str());
                let builders: BTreeSet<&PublicKey> = results
                    .get(&key)
                    .into_iter()
                    .flatten()
                    .filter(|(_, at)| *at >= cell.since)
                    .map(|(builder, _)| *builder)
                    .collect();
                builders.len() < usize::from(cell.builds)
            })
            .count()
    }
}

/// A set of entries told by their count and the XOR of their ids: equal
/// sets give equal values, whatever the order they were met in, in a few
/// bytes however many entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uncounted {
    count: usize,
    ids: [u8; 32],
}

impl Uncounted {
    fn add(&mut self, id: &EntryId) {
        self.count += 1;
        for (byte, of_id) in self.ids.iter_mut().zip(id.0) {
            *byte ^= of_id;
        }
    }
}

/// The work the log holds for the node `me` serving `platforms`, over the
/// newest `commits_max` announced commits of each project its operator
/// accepted. Projects not accepted get no watch and no wanted cell; those
/// that want one of `platforms` are listed in [`Work::declined`].
pub fn work<S: EntryStore>(
    store: &S,
    me: &PublicKey,
    platforms: &BTreeSet<String>,
    acceptance: &Acceptance,
    commits_max: usize,
    leases: &LiveLeases,
) -> Result<Work, S::Error> {
    let mut work = Work {
        forked: store
            .forks()?
            .into_iter()
            .map(|(author, _)| author)
            .collect(),
        ..Work::default()
    };
    for project in projects(store)? {
        let mut log = ProjectLog::load(store, &project, commits_max)?;
        log.apply_leases(leases);
        let Some(policy) = Policy::of(&log) else {
            continue;
        };
        // Every declared project's: its bids and renewals are checked and
        // passed on whether or not this node builds it.
        work.builders.insert(project, policy.builders().clone());
        let verdict = acceptance.verdict(&project, &policy.owner);
        if verdict != Verdict::Accepted {
            work.decline(&project, &policy, platforms, verdict);
            continue;
        }
        if !log.in_good_standing(me) {
            // Nothing it signs counts: neither announce nor build.
            work.decline(&project, &policy, platforms, Verdict::KeyForked);
            continue;
        }
        if policy.may_announce(me) {
            work.watches.push(watch(store, &log, &policy, commits_max)?);
        }
        if !policy.trusts_builder(me) {
            // Its claims and results would be refused by every log
            // (docs/protocol.md §6.1): announce if trusted to, build not.
            work.decline(&project, &policy, platforms, Verdict::NotABuilder);
            continue;
        }
        let pulls = acceptance.builds_pull_requests();
        let wanted = wanted_cells(&log, &policy, platforms, pulls);
        work.events
            .extend(events(&log, &policy, &wanted, &mut work.uncounted));
        work.wanted.extend(wanted);
    }
    Ok(work)
}

impl Work {
    /// Lists `project` as not built here for `verdict`, if it wants one of
    /// this node's platforms (the others are none of this node's concern).
    fn decline(
        &mut self,
        project: &ProjectId,
        policy: &Policy<'_>,
        platforms: &BTreeSet<String>,
        verdict: Verdict,
    ) {
        let declaration = policy.declaration;
        if declaration.platforms.iter().any(|p| platforms.contains(p)) {
            self.declined.push(Declined {
                project: *project,
                name: declaration.name.clone(),
                owner: policy.owner,
                verdict,
            });
        }
    }
}

/// Every declared project, each once.
pub fn projects<S: EntryStore>(store: &S) -> Result<BTreeSet<ProjectId>, S::Error> {
    let declarations = fetch(store, &IndexKey::AllProjects.prefix(), false, usize::MAX)?;
    Ok(declarations
        .iter()
        .filter_map(|entry| match entry.body() {
            Body::Project(p) => Some(ProjectId::derive(&entry.author(), &p.name)),
            _ => None,
        })
        .collect())
}

/// What a poller of the project needs: its repository, its branches, and
/// what was announced already: the project's newest commits, and each
/// watched branch's own newest (so a quiet branch's head, pushed out of the
/// project's newest by busy ones, is not announced again after a restart).
fn watch<S: EntryStore>(
    store: &S,
    log: &ProjectLog,
    policy: &Policy<'_>,
    commits_max: usize,
) -> Result<Watch, S::Error> {
    let mut announced: BTreeSet<CommitId> = announcements(log)
        .map(|(_, commit, _)| commit.clone())
        .collect();
    for branch in &policy.declaration.branches {
        for announcer in policy.announcers() {
            if !log.in_good_standing(&announcer) {
                continue;
            }
            let prefix =
                IndexKey::AnnouncerBranchCommits(&log.project, branch, &announcer).prefix();
            for entry in fetch(store, &prefix, true, commits_max)? {
                if let Body::Announce(a) = entry.body() {
                    announced.insert(a.commit.clone());
                }
            }
        }
    }
    let open = open_pulls(log, policy);
    let announced_pulls = log
        .pulls
        .iter()
        .filter(|e| log.counts(e) && policy.may_announce(&e.author()))
        .filter_map(|entry| match entry.body() {
            Body::Pull(p) if open.contains(&p.number) => Some((p.number, p.commit.clone())),
            _ => None,
        })
        .collect();
    Ok(Watch {
        project: log.project,
        repository: policy.declaration.repository.clone(),
        branches: policy.declaration.branches.clone(),
        announced,
        pull_requests: policy.pull_requests(),
        announced_pulls,
    })
}

/// The cells of announced commits on watched branches, of pull requests'
/// latest heads (when the project builds them and `pulls`: this node
/// does), and of forced commits, on the platforms both the project and
/// this node have.
fn wanted_cells(
    log: &ProjectLog,
    policy: &Policy<'_>,
    platforms: &BTreeSet<String>,
    pulls: bool,
) -> Vec<WantedCell> {
    let declaration = policy.declaration;
    let mut commits: BTreeMap<CommitId, BTreeMap<String, Timestamp>> = BTreeMap::new();
    // The order cells were first wanted in: announced ones (branch commits
    // and pull request heads) oldest first, then forced ones; the claimer takes cells that wait alike in the
    // order it hears of them, so the longest waiting goes first.
    let mut order: Vec<CommitId> = Vec::new();
    let ours: Vec<&String> = declaration
        .platforms
        .iter()
        .filter(|p| platforms.contains(*p))
        .collect();
    let heads = if pulls && policy.pull_requests() {
        pull_heads(log, policy)
    } else {
        Vec::new()
    };
    for commit in first_wanted(log, &declaration.branches, heads) {
        if !commits.contains_key(commit) {
            order.push(commit.clone());
        }
        let cells = commits.entry(commit.clone()).or_default();
        for platform in &ours {
            cells.entry((*platform).clone()).or_insert(Timestamp(0));
        }
    }
    for force in log.forces.iter().filter(|f| f.author() == policy.owner) {
        let Body::Force(f) = force.body() else {
            continue;
        };
        let Some(commit) = log.forced_commit(&f.target) else {
            continue;
        };
        if !commits.contains_key(&commit) {
            order.push(commit.clone());
        }
        let cells = commits.entry(commit).or_default();
        for platform in ours
            .iter()
            .filter(|p| f.platforms.is_empty() || f.platforms.contains(p))
        {
            let since = cells.entry((*platform).clone()).or_insert(Timestamp(0));
            *since = (*since).max(force.timestamp());
        }
    }
    order
        .into_iter()
        .filter_map(|commit| commits.remove(&commit).map(|cells| (commit, cells)))
        .flat_map(|(commit, cells)| {
            cells.into_iter().map(move |(platform, since)| WantedCell {
                project: log.project,
                repository: declaration.repository.clone(),
                builds: builds_wanted(log, policy, &commit, &platform, since),
                commit: commit.clone(),
                platform,
                since,
            })
        })
        .collect()
}

/// How many builders' results the cell wants: the project's count, or,
/// while its builders disagree, one more than have finished it since
/// `since` (the claimer counts those), so a builder that has not built it
/// since is asked. Whether they disagree is judged on every trusted
/// result, as the matrix judges it: a force does not hide the dissent.
fn builds_wanted(
    log: &ProjectLog,
    policy: &Policy<'_>,
    commit: &CommitId,
    platform: &str,
    since: Timestamp,
) -> u8 {
    let needed = policy.builds_per_cell();
    let (Some(facts), Some(label)) = (log.cells.get(commit), log.platforms.number(platform)) else {
        return needed;
    };
    let mut tally = Tally::default();
    let mut finished = BTreeSet::new();
    for fact in facts
        .iter()
        .filter(|f| f.platform == label && policy.counts(f))
    {
        if let Fact::Result { outcome } = fact.what {
            tally.add(fact.author, fact.at, fact.id, outcome);
            if outcome.settles() && fact.at >= since {
                finished.insert(fact.author);
            }
        }
    }
    tally.builds_wanted(needed, finished.len())
}

/// The commits announced on `branches` and the pull request `heads`
/// (each with its announcement's time and id), oldest first: the order
/// they were first wanted in.
fn first_wanted<'a>(
    log: &'a ProjectLog,
    branches: &[String],
    heads: Vec<(Timestamp, EntryId, &'a CommitId)>,
) -> Vec<&'a CommitId> {
    let mut wanted: Vec<(Timestamp, EntryId, &CommitId)> = log
        .announcements
        .iter()
        .filter_map(|entry| match entry.body() {
            Body::Announce(a) if branches.contains(&a.branch) => {
                Some((entry.timestamp(), entry.id(), &a.commit))
            }
            _ => None,
        })
        .chain(heads)
        .collect();
    wanted.sort();
    wanted.into_iter().map(|(_, _, commit)| commit).collect()
}

/// Each open pull request's latest head announced by a trusted announcer,
/// with that announcement's time and id. Older heads are not built: the
/// pull request moved on, and its ref no longer leads to them; nor are a
/// closed one's: it will not be merged as it stands.
fn pull_heads<'a>(
    log: &'a ProjectLog,
    policy: &Policy<'_>,
) -> Vec<(Timestamp, EntryId, &'a CommitId)> {
    let closes = closes(log, policy);
    latest_heads(log, policy)
        .into_iter()
        .filter(|(number, (at, id, _))| is_open(&closes, *number, (*at, *id)))
        .map(|(_, head)| head)
        .collect()
}

/// The numbers of the open pull requests with a head announced.
fn open_pulls(log: &ProjectLog, policy: &Policy<'_>) -> BTreeSet<u64> {
    let closes = closes(log, policy);
    latest_heads(log, policy)
        .into_iter()
        .filter(|(number, (at, id, _))| is_open(&closes, *number, (*at, *id)))
        .map(|(number, _)| number)
        .collect()
}

/// Each pull request's latest head announced by a trusted announcer, with
/// that announcement's time and id, by number.
fn latest_heads<'a>(
    log: &'a ProjectLog,
    policy: &Policy<'_>,
) -> BTreeMap<u64, (Timestamp, EntryId, &'a CommitId)> {
    let mut latest: BTreeMap<u64, (Timestamp, EntryId, &CommitId)> = BTreeMap::new();
    for entry in log
        .pulls
        .iter()
        .filter(|e| log.counts(e) && policy.may_announce(&e.author()))
    {
        let Body::Pull(p) = entry.body() else {
            continue;
        };
        let this = (entry.timestamp(), entry.id(), &p.commit);
        let slot = latest.entry(p.number).or_insert(this);
        if (this.0, this.1) > (slot.0, slot.1) {
            *slot = this;
        }
    }
    latest
}

/// Trusted announcements as (branch, commit, time).
fn announcements(log: &ProjectLog) -> impl Iterator<Item = (&String, &CommitId, Timestamp)> {
    log.announcements
        .iter()
        .filter_map(|entry| match entry.body() {
            Body::Announce(a) => Some((&a.branch, &a.commit, entry.timestamp())),
            _ => None,
        })
}

/// Trusted builders' claims and results on the wanted cells.
fn events(
    log: &ProjectLog,
    policy: &Policy<'_>,
    wanted: &[WantedCell],
    uncounted: &mut BTreeMap<(ProjectId, PublicKey), Uncounted>,
) -> Vec<CellEvent> {
    let mut events = Vec::new();
    for cell in wanted {
        let Some(facts) = log.cells.get(&cell.commit) else {
            continue;
        };
        let platform = log.platforms.number(&cell.platform);
        for fact in facts.iter().filter(|f| Some(f.platform) == platform) {
            if !policy.counts(fact) {
                let key = (cell.project, fact.author);
                uncounted.entry(key).or_default().add(&fact.id);
                continue;
            }
            // A builder that stopped short (retry, cancelled) has not
            // built the cell: its claim ends, it may take the cell again,
            // and it does not count towards the builds the cell wants.
            let stopped = matches!(fact.what, Fact::Result { outcome } if !outcome.settles());
            events.push(CellEvent {
                project: cell.project,
                commit: cell.commit.clone(),
                platform: cell.platform.clone(),
                builder: fact.author,
                at: match fact.what {
                    Fact::Claim { renewed_at, .. } => renewed_at,
                    Fact::Result { .. } => fact.at,
                },
                lease_expires: match fact.what {
                    Fact::Claim { lease_expires, .. } => Some(lease_expires),
                    Fact::Result { .. } => None,
                },
                stopped,
            });
        }
    }
    events
}
