//! Commit statuses for the forge: one per commit and platform, `pending`
//! while it is built, then what the mesh decided.

use super::Message;
use crate::view::{Cell, CellStatus, Matrix, Pulls};
use buildmesh_protocol::{CommitId, EntryId, ProjectId, Timestamp};

/// A commit status's state, as GitHub and Gitea name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StatusState {
    /// A builder holds the cell.
    Pending,
    /// The cell passed.
    Success,
    /// The cell failed.
    Failure,
    /// The build could not judge the commit.
    Error,
}

impl StatusState {
    /// The forge APIs' word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }
}

/// The status one cell should have on the forge now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    /// The project.
    pub project: ProjectId,
    /// The commit.
    pub commit: CommitId,
    /// The platform (the status's context is `buildmesh/<platform>`).
    pub platform: String,
    /// Its state.
    pub state: StatusState,
    /// The cell's own status, which says more than the forge's four
    /// states can (`disagree` is pending there, `flaky` an error).
    pub cell: CellStatus,
    /// The newest result behind it (none while pending), for the link.
    pub result: Option<EntryId>,
    /// How many results were behind the cell when it took this state: a
    /// forced rebuild of a decided cell is `pending` again, then decided
    /// again, and each of those is a status of its own.
    pub results: usize,
    /// When the state was reached: the newest result's time, or now while
    /// pending (a claim is news when it is seen, however old the commit).
    pub at: Timestamp,
}

/// What names a status for "sent once".
pub type StatusKey = (ProjectId, CommitId, String, StatusState, usize);

impl Message for StatusUpdate {
    type Key = StatusKey;
    type Slot = (ProjectId, CommitId, String);

    fn key(&self) -> StatusKey {
        (
            self.project,
            self.commit.clone(),
            self.platform.clone(),
            self.state,
            self.results,
        )
    }

    fn slot(&self) -> Self::Slot {
        (self.project, self.commit.clone(), self.platform.clone())
    }

    fn slot_of(key: &StatusKey) -> Self::Slot {
        (key.0, key.1.clone(), key.2.clone())
    }

    fn at(&self) -> Timestamp {
        self.at
    }
}

/// The status of every cell of `matrix` that has one: claimed cells are
/// pending, decided ones say how; cells nobody has taken yet have none
/// (a forge shows no status as "not started", and posting one for every
/// platform of every commit would be most of the traffic).
pub fn statuses(matrix: &Matrix<'_>, now: Timestamp) -> Vec<StatusUpdate> {
    let mut found = Vec::new();
    for row in &matrix.rows {
        for (cell, platform) in row.cells.iter().zip(matrix.platforms) {
            found.extend(status_of(matrix.project, row.commit, platform, cell, now));
        }
    }
    found
}

/// The statuses of the pull requests' latest heads, as [`statuses`] says
/// them: a pull request's status goes to its head commit.
pub fn pull_statuses(pulls: &Pulls<'_>, now: Timestamp) -> Vec<StatusUpdate> {
    let mut found = Vec::new();
    for pull in &pulls.pulls {
        for (cell, platform) in pull.cells.iter().zip(pulls.platforms) {
            found.extend(status_of(pulls.project, pull.head, platform, cell, now));
        }
    }
    found
}

fn status_of(
    project: ProjectId,
    commit: &CommitId,
    platform: &str,
    cell: &Cell,
    now: Timestamp,
) -> Option<StatusUpdate> {
    let state = match cell.status {
        CellStatus::Pending => return None,
        // Builders disagree and another build is wanted: not decided.
        CellStatus::Claimed | CellStatus::Disagree => StatusState::Pending,
        // The recipe does not build it here: nothing to wait for.
        CellStatus::Passed | CellStatus::Skipped => StatusState::Success,
        CellStatus::Failed => StatusState::Failure,
        // Neither passed nor failed, and no build will tell: a person
        // must look.
        CellStatus::Error | CellStatus::Flaky | CellStatus::Differs => StatusState::Error,
    };
    let newest = cell.results.iter().max_by_key(|r| (r.at, r.id));
    Some(StatusUpdate {
        project,
        commit: commit.clone(),
        platform: platform.to_owned(),
        state,
        cell: cell.status,
        result: newest.map(|r| r.id),
        results: cell.results.len(),
        at: newest.map_or(now, |r| r.at),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::notify::{Notifier, NotifierConfig, NotifyAction, NotifyInput};
    use crate::view::testing::{commits, matrix, row};
    use crate::view::{CellResult, CellStatus, CellStatus::*};
    use buildmesh_protocol::{Outcome, PublicKey};

    const T: Timestamp = Timestamp(1_764_000_000_000);

    fn with_results(mut row: crate::view::Row<'_>, results: usize) -> crate::view::Row<'_> {
        for cell in &mut row.cells {
            cell.results = (0..results as u8)
                .map(|n| CellResult {
                    id: EntryId([n; 32]),
                    builder: PublicKey([n; 32]),
                    outcome: Outcome::Passed,
                    at: T.plus_ms(u64::from(n)),
                })
                .collect();
        }
        row
    }

    #[test]
    fn claimed_cells_are_pending_decided_ones_say_how_untaken_ones_have_none() {
        let ids = commits(2);
        let platforms = vec!["linux".to_string(), "mac".to_string()];
        let m = matrix(
            &platforms,
            vec![
                row(&ids[1], &[Claimed, Pending]),
                with_results(row(&ids[0], &[Passed, Failed]), 1),
            ],
        );
        let found: Vec<_> = statuses(&m, T)
            .into_iter()
            .map(|s| (s.commit.as_bytes()[0], s.platform, s.state))
            .collect();
        assert_eq!(
            found,
            [
                (1, "linux".to_string(), StatusState::Pending),
                (0, "linux".to_string(), StatusState::Success),
                (0, "mac".to_string(), StatusState::Failure),
            ]
        );
    }

    fn status(state: StatusState, results: usize) -> StatusUpdate {
        StatusUpdate {
            project: ProjectId([1; 32]),
            commit: commits(1)[0].clone(),
            platform: "linux".into(),
            state,
            cell: match state {
                StatusState::Pending => CellStatus::Claimed,
                StatusState::Success => CellStatus::Passed,
                StatusState::Failure => CellStatus::Failed,
                StatusState::Error => CellStatus::Error,
            },
            result: None,
            results,
            at: T,
        }
    }

    fn drain(n: &mut Notifier<StatusUpdate>) -> Vec<NotifyAction<StatusUpdate>> {
        std::iter::from_fn(|| n.poll_action()).collect()
    }

    /// The forge must end on the newest state: a pending status still
    /// failing when the cell is decided is dropped, and the decided one
    /// waits for a pending delivery in flight.
    #[test]
    fn a_cell_ends_on_its_newest_state_on_the_forge() {
        let pending = status(StatusState::Pending, 0);
        let success = status(StatusState::Success, 1);
        let mut n = Notifier::new(NotifierConfig::default(), []);
        n.handle(T, NotifyInput::Found(vec![pending.clone()]));
        assert_eq!(drain(&mut n), [NotifyAction::Send(pending.clone())]);
        n.handle(T, NotifyInput::Found(vec![success.clone()]));
        assert_eq!(drain(&mut n), [], "one delivery per slot at a time");
        n.handle(T, NotifyInput::Failed(pending.key()));
        assert_eq!(drain(&mut n), [NotifyAction::Send(success.clone())]);
        n.handle(T.plus_ms(60_000), NotifyInput::Tick);
        assert_eq!(drain(&mut n), [], "the failed pending is not retried");
        assert_eq!(n.stats().superseded, 1);
        // A forced rebuild: pending again, then decided again.
        n.handle(T, NotifyInput::Delivered(success.key()));
        drain(&mut n);
        let again = status(StatusState::Pending, 1);
        n.handle(T, NotifyInput::Found(vec![success.clone(), again.clone()]));
        assert_eq!(drain(&mut n), [NotifyAction::Send(again)]);
    }

    /// A verdict that comes after a long partition still replaces the
    /// `pending` the forge shows, however old; a cell never posted is
    /// not posted when its state is old.
    #[test]
    fn a_posted_cell_gets_its_verdict_however_late() {
        let config = NotifierConfig {
            max_age_ms: 1_000,
            ..NotifierConfig::default()
        };
        let pending = status(StatusState::Pending, 0);
        let mut n = Notifier::new(config.clone(), [pending.key()]);
        let late = T.plus_ms(3_600_000);
        let verdict = status(StatusState::Failure, 1);
        let mut other = status(StatusState::Success, 1);
        other.platform = "mac".into();
        n.handle(late, NotifyInput::Found(vec![verdict.clone(), other]));
        assert_eq!(drain(&mut n), [NotifyAction::Send(verdict)]);
        assert_eq!(n.stats().too_old, 1);
    }
}
