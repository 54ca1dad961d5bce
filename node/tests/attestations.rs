//! A real node's results as standard attestations, checked by a
//! third-party library: securesystemslib's DSSE `Envelope.verify` (PyPI,
//! in the venv `scripts/setup` makes) with the builder's public key from
//! the result entry, through `scripts/verify-attestation.py` (the check
//! `docs/trust.md` tells users to run) and `attestation_tamper.py` (every
//! single-byte change fails). Without the venv these tests fail under
//! `scripts/test` (`BUILDMESH_REQUIRE_SERVERS`), and are skipped, saying
//! so, otherwise.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use buildmesh_core::log::ChainWriter;
use buildmesh_protocol::{ProjectId, Timestamp, sha256};
use buildmesh_test_servers::require_venv_module;
use ed25519_dalek::SigningKey;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use support::{
    Maintainer, Node, Repo, declare, http, http_get, local_builder_flags, result_of, wait_cell,
};

const WAIT: Duration = Duration::from_secs(60);

/// Where the node says its dashboard is: the attestations link to it.
const PUBLIC_URL: &str = "http://127.0.0.1:9";

/// A passing build that reports two tests (cargo test's summary lines)
/// and keeps an artifact: a test result and SLSA provenance.
const PASSING: &str = r#"[[step]]
name = "test"
command = '''
mkdir -p dist && echo hello > dist/hello.txt
printf 'running 2 tests\ntest tests::one ... ok\ntest tests::two ... ok\n\ntest result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\n'
'''

[artifacts]
paths = ["dist/hello.txt"]
"#;

/// A build whose test fails: a test result only (no artifacts).
const FAILING: &str = r#"[[step]]
name = "test"
command = '''
printf 'running 2 tests\ntest tests::one ... ok\ntest tests::two ... FAILED\n\nfailures:\n    tests::two\n\ntest result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\n'
exit 101
'''
"#;

/// The venv's Python, or `None` when the test is skipped.
fn python() -> Option<PathBuf> {
    require_venv_module("securesystemslib.dsse")
}

fn script(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn run(python: &Path, args: &[&Path], more: &[&str]) -> Output {
    let output = Command::new(python).args(args).args(more).output().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// A node on `linux` with a public URL, building `keys`' projects.
fn launch(keys: &Maintainer, config_dir: &Path) -> Node {
    let config = config_dir.join("node.toml");
    std::fs::write(&config, format!("public_url = \"{PUBLIC_URL}\"\n")).unwrap();
    let more = [
        "--lease-secs",
        "3",
        "--accept-maintainer",
        &keys.key,
        "--config",
        config.to_str().unwrap(),
    ];
    Node::launch(
        tempfile::tempdir().unwrap(),
        vec![],
        &local_builder_flags(&["linux"], &more),
    )
}

/// A result's id, its builder's key (the entry's author) and its bundle
/// as served, checked against the hash the entry names.
fn bundle_of(node: &Node, cell: &Value) -> (String, String, Vec<u8>) {
    let id = cell["results"][0]["id"].as_str().unwrap().to_owned();
    let (code, entry) = http(&node.http, "GET", &format!("/api/v1/entries/{id}"), "");
    assert_eq!(code, 200, "{entry}");
    let named: Vec<u8> = entry["body"]["Attested"]["attestation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
        .collect();
    let path = format!("/api/v1/results/{id}/attestation");
    let (code, head, bundle) = http_get(&node.http, &path, &[]);
    assert_eq!(code, 200, "{head}{}", String::from_utf8_lossy(&bundle));
    assert!(
        head.contains("content-type: application/vnd.in-toto.bundle"),
        "{head}"
    );
    assert_eq!(
        sha256(&[&bundle]).to_vec(),
        named,
        "the entry names the bundle served"
    );
    let result = result_of(node, cell);
    assert_eq!(
        result["attestation"],
        hex::encode(&named),
        "GET /api/v1/results/{{id}} links it"
    );
    (id, entry["author"].as_str().unwrap().to_owned(), bundle)
}

/// Verifies `bundle` with `scripts/verify-attestation.py` (securesystemslib)
/// for `commit`: the Statements it printed.
fn verified(python: &Path, bundle: &[u8], key: &str, commit: &str) -> Vec<Value> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bundle).unwrap();
    let verify = script("../scripts/verify-attestation.py");
    let output = run(python, &[&verify, file.path()], &[key, commit]);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn results_attestations_verify_with_securesystemslib_and_fail_after_any_byte_changes() {
    let Some(python) = python() else {
        return;
    };
    let keys = Maintainer::new();
    let config = tempfile::tempdir().unwrap();
    let node = launch(&keys, config.path());
    let repo = Repo::new();
    let passing = repo.commit_recipe(PASSING, "passing");
    let project = declare(
        keys.path(),
        &node,
        "attested",
        &repo,
        &["linux"],
        &node,
        &[&node],
    );
    let cell = wait_cell(&node, &project, &passing, "linux", WAIT, |c| {
        c["status"] == "passed"
    });
    let (_, builder, bundle) = bundle_of(&node, &cell);
    assert_eq!(builder, node.key(), "the node signed its own result");

    let statements = verified(&python, &bundle, &builder, &passing);
    assert_eq!(statements.len(), 2, "{statements:?}");
    let test_result = &statements[0];
    assert_eq!(
        test_result["predicateType"],
        "https://in-toto.io/attestation/test-result/v0.1"
    );
    assert_eq!(test_result["subject"][0]["digest"]["gitCommit"], passing);
    let predicate = &test_result["predicate"];
    assert_eq!(predicate["result"], "PASSED");
    assert_eq!(
        predicate["url"],
        format!("{PUBLIC_URL}/projects/{project}/commits/{passing}")
    );
    assert_eq!(
        predicate["configuration"][0]["digest"]["sha256"],
        hex::encode(sha256(&[PASSING.as_bytes()])),
        "the recipe at the commit, by SHA-256"
    );
    assert_eq!(predicate["failedTests"], serde_json::json!([]));
    assert_eq!(predicate["buildmesh"]["tests"]["passed"], 2);
    let provenance = &statements[1];
    assert_eq!(
        provenance["predicateType"],
        "https://slsa.dev/provenance/v1"
    );
    assert_eq!(provenance["subject"][0]["name"], "dist/hello.txt");
    assert_eq!(
        provenance["subject"][0]["digest"]["sha256"],
        hex::encode(sha256(&[b"hello\n"]))
    );
    assert!(
        provenance["predicate"]["runDetails"]["builder"]["id"]
            .as_str()
            .unwrap()
            .ends_with(&builder)
    );

    // Any single byte changed: securesystemslib refuses it.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &bundle).unwrap();
    let tamper = script("tests/attestation_tamper.py");
    let output = run(&python, &[&tamper, file.path()], &[&builder]);
    assert!(output.status.success(), "{output:?}");
    let counts: Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("tampered: {counts}");
    assert_eq!(counts["envelopes"], 2);
    assert_eq!(
        counts["signature"], 128,
        "64 bytes in each of two envelopes"
    );
    assert!(counts["payload"].as_u64().unwrap() > 500, "{counts}");
    assert_eq!(
        counts["line"],
        bundle.len() as u64 - 2,
        "every byte but the line ends"
    );
    // The same verdict through the documented command, and under
    // another key: exit 1, saying why.
    let mut changed = bundle.clone();
    let payload = bundle
        .windows(11)
        .position(|w| w == b"\"payload\":\"")
        .unwrap();
    changed[payload + 100] ^= 0x01;
    std::fs::write(file.path(), &changed).unwrap();
    let verify = script("../scripts/verify-attestation.py");
    let output = run(&python, &[&verify, file.path()], &[&builder]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("verification FAILED"), "{said}");
    std::fs::write(file.path(), &bundle).unwrap();
    let output = run(&python, &[&verify, file.path()], &[&keys.key]);
    assert_eq!(output.status.code(), Some(1), "another key: {output:?}");
    let output = run(
        &python,
        &[&verify, file.path()],
        &[&builder, &"ab".repeat(20)],
    );
    assert_eq!(output.status.code(), Some(1), "another commit: {output:?}");

    // A failing build: FAILED, naming the failing test; no provenance.
    let failing = repo.commit_recipe(FAILING, "failing");
    let cell = wait_cell(&node, &project, &failing, "linux", WAIT, |c| {
        c["status"] == "failed"
    });
    let (_, builder, bundle) = bundle_of(&node, &cell);
    let statements = verified(&python, &bundle, &builder, &failing);
    assert_eq!(statements.len(), 1, "no artifacts: {statements:?}");
    let predicate = &statements[0]["predicate"];
    assert_eq!(predicate["result"], "FAILED");
    assert_eq!(predicate["failedTests"], serde_json::json!(["tests::two"]));
    assert_eq!(predicate["buildmesh"]["outcome"], "Failed");
}

/// An entry that is not a result, or a result signed without
/// attestations (as nodes before them did): a 404 that says which.
#[test]
fn entries_without_attestations_answer_404_saying_why() {
    let node = Node::start(None);
    let (code, body) = http(
        &node.http,
        "GET",
        &format!("/api/v1/results/{}/attestation", "00".repeat(32)),
        "",
    );
    assert_eq!(code, 404, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("no entry"),
        "{body}"
    );
    let (code, body) = http(&node.http, "GET", "/api/v1/results/xyz/attestation", "");
    assert_eq!(code, 400, "{body}");

    // The owner of a project signs a result as nodes before attestations
    // did (`Body::Result`), and the node takes both entries.
    let mut owner = ChainWriter::new(SigningKey::from_bytes(&[21; 32]));
    let at = Timestamp(1_764_000_000_000);
    let declared = owner.write(at, support::own_project("plain")).unwrap();
    let project = ProjectId::derive(&owner.author(), "plain");
    let old_result = support::big_result(project, support::commit_of(1), 0);
    let result = owner.write(at.plus_ms(1), old_result).unwrap();
    node.submit(&[declared.to_wire(), result.to_wire()]);

    for (id, says) in [
        (declared.id(), "not a build result"),
        (result.id(), "no attestation"),
    ] {
        let path = format!("/api/v1/results/{id}/attestation");
        let (code, body) = http(&node.http, "GET", &path, "");
        assert_eq!(code, 404, "{body}");
        assert!(body["error"].as_str().unwrap().contains(says), "{body}");
    }
}

/// A node that did not build a result serves its attestations all the
/// same, fetched from the builder by hash like any blob: the same bytes,
/// which the entry it holds names.
#[test]
fn another_node_serves_a_results_attestation_fetched_from_its_builder() {
    let keys = Maintainer::new();
    let config = tempfile::tempdir().unwrap();
    let builder = launch(&keys, config.path());
    let repo = Repo::new();
    let commit = repo.commit_recipe(PASSING, "passing");
    let project = declare(
        keys.path(),
        &builder,
        "fetched",
        &repo,
        &["linux"],
        &builder,
        &[&builder],
    );
    let passed = |c: &Value| c["status"] == "passed";
    let cell = wait_cell(&builder, &project, &commit, "linux", WAIT, passed);
    let (id, _, built) = bundle_of(&builder, &cell);
    let reader = Node::start(Some(&builder));
    let cell = wait_cell(&reader, &project, &commit, "linux", WAIT, passed);
    assert_eq!(cell["results"][0]["id"], id);
    let path = format!("/api/v1/results/{id}/attestation");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let served = loop {
        let (code, head, body) = http_get(&reader.http, &path, &[]);
        if code == 200 {
            assert!(head.contains("application/vnd.in-toto.bundle"), "{head}");
            break body;
        }
        // 404 until the reader is connected to the builder.
        assert!(std::time::Instant::now() < deadline, "{code} {head}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(served, built);
}
