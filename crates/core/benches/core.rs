//! Core benchmarks: matrix derivation and what-a-peer-lacks, in memory.
//!
//! `cargo bench -p buildmesh-core`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use buildmesh_core::log::{self, BatchLimits, ChainWriter, MemStore, VersionVector, lacks};
use buildmesh_core::notify::{recent_events, statuses};
use buildmesh_core::view::{
    MatrixOptions, ProjectLog, SeriesOptions, matrix, series, series_table,
};
use buildmesh_protocol::{
    BlobHash, Body, BuildResult, BuilderPolicy, Claim, CommitAnnouncement, CommitId, Entry,
    Outcome, ProjectDeclaration, ProjectId, StepResult, StepStatus, Timestamp,
};
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;

const COMMITS: u32 = 1000;
const PLATFORMS: u32 = 10;
const NOW: Timestamp = Timestamp(1_764_000_000_000);

fn writer(n: u32) -> ChainWriter {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    seed[31] = 1;
    ChainWriter::new(SigningKey::from_bytes(&seed))
}

fn commit(n: u32) -> CommitId {
    let mut bytes = [0u8; 20];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    CommitId::from_bytes(&bytes).unwrap()
}

fn platform(p: u32) -> String {
    format!("platform-{p}")
}

/// Metrics each result states (issue 17's trends bench: 20).
const METRICS: u32 = 20;

/// 1,000 commits × 10 platforms, each cell claimed and built by one of ten
/// builders: 21,001 entries, each result with [`METRICS`] metrics.
fn big_project() -> (ProjectId, Vec<Entry>) {
    let mut owner = writer(0);
    let project = ProjectId::derive(&owner.author(), "big");
    let mut builders: Vec<ChainWriter> = (1..=PLATFORMS).map(writer).collect();
    let mut entries = vec![
        owner
            .write(
                NOW,
                Body::Project(ProjectDeclaration {
                    name: "big".into(),
                    repository: "https://example.invalid/big.git".into(),
                    branches: vec!["main".into()],
                    platforms: (0..PLATFORMS).map(platform).collect(),
                    announcers: Vec::new(),
                    builders: BuilderPolicy::Open,
                    builds_per_cell: 1,
                }),
            )
            .unwrap(),
    ];
    for c in 0..COMMITS {
        let t = Timestamp(NOW.0 + u64::from(c) * 1000);
        entries.push(
            owner
                .write(
                    t,
                    Body::Announce(CommitAnnouncement {
                        project,
                        branch: "main".into(),
                        commit: commit(c),
                        parents: vec![],
                        title: format!("change {c}"),
                        author: "Dev".into(),
                        committed_at: t,
                    }),
                )
                .unwrap(),
        );
        for (p, builder) in builders.iter_mut().enumerate() {
            let p = p as u32;
            entries.push(
                builder
                    .write(
                        t,
                        Body::Claim(Claim {
                            project,
                            commit: commit(c),
                            platform: platform(p),
                            lease_expires: t.plus_ms(60_000),
                        }),
                    )
                    .unwrap(),
            );
            let outcome = if (c + p).is_multiple_of(7) {
                Outcome::Failed
            } else {
                Outcome::Passed
            };
            entries.push(
                builder
                    .write(
                        t,
                        Body::Result(BuildResult {
                            project,
                            commit: commit(c),
                            platform: platform(p),
                            outcome,
                            steps: vec![StepResult {
                                name: "test".into(),
                                command: "make test".into(),
                                status: StepStatus::Exited(0),
                                duration_ms: 10,
                                log: BlobHash::of(b""),
                                log_bytes: 0,
                            }],
                            artifacts: vec![],
                            metrics: (0..METRICS)
                                .map(|m| (format!("metric_{m}"), f64::from(c + m)))
                                .collect(),
                            environment: BTreeMap::new(),
                            error: None,
                        }),
                    )
                    .unwrap(),
            );
        }
    }
    (project, entries)
}

fn bench_matrix(c: &mut Criterion) {
    let (project, entries) = big_project();
    let log = ProjectLog::from_entries(&project, &entries, Default::default());
    let mut store = MemStore::default();
    log::insert_batch(&mut store, entries).unwrap();
    let now = Timestamp(NOW.0 + u64::from(COMMITS) * 1000);
    let mut group = c.benchmark_group("matrix 1000 commits x 10 platforms");
    group.sample_size(20);
    group.bench_function("derive", |b| {
        b.iter(|| black_box(matrix(&log, now, &MatrixOptions::default())))
    });
    group.bench_function("load from MemStore and derive", |b| {
        b.iter(|| {
            let log = ProjectLog::load(&store, &project, usize::MAX).unwrap();
            black_box(matrix(&log, now, &MatrixOptions::default()).map(|m| m.rows.len()))
        })
    });
    group.finish();
}

fn bench_lacks(c: &mut Criterion) {
    let mut store = MemStore::default();
    let mut writers: Vec<ChainWriter> = (100..200).map(writer).collect();
    let mut theirs = VersionVector::new();
    for (i, w) in writers.iter_mut().enumerate() {
        let entries: Vec<Entry> = (0..1000u32)
            .map(|n| {
                w.write(
                    Timestamp(u64::from(n)),
                    Body::Force(buildmesh_protocol::ForceBuild {
                        project: ProjectId([1; 32]),
                        target: buildmesh_protocol::ForceTarget::Branch("main".into()),
                        platforms: vec![],
                        reason: String::new(),
                    }),
                )
                .unwrap()
            })
            .collect();
        log::insert_batch(&mut store, entries).unwrap();
        if i.is_multiple_of(2) {
            theirs.raise(w.author(), 500);
        } else {
            theirs.raise(w.author(), 1000);
        }
    }
    let mut group = c.benchmark_group("lacks over 100k entries (MemStore)");
    group.sample_size(20);
    group.bench_function("first batch", |b| {
        b.iter(|| black_box(lacks(&store, &theirs, None, BatchLimits::default()).unwrap()))
    });
    group.bench_function("all batches (25k entries)", |b| {
        b.iter(|| {
            let mut resume = None;
            let mut total = 0;
            loop {
                let batch = lacks(&store, &theirs, resume, BatchLimits::default()).unwrap();
                total += batch.entries.len();
                resume = batch.resume;
                if resume.is_none() {
                    break total;
                }
            }
        })
    });
    group.finish();
}

/// What the node's notifications task derives for one notifier, project
/// and branch at each change of the views (every 300 ms at most): the
/// events of the newest 50 commits, and the commit statuses of the newest
/// 50 rows.
fn bench_notify(c: &mut Criterion) {
    let (project, entries) = big_project();
    let log = ProjectLog::from_entries(&project, &entries, Default::default());
    let now = Timestamp(NOW.0 + u64::from(COMMITS) * 1000);
    let mut group = c.benchmark_group("notify 1000 commits x 10 platforms");
    group.sample_size(20);
    group.bench_function("events of the newest 50 commits", |b| {
        b.iter(|| black_box(recent_events(&log, now, "main", 50, &BTreeSet::new()).len()))
    });
    group.bench_function("statuses of the newest 50 rows", |b| {
        let options = MatrixOptions {
            branch: None,
            rows_max: Some(50),
        };
        b.iter(|| black_box(matrix(&log, now, &options).map(|m| statuses(&m, now).len())))
    });
    group.finish();
}

/// Issue 17's trends: one series over 1,000 commits, and every series of
/// a metrics page (20 metrics × 10 platforms) over the newest 100.
fn bench_trends(c: &mut Criterion) {
    let (project, entries) = big_project();
    let log = ProjectLog::from_entries(&project, &entries, Default::default());
    let now = Timestamp(NOW.0 + u64::from(COMMITS) * 1000);
    let options = |metric: u32, p: u32, rows_max| SeriesOptions {
        branch: Some("main".into()),
        platform: platform(p),
        metric: format!("metric_{metric}"),
        rows_max,
    };
    let mut group = c.benchmark_group("trends 1000 commits x 10 platforms x 20 metrics");
    group.sample_size(20);
    group.bench_function("one series of 1000 commits", |b| {
        b.iter(|| black_box(series(&log, now, &options(3, 4, 1000)).len()))
    });
    group.bench_function("a page: 200 series of 100 commits, one matrix", |b| {
        b.iter(|| black_box(series_table(&log, now, Some("main".into()), 100).len()))
    });
    group.bench_function("a page: 200 series of 100 commits, a matrix each", |b| {
        b.iter(|| {
            let mut points = 0;
            for metric in 0..METRICS {
                for p in 0..PLATFORMS {
                    points += series(&log, now, &options(metric, p, 100)).len();
                }
            }
            black_box(points)
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_matrix,
    bench_lacks,
    bench_notify,
    bench_trends
);
criterion_main!(benches);
