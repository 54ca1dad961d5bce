//! A result's bundle as a verifier reads it: each line a DSSE envelope
//! whose signature verifies (ed25519-dalek, over the PAE computed here)
//! under the builder's key, and whose payload is the Statement the
//! in-toto specs describe. Any changed byte breaks the signature.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use buildmesh_attest::dsse::{Envelope, PAYLOAD_TYPE};
use buildmesh_attest::{Facts, bundle};
use buildmesh_protocol::{
    Artifact, BlobHash, BuildResult, CommitId, Outcome, ProjectId, StepResult, StepStatus,
    TestSummary,
};
use ed25519_dalek::{Signature, SigningKey};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const REPOSITORY: &str = "https://example.invalid/demo.git";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[5; 32])
}

fn commit() -> CommitId {
    CommitId::from_bytes(&[0xab; 20]).unwrap()
}

fn result(outcome: Outcome, artifacts: Vec<Artifact>) -> BuildResult {
    BuildResult {
        project: ProjectId([0x11; 32]),
        commit: commit(),
        platform: "linux-x86_64".into(),
        outcome,
        steps: vec![StepResult {
            name: "test".into(),
            command: "cargo test".into(),
            status: StepStatus::Exited(if outcome == Outcome::Passed { 0 } else { 101 }),
            duration_ms: 1200,
            log: BlobHash::of(b"log"),
            log_bytes: 3,
        }],
        artifacts,
        metrics: BTreeMap::new(),
        environment: BTreeMap::new(),
        error: None,
    }
}

fn tests() -> TestSummary {
    TestSummary {
        passed: 40,
        failed: 2,
        skipped: 1,
        errored: 0,
        failing: vec!["parse::empty".into(), "net::timeout".into()],
        source: "junit".into(),
        details: None,
    }
}

/// The bundle's lines, each checked as a third party would: the PAE of
/// the decoded payload type and payload, and the signature over it.
fn verified_statements(bytes: &[u8], key: &SigningKey) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).unwrap();
    assert!(text.ends_with('\n'), "JSON Lines: every line ends with \\n");
    text.lines()
        .map(|line| {
            let envelope: Value = serde_json::from_str(line).unwrap();
            assert_eq!(envelope["payloadType"], PAYLOAD_TYPE);
            let payload = STANDARD
                .decode(envelope["payload"].as_str().unwrap())
                .unwrap();
            let signatures = envelope["signatures"].as_array().unwrap();
            assert_eq!(signatures.len(), 1);
            assert_eq!(
                signatures[0]["keyid"],
                hex::encode(key.verifying_key().to_bytes())
            );
            let sig = STANDARD
                .decode(signatures[0]["sig"].as_str().unwrap())
                .unwrap();
            let mut pae = format!("DSSEv1 28 {PAYLOAD_TYPE} {} ", payload.len()).into_bytes();
            pae.extend_from_slice(&payload);
            let sig = Signature::from_slice(&sig).unwrap();
            key.verifying_key().verify_strict(&pae, &sig).unwrap();
            serde_json::from_slice(&payload).unwrap()
        })
        .collect()
}

#[test]
fn a_passing_result_is_one_test_result_statement_about_the_commit() {
    let result = result(Outcome::Passed, Vec::new());
    let facts = Facts {
        repository: REPOSITORY,
        result: &result,
        tests: None,
        recipe_sha256: Some([0x22; 32]),
        public_url: Some("https://ci.example.org"),
    };
    let statements = verified_statements(&bundle(&facts, &key()).unwrap(), &key());
    assert_eq!(statements.len(), 1, "no artifacts: no provenance");
    let project = "11".repeat(32);
    assert_eq!(
        statements[0],
        json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": REPOSITORY, "digest": {"gitCommit": "ab".repeat(20)}}],
            "predicateType": "https://in-toto.io/attestation/test-result/v0.1",
            "predicate": {
                "result": "PASSED",
                "configuration": [{"name": ".buildmesh.toml", "digest": {"sha256": "22".repeat(32)}}],
                "url": format!("https://ci.example.org/projects/{project}/commits/{}", "ab".repeat(20)),
                "buildmesh": {"project": project, "platform": "linux-x86_64", "outcome": "Passed"},
            },
        })
    );
}

#[test]
fn failing_tests_are_named_and_counted_and_no_url_is_made_up() {
    let result = result(Outcome::Failed, Vec::new());
    let tests = tests();
    let facts = Facts {
        repository: REPOSITORY,
        result: &result,
        tests: Some(&tests),
        recipe_sha256: None,
        public_url: None,
    };
    let statements = verified_statements(&bundle(&facts, &key()).unwrap(), &key());
    let predicate = &statements[0]["predicate"];
    assert_eq!(predicate["result"], "FAILED");
    assert_eq!(predicate["configuration"], json!([]));
    assert!(predicate.get("url").is_none());
    assert_eq!(
        predicate["failedTests"],
        json!(["parse::empty", "net::timeout"])
    );
    assert_eq!(
        predicate["buildmesh"]["tests"],
        json!({"passed": 40, "failed": 2, "skipped": 1, "errored": 0, "source": "junit"})
    );
}

/// A consumer reads `failedTests` as every failing test: it is left out
/// when tests failed that the result does not name, and empty only when
/// none failed.
#[test]
fn failed_tests_is_empty_only_when_none_failed() {
    let failed_tests = |outcome, failed, failing: Vec<String>| {
        let result = result(outcome, Vec::new());
        let tests = TestSummary {
            failed,
            failing,
            ..tests()
        };
        let facts = Facts {
            repository: REPOSITORY,
            result: &result,
            tests: Some(&tests),
            recipe_sha256: None,
            public_url: None,
        };
        let statements = verified_statements(&bundle(&facts, &key()).unwrap(), &key());
        statements[0]["predicate"].get("failedTests").cloned()
    };
    assert_eq!(failed_tests(Outcome::Passed, 0, vec![]), Some(json!([])));
    assert_eq!(failed_tests(Outcome::Failed, 3, vec![]), None);
    assert_eq!(
        failed_tests(Outcome::Failed, 3, vec!["a".into()]),
        None,
        "one name of three failing would read as the whole list"
    );
    assert_eq!(
        failed_tests(Outcome::Failed, 1, vec!["a".into()]),
        Some(json!(["a"]))
    );
}

#[test]
fn artifacts_get_slsa_provenance_naming_the_builder_commit_and_recipe() {
    let artifact = Artifact {
        name: "dist/hello.tar.gz".into(),
        hash: BlobHash::of(b"tarball"),
        bytes: 7,
    };
    let result = result(Outcome::Passed, vec![artifact.clone()]);
    let facts = Facts {
        repository: REPOSITORY,
        result: &result,
        tests: None,
        recipe_sha256: Some([0x22; 32]),
        public_url: Some("https://ci.example.org"),
    };
    let statements = verified_statements(&bundle(&facts, &key()).unwrap(), &key());
    assert_eq!(statements.len(), 2);
    let provenance = &statements[1];
    assert_eq!(
        provenance["predicateType"],
        "https://slsa.dev/provenance/v1"
    );
    assert_eq!(
        provenance["subject"],
        json!([{"name": "dist/hello.tar.gz", "digest": {"sha256": artifact.hash.to_string()}}])
    );
    let definition = &provenance["predicate"]["buildDefinition"];
    assert_eq!(
        definition["buildType"],
        "https://example.invalid/buildmesh/attestations/build/v1"
    );
    assert_eq!(definition["externalParameters"]["commit"], "ab".repeat(20));
    assert_eq!(definition["externalParameters"]["repository"], REPOSITORY);
    assert_eq!(
        definition["resolvedDependencies"][0]["digest"]["gitCommit"],
        "ab".repeat(20)
    );
    assert_eq!(
        definition["resolvedDependencies"][1]["digest"]["sha256"],
        "22".repeat(32)
    );
    let run = &provenance["predicate"]["runDetails"];
    assert_eq!(
        run["builder"]["id"],
        format!(
            "https://example.invalid/buildmesh/nodes/{}",
            hex::encode(key().verifying_key().to_bytes())
        )
    );
    let log = BlobHash::of(b"log");
    assert_eq!(
        run["byproducts"][0],
        json!({"name": "test.log", "digest": {"sha256": log.to_string()},
               "downloadLocation": format!("https://ci.example.org/api/v1/blobs/{log}"),
               "mediaType": "text/plain"})
    );
}

/// Every byte of a line matters: changing any one of them (in the base64
/// of the payload or of the signature, in the payload type, in the key
/// hint's place) either breaks the JSON or the envelope, or leaves a
/// signature that no longer verifies. The key hint is not signed: it may
/// change without the signature failing, which is DSSE's design.
#[test]
fn no_single_byte_of_an_envelope_can_change_and_still_verify() {
    let result = result(Outcome::Failed, Vec::new());
    let tests = tests();
    let facts = Facts {
        repository: REPOSITORY,
        result: &result,
        tests: Some(&tests),
        recipe_sha256: Some([0x22; 32]),
        public_url: None,
    };
    let bytes = bundle(&facts, &key()).unwrap();
    let line = std::str::from_utf8(&bytes).unwrap().trim_end().to_owned();
    let original = Envelope::from_json(&line).unwrap();
    assert!(original.verifies(&key().verifying_key()));
    let keyid = line.find("\"keyid\"").unwrap();
    let keyid_end = keyid + line[keyid..].find(',').unwrap();
    let mut checked = 0;
    for at in 0..line.len() {
        if (keyid..keyid_end).contains(&at) {
            continue;
        }
        let mut changed = line.clone().into_bytes();
        changed[at] ^= 0x01;
        let Ok(text) = String::from_utf8(changed) else {
            continue;
        };
        if let Ok(envelope) = Envelope::from_json(&text) {
            // A base64 alphabet swap that decodes to the same bytes (the
            // padding bits of the last character) is the same envelope.
            if envelope != original {
                assert!(
                    !envelope.verifies(&key().verifying_key()),
                    "byte {at} changed and it still verifies"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > line.len() / 2, "{checked} of {}", line.len());
    // And in the decoded payload, every byte.
    for at in 0..original.payload.len() {
        let mut envelope = original.clone();
        envelope.payload[at] ^= 0x01;
        assert!(
            !envelope.verifies(&key().verifying_key()),
            "payload byte {at}"
        );
    }
    for at in 0..64 {
        let mut envelope = original.clone();
        envelope.signatures[0].sig[at] ^= 0x01;
        assert!(
            !envelope.verifies(&key().verifying_key()),
            "signature byte {at}"
        );
    }
}
