//! Who may do what in a project, from its declaration and trust entries.

use super::project_log::{CellFact, Fact, ProjectLog};
use crate::claim::Rivals;
use buildmesh_protocol::{
    Body, BuilderPolicy, Entry, ProjectDeclaration, PublicKey, Role, Setting, SettingKind,
    Threshold,
};
use std::collections::{BTreeMap, BTreeSet};

/// No author proven to fork: what a policy holds until [`Policy::of`]
/// gives it its log's.
static NONE_FORKED: BTreeSet<PublicKey> = BTreeSet::new();

/// A project's current declaration and the keys it trusts.
///
/// The owner's declarations and trust changes are applied in the owner's
/// sequence order: a declaration resets the lists, `Trust` adds a key,
/// `Revoke` and `RevokeBuilder` remove it. Entries by anyone but the owner
/// change nothing.
///
/// Trust is retroactive, revocation is not: while a key is a trusted
/// builder, all its results count, whenever signed. A `RevokeBuilder`
/// names the last entry of the builder's own chain that keeps counting;
/// what it signs after that never counts, however it dates it (a chain
/// cannot be backdated without a fork, and a fork freezes the key). A
/// builder revoked otherwise (a `Revoke` from before `RevokeBuilder`, or a
/// declaration that no longer lists it and no revocation that kept
/// anything) keeps nothing (docs/protocol.md §6.3). Its claims count only
/// while it is trusted.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy<'a> {
    /// The maintainer who declared the project.
    pub owner: PublicKey,
    /// The latest declaration.
    pub declaration: &'a ProjectDeclaration,
    announcers: BTreeSet<PublicKey>,
    builders: Builders,
    /// Builders revoked by a `RevokeBuilder`: the last sequence number of
    /// each one's chain whose results keep counting.
    kept: BTreeMap<PublicKey, u64>,
    /// Authors proven to fork ([`ProjectLog::forked`]): nothing they sign
    /// counts, whatever their role.
    forked: &'a BTreeSet<PublicKey>,
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
        policy.forked = &log.forked;
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
        match (policy, entry.body()) {
            (None, Body::Project(declaration)) => Some(Policy::declared(owner, declaration)),
            (Some(before), Body::Project(declaration)) => {
                Some(Policy::declared(owner, declaration).after(before))
            }
            (Some(mut policy), Body::Trust(t)) => {
                policy.set(t.role, t.subject, true);
                if t.role == Role::Builder {
                    policy.kept.remove(&t.subject);
                }
                Some(policy)
            }
            (Some(mut policy), Body::Revoke(t)) => {
                policy.set(t.role, t.subject, false);
                if t.role == Role::Builder {
                    policy.kept.remove(&t.subject);
                }
                Some(policy)
            }
            (Some(mut policy), Body::RevokeBuilder(r)) => {
                // Only a trusted key's chain is anchored anew; for one not
                // trusted, a revocation can keep less, never more.
                let kept = if policy.trusts_builder(&r.subject) {
                    Some(r.kept_through)
                } else {
                    policy.kept.get(&r.subject).map(|k| r.kept_through.min(*k))
                };
                policy.set(Role::Builder, r.subject, false);
                match kept {
                    Some(kept) => policy.kept.insert(r.subject, kept),
                    None => policy.kept.remove(&r.subject),
                };
                Some(policy)
            }
            (policy, _) => policy,
        }
    }

    /// A declaration made after `before`: what revocations kept stays, and
    /// an open project's revoked keys stay revoked (a declaration that
    /// only adds a platform must not trust them again), as do keys revoked
    /// with their chain kept when the project opens.
    fn after(mut self, before: Policy<'a>) -> Policy<'a> {
        if let Builders::Open { revoked } = &mut self.builders {
            if let Builders::Open { revoked: was } = before.builders {
                revoked.extend(was);
            }
            revoked.extend(before.kept.keys().copied());
        }
        self.kept = before.kept;
        self
    }

    /// The policy a declaration sets, before any trust change.
    fn declared(owner: PublicKey, declaration: &'a ProjectDeclaration) -> Policy<'a> {
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
            builders,
            kept: BTreeMap::new(),
            forked: &NONE_FORKED,
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

    /// Whether the result at `seq` of `key`'s chain counts: when no fork
    /// is proven against `key`, and it is trusted now or was revoked with
    /// its chain kept through `seq` or later (see [`Policy`]).
    pub fn counts_result(&self, key: &PublicKey, seq: u64) -> bool {
        !self.forked.contains(key)
            && (self.trusts_builder(key) || self.kept.get(key).is_some_and(|kept| seq <= *kept))
    }

    /// Whether a claim or result counts in the project's cells: a claim
    /// when its builder is trusted now and no fork is proven against it,
    /// a result by [`Policy::counts_result`].
    pub fn counts(&self, fact: &CellFact) -> bool {
        match fact.what {
            Fact::Claim { .. } => {
                self.trusts_builder(&fact.author) && !self.forked.contains(&fact.author)
            }
            Fact::Result { .. } => self.counts_result(&fact.author, fact.seq),
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
