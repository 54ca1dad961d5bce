//! What a node's operator accepted: the projects a donor's machine
//! watches and builds. Everything else declared in the shared log is
//! replicated and shown, but gets no bid, no poll and no build here.

use buildmesh_protocol::{ProjectId, PublicKey};
use std::collections::BTreeSet;

/// The operator's choice, plus what the machine can do safely.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acceptance {
    /// Projects accepted one by one.
    pub projects: BTreeSet<ProjectId>,
    /// Maintainers whose every project is accepted, now and later.
    pub maintainers: BTreeSet<PublicKey>,
    /// `Some` when builds cannot run in a sandbox here (and the operator
    /// did not say to run them anyway): only projects declared by these
    /// keys, whose secret halves this node holds, may build.
    pub unsandboxed_only: Option<BTreeSet<PublicKey>>,
    /// The operator refuses to build pull requests, even of accepted
    /// projects that ask for them (`--no-pull-requests`): a pull request
    /// is code by anyone who opens one, not by the maintainer the operator
    /// chose to trust.
    pub no_pull_requests: bool,
}

/// Whether a project may be watched and built here, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Watched and built.
    Accepted,
    /// The operator did not accept it.
    NotAccepted,
    /// Accepted, but no sandbox runs here and its maintainer is not this
    /// node's own.
    NeedsSandbox,
    /// Accepted, but the project takes results only from builders it
    /// names, and this node's key is not one: its claims and results would
    /// be refused by every log (docs/protocol.md §6.1) and count nowhere.
    NotABuilder,
    /// This node's own key is proven to have signed two histories (a data
    /// dir copied to two machines, a backup restored after writes were
    /// lost): every log refuses what it signs past the fork, so building
    /// would be work for nothing until the node has a new key.
    KeyForked,
}

impl Acceptance {
    /// Accepts exactly `project`: what `buildmesh up` declares.
    pub fn only(project: ProjectId) -> Acceptance {
        Acceptance {
            projects: BTreeSet::from([project]),
            ..Acceptance::default()
        }
    }

    /// The verdict on `project`, declared by `owner`.
    pub fn verdict(&self, project: &ProjectId, owner: &PublicKey) -> Verdict {
        if !self.projects.contains(project) && !self.maintainers.contains(owner) {
            return Verdict::NotAccepted;
        }
        match &self.unsandboxed_only {
            Some(own) if !own.contains(owner) => Verdict::NeedsSandbox,
            _ => Verdict::Accepted,
        }
    }

    /// Whether pull requests of accepted projects (that ask for them) are
    /// built here: not when the operator refused them, and not when no
    /// sandbox runs here, since the node's own maintainer key vouches for
    /// its projects' branches, not for strangers' pull requests.
    pub fn builds_pull_requests(&self) -> bool {
        !self.no_pull_requests && self.unsandboxed_only.is_none()
    }

    /// Whether nothing at all is accepted.
    pub fn is_empty(&self) -> bool {
        self.projects.is_empty() && self.maintainers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PublicKey {
        PublicKey([byte; 32])
    }

    #[test]
    fn projects_are_accepted_by_id_or_by_maintainer_and_confined_without_a_sandbox() {
        let (alice, bob) = (key(1), key(2));
        let (shop, blog) = (ProjectId([10; 32]), ProjectId([11; 32]));
        let none = Acceptance::default();
        assert!(none.is_empty());
        assert_eq!(none.verdict(&shop, &alice), Verdict::NotAccepted);
        let mut accept = Acceptance::only(shop);
        assert_eq!(accept.verdict(&shop, &alice), Verdict::Accepted);
        assert_eq!(accept.verdict(&blog, &alice), Verdict::NotAccepted);
        accept.maintainers.insert(bob);
        assert_eq!(
            accept.verdict(&blog, &bob),
            Verdict::Accepted,
            "all of bob's"
        );
        accept.unsandboxed_only = Some(BTreeSet::from([alice]));
        assert_eq!(accept.verdict(&shop, &alice), Verdict::Accepted);
        assert_eq!(accept.verdict(&blog, &bob), Verdict::NeedsSandbox);
    }
}
