//! The wire format against `docs/protocol.md`: round trips (§2-§4), an
//! independent encoder written from §2, tampering, garbage and truncation
//! (§4, §5), the size limit, non-canonical bytes, chain links and body
//! limits (§5).
//!
//! Tests that feed hand-made bytes to the decoder sign them with the
//! author's real key, so the refusal they check is the one under test and
//! not a signature mismatch.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use buildmesh_protocol::{
    Artifact, AttestedResult, BlobHash, Body, BuildResult, BuilderPolicy, BuilderRevocation, Claim,
    CommitAnnouncement, CommitId, DecodeError, ENTRY_BYTES_MAX, Entry, EntryContent, EntryId,
    ForceBuild, ForceTarget, InvalidBody, Outcome, ProjectDeclaration, ProjectId, ProjectSetting,
    PublicKey, PullAnnouncement, PullClosed, Role, SIGNATURE_BYTES, Setting, SignError, StepResult,
    StepStatus, TestSummary, TestedResult, Threshold, ThresholdRule, Timestamp, TrustChange,
    signed_message,
};
use ed25519_dalek::{Signer, SigningKey};
use proptest::prelude::*;

/// Proptest strategies for every body variant, within `limits.rs` but small
/// enough that any generated entry stays far below `ENTRY_BYTES_MAX`.
mod strategy {
    use super::*;
    use proptest::collection::{btree_map, vec};

    pub fn short_text() -> impl Strategy<Value = String> {
        "\\PC{0,12}"
    }

    pub fn long_text() -> impl Strategy<Value = String> {
        "\\PC{0,48}"
    }

    pub fn public_key() -> impl Strategy<Value = PublicKey> {
        any::<[u8; 32]>().prop_map(PublicKey)
    }

    pub fn project_id() -> impl Strategy<Value = ProjectId> {
        any::<[u8; 32]>().prop_map(ProjectId)
    }

    pub fn blob_hash() -> impl Strategy<Value = buildmesh_protocol::BlobHash> {
        any::<[u8; 32]>().prop_map(buildmesh_protocol::BlobHash)
    }

    pub fn timestamp() -> impl Strategy<Value = Timestamp> {
        any::<u64>().prop_map(Timestamp)
    }

    pub fn commit_id() -> impl Strategy<Value = CommitId> {
        prop_oneof![
            any::<[u8; 20]>().prop_map(|b| CommitId::from_bytes(&b).unwrap()),
            any::<[u8; 32]>().prop_map(|b| CommitId::from_bytes(&b).unwrap()),
        ]
    }

    /// Any finite f64, including subnormals and both zeros.
    pub fn finite_f64() -> impl Strategy<Value = f64> {
        use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
        POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO
    }

    pub fn builder_policy() -> impl Strategy<Value = BuilderPolicy> {
        prop_oneof![
            Just(BuilderPolicy::Open),
            vec(public_key(), 0..4).prop_map(BuilderPolicy::Only),
        ]
    }

    pub fn project() -> impl Strategy<Value = ProjectDeclaration> {
        (
            "\\PC{1,12}",
            long_text(),
            vec(short_text(), 0..4),
            vec(short_text(), 0..4),
            vec(public_key(), 0..4),
            builder_policy(),
            1u8..=255,
        )
            .prop_map(
                |(name, repository, branches, platforms, announcers, builders, builds_per_cell)| {
                    ProjectDeclaration {
                        name,
                        repository,
                        branches,
                        platforms,
                        announcers,
                        builders,
                        builds_per_cell,
                    }
                },
            )
    }

    pub fn announcement() -> impl Strategy<Value = CommitAnnouncement> {
        (
            project_id(),
            short_text(),
            commit_id(),
            vec(commit_id(), 0..=buildmesh_protocol::COMMIT_PARENTS_MAX),
            long_text(),
            short_text(),
            timestamp(),
        )
            .prop_map(
                |(project, branch, commit, parents, title, author, committed_at)| {
                    CommitAnnouncement {
                        project,
                        branch,
                        commit,
                        parents,
                        title,
                        author,
                        committed_at,
                    }
                },
            )
    }

    pub fn claim() -> impl Strategy<Value = Claim> {
        (project_id(), commit_id(), short_text(), timestamp()).prop_map(
            |(project, commit, platform, lease_expires)| Claim {
                project,
                commit,
                platform,
                lease_expires,
            },
        )
    }

    pub fn outcome() -> impl Strategy<Value = Outcome> {
        proptest::sample::select(Outcome::ALL.to_vec())
    }

    pub fn step_status() -> impl Strategy<Value = StepStatus> {
        prop_oneof![
            any::<i32>().prop_map(StepStatus::Exited),
            any::<i32>().prop_map(StepStatus::Signalled),
            Just(StepStatus::TimedOut),
            Just(StepStatus::Skipped),
            Just(StepStatus::FailedToStart),
        ]
    }

    pub fn step() -> impl Strategy<Value = StepResult> {
        (
            short_text(),
            long_text(),
            step_status(),
            any::<u64>(),
            blob_hash(),
            any::<u64>(),
        )
            .prop_map(
                |(name, command, status, duration_ms, log, log_bytes)| StepResult {
                    name,
                    command,
                    status,
                    duration_ms,
                    log,
                    log_bytes,
                },
            )
    }

    pub fn artifact() -> impl Strategy<Value = Artifact> {
        (long_text(), blob_hash(), any::<u64>()).prop_map(|(name, hash, bytes)| Artifact {
            name,
            hash,
            bytes,
        })
    }

    pub fn result() -> impl Strategy<Value = BuildResult> {
        (
            project_id(),
            commit_id(),
            short_text(),
            outcome(),
            vec(step(), 0..6),
            vec(artifact(), 0..4),
            btree_map(short_text(), finite_f64(), 0..6),
            btree_map(short_text(), long_text(), 0..6),
            proptest::option::of(long_text()),
        )
            .prop_map(
                |(
                    project,
                    commit,
                    platform,
                    outcome,
                    steps,
                    artifacts,
                    metrics,
                    environment,
                    error,
                )| {
                    BuildResult {
                        project,
                        commit,
                        platform,
                        outcome,
                        steps,
                        artifacts,
                        metrics,
                        environment,
                        error,
                    }
                },
            )
    }

    pub fn force_target() -> impl Strategy<Value = ForceTarget> {
        prop_oneof![
            commit_id().prop_map(ForceTarget::Commit),
            short_text().prop_map(ForceTarget::Branch),
        ]
    }

    pub fn force() -> impl Strategy<Value = ForceBuild> {
        (
            project_id(),
            force_target(),
            vec(short_text(), 0..4),
            long_text(),
        )
            .prop_map(|(project, target, platforms, reason)| ForceBuild {
                project,
                target,
                platforms,
                reason,
            })
    }

    pub fn trust_change() -> impl Strategy<Value = TrustChange> {
        let role = prop_oneof![Just(Role::Builder), Just(Role::Announcer)];
        (project_id(), public_key(), role).prop_map(|(project, subject, role)| TrustChange {
            project,
            subject,
            role,
        })
    }

    pub fn revocation() -> impl Strategy<Value = BuilderRevocation> {
        (project_id(), public_key(), any::<u64>()).prop_map(|(project, subject, kept_through)| {
            BuilderRevocation {
                project,
                subject,
                kept_through,
            }
        })
    }

    pub fn threshold() -> impl Strategy<Value = Threshold> {
        let value = -1e9f64..1e9;
        let amount = 0f64..1e9;
        let rule = prop_oneof![
            value.clone().prop_map(ThresholdRule::Above),
            value.prop_map(ThresholdRule::Below),
            amount.clone().prop_map(ThresholdRule::DropsBy),
            amount.prop_map(ThresholdRule::RisesBy),
        ];
        (short_text(), rule).prop_map(|(metric, rule)| Threshold { metric, rule })
    }

    pub fn setting() -> impl Strategy<Value = ProjectSetting> {
        let setting = prop_oneof![
            any::<bool>().prop_map(Setting::PullRequests),
            vec(threshold(), 0..=4).prop_map(Setting::Thresholds),
            any::<bool>().prop_map(Setting::Reproducible),
        ];
        (project_id(), setting).prop_map(|(project, setting)| ProjectSetting { project, setting })
    }

    pub fn pull() -> impl Strategy<Value = PullAnnouncement> {
        (
            (project_id(), 1u64..=u64::MAX, short_text()),
            commit_id(),
            vec(commit_id(), 0..=buildmesh_protocol::COMMIT_PARENTS_MAX),
            long_text(),
            short_text(),
            timestamp(),
        )
            .prop_map(
                |((project, number, base), commit, parents, title, author, committed_at)| {
                    PullAnnouncement {
                        project,
                        number,
                        base,
                        commit,
                        parents,
                        title,
                        author,
                        committed_at,
                    }
                },
            )
    }

    pub fn tests() -> impl Strategy<Value = TestSummary> {
        (
            any::<[u64; 4]>(),
            vec(short_text(), 0..=buildmesh_protocol::FAILING_TESTS_MAX),
            short_text(),
            proptest::option::of(blob_hash()),
        )
            .prop_map(
                |([passed, failed, skipped, errored], failing, source, details)| TestSummary {
                    passed,
                    failed,
                    skipped,
                    errored,
                    failing,
                    source,
                    details,
                },
            )
    }

    pub fn body() -> impl Strategy<Value = Body> {
        prop_oneof![
            (result(), tests())
                .prop_map(|(result, tests)| Body::Tested(TestedResult { result, tests })),
            (result(), proptest::option::of(tests()), blob_hash()).prop_map(
                |(result, tests, attestation)| Body::Attested(AttestedResult {
                    result,
                    tests,
                    attestation,
                })
            ),
            project().prop_map(Body::Project),
            announcement().prop_map(Body::Announce),
            claim().prop_map(Body::Claim),
            result().prop_map(Body::Result),
            force().prop_map(Body::Force),
            trust_change().prop_map(Body::Trust),
            trust_change().prop_map(Body::Revoke),
            revocation().prop_map(Body::RevokeBuilder),
            setting().prop_map(Body::Setting),
            pull().prop_map(Body::Pull),
            (project_id(), 1u64..=u64::MAX)
                .prop_map(|(project, number)| Body::PullClosed(PullClosed { project, number })),
        ]
    }

    /// A signing key and content it may sign: a valid chain link (seq 1
    /// with a zero prev, or a later seq with a nonzero prev) and any body.
    pub fn signable() -> impl Strategy<Value = (SigningKey, EntryContent)> {
        let seq = prop_oneof![Just(1u64), 2u64..=u64::MAX];
        (
            any::<[u8; 32]>(),
            seq,
            any::<[u8; 32]>(),
            timestamp(),
            body(),
        )
            .prop_map(|(seed, seq, mut prev, timestamp, body)| {
                let key = SigningKey::from_bytes(&seed);
                if seq == 1 {
                    prev = [0; 32];
                } else if prev == [0; 32] {
                    prev[0] = 1;
                }
                let author = PublicKey::from(key.verifying_key());
                let content = EntryContent {
                    author,
                    seq,
                    prev: EntryId(prev),
                    timestamp,
                    body,
                };
                (key, content)
            })
    }

    /// A signed entry and the key that signed it.
    pub fn entry() -> impl Strategy<Value = (SigningKey, Entry)> {
        signable().prop_map(|(key, content)| {
            let entry = Entry::sign(&key, content).unwrap();
            (key, entry)
        })
    }
}

/// An encoder written from `docs/protocol.md` §2 alone, byte by byte, with
/// no bincode: if it and the crate disagree, the spec is wrong.
mod spec {
    use super::*;

    #[derive(Default)]
    pub struct Writer(pub Vec<u8>);

    impl Writer {
        fn u8(&mut self, v: u8) {
            self.0.push(v);
        }
        fn u32(&mut self, v: u32) {
            self.0.extend_from_slice(&v.to_le_bytes());
        }
        fn i32(&mut self, v: i32) {
            self.0.extend_from_slice(&v.to_le_bytes());
        }
        fn u64(&mut self, v: u64) {
            self.0.extend_from_slice(&v.to_le_bytes());
        }
        fn f64(&mut self, v: f64) {
            self.0.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        fn raw32(&mut self, v: &[u8; 32]) {
            self.0.extend_from_slice(v);
        }
        fn len(&mut self, n: usize) {
            self.u64(n as u64);
        }
        fn bytes(&mut self, v: &[u8]) {
            self.len(v.len());
            self.0.extend_from_slice(v);
        }
        fn text(&mut self, v: &str) {
            self.bytes(v.as_bytes());
        }
        fn commit(&mut self, v: &CommitId) {
            self.bytes(v.as_bytes());
        }
        fn texts(&mut self, v: &[String]) {
            self.len(v.len());
            v.iter().for_each(|t| self.text(t));
        }
        fn keys(&mut self, v: &[PublicKey]) {
            self.len(v.len());
            v.iter().for_each(|k| self.raw32(&k.0));
        }
    }

    /// The content bytes of §2: version byte, header, body.
    pub fn content_bytes(content: &EntryContent) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(1);
        w.raw32(&content.author.0);
        w.u64(content.seq);
        w.raw32(&content.prev.0);
        w.u64(content.timestamp.0);
        body(&mut w, &content.body);
        w.0
    }

    fn body(w: &mut Writer, body: &Body) {
        match body {
            Body::Project(p) => {
                w.u32(0);
                project(w, p);
            }
            Body::Announce(a) => {
                w.u32(1);
                w.raw32(&a.project.0);
                w.text(&a.branch);
                w.commit(&a.commit);
                w.len(a.parents.len());
                a.parents.iter().for_each(|c| w.commit(c));
                w.text(&a.title);
                w.text(&a.author);
                w.u64(a.committed_at.0);
            }
            Body::Claim(c) => {
                w.u32(2);
                w.raw32(&c.project.0);
                w.commit(&c.commit);
                w.text(&c.platform);
                w.u64(c.lease_expires.0);
            }
            Body::Result(r) => {
                w.u32(3);
                result(w, r);
            }
            Body::Force(f) => {
                w.u32(4);
                w.raw32(&f.project.0);
                match &f.target {
                    ForceTarget::Commit(c) => {
                        w.u32(0);
                        w.commit(c);
                    }
                    ForceTarget::Branch(b) => {
                        w.u32(1);
                        w.text(b);
                    }
                }
                w.texts(&f.platforms);
                w.text(&f.reason);
            }
            Body::Trust(t) => {
                w.u32(5);
                trust_change(w, t);
            }
            Body::Revoke(t) => {
                w.u32(6);
                trust_change(w, t);
            }
            Body::Setting(s) => {
                w.u32(7);
                w.raw32(&s.project.0);
                match &s.setting {
                    Setting::PullRequests(on) => {
                        w.u32(0);
                        w.u8(u8::from(*on));
                    }
                    Setting::Reproducible(on) => {
                        w.u32(2);
                        w.u8(u8::from(*on));
                    }
                    Setting::Thresholds(list) => {
                        w.u32(1);
                        w.len(list.len());
                        for t in list {
                            w.text(&t.metric);
                            let (index, value) = match t.rule {
                                ThresholdRule::Above(v) => (0, v),
                                ThresholdRule::Below(v) => (1, v),
                                ThresholdRule::DropsBy(v) => (2, v),
                                ThresholdRule::RisesBy(v) => (3, v),
                            };
                            w.u32(index);
                            w.f64(value);
                        }
                    }
                }
            }
            Body::Pull(p) => {
                w.u32(8);
                w.raw32(&p.project.0);
                w.u64(p.number);
                w.text(&p.base);
                w.commit(&p.commit);
                w.len(p.parents.len());
                p.parents.iter().for_each(|c| w.commit(c));
                w.text(&p.title);
                w.text(&p.author);
                w.u64(p.committed_at.0);
            }
            Body::PullClosed(c) => {
                w.u32(9);
                w.raw32(&c.project.0);
                w.u64(c.number);
            }
            Body::Tested(t) => {
                w.u32(10);
                result(w, &t.result);
                tests(w, &t.tests);
            }
            Body::Attested(a) => {
                w.u32(11);
                result(w, &a.result);
                match &a.tests {
                    None => w.u8(0),
                    Some(t) => {
                        w.u8(1);
                        tests(w, t);
                    }
                }
                w.raw32(&a.attestation.0);
            }
            Body::RevokeBuilder(r) => {
                w.u32(12);
                w.raw32(&r.project.0);
                w.raw32(&r.subject.0);
                w.u64(r.kept_through);
            }
        }
    }

    fn tests(w: &mut Writer, t: &TestSummary) {
        [t.passed, t.failed, t.skipped, t.errored]
            .into_iter()
            .for_each(|n| w.u64(n));
        w.texts(&t.failing);
        w.text(&t.source);
        match &t.details {
            None => w.u8(0),
            Some(hash) => {
                w.u8(1);
                w.raw32(&hash.0);
            }
        }
    }

    fn project(w: &mut Writer, p: &ProjectDeclaration) {
        w.text(&p.name);
        w.text(&p.repository);
        w.texts(&p.branches);
        w.texts(&p.platforms);
        w.keys(&p.announcers);
        match &p.builders {
            BuilderPolicy::Open => w.u32(0),
            BuilderPolicy::Only(keys) => {
                w.u32(1);
                w.keys(keys);
            }
        }
        w.u8(p.builds_per_cell);
    }

    fn result(w: &mut Writer, r: &BuildResult) {
        w.raw32(&r.project.0);
        w.commit(&r.commit);
        w.text(&r.platform);
        w.u32(match r.outcome {
            Outcome::Passed => 0,
            Outcome::Failed => 1,
            Outcome::Error => 2,
            Outcome::Warnings => 3,
            Outcome::Skipped => 4,
            Outcome::Retry => 5,
            Outcome::Cancelled => 6,
        });
        w.len(r.steps.len());
        r.steps.iter().for_each(|s| step(w, s));
        w.len(r.artifacts.len());
        for a in &r.artifacts {
            w.text(&a.name);
            w.raw32(&a.hash.0);
            w.u64(a.bytes);
        }
        w.len(r.metrics.len());
        for (key, value) in &r.metrics {
            w.text(key);
            w.f64(*value);
        }
        w.len(r.environment.len());
        for (key, value) in &r.environment {
            w.text(key);
            w.text(value);
        }
        match &r.error {
            None => w.u8(0),
            Some(e) => {
                w.u8(1);
                w.text(e);
            }
        }
    }

    fn step(w: &mut Writer, s: &StepResult) {
        w.text(&s.name);
        w.text(&s.command);
        match s.status {
            StepStatus::Exited(code) => {
                w.u32(0);
                w.i32(code);
            }
            StepStatus::Signalled(signal) => {
                w.u32(1);
                w.i32(signal);
            }
            StepStatus::TimedOut => w.u32(2),
            StepStatus::Skipped => w.u32(3),
            StepStatus::FailedToStart => w.u32(4),
        }
        w.u64(s.duration_ms);
        w.raw32(&s.log.0);
        w.u64(s.log_bytes);
    }

    fn trust_change(w: &mut Writer, t: &TrustChange) {
        w.raw32(&t.project.0);
        w.raw32(&t.subject.0);
        w.u32(match t.role {
            Role::Builder => 0,
            Role::Announcer => 1,
        });
    }
}

/// Helpers shared by the modules below.
mod support {
    use super::*;

    /// The fixed key most hand-made cases sign with.
    pub fn key() -> SigningKey {
        SigningKey::from_bytes(&[42; 32])
    }

    pub fn author() -> PublicKey {
        PublicKey::from(key().verifying_key())
    }

    pub fn project_id() -> ProjectId {
        ProjectId::derive(&author(), "demo")
    }

    pub fn commit() -> CommitId {
        CommitId::from_bytes(&[0xc0; 20]).unwrap()
    }

    /// A body of each variant, all valid.
    pub fn bodies() -> Vec<Body> {
        vec![
            Body::Project(project()),
            Body::Announce(announcement()),
            Body::Claim(Claim {
                project: project_id(),
                commit: commit(),
                platform: "linux-x86_64".into(),
                lease_expires: Timestamp(1_000),
            }),
            Body::Result(result()),
            Body::Force(ForceBuild {
                project: project_id(),
                target: ForceTarget::Branch("main".into()),
                platforms: vec!["linux-x86_64".into()],
                reason: "flaky runner".into(),
            }),
            Body::Trust(trust()),
            Body::Revoke(trust()),
            Body::RevokeBuilder(BuilderRevocation {
                project: project_id(),
                subject: trust().subject,
                kept_through: 41,
            }),
            Body::Setting(ProjectSetting {
                project: project_id(),
                setting: Setting::PullRequests(true),
            }),
            Body::Pull(pull()),
            Body::PullClosed(PullClosed {
                project: project_id(),
                number: 7,
            }),
            Body::Tested(TestedResult {
                result: result(),
                tests: tests(),
            }),
            Body::Attested(AttestedResult {
                result: result(),
                tests: Some(tests()),
                attestation: BlobHash::of(b"attestation"),
            }),
            Body::Attested(AttestedResult {
                result: result(),
                tests: None,
                attestation: BlobHash::of(b"attestation"),
            }),
        ]
    }

    pub fn tests() -> TestSummary {
        TestSummary {
            passed: 38,
            failed: 1,
            skipped: 2,
            errored: 0,
            failing: vec!["tests::parses_prerelease".into()],
            source: "junit".into(),
            details: Some(buildmesh_protocol::BlobHash::of(b"details")),
        }
    }

    pub fn pull() -> PullAnnouncement {
        PullAnnouncement {
            project: project_id(),
            number: 7,
            base: "main".into(),
            commit: commit(),
            parents: vec![CommitId::from_bytes(&[0xc1; 20]).unwrap()],
            title: "Teach the frobnicator to count".into(),
            author: "octocat".into(),
            committed_at: Timestamp(1_700_000_000_000),
        }
    }

    pub fn project() -> ProjectDeclaration {
        ProjectDeclaration {
            name: "demo".into(),
            repository: "https://example.invalid/demo.git".into(),
            branches: vec!["main".into()],
            platforms: vec!["linux-x86_64".into(), "macos-aarch64".into()],
            announcers: vec![PublicKey([3; 32])],
            builders: BuilderPolicy::Only(vec![PublicKey([4; 32])]),
            builds_per_cell: 2,
        }
    }

    pub fn announcement() -> CommitAnnouncement {
        CommitAnnouncement {
            project: project_id(),
            branch: "main".into(),
            commit: commit(),
            parents: vec![CommitId::from_bytes(&[0xc1; 32]).unwrap()],
            title: "Fix the frobnicator".into(),
            author: "Ada <ada@example.invalid>".into(),
            committed_at: Timestamp(1_700_000_000_000),
        }
    }

    pub fn result() -> BuildResult {
        BuildResult {
            project: project_id(),
            commit: commit(),
            platform: "linux-x86_64".into(),
            outcome: Outcome::Failed,
            steps: vec![StepResult {
                name: "test".into(),
                command: "cargo test".into(),
                status: StepStatus::Exited(101),
                duration_ms: 12_345,
                log: buildmesh_protocol::BlobHash::of(b"log"),
                log_bytes: 3,
            }],
            artifacts: vec![Artifact {
                name: "target/report.xml".into(),
                hash: buildmesh_protocol::BlobHash::of(b"xml"),
                bytes: 3,
            }],
            metrics: [("a".to_string(), 1.0), ("b".to_string(), 2.0)].into(),
            environment: [("os".to_string(), "linux".to_string())].into(),
            error: None,
        }
    }

    pub fn trust() -> TrustChange {
        TrustChange {
            project: project_id(),
            subject: PublicKey([5; 32]),
            role: Role::Announcer,
        }
    }

    /// First entry of [`author`] carrying `body`.
    pub fn first(body: Body) -> EntryContent {
        EntryContent::first(author(), Timestamp(1_764_000_000_000), body)
    }

    pub fn sign(body: Body) -> Entry {
        Entry::sign(&key(), first(body)).unwrap()
    }

    /// A valid signature by `key` over whatever `bytes` are, so the decoder
    /// must find another reason to refuse them.
    pub fn sign_raw(key: &SigningKey, bytes: &[u8]) -> [u8; SIGNATURE_BYTES] {
        key.sign(&signed_message(bytes)).to_bytes()
    }

    /// `bytes`, signed properly by [`key`], through `Entry::from_parts`.
    pub fn decode_signed(bytes: &[u8]) -> Result<Entry, DecodeError> {
        Entry::from_parts(bytes, sign_raw(&key(), bytes))
    }

    /// A commit id of any length, which `CommitId::from_bytes` refuses to
    /// build, made the way a hostile decoder input would make it.
    pub fn raw_commit(bytes: &[u8]) -> CommitId {
        let mut encoded = (bytes.len() as u64).to_le_bytes().to_vec();
        encoded.extend_from_slice(bytes);
        let config = bincode::config::standard()
            .with_little_endian()
            .with_fixed_int_encoding();
        bincode::serde::decode_from_slice(&encoded, config)
            .unwrap()
            .0
    }
}

/// §2-§4: what is signed comes back, byte for byte.
mod round_trip {
    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn sign_to_wire_from_wire_is_identity((key, content) in strategy::signable()) {
            let entry = Entry::sign(&key, content.clone()).unwrap();
            prop_assert_eq!(entry.content(), &content);
            let wire = entry.to_wire();
            prop_assert_eq!(entry.wire_len(), wire.len());
            let back = Entry::from_wire(&wire).unwrap();
            prop_assert_eq!(back.id(), entry.id());
            prop_assert_eq!(back.to_wire(), wire.clone());
            prop_assert_eq!(&back, &entry);
            prop_assert_eq!(Entry::from_stored(&wire).unwrap(), entry);
        }

        #[test]
        fn from_parts_agrees_with_from_wire((_key, entry) in strategy::entry()) {
            let back = Entry::from_parts(entry.content_bytes(), *entry.signature()).unwrap();
            prop_assert_eq!(back, entry);
        }
    }

    #[test]
    fn every_body_variant_round_trips() {
        for body in support::bodies() {
            let entry = support::sign(body.clone());
            let back = Entry::from_wire(&entry.to_wire()).unwrap();
            assert_eq!(back.body(), &body);
            assert_eq!(back.id(), entry.id());
        }
    }
}

/// §2: the layout in the doc is the layout of the bytes; §3: signature and
/// id as a third party computes them.
mod layout {
    use super::*;
    use ed25519_dalek::{Signature, VerifyingKey};
    use sha2::{Digest, Sha256};

    /// §2.2, body 11: an `Attested` result is the bytes of the same
    /// `Result` (body 3) under index 11, then its tests as an `Option`
    /// (`00` for none; `01` and the summary of a `Tested`, body 10), then
    /// the attestation's 32 hash bytes.
    #[test]
    fn an_attested_result_is_a_result_then_its_tests_then_the_hash() {
        let hash = BlobHash([0x5a; 32]);
        let body_of = |body| support::sign(body).content_bytes()[85..].to_vec();
        let result = body_of(Body::Result(support::result()));
        let tested = body_of(Body::Tested(TestedResult {
            result: support::result(),
            tests: support::tests(),
        }));
        let summary = &tested[result.len()..];
        for (tests, option) in [
            (None, vec![0]),
            (Some(support::tests()), [&[1], summary].concat()),
        ] {
            let entry = support::sign(Body::Attested(AttestedResult {
                result: support::result(),
                tests,
                attestation: hash,
            }));
            let content = entry.content_bytes();
            assert_eq!(&content[81..85], &11u32.to_le_bytes());
            assert_eq!(&content[85..], [&result[..], &option, &hash.0].concat());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn content_bytes_follow_section_2((_key, entry) in strategy::entry()) {
            let bytes = entry.content_bytes();
            prop_assert_eq!(spec::content_bytes(entry.content()), bytes);
            prop_assert_eq!(bytes[0], 1);
            prop_assert_eq!(&bytes[1..33], &entry.author().0);
            prop_assert_eq!(&bytes[33..41], &entry.seq().to_le_bytes());
            prop_assert_eq!(&bytes[41..73], &entry.prev().0);
            prop_assert_eq!(&bytes[73..81], &entry.timestamp().0.to_le_bytes());
            let variant = u32::from_le_bytes(bytes[81..85].try_into().unwrap());
            prop_assert_eq!(variant, entry.body().kind() as u32);
        }

        #[test]
        fn signature_and_id_follow_section_3((_key, entry) in strategy::entry()) {
            let mut message = b"buildmesh/entry/v1\0".to_vec();
            message.extend_from_slice(entry.content_bytes());
            let key = VerifyingKey::from_bytes(entry.author().as_bytes()).unwrap();
            let signature = Signature::from_bytes(entry.signature());
            prop_assert!(key.verify_strict(&message, &signature).is_ok());
            let digest: [u8; 32] = Sha256::digest(&message).into();
            prop_assert_eq!(digest, entry.id().0);
            let wire = entry.to_wire();
            prop_assert_eq!(&wire[..64], entry.signature());
            prop_assert_eq!(&wire[64..], entry.content_bytes());
        }
    }

    /// The `StepResult` example printed in §2.3.
    #[test]
    fn step_result_example_of_section_2_3() {
        let step = StepResult {
            name: "test".into(),
            command: "cargo test".into(),
            status: StepStatus::Exited(101),
            duration_ms: 0,
            log: buildmesh_protocol::BlobHash::ZERO,
            log_bytes: 0,
        };
        let config = bincode::config::standard()
            .with_little_endian()
            .with_fixed_int_encoding();
        let bytes = bincode::serde::encode_to_vec(&step, config).unwrap();
        let printed =
            "0400000000000000 74657374 0a00000000000000 636172676f2074657374 00000000 65000000";
        assert_eq!(
            hex::encode(&bytes[..bytes.len() - 48]),
            printed.replace(' ', "")
        );
        assert_eq!(bytes.len() - 48, 38);
    }
}

/// §5: any change to a signed entry's bytes is refused.
mod tamper {
    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn flipping_any_byte_is_refused(
            (_key, entry) in strategy::entry(),
            position in any::<prop::sample::Index>(),
            mask in 1u8..=255,
        ) {
            let mut wire = entry.to_wire();
            let at = position.index(wire.len());
            wire[at] ^= mask;
            let result = Entry::from_wire(&wire);
            prop_assert!(result.is_err(), "flip {mask:#04x} at {at} accepted");
            if at < SIGNATURE_BYTES {
                prop_assert_eq!(result, Err(DecodeError::BadSignature));
            }
        }
    }

    /// Every single-bit flip of one entry of each variant, exhaustively.
    #[test]
    fn flipping_any_bit_is_refused() {
        for body in support::bodies() {
            let wire = support::sign(body).to_wire();
            for at in 0..wire.len() {
                for bit in 0..8 {
                    let mut bad = wire.clone();
                    bad[at] ^= 1 << bit;
                    assert!(Entry::from_wire(&bad).is_err(), "bit {bit} of byte {at}");
                }
            }
        }
    }

    #[test]
    fn another_authors_signature_is_refused() {
        let entry = support::sign(Body::Trust(support::trust()));
        let stranger = SigningKey::from_bytes(&[9; 32]);
        let forged = support::sign_raw(&stranger, entry.content_bytes());
        assert_eq!(
            Entry::from_parts(entry.content_bytes(), forged),
            Err(DecodeError::BadSignature)
        );
    }

    /// The canonical encodings of the eight points of small order, and two
    /// non-canonical ones (y = p and y = p + 1): never an author (§5).
    const SMALL_ORDER: [&str; 10] = [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];

    #[test]
    fn small_order_authors_are_refused() {
        for hex_key in SMALL_ORDER {
            let author = PublicKey(hex::decode(hex_key).unwrap().try_into().unwrap());
            let point = ed25519_dalek::VerifyingKey::from_bytes(&author.0).unwrap();
            assert!(
                point.is_weak(),
                "{hex_key} decodes to a point of small order"
            );
            let mut content = support::first(Body::Trust(support::trust()));
            content.author = author;
            let bytes = spec::content_bytes(&content);
            // Any signature: the key is refused before the signature is read.
            for signature in [
                [0; SIGNATURE_BYTES],
                support::sign_raw(&support::key(), &bytes),
            ] {
                let result = Entry::from_parts(&bytes, signature);
                assert_eq!(result, Err(DecodeError::BadAuthorKey), "{hex_key}");
            }
        }
    }

    /// §5 rule 8 prints the eight canonical encodings.
    #[test]
    fn the_doc_lists_the_small_order_points() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
        let doc = std::fs::read_to_string(path).unwrap();
        for hex_key in &SMALL_ORDER[..8] {
            assert!(doc.contains(hex_key), "docs/protocol.md lacks {hex_key}");
        }
    }

    #[test]
    fn a_signature_with_s_not_reduced_is_refused() {
        let entry = support::sign(Body::Trust(support::trust()));
        let mut signature = *entry.signature();
        // Adding L, the group order, to s gives the same point arithmetic
        // but a second encoding: strict verification refuses s >= L.
        add_group_order(&mut signature[32..]);
        let result = Entry::from_parts(entry.content_bytes(), signature);
        assert_eq!(result, Err(DecodeError::BadSignature));
    }

    fn add_group_order(s: &mut [u8]) {
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (byte, l) in s.iter_mut().zip(L) {
            let sum = u16::from(*byte) + u16::from(l) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0, "s + L fits in 32 bytes since s < L < 2^253");
    }
}

/// §4, §5: bytes that are not an entry are refused without a panic.
mod garbage {
    use super::*;
    use proptest::collection::vec;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn random_bytes_are_refused(bytes in vec(any::<u8>(), 0..70_000)) {
            match Entry::from_wire(&bytes) {
                Ok(entry) => prop_assert_eq!(entry.to_wire(), bytes),
                Err(DecodeError::TooLarge(n)) => prop_assert!(n > ENTRY_BYTES_MAX),
                Err(_) => prop_assert!(bytes.len() <= ENTRY_BYTES_MAX),
            }
        }

        /// Random bodies behind a plausible header get past the version
        /// byte and into the body decoder.
        #[test]
        fn random_bodies_are_refused(
            header in vec(any::<u8>(), 80),
            variant in 0u32..12,
            tail in vec(any::<u8>(), 0..600),
        ) {
            let mut bytes = vec![0; SIGNATURE_BYTES];
            bytes.push(1);
            bytes.extend_from_slice(&header);
            bytes.extend_from_slice(&variant.to_le_bytes());
            bytes.extend_from_slice(&tail);
            if let Ok(entry) = Entry::from_wire(&bytes) {
                prop_assert_eq!(entry.to_wire(), bytes);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn every_truncation_is_refused((_key, entry) in strategy::entry()) {
            assert_truncations_refused(&entry.to_wire());
        }
    }

    #[test]
    fn every_truncation_of_each_variant_is_refused() {
        for body in support::bodies() {
            assert_truncations_refused(&support::sign(body).to_wire());
        }
    }

    fn assert_truncations_refused(wire: &[u8]) {
        for len in 0..wire.len() {
            let result = Entry::from_wire(&wire[..len]);
            match len {
                ..SIGNATURE_BYTES => assert_eq!(result, Err(DecodeError::TooShort(len))),
                SIGNATURE_BYTES => assert_eq!(result, Err(DecodeError::TooShort(SIGNATURE_BYTES))),
                _ => assert!(
                    matches!(result, Err(DecodeError::Malformed(_))),
                    "{len}: {result:?}"
                ),
            }
        }
    }

    #[test]
    fn hostile_lengths_are_refused_without_allocating() {
        let entry = support::sign(Body::Project(support::project()));
        let mut content = entry.content_bytes().to_vec();
        // The project name's length prefix sits right after the variant.
        content[85..93].copy_from_slice(&u64::MAX.to_le_bytes());
        let result = support::decode_signed(&content);
        assert!(
            matches!(result, Err(DecodeError::Malformed(_))),
            "{result:?}"
        );
    }
}

/// §5: the size limit, on both sides.
mod oversize {
    use super::*;

    /// A force build whose entry is exactly `wire_len` bytes on the wire.
    fn force_of_wire_len(wire_len: usize) -> Body {
        let base = support::sign(force(vec![], String::new())).wire_len();
        let extra = wire_len - base;
        // Each platform costs 8 length bytes plus 256 text bytes; the reason
        // takes the remainder.
        let platforms = vec!["p".repeat(256); extra / 264];
        force(platforms, "r".repeat(extra % 264))
    }

    fn force(platforms: Vec<String>, reason: String) -> Body {
        Body::Force(ForceBuild {
            project: support::project_id(),
            target: ForceTarget::Branch("main".into()),
            platforms,
            reason,
        })
    }

    #[test]
    fn the_largest_entry_is_accepted() {
        let entry = Entry::sign(
            &support::key(),
            support::first(force_of_wire_len(ENTRY_BYTES_MAX)),
        )
        .unwrap();
        assert_eq!(entry.wire_len(), ENTRY_BYTES_MAX);
        assert_eq!(Entry::from_wire(&entry.to_wire()).unwrap(), entry);
    }

    #[test]
    fn one_byte_more_is_not_signed() {
        let body = force_of_wire_len(ENTRY_BYTES_MAX + 1);
        let result = Entry::sign(&support::key(), support::first(body));
        let too_large = DecodeError::TooLarge(ENTRY_BYTES_MAX + 1);
        assert_eq!(result, Err(SignError::Invalid(too_large)));
    }

    #[test]
    fn a_valid_body_far_over_the_limit_is_not_signed() {
        let mut result = support::result();
        let step = result.steps[0].clone();
        result.steps = vec![
            StepResult {
                command: "c".repeat(4096),
                ..step
            };
            256
        ];
        let signed = Entry::sign(&support::key(), support::first(Body::Result(result)));
        assert!(
            matches!(signed, Err(SignError::Invalid(DecodeError::TooLarge(n))) if n > ENTRY_BYTES_MAX),
            "{signed:?}"
        );
    }

    #[test]
    fn wire_over_the_limit_is_refused_before_decoding() {
        assert_eq!(
            Entry::from_wire(&vec![0; ENTRY_BYTES_MAX + 1]),
            Err(DecodeError::TooLarge(ENTRY_BYTES_MAX + 1))
        );
        let mut wire = support::sign(Body::Trust(support::trust())).to_wire();
        wire.resize(ENTRY_BYTES_MAX + 1, 0);
        assert_eq!(
            Entry::from_wire(&wire),
            Err(DecodeError::TooLarge(ENTRY_BYTES_MAX + 1))
        );
    }

    #[test]
    fn content_over_the_limit_is_refused_even_when_signed() {
        let body = force_of_wire_len(ENTRY_BYTES_MAX + 1);
        let bytes = spec::content_bytes(&support::first(body));
        assert_eq!(bytes.len() + SIGNATURE_BYTES, ENTRY_BYTES_MAX + 1);
        let too_large = Err(DecodeError::TooLarge(ENTRY_BYTES_MAX + 1));
        assert_eq!(support::decode_signed(&bytes), too_large);
        let mut wire = support::sign_raw(&support::key(), &bytes).to_vec();
        wire.extend_from_slice(&bytes);
        assert_eq!(Entry::from_wire(&wire), too_large);
    }
}

/// §5: one value, one encoding. Each case is validly signed, so only the
/// encoding rule can refuse it.
mod non_canonical {
    use super::*;

    fn result_entry() -> Entry {
        support::sign(Body::Result(support::result()))
    }

    #[test]
    fn a_trailing_byte_is_refused_before_the_signature_is_checked() {
        let entry = result_entry();
        let mut bytes = entry.content_bytes().to_vec();
        bytes.push(0);
        assert_eq!(
            support::decode_signed(&bytes),
            Err(DecodeError::TrailingBytes(1))
        );
        // With the original signature the message differs too; the encoding
        // is still what is reported, since it is checked first.
        assert_eq!(
            Entry::from_parts(&bytes, *entry.signature()),
            Err(DecodeError::TrailingBytes(1))
        );
        let mut wire = entry.to_wire();
        wire.extend_from_slice(&[0, 0, 0]);
        assert_eq!(Entry::from_wire(&wire), Err(DecodeError::TrailingBytes(3)));
    }

    /// Finds `needle` in `haystack`, once.
    fn position(haystack: &[u8], needle: &[u8]) -> usize {
        let mut hits = haystack
            .windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle);
        let (at, _) = hits.next().expect("needle present");
        assert!(hits.next().is_none(), "needle unique");
        at
    }

    /// Metrics `{a: 1.0, b: 2.0}` written as `b: 1.0, a: 2.0`: decodes to
    /// a map, but re-encodes sorted, so the bytes are not canonical.
    #[test]
    fn map_keys_out_of_order_are_refused() {
        let mut bytes = result_entry().content_bytes().to_vec();
        let a = position(&bytes, &[1, 0, 0, 0, 0, 0, 0, 0, b'a']) + 8;
        let b = position(&bytes, &[1, 0, 0, 0, 0, 0, 0, 0, b'b']) + 8;
        bytes.swap(a, b);
        assert_eq!(
            support::decode_signed(&bytes),
            Err(DecodeError::NotCanonical)
        );
    }

    #[test]
    fn duplicate_map_keys_are_refused() {
        let mut bytes = result_entry().content_bytes().to_vec();
        let b = position(&bytes, &[1, 0, 0, 0, 0, 0, 0, 0, b'b']) + 8;
        bytes[b] = b'a';
        assert_eq!(
            support::decode_signed(&bytes),
            Err(DecodeError::NotCanonical)
        );
    }

    #[test]
    fn other_versions_are_refused() {
        let entry = result_entry();
        for version in [0, 2, 0xff] {
            let mut bytes = entry.content_bytes().to_vec();
            bytes[0] = version;
            let refused = Err(DecodeError::UnsupportedVersion(version));
            assert_eq!(support::decode_signed(&bytes), refused);
        }
    }

    #[test]
    fn an_option_tag_other_than_0_or_1_is_refused() {
        let mut bytes = result_entry().content_bytes().to_vec();
        let last = bytes.len() - 1; // error: None is the last byte
        assert_eq!(bytes[last], 0);
        bytes[last] = 2;
        let result = support::decode_signed(&bytes);
        assert!(
            matches!(result, Err(DecodeError::Malformed(_))),
            "{result:?}"
        );
    }

    #[test]
    fn unknown_variants_are_refused() {
        let entry = support::sign(Body::Trust(support::trust()));
        for variant in [12u32, 13, u32::MAX] {
            let mut bytes = entry.content_bytes().to_vec();
            bytes[81..85].copy_from_slice(&variant.to_le_bytes());
            let result = support::decode_signed(&bytes);
            assert!(
                matches!(result, Err(DecodeError::Malformed(_))),
                "{variant}: {result:?}"
            );
        }
    }

    /// §2.3: an `Outcome` past `Cancelled` (6) and a `Setting` past
    /// `Reproducible` (2) are unknown, so refused: the appended variants
    /// are the last ones.
    #[test]
    fn outcomes_and_settings_past_the_last_are_refused() {
        let bytes_of = |outcome| {
            let mut result = support::result();
            result.outcome = outcome;
            support::sign(Body::Result(result)).content_bytes().to_vec()
        };
        let (warned, cancelled) = (bytes_of(Outcome::Warnings), bytes_of(Outcome::Cancelled));
        let at: Vec<usize> = (0..warned.len())
            .filter(|i| warned[*i] != cancelled[*i])
            .collect();
        assert_eq!(at.len(), 1, "the outcome is one byte apart: {at:?}");
        assert_eq!(cancelled[at[0]], 6);
        let mut bytes = cancelled.clone();
        bytes[at[0]] = 7;
        let result = support::decode_signed(&bytes);
        assert!(
            matches!(result, Err(DecodeError::Malformed(_))),
            "{result:?}"
        );

        let setting = Body::Setting(ProjectSetting {
            project: support::project_id(),
            setting: Setting::Reproducible(true),
        });
        let mut bytes = support::sign(setting).content_bytes().to_vec();
        let last = bytes.len() - 1;
        assert_eq!(&bytes[last - 4..last], &[2, 0, 0, 0], "Reproducible is 2");
        bytes[last - 4] = 3;
        let result = support::decode_signed(&bytes);
        assert!(
            matches!(result, Err(DecodeError::Malformed(_))),
            "{result:?}"
        );
    }

    /// §2: a `bool` is one byte, `00` or `01`; anything else is refused.
    #[test]
    fn a_bool_other_than_0_or_1_is_refused() {
        let setting = Body::Setting(ProjectSetting {
            project: support::project_id(),
            setting: Setting::PullRequests(true),
        });
        let mut bytes = support::sign(setting).content_bytes().to_vec();
        let last = bytes.len() - 1;
        assert_eq!(bytes[last], 1);
        assert_eq!(&bytes[last - 4..last], &[0, 0, 0, 0], "PullRequests is 0");
        for bad in [2u8, 0xff] {
            bytes[last] = bad;
            let result = support::decode_signed(&bytes);
            assert!(
                matches!(result, Err(DecodeError::Malformed(_))),
                "{bad}: {result:?}"
            );
        }
    }

    #[test]
    fn text_that_is_not_utf8_is_refused() {
        let mut bytes = support::sign(Body::Project(support::project()))
            .content_bytes()
            .to_vec();
        bytes[93] = 0xff; // first byte of the name "demo"
        let result = support::decode_signed(&bytes);
        assert!(
            matches!(result, Err(DecodeError::Malformed(_))),
            "{result:?}"
        );
    }

    #[test]
    fn empty_content_is_refused() {
        assert_eq!(
            Entry::from_parts(&[], [0; SIGNATURE_BYTES]),
            Err(DecodeError::TooShort(0))
        );
    }
}

/// §5, §6: sequence numbers and previous ids agree.
mod chain_link {
    use super::*;

    fn content(seq: u64, prev: EntryId) -> EntryContent {
        EntryContent {
            seq,
            prev,
            ..support::first(Body::Trust(support::trust()))
        }
    }

    fn bad_link(seq: u64) -> Result<Entry, SignError> {
        Err(SignError::Invalid(DecodeError::BadChainLink { seq }))
    }

    #[test]
    fn bad_links_are_not_signed() {
        let some = EntryId([7; 32]);
        for (seq, prev) in [(0, EntryId::ZERO), (0, some), (1, some), (2, EntryId::ZERO)] {
            assert_eq!(
                Entry::sign(&support::key(), content(seq, prev)),
                bad_link(seq)
            );
        }
    }

    #[test]
    fn bad_links_are_refused_even_when_signed() {
        let some = EntryId([7; 32]);
        for (seq, prev) in [(0, EntryId::ZERO), (0, some), (1, some), (2, EntryId::ZERO)] {
            let bytes = spec::content_bytes(&content(seq, prev));
            assert_eq!(
                support::decode_signed(&bytes),
                Err(DecodeError::BadChainLink { seq })
            );
        }
    }

    #[test]
    fn good_links_are_signed() {
        let some = EntryId([7; 32]);
        for (seq, prev) in [(1, EntryId::ZERO), (2, some), (u64::MAX, some)] {
            assert!(Entry::sign(&support::key(), content(seq, prev)).is_ok());
        }
    }

    #[test]
    fn a_chain_built_with_after_links_by_id() {
        let key = support::key();
        let first = Entry::sign(&key, content(1, EntryId::ZERO)).unwrap();
        let body = Body::Revoke(support::trust());
        let second = Entry::sign(
            &key,
            EntryContent::after(&first, Timestamp(2), body.clone()),
        )
        .unwrap();
        let third = Entry::sign(&key, EntryContent::after(&second, Timestamp(3), body)).unwrap();
        assert_eq!((second.seq(), second.prev()), (2, first.id()));
        assert_eq!((third.seq(), third.prev()), (3, second.id()));
    }

    #[test]
    fn another_key_cannot_sign() {
        let stranger = SigningKey::from_bytes(&[9; 32]);
        assert_eq!(
            Entry::sign(&stranger, content(1, EntryId::ZERO)),
            Err(SignError::WrongKey)
        );
        // The key is checked before anything else.
        assert_eq!(
            Entry::sign(&stranger, content(0, EntryId::ZERO)),
            Err(SignError::WrongKey)
        );
    }
}

/// §5: body limits, at the boundary, on both the signing and decoding side.
mod body_limits {
    use super::*;
    use InvalidBody::{CommitId as BadCommit, Empty, TooLong, TooMany};
    use buildmesh_protocol::{
        COMMIT_PARENTS_MAX, LIST_ITEMS_MAX, LONG_TEXT_BYTES_MAX, SHORT_TEXT_BYTES_MAX,
    };

    const SHORT: usize = SHORT_TEXT_BYTES_MAX;
    const LONG: usize = LONG_TEXT_BYTES_MAX;
    const LIST: usize = LIST_ITEMS_MAX;

    fn text(len: usize) -> String {
        "x".repeat(len)
    }

    fn texts(count: usize) -> Vec<String> {
        vec![String::new(); count]
    }

    /// Signs `body`, and decodes it hand-encoded and signed: both must give
    /// the same verdict.
    fn check(body: Body) -> Result<(), InvalidBody> {
        let signed = Entry::sign(&support::key(), support::first(body.clone()));
        let decoded = support::decode_signed(&spec::content_bytes(&support::first(body)));
        match (signed, decoded) {
            (Ok(_), Ok(_)) => Ok(()),
            (
                Err(SignError::Invalid(DecodeError::InvalidBody(a))),
                Err(DecodeError::InvalidBody(b)),
            ) => {
                assert_eq!(a, b);
                Err(a)
            }
            other => panic!("sign and decode disagree: {other:?}"),
        }
    }

    type Edit<T> = (&'static str, fn(&mut T), Result<(), InvalidBody>);

    fn project_cases() -> Vec<Edit<ProjectDeclaration>> {
        vec![
            ("name at max", |p| p.name = text(SHORT), Ok(())),
            (
                "name over",
                |p| p.name = text(SHORT + 1),
                Err(TooLong("name", SHORT)),
            ),
            ("name empty", |p| p.name = String::new(), Err(Empty("name"))),
            ("repository at max", |p| p.repository = text(LONG), Ok(())),
            (
                "repository over",
                |p| p.repository = text(LONG + 1),
                Err(TooLong("repository", LONG)),
            ),
            (
                "branch over",
                |p| p.branches = vec![text(SHORT + 1)],
                Err(TooLong("branch", SHORT)),
            ),
            ("branches at max", |p| p.branches = texts(LIST), Ok(())),
            (
                "branches over",
                |p| p.branches = texts(LIST + 1),
                Err(TooMany("branches", LIST)),
            ),
            (
                "platform over",
                |p| p.platforms = vec![text(SHORT + 1)],
                Err(TooLong("platform", SHORT)),
            ),
            (
                "platforms over",
                |p| p.platforms = texts(LIST + 1),
                Err(TooMany("platforms", LIST)),
            ),
            (
                "announcers at max",
                |p| p.announcers = vec![PublicKey([1; 32]); LIST],
                Ok(()),
            ),
            (
                "announcers over",
                |p| p.announcers = vec![PublicKey([1; 32]); LIST + 1],
                Err(TooMany("announcers", LIST)),
            ),
            (
                "builders over",
                |p| p.builders = BuilderPolicy::Only(vec![PublicKey([1; 32]); LIST + 1]),
                Err(TooMany("builders", LIST)),
            ),
            (
                "builds_per_cell zero",
                |p| p.builds_per_cell = 0,
                Err(Empty("builds_per_cell")),
            ),
        ]
    }

    fn announcement_cases() -> Vec<Edit<CommitAnnouncement>> {
        vec![
            (
                "branch over",
                |a| a.branch = text(SHORT + 1),
                Err(TooLong("branch", SHORT)),
            ),
            (
                "commit short",
                |a| a.commit = support::raw_commit(&[1; 19]),
                Err(BadCommit(19)),
            ),
            (
                "parents at max",
                |a| a.parents = vec![support::commit(); COMMIT_PARENTS_MAX],
                Ok(()),
            ),
            (
                "parents over",
                |a| a.parents = vec![support::commit(); COMMIT_PARENTS_MAX + 1],
                Err(TooMany("parents", COMMIT_PARENTS_MAX)),
            ),
            (
                "parent bad",
                |a| a.parents = vec![support::raw_commit(&[1; 40])],
                Err(BadCommit(40)),
            ),
            ("title at max", |a| a.title = text(LONG), Ok(())),
            (
                "title over",
                |a| a.title = text(LONG + 1),
                Err(TooLong("title", LONG)),
            ),
            (
                "author over",
                |a| a.author = text(SHORT + 1),
                Err(TooLong("author", SHORT)),
            ),
        ]
    }

    fn result_cases() -> Vec<Edit<BuildResult>> {
        vec![
            (
                "commit empty",
                |r| r.commit = support::raw_commit(&[]),
                Err(BadCommit(0)),
            ),
            (
                "platform over",
                |r| r.platform = text(SHORT + 1),
                Err(TooLong("platform", SHORT)),
            ),
            (
                "step name over",
                |r| r.steps[0].name = text(SHORT + 1),
                Err(TooLong("step name", SHORT)),
            ),
            (
                "command at max",
                |r| r.steps[0].command = text(LONG),
                Ok(()),
            ),
            (
                "command over",
                |r| r.steps[0].command = text(LONG + 1),
                Err(TooLong("command", LONG)),
            ),
            (
                "steps over",
                |r| r.steps = vec![r.steps[0].clone(); LIST + 1],
                Err(TooMany("steps", LIST)),
            ),
            (
                "artifact name over",
                |r| r.artifacts[0].name = text(LONG + 1),
                Err(TooLong("artifact name", LONG)),
            ),
            (
                "artifacts over",
                |r| r.artifacts = vec![r.artifacts[0].clone(); LIST + 1],
                Err(TooMany("artifacts", LIST)),
            ),
            (
                "metric key over",
                |r| _ = r.metrics.insert(text(SHORT + 1), 0.0),
                Err(TooLong("metric", SHORT)),
            ),
            (
                "metrics at max",
                |r| r.metrics = (0..LIST).map(|i| (i.to_string(), 0.0)).collect(),
                Ok(()),
            ),
            (
                "metrics over",
                |r| r.metrics = (0..=LIST).map(|i| (i.to_string(), 0.0)).collect(),
                Err(TooMany("metrics", LIST)),
            ),
            (
                "metric NaN",
                |r| _ = r.metrics.insert("coverage".into(), f64::NAN),
                Err(InvalidBody::NotFinite("metric value")),
            ),
            (
                "metric infinite",
                |r| _ = r.metrics.insert("coverage".into(), f64::NEG_INFINITY),
                Err(InvalidBody::NotFinite("metric value")),
            ),
            (
                "environment key over",
                |r| _ = r.environment.insert(text(SHORT + 1), String::new()),
                Err(TooLong("environment key", SHORT)),
            ),
            (
                "environment value over",
                |r| _ = r.environment.insert("k".into(), text(LONG + 1)),
                Err(TooLong("environment value", LONG)),
            ),
            (
                "environment over",
                |r| r.environment = (0..=LIST).map(|i| (i.to_string(), String::new())).collect(),
                Err(TooMany("environment", LIST)),
            ),
            ("error at max", |r| r.error = Some(text(LONG)), Ok(())),
            (
                "error over",
                |r| r.error = Some(text(LONG + 1)),
                Err(TooLong("error", LONG)),
            ),
        ]
    }

    fn force_cases() -> Vec<Edit<ForceBuild>> {
        vec![
            (
                "target commit bad",
                |f| f.target = ForceTarget::Commit(support::raw_commit(&[1; 33])),
                Err(BadCommit(33)),
            ),
            (
                "target branch over",
                |f| f.target = ForceTarget::Branch(text(SHORT + 1)),
                Err(TooLong("branch", SHORT)),
            ),
            (
                "platforms over",
                |f| f.platforms = texts(LIST + 1),
                Err(TooMany("platforms", LIST)),
            ),
            (
                "reason over",
                |f| f.reason = text(LONG + 1),
                Err(TooLong("reason", LONG)),
            ),
        ]
    }

    fn pull_cases() -> Vec<Edit<PullAnnouncement>> {
        vec![
            ("number one", |p| p.number = 1, Ok(())),
            ("number zero", |p| p.number = 0, Err(Empty("number"))),
            ("base at max", |p| p.base = text(SHORT), Ok(())),
            (
                "base over",
                |p| p.base = text(SHORT + 1),
                Err(TooLong("base", SHORT)),
            ),
            (
                "commit short",
                |p| p.commit = support::raw_commit(&[1; 19]),
                Err(BadCommit(19)),
            ),
            (
                "parents at max",
                |p| p.parents = vec![support::commit(); COMMIT_PARENTS_MAX],
                Ok(()),
            ),
            (
                "parents over",
                |p| p.parents = vec![support::commit(); COMMIT_PARENTS_MAX + 1],
                Err(TooMany("parents", COMMIT_PARENTS_MAX)),
            ),
            (
                "parent bad",
                |p| p.parents = vec![support::raw_commit(&[1; 21])],
                Err(BadCommit(21)),
            ),
            ("title at max", |p| p.title = text(LONG), Ok(())),
            (
                "title over",
                |p| p.title = text(LONG + 1),
                Err(TooLong("title", LONG)),
            ),
            ("author at max", |p| p.author = text(SHORT), Ok(())),
            (
                "author over",
                |p| p.author = text(SHORT + 1),
                Err(TooLong("author", SHORT)),
            ),
        ]
    }

    fn run<T: Clone>(base: T, cases: Vec<Edit<T>>, wrap: fn(T) -> Body) {
        for (name, edit, expected) in cases {
            let mut value = base.clone();
            edit(&mut value);
            assert_eq!(check(wrap(value)), expected, "{name}");
        }
    }

    #[test]
    fn project_limits() {
        run(support::project(), project_cases(), Body::Project);
    }

    #[test]
    fn announcement_limits() {
        run(
            support::announcement(),
            announcement_cases(),
            Body::Announce,
        );
    }

    #[test]
    fn pull_limits() {
        run(support::pull(), pull_cases(), Body::Pull);
    }

    #[test]
    fn pull_closed_limits() {
        let closed = |number| {
            Body::PullClosed(PullClosed {
                project: support::project_id(),
                number,
            })
        };
        assert_eq!(check(closed(1)), Ok(()));
        assert_eq!(check(closed(u64::MAX)), Ok(()));
        assert_eq!(check(closed(0)), Err(Empty("number")));
    }

    #[test]
    fn result_limits() {
        run(support::result(), result_cases(), Body::Result);
    }

    #[test]
    fn threshold_limits() {
        let with = |list| {
            Body::Setting(ProjectSetting {
                project: support::project_id(),
                setting: Setting::Thresholds(list),
            })
        };
        let one = |metric: String, value| Threshold {
            metric,
            rule: ThresholdRule::DropsBy(value),
        };
        let max = buildmesh_protocol::THRESHOLDS_MAX;
        assert_eq!(check(with(vec![])), Ok(()));
        assert_eq!(check(with(vec![one(text(SHORT), 1.0); max])), Ok(()));
        assert_eq!(
            check(with(vec![one("c".into(), 1.0); max + 1])),
            Err(TooMany("thresholds", max))
        );
        assert_eq!(
            check(with(vec![one(text(SHORT + 1), 1.0)])),
            Err(TooLong("metric", SHORT))
        );
        assert_eq!(
            check(with(vec![one("c".into(), f64::NAN)])),
            Err(InvalidBody::NotFinite("threshold"))
        );
        assert_eq!(
            check(with(vec![one("c".into(), -1.0)])),
            Err(InvalidBody::Negative("threshold amount"))
        );
        let below = Threshold {
            metric: "c".into(),
            rule: ThresholdRule::Below(-1.0),
        };
        assert_eq!(check(with(vec![below])), Ok(()), "a level may be negative");
    }

    #[test]
    fn tested_result_limits() {
        let tested = |result| {
            Body::Tested(TestedResult {
                result,
                tests: support::tests(),
            })
        };
        run(support::result(), result_cases(), tested);
        let with = |tests| {
            Body::Tested(TestedResult {
                result: support::result(),
                tests,
            })
        };
        let max = buildmesh_protocol::FAILING_TESTS_MAX;
        let failing = |n, len| TestSummary {
            failing: vec![text(len); n],
            ..support::tests()
        };
        assert_eq!(check(with(failing(max, SHORT))), Ok(()));
        assert_eq!(
            check(with(failing(max + 1, 1))),
            Err(TooMany("failing tests", max))
        );
        assert_eq!(
            check(with(failing(1, SHORT + 1))),
            Err(TooLong("test name", SHORT))
        );
        let source = TestSummary {
            source: text(SHORT + 1),
            ..support::tests()
        };
        assert_eq!(check(with(source)), Err(TooLong("test source", SHORT)));
    }

    /// An attested result is checked as a tested one: its result, and its
    /// tests when it has some.
    #[test]
    fn attested_result_limits() {
        fn attested(result: BuildResult, tests: Option<TestSummary>) -> Body {
            Body::Attested(AttestedResult {
                result,
                tests,
                attestation: BlobHash::of(b"attestation"),
            })
        }
        run(support::result(), result_cases(), |r| attested(r, None));
        run(support::result(), result_cases(), |r| {
            attested(r, Some(support::tests()))
        });
        let with = |tests| attested(support::result(), Some(tests));
        let max = buildmesh_protocol::FAILING_TESTS_MAX;
        let failing = |n, len| TestSummary {
            failing: vec![text(len); n],
            ..support::tests()
        };
        assert_eq!(check(with(failing(max, SHORT))), Ok(()));
        assert_eq!(
            check(with(failing(max + 1, 1))),
            Err(TooMany("failing tests", max))
        );
        assert_eq!(
            check(with(failing(1, SHORT + 1))),
            Err(TooLong("test name", SHORT))
        );
    }

    #[test]
    fn force_limits() {
        let base = ForceBuild {
            project: support::project_id(),
            target: ForceTarget::Commit(support::commit()),
            platforms: vec![],
            reason: String::new(),
        };
        run(base, force_cases(), Body::Force);
    }

    #[test]
    fn claim_commit_ids_are_20_or_32_bytes() {
        for len in [0, 1, 19, 20, 21, 31, 32, 33, 40, 64] {
            let claim = Claim {
                project: support::project_id(),
                commit: support::raw_commit(&vec![7; len]),
                platform: "linux".into(),
                lease_expires: Timestamp(0),
            };
            let expected = if len == 20 || len == 32 {
                Ok(())
            } else {
                Err(BadCommit(len))
            };
            assert_eq!(check(Body::Claim(claim)), expected, "{len}");
        }
        let claim = Claim {
            project: support::project_id(),
            commit: support::commit(),
            platform: text(SHORT + 1),
            lease_expires: Timestamp(0),
        };
        assert_eq!(check(Body::Claim(claim)), Err(TooLong("platform", SHORT)));
    }
}
