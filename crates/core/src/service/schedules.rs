//! Scheduled force builds: when each is due. Signing one takes the
//! maintainer key, which the node holds; the service only says when.

use super::Action;
use crate::schedule::Cron;
use buildmesh_protocol::Timestamp;

/// A force build on a schedule: the head of `branch` of the maintainer's
/// project `project`, at each time `cron` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    /// The project's name.
    pub project: String,
    /// The branch whose head is built.
    pub branch: String,
    /// The schedule as written, for the force's reason.
    pub cron_text: String,
    /// When.
    pub cron: Cron,
}

/// The schedules and when each fires next.
#[derive(Debug, Clone, Default)]
pub(super) struct Schedules {
    due: Vec<(Scheduled, Option<Timestamp>)>,
}

impl Schedules {
    pub(super) fn new(schedules: Vec<Scheduled>, now: Timestamp) -> Self {
        let due = schedules
            .into_iter()
            .map(|s| {
                let next = s.cron.next_after(now);
                (s, next)
            })
            .collect();
        Schedules { due }
    }

    /// When the next schedule fires.
    pub(super) fn next(&self) -> Option<Timestamp> {
        self.due.iter().filter_map(|(_, next)| *next).min()
    }

    /// A force for each schedule due by `now`; each moves on to its next
    /// time (a node that slept through several fires once).
    pub(super) fn due(&mut self, now: Timestamp) -> Vec<Action> {
        let mut forces = Vec::new();
        for (schedule, next) in &mut self.due {
            if next.is_some_and(|at| at <= now) {
                forces.push(Action::ForceDue {
                    project: schedule.project.clone(),
                    branch: schedule.branch.clone(),
                    reason: format!("scheduled: {}", schedule.cron_text),
                });
                *next = schedule.cron.next_after(now);
            }
        }
        forces
    }
}
