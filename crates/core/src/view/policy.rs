//! Who may do what in a project, from its declaration and trust entries.

use super::project_log::{CellFact, Fact, ProjectLog};
use crate::claim::Rivals;
use buildmesh_protocol::{
    Body, BuilderPolicy, Entry, ProjectDeclaration, PublicKey, Role, Setting, SettingKind,
    Threshold, Timestamp,
};
use std::collections::BTreeSet;

/// A project's current declaration and the keys it trusts.
///
/// The owner's declarations and trust changes are applied in the owner's
/// sequence order: a declaration resets the lists, `Trust` adds a key,
/// `Revoke` removes it. Entries by anyone but the owner change nothing.
///
/// Trust is retroactive, revocation is not: while a key is a trusted
/// builder, all its results count, whenever signed; once the owner takes
/// that away (a `Revoke`, or a declaration that no longer lists the key or
/// closes an open project), its results count only if it was trusted when
/// it signed them, by the timestamps of the owner's entries and of the
/// results (docs/protocol.md §6.3). Its claims count only while it is
/// trusted.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy<'a> {
    /// The maintainer who declared the project.
    pub owner: PublicKey,
    /// The latest declaration.
    pub declaration: &'a ProjectDeclaration,
    announcers: BTreeSet<PublicKey>,
    builders: Builders,
    /// Who was a trusted builder from when: the builders after each owner
    /// entry that changed them, with the entry's timestamp, in the owner's
    /// sequence order.
    timeline: Vec<(Timestamp, Builders)>,
    /// Whether pull requests' heads are built (docs/protocol.md §6.2).
    pull_requests: bool,
    /// Whether a cell passes only when its artifacts agree (§6.3).
    reproducible: bool,
    thresholds: &'a [Threshold],
}

/// Whose builds count: everyone but the revoked, or only the listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Builders {
    /// Anyone's, but these keys'.
    Open {
        /// Keys whose builder role was revoked.
        revoked: BTreeSet<PublicKey>,
    },
    /// Only these keys'.
    Only(BTreeSet<PublicKey>),
}

impl Builders {
    /// Whether `key`'s claims, results and bids count.
    pub fn contains(&self, key: &PublicKey) -> bool {
        match self {
            Builders::Open { revoked } => !revoked.contains(key),
            Builders::Only(keys) => keys.contains(key),
        }
    }

    /// Who besides `me` may build this project's cells: the named
    /// builders but `me`, or anyone. What lets a round end early (or not
    /// start at all, when `me` is the only builder).
    pub fn rivals_of(&self, me: &PublicKey) -> Rivals {
        match self {
            Builders::Open { .. } => Rivals::Open,
            Builders::Only(keys) => {
                Rivals::Only(keys.iter().filter(|k| *k != me).copied().collect())
            }
        }
    }
}

impl<'a> Policy<'a> {
    /// The policy in force, or `None` if the project has no declaration
    /// by an owner in good standing.
    pub fn of(log: &'a ProjectLog) -> Option<Policy<'a>> {
        let mut owned: Vec<&Entry> = log
            .declarations
            .iter()
            .chain(&log.trust)
            .filter(|e| log.counts(e))
            .collect();
        let first = owned
            .iter()
            .find(|e| matches!(e.body(), Body::Project(_)))?;
        let owner = first.author();
        owned.retain(|e| e.author() == owner);
        owned.sort_by_key(|e| e.seq());
        let mut policy = owned
            .into_iter()
            .fold(None, |policy, entry| Policy::step(policy, owner, entry))?;
        policy.pull_requests = matches!(
            latest_setting(log, &owner, SettingKind::PullRequests),
            Some(Setting::PullRequests(true))
        );
        policy.reproducible = matches!(
            latest_setting(log, &owner, SettingKind::Reproducible),
            Some(Setting::Reproducible(true))
        );
        if let Some(Setting::Thresholds(list)) =
            latest_setting(log, &owner, SettingKind::Thresholds)
        {
            policy.thresholds = list;
        }
        Some(policy)
    }

    /// One owner entry applied; trust changes before the first declaration
    /// have nothing to change and are ignored.
    fn step(policy: Option<Policy<'a>>, owner: PublicKey, entry: &'a Entry) -> Option<Policy<'a>> {
        let at = entry.timestamp();
        match (policy, entry.body()) {
            (None, Body::Project(declaration)) => {
                Some(Policy::declared_at(owner, declaration, Some(at)))
            }
            (Some(before), Body::Project(declaration)) => {
                Some(before.declared_again(owner, declaration, at))
            }
            (Some(mut policy), Body::Trust(t)) => {
                policy.set(t.role, t.subject, true);
                policy.builders_from(at);
                Some(policy)
            }
            (Some(mut policy), Body::Revoke(t)) => {
                policy.set(t.role, t.subject, false);
                policy.builders_from(at);
                Some(policy)
            }
            (policy, _) => policy,
        }
    }

    /// A later declaration at `at`: it resets the lists, and what it says
    /// of builders holds from `at` on.
    fn declared_again(
        self,
        owner: PublicKey,
        declaration: &'a ProjectDeclaration,
        at: Timestamp,
    ) -> Policy<'a> {
        let mut next = Policy::declared_at(owner, declaration, None);
        next.timeline = self.timeline;
        next.builders_from(at);
        next
    }

    /// Records the builders now in force as holding from `at`.
    fn builders_from(&mut self, at: Timestamp) {
        if self
            .timeline
            .last()
            .is_some_and(|(_, b)| *b == self.builders)
        {
            return;
        }
        self.timeline.push((at, self.builders.clone()));
    }

    /// Whether `key` was a trusted builder at `at`: by the owner's latest
    /// change (in the owner's order) dated at or before `at`. An owner
    /// who dates a revocation back (docs/trust.md) thus takes back what
    /// the builder signed since that date, whatever came between.
    fn trusted_at(&self, key: &PublicKey, at: Timestamp) -> bool {
        self.timeline
            .iter()
            .rev()
            .find(|(from, _)| *from <= at)
            .is_some_and(|(_, builders)| builders.contains(key))
    }

    /// The policy a declaration signed at `at` sets (no timeline yet when
    /// `at` is `None`: a later declaration keeps the one before it).
    fn declared_at(
        owner: PublicKey,
        declaration: &'a ProjectDeclaration,
        at: Option<Timestamp>,
    ) -> Policy<'a> {
        let builders = match &declaration.builders {
            BuilderPolicy::Open => Builders::Open {
                revoked: BTreeSet::new(),
            },
            BuilderPolicy::Only(keys) => Builders::Only(keys.iter().copied().collect()),
        };
        Policy {
            owner,
            declaration,
            announcers: declaration.announcers.iter().copied().collect(),
            timeline: at.map(|at| (at, builders.clone())).into_iter().collect(),
            builders,
            pull_requests: false,
            reproducible: false,
            thresholds: &[],
        }
    }

    fn set(&mut self, role: Role, key: PublicKey, granted: bool) {
        let (set, listed_means_granted) = match (role, &mut self.builders) {
            (Role::Announcer, _) => (&mut self.announcers, true),
            (Role::Builder, Builders::Only(keys)) => (keys, true),
            (Role::Builder, Builders::Open { revoked }) => (revoked, false),
        };
        if granted == listed_means_granted {
            set.insert(key);
        } else {
            set.remove(&key);
        }
    }

    /// Every key that may announce commits: the owner, then the others in
    /// key order.
    pub fn announcers(&self) -> Vec<PublicKey> {
        let others = self.announcers.iter().filter(|k| **k != self.owner);
        std::iter::once(self.owner).chain(others.copied()).collect()
    }

    /// Whether `key` may announce commits.
    pub fn may_announce(&self, key: &PublicKey) -> bool {
        *key == self.owner || self.announcers.contains(key)
    }

    /// Whether `key` is a trusted builder now: whether its bids, claims
    /// and renewals count, and all its results.
    pub fn trusts_builder(&self, key: &PublicKey) -> bool {
        self.builders.contains(key)
    }

    /// Whether a result `key` signed at `at` counts: when `key` is trusted
    /// now, or was when it signed the result (see [`Policy`]). `at` is the
    /// builder's own claim: a stolen key can date a result before its
    /// revocation, which is why an owner may date a revocation back
    /// (docs/trust.md, "A lying builder").
    pub fn counts_result(&self, key: &PublicKey, at: Timestamp) -> bool {
        self.trusts_builder(key) || self.trusted_at(key, at)
    }

    /// Whether a claim or result counts in the project's cells: a claim
    /// when its builder is trusted now, a result by
    /// [`Policy::counts_result`]. (Good standing, no fork proven, is the
    /// log's to say: [`ProjectLog::in_good_standing`].)
    pub fn counts(&self, fact: &CellFact) -> bool {
        match fact.what {
            Fact::Claim { .. } => self.trusts_builder(&fact.author),
            Fact::Result { .. } => self.counts_result(&fact.author, fact.at),
        }
    }

    /// Whose claims and results count.
    pub fn builders(&self) -> &Builders {
        &self.builders
    }

    /// Whether the owner turned on building pull requests (off unless an
    /// owner's `Setting` says so: a pull request is anyone's code).
    pub fn pull_requests(&self) -> bool {
        self.pull_requests
    }

    /// Whether the owner requires builders' artifacts to agree before a
    /// cell passes (off unless an owner's `Setting` says so).
    pub fn reproducible(&self) -> bool {
        self.reproducible
    }

    /// How many builders' results each cell wants: the declared count,
    /// and at least two when artifacts must agree (one copy proves
    /// nothing).
    pub fn builds_per_cell(&self) -> u8 {
        let declared = self.declaration.builds_per_cell;
        if self.reproducible {
            declared.max(2)
        } else {
            declared
        }
    }

    /// The owner's thresholds on the project's metrics (its newest
    /// `Thresholds` setting; none until one is set).
    pub fn thresholds(&self) -> &'a [Threshold] {
        self.thresholds
    }
}

/// The owner's setting of `kind` with the highest sequence number, if the
/// owner (in good standing) ever wrote one: as with declarations, the
/// owner's own order decides, not arrival or timestamps.
fn latest_setting<'a>(
    log: &'a ProjectLog,
    owner: &PublicKey,
    kind: SettingKind,
) -> Option<&'a Setting> {
    log.settings
        .iter()
        .filter(|e| e.author() == *owner && log.counts(e))
        .filter_map(|e| match e.body() {
            Body::Setting(s) if s.project == log.project && s.setting.kind() == kind => {
                Some((e.seq(), &s.setting))
            }
            _ => None,
        })
        .max_by_key(|(seq, _)| *seq)
        .map(|(_, setting)| setting)
}
