//! The command line, as clap sees it. Help texts teach: each says what the
//! command is for, not only what it does.

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
    /// Print this node's public key: what maintainers list to trust its
    /// builds, and what its log entries are signed with.
    Id(IdArgs),
    /// Inspect, export and audit a node's signed log.
    #[command(subcommand)]
    Log(LogCommand),
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
