//! The command line, as clap sees it. Help texts teach: each says what the
//! command is for, not only what it does.

mod maintainer;

pub use maintainer::{
    AnnounceArgs, DeclareArgs, ForceArgs, ProjectCommand, RoleArg, SignerArgs, ThresholdsArgs,
    TrustArgs,
};

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// buildmesh: continuous integration with no master.
///
/// Every node keeps a signed, replicated log of commits, claims and build
/// results; any node can show the whole mesh's answer, and anyone can audit
/// every result back to the key that signed it.
#[derive(Debug, Parser)]
#[command(name = "buildmesh", version, propagate_version = true)]
#[command(after_help = "Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) for more.")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a node key: the node's identity on the mesh and the key that
    /// signs its log entries.
    ///
    /// Writes the secret key to DATA_DIR/key (or --out), readable by you
    /// only, and prints the public key, which is what others trust.
    Keygen(KeygenArgs),
    /// Build this repository: one node on this machine that watches the
    /// git checkout you are in, builds every new commit of its branch for
    /// this platform, and prints each result.
    ///
    /// Needs no other setup: it keeps its keys and data in .git/buildmesh
    /// and declares the project with a local maintainer key. The recipe is
    /// .buildmesh.toml at each commit (docs/recipe.md).
    Up(UpArgs),
    /// Run a node: the daemon a donor runs. It joins the mesh, keeps the
    /// shared log in step with its peers and serves HTTP.
    ///
    /// Creates DATA_DIR/key on first start if there is none. Stop it with
    /// Ctrl-C or SIGTERM; it flushes its store before exiting.
    Node(NodeArgs),
    /// Print this node's public key: what maintainers list to trust its
    /// builds, and what its log entries are signed with.
    Id(IdArgs),
    /// Inspect, export and audit a node's signed log.
    #[command(subcommand)]
    Log(LogCommand),
    /// Show the platform matrix of every project a node knows (or one),
    /// newest commit first, in colour when the output is a terminal.
    Status(StatusArgs),
    /// Check a node from outside: every signed entry it serves, and
    /// whether the matrix it shows is the one those entries give.
    ///
    /// A node's matrix, badges and pages are its word; only its entries are
    /// signed. verify downloads them (GET /api/v1/entries), checks each
    /// (strict decoding, signature, id, each author's chain), derives every
    /// project's matrix from them with the node's own code, and compares
    /// that with what the node serves, cell by cell. With --file it checks
    /// an export instead and prints the matrix its entries give.
    ///
    /// A finding is something the node (or file) shows that its signed
    /// entries do not give: an entry that does not check out, an entry left
    /// out of a chain, a cell status, a result or a row that differs, a
    /// project listed or left out. A note is a fact an honest log records
    /// too (a fork kept as proof against its author; in an export, entries
    /// waiting for a predecessor) and is never a finding.
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify(CheckArgs),
    /// Declare projects and trust keys (signed with your maintainer key).
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Announce a commit of your working copy for building (signed with
    /// your maintainer key). Nodes that watch the repository announce new
    /// commits by themselves; this is for anything else.
    Announce(AnnounceArgs),
    /// Ask for a commit, or a branch's head, to be built again (signed
    /// with your maintainer key).
    Force(ForceArgs),
}

/// Where a node keeps its files.
#[derive(Debug, Args)]
pub struct DataDirArg {
    /// The node's data directory [default: $XDG_DATA_HOME/buildmesh or
    /// ~/.local/share/buildmesh].
    #[arg(long, env = "BUILDMESH_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `buildmesh keygen`
#[derive(Debug, Args)]
pub struct KeygenArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
    /// Write the key here instead of DATA_DIR/key.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace an existing key file. The old identity is lost for good.
    #[arg(long)]
    pub force: bool,
}

/// `buildmesh node`
#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
    /// A TOML config file with any of: data_dir, listen, bootstrap, http,
    /// http_hosts, platforms, mdns, sync_interval_secs, poll_interval_secs, builds_max,
    /// lease_secs, bid_window_ms, allow_local_repositories, webhook_secret_file,
    /// maintainer_key, unsandboxed, [accept] (projects, maintainers),
    /// [sandbox] (network, bwrap, cpu_secs, memory_mib, processes,
    /// file_mib, open_files, work_dir_mib), [[schedule]] tables, and who
    /// is told of broken and fixed builds: public_url, [[notify]] (mail,
    /// webhook, irc) and [[status]] (commit statuses on GitHub, Gitea,
    /// Forgejo) tables, secrets from files (docs/notify.md). Flags
    /// override it; --accept-* flags add to [accept]. See
    /// docs/operating.md.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen on this multiaddr (repeatable) [default:
    /// /ip4/0.0.0.0/tcp/7070 and /ip4/0.0.0.0/udp/7070/quic-v1].
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// Dial this peer at start (repeatable), e.g.
    /// /ip4/198.51.100.7/tcp/7070/p2p/12D3KooW...
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<String>,
    /// Serve HTTP here [default: 127.0.0.1:7878].
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// A name (or address) clients reach the HTTP API by, which its Host
    /// header may give (repeatable), e.g. ci.example.org. The address a
    /// client connects to and loopback names need none; any other Host is
    /// refused with a 421, so that a hostile page cannot read the node.
    #[arg(long, value_name = "NAME")]
    pub http_host: Vec<String>,
    /// A platform label this node builds for (repeatable) [default: this
    /// machine's os-arch, e.g. linux-x86_64].
    #[arg(long, value_name = "LABEL")]
    pub platform: Vec<String>,
    /// Find peers on the local network by multicast DNS.
    #[arg(long)]
    pub mdns: bool,
    /// Sync with a random peer every this many seconds [default: 30].
    #[arg(long, value_name = "SECONDS")]
    pub sync_interval_secs: Option<u64>,
    /// Poll the repositories this node announces for every this many
    /// seconds [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub poll_interval_secs: Option<u64>,
    /// Run at most this many builds at once [default: 1].
    #[arg(long, value_name = "N")]
    pub builds_max: Option<u32>,
    /// A claim holds its cell this long unless renewed; a builder that
    /// dies loses the cell this long after its last renewal [default: 30].
    #[arg(long, value_name = "SECONDS")]
    pub lease_secs: Option<u64>,
    /// Collect bids for a cell this long before the winner is picked
    /// [default: 150]. Longer cuts duplicate builds on a slow or far-flung
    /// mesh; shorter starts builds sooner.
    #[arg(long, value_name = "MS")]
    pub bid_window_ms: Option<u64>,
    /// Watch and build repositories on this machine's disk (paths and
    /// file:// URLs). Off by default: a project declared by anyone must not
    /// make a donor's node build a private checkout and publish its logs.
    #[arg(long)]
    pub allow_local_repositories: bool,
    /// Accept push webhooks from GitHub or Gitea at
    /// /api/v1/hooks/github and /api/v1/hooks/gitea, signed with the
    /// secret in FILE (the same secret you give the forge).
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// A maintainer key (and its FILE.chain) this node signs scheduled
    /// force builds with; schedules are `[[schedule]]` tables of the
    /// config file: project = "NAME", branch = "main", cron = "0 3 * * *".
    #[arg(long, value_name = "FILE")]
    pub maintainer_key: Option<PathBuf>,
    /// Build this project (its 64-hex-digit id; repeatable). A node builds
    /// and watches only the projects its operator accepted, here or in the
    /// config's [accept] table; every other project is only replicated.
    #[arg(long, value_name = "ID")]
    pub accept_project: Vec<String>,
    /// Build every project this maintainer key declares, now and later
    /// (repeatable).
    #[arg(long, value_name = "KEY")]
    pub accept_maintainer: Vec<String>,
    /// Run build steps without a sandbox, as this node's own user, able to
    /// read what that user can (the node's key included). Only for
    /// machines where bubblewrap cannot run and every accepted project is
    /// trusted; the dashboard and /api/v1/node say so.
    #[arg(long)]
    pub unsandboxed: bool,
    /// Keep every build step off the network, whatever its recipe says
    /// (the config's [sandbox] network = false).
    #[arg(long)]
    pub no_build_network: bool,
    /// Build no pull request, even of accepted projects that ask for them
    /// (the config's pull_requests = false): a pull request is code by
    /// anyone who opens one, not by the maintainer you accepted. Branch
    /// commits are built as before.
    #[arg(long)]
    pub no_pull_requests: bool,
}

/// `buildmesh status`
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The node to ask; any node gives the whole mesh's answer [default:
    /// the node of the `buildmesh up` checkout you are in, else
    /// http://127.0.0.1:7878].
    #[arg(long, value_name = "URL")]
    pub node: Option<String>,
    /// Only this project: its name, its id (as `project declare` and `up`
    /// print it), or a unique start of its id (as `status` prints it).
    #[arg(long, value_name = "PROJECT")]
    pub project: Option<String>,
    /// Only commits announced on this branch.
    #[arg(long)]
    pub branch: Option<String>,
    /// How many commits to show per project.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub rows: usize,
}

/// What `buildmesh verify --help` ends with.
const VERIFY_EXAMPLES: &str = "\
Examples:
  buildmesh verify --node http://127.0.0.1:7878
      every entry that node serves, and every project's matrix against them
  buildmesh verify --node http://ci.example.org:7878 --project hello
      one project (its name, its id, or the start of its id)
  buildmesh verify --node http://127.0.0.1:7878 --json | jq '.findings[].text'
      for scripts: the shape is in docs/operating.md (verify)
  buildmesh log export --data-dir DIR > log.jsonl && buildmesh verify --file log.jsonl
      an export of a stopped node's store, and the matrix its entries give
  curl -sS http://127.0.0.1:7878/api/v1/entries | buildmesh verify --file -
      an export read from standard input

Exit status: 0 when nothing was found (notes allowed), 1 on any finding,
2 when the check could not be made (node unreachable, not an export, a bad
option): the message says what to do.";

/// `buildmesh verify`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["node", "file"])))]
pub struct CheckArgs {
    /// The node to check: its HTTP address, e.g. http://127.0.0.1:7878.
    #[arg(long, value_name = "URL")]
    pub node: Option<String>,
    /// Check this export instead (`buildmesh log export`, or a saved
    /// GET /api/v1/entries); `-` reads standard input.
    #[arg(long, value_name = "EXPORT")]
    pub file: Option<PathBuf>,
    /// Only this project: its name, its id, or a unique start of its id.
    #[arg(long, value_name = "PROJECT")]
    pub project: Option<String>,
    /// Print JSON for scripts instead of the report (its shape is in
    /// docs/operating.md).
    #[arg(long)]
    pub json: bool,
    /// Largest log to download from the node, in MiB: a node is a
    /// stranger, and its whole log is held in memory to be checked.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub max_log_mib: u64,
    /// Give up after this many seconds: on downloading the node's log,
    /// and on asking for more of its matrices.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub timeout_secs: u64,
}

/// `buildmesh up`
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The node's data directory [default: .git/buildmesh in the checkout].
    #[arg(long, env = "BUILDMESH_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The git checkout to build [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub repo_dir: Option<PathBuf>,
    /// The branch to build [default: the branch checked out].
    #[arg(long)]
    pub branch: Option<String>,
    /// Serve HTTP here [default: 127.0.0.1:7878].
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Look for new commits every this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 2)]
    pub poll_interval_secs: u64,
    /// Also build the branch's head at these times (crontab syntax, UTC),
    /// e.g. "0 3 * * *" for nightly at 03:00 or @nightly.
    #[arg(long, value_name = "CRON")]
    pub schedule: Option<String>,
}

/// `buildmesh id`
#[derive(Debug, Args)]
pub struct IdArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
    /// Read the key from FILE instead of DATA_DIR/key.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
}

/// `buildmesh log ...`
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Write every signed entry of a data dir as JSON Lines that anyone
    /// can verify (format: docs/protocol.md §7).
    ///
    /// The node must be stopped: the store allows one process at a time.
    Export(ExportArgs),
    /// Audit an export (or a data dir): signatures, ids, chains and forks.
    ///
    /// Prints a report and exits 0 if everything checks out, 1 if anything
    /// is wrong, 2 if the input could not be read at all.
    Verify(VerifyArgs),
}

/// `buildmesh log export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
    /// Write to FILE instead of standard output. The file appears only
    /// once the export is complete.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `buildmesh log verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The export to check; `-` or nothing reads standard input.
    #[arg(value_name = "FILE", conflicts_with = "data_dir")]
    pub file: Option<PathBuf>,
    /// Check this data dir's store directly instead of an export.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print only the verdict line and problems, not the per-author heads.
    #[arg(long, short)]
    pub quiet: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
