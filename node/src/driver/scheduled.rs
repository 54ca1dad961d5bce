//! Force builds signed with the maintainer key this node holds: asked for
//! from the dashboard, or due on a schedule (the service says when).

use super::Driver;
use crate::clock;
use crate::maintainer::MaintainerKey;
use anyhow::Result;
use buildmesh_protocol::{Body, ForceBuild, ForceTarget, ProjectId};
use std::path::PathBuf;

/// Where the maintainer key this node holds is, if any.
pub type MaintainerKeyPath = Option<PathBuf>;

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
        let Some(path) = self.maintainer_key.clone() else {
            return Ok(Err(
                "this node holds no maintainer key: use `buildmesh force` where the key is".into(),
            ));
        };
        let mut key = match MaintainerKey::try_open(&path) {
            Ok(key) => key,
            Err(error) => return Ok(Err(format!("{error:#}"))),
        };
        if let Err(why) = self.service.may_force(&project, &key.public())? {
            return Ok(Err(why.to_string()));
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
        self.service.submit(clock::now(), &slices)?;
        self.carry_out().await?;
        Ok(Ok(()))
    }

    /// A schedule is due: its force is signed with the maintainer key this
    /// node holds and taken in (the caller carries out what follows). A
    /// key in use or a damaged chain record skips this firing.
    pub(super) fn scheduled_force(
        &mut self,
        project: &str,
        branch: &str,
        reason: String,
    ) -> Result<()> {
        let Some(path) = self.maintainer_key.clone() else {
            return Ok(());
        };
        let mut key = match MaintainerKey::try_open(&path) {
            Ok(key) => key,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "scheduled build skipped");
                return Ok(());
            }
        };
        let body = Body::Force(ForceBuild {
            project: ProjectId::derive(&key.public(), project),
            target: ForceTarget::Branch(branch.to_owned()),
            platforms: Vec::new(),
            reason,
        });
        let entry = match key.sign(clock::now(), body) {
            Ok(entry) => entry,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "scheduled build skipped");
                return Ok(());
            }
        };
        if self.terminal.is_some() {
            println!("scheduled build of {project} {branch}");
        }
        let wires = key.to_send();
        drop(key);
        let slices: Vec<&[u8]> = wires.iter().map(Vec::as_slice).collect();
        self.service.submit(clock::now(), &slices)?;
        tracing::info!(entry = %entry.id(), %project, "scheduled force build");
        Ok(())
    }
}
