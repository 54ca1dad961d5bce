//! One module per subcommand; each returns the process exit code.

mod keygen;
mod log;
mod maintainer;
mod node;
mod status;
mod up;
mod verify;

use crate::cli::{Cli, Command, LogCommand, ProjectCommand};
use std::process::ExitCode;

/// Exit code for "it ran, and found problems" (`log verify`).
pub const EXIT_PROBLEMS: u8 = 1;
/// Exit code for "it could not run" (bad input, IO error, ...).
pub const EXIT_ERROR: u8 = 2;

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Keygen(args) => keygen::run(args),
        Command::Id(args) => keygen::show(args),
        Command::Node(args) => node::run(args),
        Command::Up(args) => up::run(args),
        Command::Status(args) => status::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Log(LogCommand::Export(args)) => log::export(args),
        Command::Log(LogCommand::Verify(args)) => log::verify(args),
        Command::Project(ProjectCommand::Declare(args)) => maintainer::declare(args),
        Command::Project(ProjectCommand::Trust(args)) => maintainer::trust(args),
        Command::Project(ProjectCommand::Thresholds(args)) => maintainer::thresholds(args),
        Command::Announce(args) => maintainer::announce(args),
        Command::Force(args) => maintainer::force(args),
    }
}
