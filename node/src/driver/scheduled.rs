//! Scheduled force builds: at each time a schedule names, the maintainer
//! key the node was given asks for the branch's head to be built again.

use super::Driver;
use crate::clock;
use crate::config::Schedule;
use crate::maintainer::MaintainerKey;
use anyhow::Result;
use buildmesh_core::view::{Policy, ProjectLog};
use buildmesh_protocol::{Body, ForceBuild, ForceTarget, ProjectId, Timestamp};
use std::path::PathBuf;

/// The schedules and when each fires next.
pub struct Schedules {
    key: Option<PathBuf>,
    due: Vec<(Schedule, Option<Timestamp>)>,
}

impl Schedules {
    /// `schedules`, signed with the maintainer key at `key`.
    pub fn new(key: Option<PathBuf>, schedules: Vec<Schedule>, now: Timestamp) -> Self {
        let due = schedules
            .into_iter()
            .map(|s| {
                let next = s.cron.next_after(now);
                (s, next)
            })
            .collect();
        Schedules { key, due }
    }

    /// When the next schedule fires.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.due.iter().filter_map(|(_, next)| *next).min()
    }
}

impl Driver {
    /// A force build asked for from the dashboard: signed with the
    /// maintainer key this node holds, if that key owns `project`.
    /// `Ok(Err(why))` when it cannot be done here.
    pub(super) async fn force(
        &mut self,
        project: ProjectId,
        target: ForceTarget,
        platforms: Vec<String>,
        reason: String,
    ) -> Result<Result<(), String>> {
        let Some(path) = self.schedules.key.clone() else {
            return Ok(Err(
                "this node holds no maintainer key: use `buildmesh force` where the key is".into(),
            ));
        };
        let log = ProjectLog::load(self.replicator.store(), &project, 1)?;
        let Some(owner) = Policy::of(&log).map(|policy| policy.owner) else {
            return Ok(Err(
                "no declared project with this id in this node's log".into()
            ));
        };
        let mut key = match MaintainerKey::try_open(&path) {
            Ok(key) => key,
            Err(error) => return Ok(Err(format!("{error:#}"))),
        };
        if key.public() != owner {
            return Ok(Err(
                "the maintainer key this node holds does not own this project".into(),
            ));
        }
        let body = Body::Force(ForceBuild {
            project,
            target,
            platforms,
            reason,
        });
        if let Err(error) = key.sign(clock::now(), body) {
            return Ok(Err(format!("{error:#}")));
        }
        let wires = key.to_send();
        drop(key);
        let slices: Vec<&[u8]> = wires.iter().map(Vec::as_slice).collect();
        self.replicator.submit(&slices)?;
        self.carry_out().await?;
        Ok(Ok(()))
    }

    /// Signs a force build for every schedule due, and moves each on.
    pub(super) async fn run_schedules(&mut self) -> Result<()> {
        let now = clock::now();
        let mut forces = Vec::new();
        for (schedule, next) in &mut self.schedules.due {
            if next.is_some_and(|at| at <= now) {
                forces.push(schedule.clone());
                *next = schedule.cron.next_after(now);
            }
        }
        let Some(path) = self.schedules.key.clone() else {
            return Ok(());
        };
        for schedule in forces {
            // A key in use or a damaged chain record skips this firing; the
            // node goes on.
            let mut key = match MaintainerKey::try_open(&path) {
                Ok(key) => key,
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "scheduled build skipped");
                    continue;
                }
            };
            let project = ProjectId::derive(&key.public(), &schedule.project);
            let body = Body::Force(ForceBuild {
                project,
                target: ForceTarget::Branch(schedule.branch.clone()),
                platforms: Vec::new(),
                reason: format!("scheduled: {}", schedule.cron_text),
            });
            let entry = match key.sign(now, body) {
                Ok(entry) => entry,
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "scheduled build skipped");
                    continue;
                }
            };
            if self.report {
                println!(
                    "scheduled build of {} {}",
                    schedule.project, schedule.branch
                );
            }
            let wires = key.to_send();
            drop(key);
            let slices: Vec<&[u8]> = wires.iter().map(Vec::as_slice).collect();
            self.replicator.submit(&slices)?;
            tracing::info!(entry = %entry.id(), project = %schedule.project, "scheduled force build");
            self.carry_out().await?;
        }
        Ok(())
    }
}
