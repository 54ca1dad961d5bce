//! Quorum: what a cell's trusted builders' votes decide together.
//!
//! One builder's word is what a project with `builds_per_cell = 1` asks
//! for, and a lying or broken builder can give it. When two trusted
//! builders disagree on one commit and platform, neither word is taken:
//! the cell is `disagree` and wants a build by a builder that has not
//! built it, whose vote decides. A cell whose builders keep disagreeing
//! (two on each side) is `flaky`: the commit's verdict depends on who
//! builds it, which no further build settles.
//!
//! Each builder votes once: with its latest result that is a vote
//! (success, warnings or failure; [`Outcome::vote`]). A builder that
//! passed a commit and then failed it on a forced rebuild counts as
//! failing, as the newest word of one witness should.

use buildmesh_protocol::{EntryId, Outcome, PublicKey, Timestamp, Vote};
use smallvec::SmallVec;

/// What the votes decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No vote yet, or fewer passes than the project needs and no failure.
    Undecided,
    /// Enough builders passed it, and at most one dissenter was outvoted.
    Passed,
    /// Builders failed it, and at most one dissenter was outvoted.
    Failed,
    /// Builders disagree and no side has won yet: one more builder is
    /// wanted.
    Disagree,
    /// Builders disagree, two or more on each side.
    Flaky,
}

/// One builder's vote: who, its result's (time, id), and the vote.
type Ballot = (PublicKey, (Timestamp, EntryId), Vote);

/// The votes on one cell: each voting builder once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Each voting builder with its latest vote's (time, id) and vote:
    /// held inline for the few builders a cell has, since a matrix tallies
    /// every cell it shows.
    votes: SmallVec<[Ballot; 4]>,
}

impl Tally {
    /// Counts `builder`'s result with `outcome`, written at `at` as entry
    /// `id`: it replaces that builder's earlier vote, if older.
    pub fn add(&mut self, builder: PublicKey, at: Timestamp, id: EntryId, outcome: Outcome) {
        let Some(vote) = outcome.vote() else {
            return;
        };
        match self.votes.iter_mut().find(|(b, _, _)| *b == builder) {
            Some(slot) if slot.1 < (at, id) => *slot = (builder, (at, id), vote),
            Some(_) => {}
            None => self.votes.push((builder, (at, id), vote)),
        }
    }

    /// Distinct builders voting `vote`.
    pub fn count(&self, vote: Vote) -> usize {
        self.votes.iter().filter(|(_, _, v)| *v == vote).count()
    }

    /// Distinct builders that voted at all.
    pub fn voters(&self) -> usize {
        self.votes.len()
    }

    /// What the votes decide when the project wants `needed` passing
    /// builders per cell.
    ///
    /// Without dissent, one failure fails the cell (people are told at
    /// once) and `needed` passes pass it. With dissent, a side wins when it
    /// has `needed` votes (and at least two) against a single dissenter;
    /// two dissenters or more make the cell flaky; anything else is
    /// undecided between them, `disagree`.
    pub fn decide(&self, needed: u8) -> Decision {
        let needed = usize::from(needed.max(1));
        let (pass, fail) = (self.count(Vote::Pass), self.count(Vote::Fail));
        match (pass, fail) {
            (_, 0) if pass >= needed => Decision::Passed,
            (_, 0) => Decision::Undecided,
            (0, _) => Decision::Failed,
            _ => {
                let (major, minor) = (pass.max(fail), pass.min(fail));
                if minor >= 2 {
                    Decision::Flaky
                } else if major >= needed.max(2) && pass > fail {
                    Decision::Passed
                } else if major >= needed.max(2) {
                    Decision::Failed
                } else {
                    Decision::Disagree
                }
            }
        }
    }

    /// How many distinct builders' results the cell wants in all: the
    /// project's `needed`, or, while its builders disagree, one more than
    /// the `finished` builders (those whose results the claimer counts:
    /// votes, errors and skips since the cell's latest force), so that a
    /// builder that has not built it is asked.
    pub fn builds_wanted(&self, needed: u8, finished: usize) -> u8 {
        match self.decide(needed) {
            Decision::Disagree => {
                let more = finished.saturating_add(1);
                u8::try_from(more).unwrap_or(u8::MAX).max(needed)
            }
            // Settled without a side winning: no build changes that.
            Decision::Flaky => u8::try_from(finished).unwrap_or(u8::MAX).min(needed),
            _ => needed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(votes: &[Outcome]) -> Tally {
        let mut tally = Tally::default();
        for (n, outcome) in votes.iter().enumerate() {
            let n = u8::try_from(n).unwrap_or(u8::MAX);
            tally.add(PublicKey([n; 32]), Timestamp(1), EntryId([n; 32]), *outcome);
        }
        tally
    }

    use Outcome::{Cancelled, Error, Failed, Passed, Retry, Skipped, Warnings};

    #[test]
    fn without_dissent_one_failure_fails_and_enough_passes_pass() {
        assert_eq!(tally(&[Failed]).decide(2), Decision::Failed);
        assert_eq!(tally(&[Passed]).decide(2), Decision::Undecided);
        assert_eq!(tally(&[Passed, Warnings]).decide(2), Decision::Passed);
        assert_eq!(tally(&[Passed]).decide(1), Decision::Passed);
        assert_eq!(tally(&[]).decide(1), Decision::Undecided);
    }

    #[test]
    fn only_success_warnings_and_failure_are_votes() {
        let t = tally(&[Error, Skipped, Retry, Cancelled]);
        assert_eq!(t.voters(), 0);
        assert_eq!(t.decide(1), Decision::Undecided);
        assert_eq!(
            tally(&[Passed, Error, Cancelled]).decide(1),
            Decision::Passed
        );
    }

    /// The lying builder: a pass against an honest failure is
    /// `disagree`, and the third builder decides.
    #[test]
    fn a_lone_dissenter_makes_disagree_then_the_next_builder_decides() {
        let t = tally(&[Passed, Failed]);
        assert_eq!(t.decide(2), Decision::Disagree);
        assert_eq!(t.builds_wanted(2, 2), 3);
        // A builder whose build erred is done with it too: ask a fourth.
        assert_eq!(t.builds_wanted(2, 3), 4);
        assert_eq!(tally(&[Passed, Failed, Failed]).decide(2), Decision::Failed);
        assert_eq!(tally(&[Passed, Failed, Passed]).decide(2), Decision::Passed);
        // One build per cell is no excuse to pick a side.
        assert_eq!(tally(&[Passed, Failed]).decide(1), Decision::Disagree);
        assert_eq!(tally(&[Failed, Passed]).builds_wanted(1, 2), 3);
        // After a force, the claimer counts only who built since: the
        // pass before it is hidden there, but the dissent is not.
        assert_eq!(tally(&[Passed, Failed]).builds_wanted(1, 1), 2);
    }

    #[test]
    fn a_side_needs_the_projects_count_before_it_wins() {
        assert_eq!(
            tally(&[Passed, Failed, Passed]).decide(3),
            Decision::Disagree
        );
        assert_eq!(tally(&[Passed, Failed, Passed]).builds_wanted(3, 3), 4);
        assert_eq!(
            tally(&[Passed, Failed, Passed, Passed]).decide(3),
            Decision::Passed
        );
    }

    #[test]
    fn two_dissenters_make_it_flaky_and_want_no_more_builds() {
        let t = tally(&[Passed, Failed, Passed, Failed]);
        assert_eq!(t.decide(2), Decision::Flaky);
        assert_eq!(t.builds_wanted(2, 4), 2);
        assert_eq!(t.builds_wanted(5, 4), 4, "not five: flaky is settled");
        assert_eq!(
            tally(&[Passed, Failed, Passed, Failed, Passed]).decide(2),
            Decision::Flaky
        );
    }

    /// A builder's newest vote is its vote, whatever order results came in.
    #[test]
    fn each_builder_votes_once_with_its_latest_result() {
        let me = PublicKey([7; 32]);
        let mut t = Tally::default();
        t.add(me, Timestamp(2), EntryId([2; 32]), Failed);
        t.add(me, Timestamp(1), EntryId([1; 32]), Passed);
        t.add(me, Timestamp(3), EntryId([3; 32]), Retry);
        assert_eq!((t.voters(), t.count(Vote::Fail)), (1, 1));
        t.add(me, Timestamp(4), EntryId([4; 32]), Passed);
        assert_eq!((t.voters(), t.count(Vote::Pass)), (1, 1));
        assert_eq!(t.decide(1), Decision::Passed);
    }
}
