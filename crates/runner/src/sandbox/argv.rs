//! bubblewrap's command line for one step, in three parts: namespaces,
//! mounts, and what runs inside.

use super::binds::RESOLVED_STUB;
use super::{Identity, Jail, SANDBOX_CACHE, SANDBOX_HOME, SANDBOX_WORK_DIR, Sandbox};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The uid and gid a step has inside a user namespace.
const NAMESPACED_ID: &str = "1000";
/// Size of the sandbox's `/dev/shm` (memory), bytes.
const SHM_BYTES: &str = "67108864";
/// The sandbox's host name: builds should not depend on the donor's.
const HOSTNAME: &str = "buildmesh";

/// New PID, IPC, UTS (and network) namespaces; a user namespace, or the
/// two capabilities `setpriv` needs to drop root.
pub(super) fn namespaces(bwrap: &mut Command, identity: Identity, network: bool) {
    bwrap.args([
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]);
    if !network {
        bwrap.arg("--unshare-net");
    }
    match identity {
        Identity::Namespaced => {
            bwrap.args([
                "--unshare-user",
                "--uid",
                NAMESPACED_ID,
                "--gid",
                NAMESPACED_ID,
                // No user namespaces of the step's own: less kernel to attack.
                "--disable-userns",
            ]);
        }
        Identity::Dropped(_) => {
            bwrap.args(["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]);
        }
    }
    bwrap.args(["--hostname", HOSTNAME]);
}

/// The system read-only with its secrets masked, the build area, the
/// toolchains; then the sandbox's own root and `/dev` read-only, so that
/// nothing but the build area (on disk, watched) and `/dev/shm` (capped)
/// can grow.
pub(super) fn mounts(bwrap: &mut Command, sandbox: &Sandbox, jail: &Jail) {
    for path in &sandbox.system {
        path.add_to(bwrap);
    }
    for mask in &sandbox.masks {
        mask.add_to(bwrap);
    }
    if jail.has_network() {
        bwrap.args(["--ro-bind-try", RESOLVED_STUB, RESOLVED_STUB]);
    }
    bwrap.args(["--proc", "/proc", "--dev", "/dev"]);
    bwrap.args(["--size", SHM_BYTES, "--tmpfs", "/dev/shm"]);
    bwrap.arg("--bind").arg(&jail.work).arg(SANDBOX_WORK_DIR);
    bwrap.arg("--bind").arg(&jail.tmp).arg("/tmp");
    bwrap.arg("--bind").arg(&jail.home).arg(SANDBOX_HOME);
    if let Some(cache) = &jail.cache {
        bwrap.arg("--bind").arg(cache).arg(SANDBOX_CACHE);
    }
    for path in &jail.toolchain {
        bwrap.arg("--ro-bind").arg(path).arg(path);
    }
    for mask in &jail.toolchain_masks {
        mask.add_to(bwrap);
    }
    // bubblewrap makes the directories leading to a mount point with the
    // host's modes (`/root` is 0700): let the build user through them.
    for dir in leading_dirs(jail) {
        bwrap.arg("--chmod").arg("0755").arg(dir);
    }
    bwrap.args(["--remount-ro", "/dev", "--remount-ro", "/"]);
}

/// `[setpriv ...] prlimit ... env -i -- VAR=VALUE... /bin/sh -c COMMAND`,
/// in the work dir. bwrap itself runs with an empty environment, so these
/// variables reach the shell and nothing before it.
pub(super) fn entry(
    bwrap: &mut Command,
    sandbox: &Sandbox,
    command: &str,
    env: &BTreeMap<String, String>,
) {
    bwrap.args(["--chdir", SANDBOX_WORK_DIR, "--"]);
    if let Identity::Dropped(id) = sandbox.identity {
        bwrap.arg(&sandbox.config.setpriv);
        bwrap
            .arg(format!("--reuid={id}"))
            .arg(format!("--regid={id}"));
        bwrap.args([
            "--clear-groups",
            "--bounding-set=-all",
            "--inh-caps=-all",
            "--no-new-privs",
            "--",
        ]);
    }
    bwrap.arg(&sandbox.config.prlimit);
    bwrap.args(sandbox.config.limits.prlimit_args());
    bwrap.arg(&sandbox.config.env).args(["-i", "--"]);
    bwrap.args(env.iter().map(|(name, value)| format!("{name}={value}")));
    bwrap.args(["/bin/sh", "-c", command]);
}

/// Every directory above a mount point the sandbox creates, outside the
/// system directories, deepest last.
fn leading_dirs(jail: &Jail) -> Vec<&Path> {
    let points = jail
        .toolchain
        .iter()
        .map(|p| p.as_path())
        .chain([Path::new(SANDBOX_HOME)]);
    let mut dirs: Vec<&Path> = points
        .flat_map(|point| point.ancestors().skip(1))
        .filter(|dir| *dir != Path::new("/"))
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}
