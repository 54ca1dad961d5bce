//! The config's `[accept]` and `[sandbox]` tables and their flags: what a
//! donor's node builds, and how.

use anyhow::{Context, Result, bail};
use buildmesh_core::view::Acceptance;
use buildmesh_protocol::{ProjectId, PublicKey};
use buildmesh_runner::{Limits, SandboxConfig};
use serde::Deserialize;
use std::path::PathBuf;

/// `[accept]`: projects by id, maintainers by public key (hex).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileAccept {
    #[serde(default)]
    projects: Vec<String>,
    #[serde(default)]
    maintainers: Vec<String>,
}

/// `[sandbox]`: how steps are confined. Sizes in MiB.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSandbox {
    network: Option<bool>,
    bwrap: Option<PathBuf>,
    cpu_secs: Option<u64>,
    memory_mib: Option<u64>,
    processes: Option<u64>,
    file_mib: Option<u64>,
    open_files: Option<u64>,
    work_dir_mib: Option<u64>,
}

const MIB: u64 = 1024 * 1024;

/// The accepted projects and maintainers: the file's plus the flags'.
pub(super) fn acceptance(
    file: FileAccept,
    projects: &[String],
    maintainers: &[String],
) -> Result<Acceptance> {
    let mut acceptance = Acceptance::default();
    for text in file.projects.iter().chain(projects) {
        let id = text.trim().parse::<ProjectId>().ok().with_context(|| {
            format!(
                "cannot accept project {text:?}: a project id is 64 hex digits \
                 (`buildmesh status` and the dashboard show them)"
            )
        })?;
        acceptance.projects.insert(id);
    }
    for text in file.maintainers.iter().chain(maintainers) {
        let key = text.trim().parse::<PublicKey>().ok().with_context(|| {
            format!(
                "cannot accept maintainer {text:?}: a maintainer key is 64 hex digits \
                 (the maintainer's `buildmesh id --key FILE` prints it)"
            )
        })?;
        acceptance.maintainers.insert(key);
    }
    Ok(acceptance)
}

/// The sandbox settings, starting from laptop-friendly defaults.
pub(super) fn sandbox(file: FileSandbox, no_network: bool) -> Result<SandboxConfig> {
    let defaults = Limits::default();
    let mib = |value: Option<u64>, default: u64| value.map_or(default, |v| v.saturating_mul(MIB));
    let limits = Limits {
        cpu_secs: file.cpu_secs.unwrap_or(defaults.cpu_secs),
        memory_bytes: mib(file.memory_mib, defaults.memory_bytes),
        processes: file.processes.unwrap_or(defaults.processes),
        file_bytes: mib(file.file_mib, defaults.file_bytes),
        open_files: file.open_files.unwrap_or(defaults.open_files),
        work_bytes: mib(file.work_dir_mib, defaults.work_bytes),
    };
    let zero = [
        ("cpu_secs", limits.cpu_secs),
        ("memory_mib", limits.memory_bytes),
        ("processes", limits.processes),
        ("file_mib", limits.file_bytes),
        ("open_files", limits.open_files),
        ("work_dir_mib", limits.work_bytes),
    ]
    .into_iter()
    .find(|(_, value)| *value == 0);
    if let Some((name, _)) = zero {
        bail!("[sandbox] {name} must be above 0 (leave it out for the default)");
    }
    let mut config = SandboxConfig {
        limits,
        network: !no_network && file.network.unwrap_or(true),
        ..SandboxConfig::default()
    };
    if let Some(bwrap) = file.bwrap {
        config.bwrap = bwrap;
    }
    Ok(config)
}
