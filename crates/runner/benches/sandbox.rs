//! What the sandbox costs per step: a build of ten `true` steps run
//! directly and in bubblewrap (namespaces, mounts, masks, limits, the
//! build user). The difference divided by ten is the price of issue 12's
//! isolation per step; the goal is under 20 ms.
//!
//! `cargo bench -p buildmesh-runner --bench sandbox`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use buildmesh_protocol::{CommitId, Outcome, ProjectId};
use buildmesh_runner::{BlobDir, BuildJob, RunnerContext, Sandbox, SandboxConfig, run_build};
use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;

const STEPS: usize = 10;

/// A repository with a recipe of [`STEPS`] steps that do nothing.
fn repository(dir: &std::path::Path) -> CommitId {
    let repo = git2::Repository::init(dir).unwrap();
    let recipe: String = (0..STEPS)
        .map(|n| format!("[[step]]\nname = \"s{n}\"\ncommand = \"true\"\n"))
        .collect();
    std::fs::write(dir.join(".buildmesh.toml"), recipe).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_path(std::path::Path::new(".buildmesh.toml"))
        .unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let who = git2::Signature::now("bench", "bench@example.invalid").unwrap();
    let oid = repo
        .commit(Some("HEAD"), &who, &who, "recipe", &tree, &[])
        .unwrap();
    CommitId::from_bytes(oid.as_bytes()).unwrap()
}

fn builds(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let commit = repository(&source);
    let job = BuildJob {
        project: ProjectId([1; 32]),
        repository: source.display().to_string(),
        commit,
        platform: "bench".into(),
    };
    let blobs = BlobDir::open(dir.path().join("blobs")).unwrap();
    let mut context =
        RunnerContext::new(dir.path().join("mirrors"), dir.path().join("work"), blobs);
    context.allow_local_repositories = true;
    let mut group = c.benchmark_group(format!("build of {STEPS} steps"));
    group.sample_size(20);
    group.bench_function("plain", |b| {
        b.iter(|| assert_eq!(run_build(&job, &context).result.outcome, Outcome::Passed))
    });
    match Sandbox::probe(SandboxConfig::default()) {
        Ok(sandbox) => {
            context.sandbox = Some(Arc::new(sandbox));
            group.bench_function("bubblewrap", |b| {
                b.iter(|| assert_eq!(run_build(&job, &context).result.outcome, Outcome::Passed))
            });
        }
        Err(error) => eprintln!("no sandbox here; only the plain build was measured: {error}"),
    }
    group.finish();
}

criterion_group!(benches, builds);
criterion_main!(benches);
