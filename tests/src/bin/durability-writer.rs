//! Appends the durability writer's chain to a SledStore and prints
//! `<seq> <id>` on stdout for every entry the store acknowledged, flushing
//! stdout after each line, until killed or `--count` entries are written.
//!
//! ```text
//! durability-writer <data-dir> [--count N] [--batch N] [--unflushed]
//! ```
//!
//! * `--batch N`: write N entries per `insert_batch` call and acknowledge
//!   them after it returns (the default is one `insert` per entry);
//! * `--unflushed`: use `ingest` without a flush, to show that the test
//!   catches lost acknowledged writes. Never acknowledges honestly.
//!
//! It resumes the chain from whatever the store holds, so a second run
//! continues where a killed one stopped.

use buildmesh_core::log::{self, ChainStore, Ingested};
use buildmesh_protocol::Entry;
use buildmesh_store::SledStore;
use buildmesh_tests::durability::{Ack, next_entry, writer_author};
use std::error::Error;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

struct Options {
    dir: PathBuf,
    count: Option<u64>,
    batch: usize,
    unflushed: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let usage = "usage: durability-writer <data-dir> [--count N] [--batch N] [--unflushed]";
    let dir = args.next().ok_or(usage)?.into();
    let mut options = Options {
        dir,
        count: None,
        batch: 1,
        unflushed: false,
    };
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let value = args.next().ok_or(format!("{name} needs a number"))?;
            value
                .parse()
                .map_err(|_| format!("{name} needs a number, got {value:?}"))
        };
        match arg.as_str() {
            "--count" => options.count = Some(number("--count")?),
            "--batch" => {
                options.batch =
                    usize::try_from(number("--batch")?.max(1)).map_err(|e| e.to_string())?;
            }
            "--unflushed" => options.unflushed = true,
            other => return Err(format!("unknown argument {other:?}; {usage}")),
        }
    }
    Ok(options)
}

fn run(options: &Options) -> Result<(), Box<dyn Error>> {
    let mut store = SledStore::open(&options.dir)?;
    let author = writer_author();
    let head = store.version(&author)?;
    let mut previous: Option<Entry> = if head == 0 {
        None
    } else {
        let held = store.at(&author, head)?;
        let last = held
            .into_iter()
            .find(|s| s.linked)
            .ok_or("the store's head entry is missing")?;
        Some(last.entry)
    };
    let mut written = 0;
    let mut out = io::stdout().lock();
    while options.count.is_none_or(|count| written < count) {
        let room = options.count.map_or(u64::MAX, |count| count - written);
        let size = usize::try_from(room)
            .unwrap_or(usize::MAX)
            .min(options.batch);
        let mut batch = Vec::with_capacity(size);
        for _ in 0..size {
            let entry = next_entry(batch.last().or(previous.as_ref()))?;
            batch.push(entry);
        }
        let acks: Vec<Ack> = batch
            .iter()
            .map(|e| Ack {
                seq: e.seq(),
                id: e.id(),
            })
            .collect();
        let outcomes = if options.unflushed {
            batch
                .iter()
                .map(|e| log::ingest(&mut store, e.clone()))
                .collect::<Result<_, _>>()?
        } else if options.batch == 1 {
            let entry = batch.first().cloned().ok_or("empty batch")?;
            vec![log::insert(&mut store, entry)?]
        } else {
            log::insert_batch(&mut store, batch.iter().cloned())?
        };
        if let Some(bad) = outcomes
            .iter()
            .find(|o| **o != Ingested::Applied { linked: 1 })
        {
            return Err(format!("expected every entry to apply, got {bad:?}").into());
        }
        // Acknowledged: insert (or insert_batch) returned Ok.
        for ack in &acks {
            writeln!(out, "{ack}")?;
            out.flush()?;
        }
        written += acks.len() as u64;
        previous = batch.pop().or(previous);
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("durability-writer: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("durability-writer: {error}");
            ExitCode::FAILURE
        }
    }
}
