//! The `buildmesh` command line, run as a user would run it.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use buildmesh_core::log::{self, ChainWriter};
use buildmesh_protocol::{Body, BuilderPolicy, ProjectDeclaration, Timestamp};
use buildmesh_store::SledStore;
use ed25519_dalek::SigningKey;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn buildmesh(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_buildmesh"))
        .args(args)
        .env_remove("BUILDMESH_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A data dir whose store holds `n` entries from each of two authors.
fn populated(dir: &Path, n: u8) {
    let mut store = SledStore::open(&dir.join("store")).unwrap();
    for seed in [1u8, 2] {
        let mut writer = ChainWriter::new(SigningKey::from_bytes(&[seed; 32]));
        for i in 0..n {
            // Declarations: a key needs no role to sign them.
            let body = Body::Project(ProjectDeclaration {
                name: format!("p{i}"),
                repository: "https://example.invalid/p.git".into(),
                branches: vec!["main".into()],
                platforms: vec!["linux-x86_64".into()],
                announcers: Vec::new(),
                builders: BuilderPolicy::Open,
                builds_per_cell: 1,
            });
            log::insert(
                &mut store,
                writer.write(Timestamp(u64::from(i)), body).unwrap(),
            )
            .unwrap();
        }
    }
}

#[test]
fn keygen_writes_a_private_key_and_prints_its_public_half() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let out = buildmesh(&["keygen", "--data-dir", data]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let public = text(&out.stdout).trim().to_string();
    assert_eq!(public.len(), 64, "{public}");
    let mode = std::fs::metadata(dir.path().join("key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let again = buildmesh(&["keygen", "--data-dir", data]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("--force"),
        "{}",
        text(&again.stderr)
    );

    let id = buildmesh(&["id", "--data-dir", data]);
    assert_eq!(text(&id.stdout).trim(), public);
}

#[test]
fn an_export_verifies_and_a_tampered_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path(), 5);
    let data = dir.path().to_str().unwrap();
    let file = dir.path().join("log.jsonl");
    let out = buildmesh(&[
        "log",
        "export",
        "--data-dir",
        data,
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("exported 10 entries"));

    let ok = buildmesh(&["log", "verify", file.to_str().unwrap()]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stdout));
    assert!(
        text(&ok.stdout).starts_with("OK: 10 entries from 2 authors"),
        "{}",
        text(&ok.stdout)
    );

    let direct = buildmesh(&["log", "verify", "--data-dir", data]);
    assert_eq!(direct.status.code(), Some(0), "{}", text(&direct.stdout));

    let mut lines: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines.remove(3); // drop an entry: a gap
    let last_digit = lines[1].len() - 3; // the content's last hex digit, before `"}`
    let flipped = if &lines[1][last_digit..=last_digit] == "0" {
        "1"
    } else {
        "0"
    };
    lines[1].replace_range(last_digit..=last_digit, flipped);
    let tampered = dir.path().join("tampered.jsonl");
    std::fs::write(&tampered, lines.join("\n")).unwrap();
    let bad = buildmesh(&["log", "verify", tampered.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad.stdout));
    let report = text(&bad.stdout);
    assert!(report.starts_with("FAILED"), "{report}");
    assert!(report.contains("is missing"), "{report}");
    assert!(
        report.contains("  - line 2: "),
        "the tampered line is named: {report}"
    );
}

#[test]
fn verify_reads_standard_input_and_reports_garbage() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_buildmesh"))
        .args(["log", "verify", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"not json\n").unwrap();
    stdin.write_all(&vec![b'x'; 300_000]).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report = text(&out.stdout);
    assert!(report.contains("bad header"), "{report}");
    assert!(report.contains("longer than any entry line"), "{report}");
}

#[test]
fn errors_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing");
    let out = buildmesh(&["log", "export", "--data-dir", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is --data-dir right?"),
        "{}",
        text(&out.stderr)
    );

    let out = buildmesh(&["log", "verify", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot open"),
        "{}",
        text(&out.stderr)
    );

    let out = buildmesh(&["id", "--data-dir", missing.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("buildmesh keygen"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn help_teaches() {
    let out = buildmesh(&["--help"]);
    let help = text(&out.stdout);
    for word in ["keygen", "log", "id", "RUST_LOG"] {
        assert!(help.contains(word), "{help}");
    }
    let out = buildmesh(&["log", "verify", "--help"]);
    assert!(text(&out.stdout).contains("exits 0 if everything checks out"));
}
