//! `buildmesh log export` and `buildmesh log verify`

use super::EXIT_PROBLEMS;
use crate::cli::{ExportArgs, VerifyArgs};
use crate::clock;
use crate::data_dir::DataDir;
use anyhow::{Context, Result};
use buildmesh_audit::{Header, LINE_BYTES_MAX, Report, Verifier, export_line};
use buildmesh_store::SledStore;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Writes the header and every entry of the store, in (author, seq) order.
pub fn export(args: ExportArgs) -> Result<ExitCode> {
    let data_dir = DataDir::for_command(args.data_dir.data_dir);
    let store = open_store(&data_dir)?;
    let count = match &args.out {
        None => write_export(&store, io::stdout().lock())?,
        Some(path) => export_to_file(&store, path)?,
    };
    let target = args
        .out
        .map_or("standard output".into(), |p| p.display().to_string());
    eprintln!("exported {count} entries to {target}");
    Ok(ExitCode::SUCCESS)
}

/// Checks an export file, standard input, or a data dir's store.
pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let report = match (&args.data_dir, &args.file) {
        (Some(dir), _) => verify_store(&open_store(&DataDir::resolve(Some(dir.clone())))?)?,
        (None, Some(path)) if path.as_os_str() != "-" => {
            let file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            verify_lines(BufReader::new(file))?
        }
        (None, _) => verify_lines(io::stdin().lock())?,
    };
    print_report(&report, args.quiet);
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PROBLEMS)
    })
}

fn open_store(data_dir: &DataDir) -> Result<SledStore> {
    let path = data_dir.store();
    // sled keeps its data in a file named `db`; without it there is no
    // store to read, and opening would create an empty one.
    if !path.join("db").is_file() {
        anyhow::bail!("no store at {}: is --data-dir right?", path.display());
    }
    Ok(SledStore::open(&path)?)
}

fn export_to_file(store: &SledStore, path: &Path) -> Result<usize> {
    let mut temporary = PathBuf::from(path);
    temporary.as_mut_os_string().push(".partial");
    let written = write_export_file(store, &temporary, path);
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

fn write_export_file(store: &SledStore, temporary: &Path, path: &Path) -> Result<usize> {
    let file = File::create(temporary)
        .with_context(|| format!("cannot create {}", temporary.display()))?;
    let count = write_export(store, &file)?;
    file.sync_all()?;
    fs::rename(temporary, path)
        .with_context(|| format!("cannot rename into {}", path.display()))?;
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(dir).and_then(|dir| dir.sync_all()).ok();
    }
    Ok(count)
}

fn write_export(store: &SledStore, out: impl Write) -> Result<usize> {
    let mut out = BufWriter::new(out);
    writeln!(out, "{}", Header::new(clock::now()).to_line())?;
    let mut count = 0;
    for stored in store.all_entries() {
        writeln!(out, "{}", export_line(&stored?.entry))?;
        count += 1;
    }
    out.flush()?;
    Ok(count)
}

fn verify_store(store: &SledStore) -> Result<Report> {
    let mut verifier = Verifier::new();
    verifier.line(&Header::new(clock::now()).to_line());
    for stored in store.all_entries() {
        verifier.line(&export_line(&stored?.entry));
    }
    Ok(verifier.finish())
}

fn verify_lines(input: impl BufRead) -> Result<Report> {
    let mut verifier = Verifier::new();
    feed_lines(input, &mut verifier)?;
    Ok(verifier.finish())
}

/// Feeds lines to the verifier without ever holding more than one bounded
/// line in memory, so a hostile file cannot exhaust it.
pub(super) fn feed_lines(mut input: impl BufRead, verifier: &mut Verifier) -> Result<()> {
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        let read = (&mut input)
            .take(LINE_BYTES_MAX as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        if line.len() > LINE_BYTES_MAX && line.last() != Some(&b'\n') {
            let skipped = skip_line(&mut input)?;
            verifier.line_too_long(read + skipped);
            continue;
        }
        verifier.line(&String::from_utf8_lossy(&line));
    }
    Ok(())
}

fn skip_line(input: &mut impl BufRead) -> Result<usize> {
    let mut skipped = 0;
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            return Ok(skipped);
        }
        let (used, done) = match buffer.iter().position(|b| *b == b'\n') {
            Some(at) => (at + 1, true),
            None => (buffer.len(), false),
        };
        input.consume(used);
        skipped += used;
        if done {
            return Ok(skipped);
        }
    }
}

fn print_report(report: &Report, quiet: bool) {
    print!("{report}");
    if !quiet {
        for (author, head) in &report.heads {
            match head {
                0 => println!("  author {author}: no entry chains (seq 1 is missing)"),
                _ => println!("  author {author}: chain complete through seq {head}"),
            }
        }
    }
}
