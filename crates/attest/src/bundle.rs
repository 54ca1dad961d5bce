//! A result's attestations, as one in-toto bundle: the test-result
//! Statement always, the provenance Statement when the build kept
//! artifacts, each in a DSSE envelope signed with the builder's key, one
//! envelope per line.

use crate::dsse::{Envelope, PAYLOAD_TYPE};
use crate::provenance::{
    BUILD_TYPE, BUILDER_ID_PREFIX, BuildDefinition, Builder, ExternalParameters, Provenance,
    RunDetails, SLSA_PROVENANCE_TYPE,
};
use crate::statement::{ResourceDescriptor, Statement};
use crate::test_result::{Counts, Extension, TEST_RESULT_TYPE, TestResult, verdict};
use buildmesh_protocol::{BuildResult, PublicKey, TestSummary};
use ed25519_dalek::SigningKey;
use std::collections::BTreeMap;

/// Where the runner reads a build's recipe at its commit; the name of the
/// configuration the attestations give.
pub const RECIPE_NAME: &str = ".buildmesh.toml";

/// The media type of a bundle (`spec/v1/bundle.md`): JSON Lines of
/// envelopes. What `GET /api/v1/results/{id}/attestation` answers.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.in-toto.bundle";

/// What is attested of one build: the result as it will be signed, and
/// what the entry does not say.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The repository the commit was fetched from (the project's).
    pub repository: &'a str,
    /// The result.
    pub result: &'a BuildResult,
    /// Its tests, when the build reported any.
    pub tests: Option<&'a TestSummary>,
    /// The SHA-256 of the recipe's bytes, when the build read one.
    pub recipe_sha256: Option<[u8; 32]>,
    /// The node's public URL (`public_url`, no trailing `/`), for the
    /// commit page and the blobs' addresses; `None` leaves them out.
    pub public_url: Option<&'a str>,
}

/// The subject of the test result: the commit, by its git id.
fn commit_subject(facts: &Facts<'_>) -> ResourceDescriptor {
    ResourceDescriptor::named(
        facts.repository,
        "gitCommit",
        facts.result.commit.to_string(),
    )
}

/// The recipe, as the predicates' configuration and a dependency.
fn recipe(facts: &Facts<'_>) -> Option<ResourceDescriptor> {
    facts
        .recipe_sha256
        .map(|digest| ResourceDescriptor::named(RECIPE_NAME, "sha256", hex::encode(digest)))
}

/// The page of the result's commit on the builder's node.
fn commit_page(facts: &Facts<'_>) -> Option<String> {
    let result = facts.result;
    facts.public_url.map(|url| {
        format!(
            "{url}/projects/{}/commits/{}",
            result.project, result.commit
        )
    })
}

/// The predicate's `failedTests`: the names the result gives, or none
/// when no test failed; left out when they are not every failing test (a
/// runner's summary line counts them only, and an entry names at most
/// 32), since a consumer reads the list as complete.
fn failed_tests(tests: &TestSummary) -> Option<Vec<String>> {
    let failed = tests.failed.saturating_add(tests.errored);
    let named = u64::try_from(tests.failing.len()).unwrap_or(u64::MAX);
    (named == failed).then(|| tests.failing.clone())
}

/// The test-result Statement of `facts`.
pub fn test_result(facts: &Facts<'_>) -> Statement<TestResult> {
    let result = facts.result;
    let predicate = TestResult {
        result: verdict(result.outcome),
        configuration: recipe(facts).into_iter().collect(),
        url: commit_page(facts),
        failed_tests: facts.tests.and_then(failed_tests),
        buildmesh: Extension {
            project: result.project.to_string(),
            platform: result.platform.clone(),
            outcome: result.outcome,
            error: result.error.clone(),
            tests: facts.tests.map(Counts::of),
        },
    };
    Statement::new(vec![commit_subject(facts)], TEST_RESULT_TYPE, predicate)
}

/// The provenance Statement of the result's artifacts, when it has any.
pub fn provenance(facts: &Facts<'_>, builder: &PublicKey) -> Option<Statement<Provenance>> {
    let result = facts.result;
    if result.artifacts.is_empty() {
        return None;
    }
    let subject = result
        .artifacts
        .iter()
        .map(|a| ResourceDescriptor::named(&a.name, "sha256", a.hash.to_string()))
        .collect();
    let blob = |hash| {
        facts
            .public_url
            .map(|url| format!("{url}/api/v1/blobs/{hash}"))
    };
    let byproducts = result
        .steps
        .iter()
        .map(|step| ResourceDescriptor {
            download_location: blob(step.log),
            media_type: Some("text/plain"),
            ..ResourceDescriptor::named(
                &format!("{}.log", step.name),
                "sha256",
                step.log.to_string(),
            )
        })
        .collect();
    let predicate = Provenance {
        build_definition: BuildDefinition {
            build_type: BUILD_TYPE,
            external_parameters: ExternalParameters {
                repository: facts.repository.to_owned(),
                commit: result.commit.to_string(),
                platform: result.platform.clone(),
                project: result.project.to_string(),
            },
            resolved_dependencies: std::iter::once(commit_subject(facts))
                .chain(recipe(facts))
                .collect(),
        },
        run_details: RunDetails {
            builder: Builder {
                id: format!("{BUILDER_ID_PREFIX}{builder}"),
                version: BTreeMap::from([("buildmesh", env!("CARGO_PKG_VERSION"))]),
            },
            byproducts,
        },
    };
    Some(Statement::new(subject, SLSA_PROVENANCE_TYPE, predicate))
}

/// The bundle of `facts`, signed with `key`: one DSSE envelope of each
/// Statement per line, each line ended by `\n` (JSON Lines), the test
/// result first.
pub fn bundle(facts: &Facts<'_>, key: &SigningKey) -> Result<Vec<u8>, serde_json::Error> {
    let builder = PublicKey::from(key.verifying_key());
    let mut payloads = vec![test_result(facts).to_json()?];
    if let Some(statement) = provenance(facts, &builder) {
        payloads.push(statement.to_json()?);
    }
    let mut bytes = Vec::new();
    for payload in payloads {
        bytes.extend_from_slice(
            Envelope::sign(key, PAYLOAD_TYPE, payload)
                .to_json()
                .as_bytes(),
        );
        bytes.push(b'\n');
    }
    Ok(bytes)
}
