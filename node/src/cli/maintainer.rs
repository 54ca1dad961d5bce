//! Arguments of the commands a maintainer runs: `project`, `announce`,
//! `force`. Each signs with the maintainer key and hands the entry to a node.

use super::DataDirArg;
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

/// The maintainer key and the node to talk to: shared by every maintainer
/// command.
#[derive(Debug, Args)]
pub struct SignerArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
    /// The maintainer key [default: DATA_DIR/maintainer.key, created on
    /// first use; in a `buildmesh up` checkout, the one `up` made]. Its
    /// signed entries are also recorded in FILE.chain: keep the two
    /// together.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The node to hand entries to; it spreads them to the mesh [default:
    /// the node of DATA_DIR (as `buildmesh up` in this checkout), else
    /// http://127.0.0.1:7878].
    #[arg(long, value_name = "URL")]
    pub node: Option<String>,
}

/// `buildmesh project ...`
#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Declare a project (or re-declare it: the latest declaration wins).
    ///
    /// The project's id derives from your maintainer key and NAME, so two
    /// maintainers never collide on a name. Example:
    ///
    ///   buildmesh project declare hello --repo https://example.org/hello.git
    ///     --branch main --platform linux-x86_64 --platform linux-aarch64
    ///     --announcer KEY --builder KEY --builder KEY
    Declare(DeclareArgs),
    /// Trust a key for a role in a project, or withdraw it (--revoke).
    Trust(TrustArgs),
    /// Set the thresholds on a project's metrics: a commit that crosses
    /// one is a regression, told to every notifier that tells of
    /// `regression` events and marked red on the metrics page.
    ///
    /// The list replaces the last one. Each threshold is METRIC, then
    /// above, below, drop or rise, then a number:
    ///
    ///   buildmesh project thresholds hello "coverage_lines drop 1"
    ///     "tests_failed above 0" "mccabe_max above 15"
    ///
    /// "above"/"below" are crossed once, when the value passes the level;
    /// "drop"/"rise" compare each commit with the one before. With no
    /// threshold given it prints the ones set; --clear removes them all.
    Thresholds(ThresholdsArgs),
}

/// `buildmesh project thresholds`
#[derive(Debug, Args)]
pub struct ThresholdsArgs {
    /// The project (one of yours): its name, its id, or a unique start of
    /// its id.
    pub name: String,
    /// A threshold: "METRIC above|below|drop|rise NUMBER" (repeatable).
    #[arg(value_name = "THRESHOLD")]
    pub thresholds: Vec<String>,
    /// Remove every threshold.
    #[arg(long, conflicts_with = "thresholds")]
    pub clear: bool,
    #[command(flatten)]
    pub signer: SignerArgs,
}

/// `buildmesh project declare`
#[derive(Debug, Args)]
pub struct DeclareArgs {
    /// Short name, unique among your projects.
    pub name: String,
    /// Where builders fetch the code: any URL git understands.
    #[arg(long, value_name = "URL")]
    pub repo: String,
    /// A branch whose new commits get built (repeatable).
    #[arg(long = "branch", value_name = "BRANCH", default_value = "main")]
    pub branches: Vec<String>,
    /// A platform label wanted (repeatable) [default: this machine's
    /// os-arch].
    #[arg(long = "platform", value_name = "LABEL")]
    pub platforms: Vec<String>,
    /// A node key that may announce commits (repeatable); nodes listed
    /// here watch the repository and announce new commits.
    #[arg(long = "announcer", value_name = "KEY")]
    pub announcers: Vec<String>,
    /// A node key whose results count (repeatable).
    #[arg(long = "builder", value_name = "KEY", conflicts_with = "open")]
    pub builders: Vec<String>,
    /// Count every node's results: one failed build from anyone turns a
    /// cell red (or `disagree`, when another builder passed it). For
    /// communities that accept that; otherwise list builders.
    #[arg(long)]
    pub open: bool,
    /// Independent builds each cell needs before it shows as passed. Two
    /// or more catch a lying or broken builder: when trusted builders
    /// disagree the cell shows `disagree` and one more builder decides;
    /// when they keep disagreeing it shows `flaky`.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub builds_per_cell: u8,
    /// Build pull requests too: nodes that announce for the project check
    /// each pull request's head that a forge's webhook reports and
    /// announce it, and builders build it apart from every branch. Off by
    /// default because a pull request is code by anyone who opens one,
    /// and it runs on donors' machines (in their sandbox, on nodes whose
    /// operators accepted the project and did not pass
    /// --no-pull-requests). Declaring again without this flag turns it
    /// off.
    #[arg(long)]
    pub pull_requests: bool,
    /// Pass a cell only when two trusted builders or more report the same
    /// hash for every artifact it keeps; a cell whose builders' artifacts
    /// differ shows `differs`. Implies at least two builds per cell. For
    /// projects whose builds are bit-for-bit reproducible. Declaring again
    /// without this flag turns it off.
    #[arg(long)]
    pub reproducible: bool,
    #[command(flatten)]
    pub signer: SignerArgs,
}

/// `buildmesh project trust`
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// The project (one of yours): its name, its id, or a unique start of
    /// its id (as `status` prints it).
    pub name: String,
    /// The node key concerned.
    pub subject: String,
    /// The role granted or withdrawn.
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// Withdraw the role instead of granting it. A builder's results keep
    /// counting through the newest entry of its chain the node holds now;
    /// nothing it signs later counts, however it dates it.
    #[arg(long)]
    pub revoke: bool,
    /// With --revoke --role builder: keep less of the builder's past.
    /// `none` takes back every result the key signed (a key you think was
    /// stolen before it ever built honestly); an entry id (of one of its
    /// results, as its result page or `GET /api/v1/results/{id}` shows)
    /// keeps its chain through that entry and takes back what came after,
    /// for a key stolen after that result.
    #[arg(long, value_name = "none|ENTRY", requires = "revoke")]
    pub keep_through: Option<String>,
    #[command(flatten)]
    pub signer: SignerArgs,
}

/// A role in a project.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Its results count.
    Builder,
    /// It may announce commits.
    Announcer,
}

/// `buildmesh announce`
#[derive(Debug, Args)]
pub struct AnnounceArgs {
    /// The project (one of yours): its name, its id, or a unique start of
    /// its id (as `status` prints it).
    #[arg(long)]
    pub project: String,
    /// The commit to announce: HEAD, a branch or a commit id, in the
    /// working copy at --repo-dir.
    #[arg(long, default_value = "HEAD", value_name = "REV")]
    pub rev: String,
    /// The working copy [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub repo_dir: Option<PathBuf>,
    /// The branch the commit heads [default: the branch checked out, or
    /// REV when REV is a branch].
    #[arg(long)]
    pub branch: Option<String>,
    #[command(flatten)]
    pub signer: SignerArgs,
}

/// `buildmesh force`
#[derive(Debug, Args)]
pub struct ForceArgs {
    /// The project (one of yours): its name, its id, or a unique start of
    /// its id (as `status` prints it).
    #[arg(long)]
    pub project: String,
    /// Build this commit (full hex id) again.
    #[arg(long, value_name = "ID", required_unless_present = "branch")]
    pub commit: Option<String>,
    /// Build whatever heads this branch again.
    #[arg(long, conflicts_with = "commit")]
    pub branch: Option<String>,
    /// Only for this platform (repeatable) [default: every platform the
    /// project wants].
    #[arg(long = "platform", value_name = "LABEL")]
    pub platforms: Vec<String>,
    /// Why, for the record [default: "forced by the maintainer"].
    #[arg(long)]
    pub reason: Option<String>,
    /// Build the commit again to tell a flaky test from a broken one: if
    /// a test that failed passes on the second build, the project's flaky
    /// page lists it as flaky on that commit ("same commit"); if it fails
    /// again, the code is broken.
    #[arg(long, requires = "commit")]
    pub flaky_check: bool,
    #[command(flatten)]
    pub signer: SignerArgs,
}
