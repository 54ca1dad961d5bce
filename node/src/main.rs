//! `buildmesh`: continuous integration with no master.
//!
//! This binary only wires: it parses the command line, sets up logging,
//! opens files and stores, and hands the work to the library crates. Exit
//! codes are decided in one place, here.

mod attester;
mod builds;
mod cli;
mod client;
mod clock;
mod cmd;
mod config;
mod data_dir;
mod descriptors;
mod driver;
mod isolation;
mod keyfile;
mod log_reader;
mod maintainer;
mod notify;
mod operator_token;
mod terminal;
mod verifier;
mod views;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // `up` talks to a person at a terminal: its own lines say what
    // happens, so the log shows only what went wrong.
    let quiet = matches!(args.command, cli::Command::Up(_));
    init_tracing(if quiet { "warn" } else { "info" });
    match cmd::run(args) {
        Ok(code) => code,
        Err(error) => {
            // A closed stdout (`buildmesh log export | head`) needs no
            // message, but the output is incomplete: exit as a process
            // killed by SIGPIPE would (128 + 13), never with success.
            if is_broken_pipe(&error) {
                return ExitCode::from(141);
            }
            eprintln!("error: {error:#}");
            ExitCode::from(cmd::EXIT_ERROR)
        }
    }
}

fn init_tracing(level: &str) {
    // Kademlia warns that it has no peers to bootstrap from whenever a
    // node starts alone: normal for the first node of a mesh.
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},libp2p_kad=error"))
    });
    // Colours only for a person at a terminal: a log file or a journal
    // would keep the escape codes as text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
