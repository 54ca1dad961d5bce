//! The service alone: the order of its actions (a claim is stored and
//! published before its build starts), a claim that cannot be written,
//! and which bids are heeded.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod fixtures;

use buildmesh_core::claim::CellKey;
use buildmesh_core::log::{self, ChainStore, ChainWriter, MemStore};
use buildmesh_core::replicator::{self, Verdict};
use buildmesh_core::service::{Action, Input, Notice, Service, ServiceConfig, Topic};
use buildmesh_core::view::{Acceptance, LiveLeases, Work, work};
use buildmesh_protocol::{
    Bid, Body, BuilderPolicy, BuilderRevocation, Outcome, ProjectDeclaration, ProjectId, PublicKey,
    SignedBid, Timestamp,
};
use ed25519_dalek::SigningKey;
use fixtures::{NOW, announce, claim, commit, renewal, seed_of, writer};
use std::collections::BTreeSet;
use std::sync::Arc;

const LINUX: &str = "linux-x86_64";

/// A node that is the only builder of alice's project, with commit 1
/// announced, and the node's work read from its log.
fn sole_builder() -> (Service<MemStore>, ProjectId) {
    let key = SigningKey::from_bytes(&seed_of("node"));
    let me = PublicKey::from(key.verifying_key());
    let mut alice = writer("alice");
    let project = ProjectId::derive(&alice.author(), "demo");
    let mut store = MemStore::default();
    let declaration = Body::Project(ProjectDeclaration {
        name: "demo".into(),
        repository: "https://example.invalid/demo.git".into(),
        branches: vec!["main".into()],
        platforms: vec![LINUX.into()],
        announcers: Vec::new(),
        builders: BuilderPolicy::Only(vec![me]),
        builds_per_cell: 1,
    });
    for (t, body) in [(1, declaration), (2, announce(project, 1))] {
        log::insert(&mut store, alice.write(Timestamp(NOW.0 - t), body).unwrap()).unwrap();
    }
    (service(key, store), project)
}

fn service(key: SigningKey, store: MemStore) -> Service<MemStore> {
    let config = ServiceConfig {
        platforms: BTreeSet::from([LINUX.to_string()]),
        ..ServiceConfig::default()
    };
    Service::new(config, key, store, 7, NOW).unwrap()
}

/// The work `service`'s log holds for it, on linux, for `project`.
fn work_of(service: &Service<MemStore>, project: ProjectId) -> Work {
    let platforms = BTreeSet::from([LINUX.to_string()]);
    let store = service.replicator().store();
    let accept = Acceptance::only(project);
    work(
        store,
        &service.me(),
        &platforms,
        &accept,
        50,
        &LiveLeases::default(),
    )
    .unwrap()
}

fn derive(service: &mut Service<MemStore>, project: ProjectId) {
    let found = work_of(service, project);
    service
        .handle(NOW, Input::WorkDerived(Arc::new(found)))
        .unwrap();
}

/// Issue 14: the claim is written, stored and published before the build
/// starts. Each action is looked at as the node would carry it out, in
/// order: when `StartBuild` comes, the claim must be in the store and
/// already handed to gossip.
#[test]
fn a_claim_is_stored_and_published_before_its_build_starts() {
    let (mut service, project) = sole_builder();
    derive(&mut service, project);
    service.handle(NOW, Input::Tick).unwrap();
    let (mut published, mut started) = (false, false);
    while let Some(action) = service.poll_action() {
        match action {
            Action::Net(replicator::Action::Publish { bytes }) => {
                let entry = buildmesh_protocol::Entry::from_wire(&bytes).unwrap();
                published |= matches!(entry.body(), Body::Claim(_));
            }
            Action::StartBuild { cell, repository } => {
                assert!(
                    published,
                    "the build started before its claim was published"
                );
                let claims = service.replicator().store().at(&service.me(), 1).unwrap();
                assert!(
                    matches!(claims[0].entry.body(), Body::Claim(_)),
                    "the claim is stored"
                );
                assert_eq!(
                    (cell.commit, repository.as_str()),
                    (commit(1), "https://example.invalid/demo.git")
                );
                started = true;
            }
            _ => {}
        }
    }
    assert!(started, "the only builder builds at once");
    assert_eq!(service.claimer().load(), 1);
}

/// A claim the log refuses (here: the node's key has no role, as its
/// project was never declared in its log) is not followed by its build;
/// the operator is told, and the slot is free again.
#[test]
fn a_claim_that_cannot_be_written_starts_no_build() {
    let (with_project, project) = sole_builder();
    let found = work_of(&with_project, project);
    // The same work, fed to the same key over an empty log.
    let mut service = service(
        SigningKey::from_bytes(&seed_of("node")),
        MemStore::default(),
    );
    service
        .handle(NOW, Input::WorkDerived(Arc::new(found)))
        .unwrap();
    service.handle(NOW, Input::Tick).unwrap();
    let actions: Vec<Action> = std::iter::from_fn(|| service.poll_action()).collect();
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::StartBuild { .. })),
        "{actions:?}"
    );
    let cell = CellKey {
        project,
        commit: commit(1),
        platform: LINUX.into(),
    };
    assert!(
        actions.contains(&Action::Notice(Notice::ClaimNotWritten(cell))),
        "{actions:?}"
    );
    assert_eq!(service.claimer().load(), 0);
}

/// Bids: one by a builder the project does not trust is ignored (anyone
/// can mint keys), one published by another key than its bidder's is
/// rejected, and one by the trusted builder is heeded and forwarded.
#[test]
fn only_trusted_bidders_are_heeded() {
    let (mut service, project) = sole_builder();
    derive(&mut service, project);
    while service.poll_action().is_some() {}
    let bid = |signer: &ChainWriter| Bid {
        bidder: signer.author(),
        at: NOW,
        project,
        round: 0,
        load: 0,
        commit: commit(1),
        platform: LINUX.into(),
    };
    let stranger = writer("mallory");
    let signed = SignedBid::sign(stranger.key(), bid(&stranger))
        .unwrap()
        .to_wire();
    let verdict = |service: &mut Service<MemStore>, source: PublicKey, bytes: Vec<u8>| {
        let input = Input::Gossiped {
            topic: Topic::Bids,
            from: source,
            source,
            message: vec![1],
            bytes,
        };
        service.handle(NOW, input).unwrap();
        std::iter::from_fn(|| service.poll_action())
            .find_map(|a| match a {
                Action::Net(replicator::Action::ReportGossip { verdict, .. }) => Some(verdict),
                _ => None,
            })
            .unwrap()
    };
    assert_eq!(
        verdict(&mut service, stranger.author(), signed.clone()),
        Verdict::Ignore
    );
    assert!(service.seen().is_empty(), "strangers are not remembered");
    let other = writer("eve").author();
    assert_eq!(verdict(&mut service, other, signed), Verdict::Reject);
    let me = ChainWriter::new(SigningKey::from_bytes(&seed_of("node")));
    let mine = SignedBid::sign(me.key(), bid(&me)).unwrap().to_wire();
    // Our own bid echoed back is valid and trusted (and the claimer
    // ignores it).
    assert_eq!(verdict(&mut service, me.author(), mine), Verdict::Accept);
}

fn declaration(name: &str, builders: BuilderPolicy) -> Body {
    Body::Project(ProjectDeclaration {
        name: name.into(),
        repository: format!("https://example.invalid/{name}.git"),
        branches: vec!["main".into()],
        platforms: vec![LINUX.into()],
        announcers: Vec::new(),
        builders,
        builds_per_cell: 1,
    })
}

/// Found by the review: the service held renewals by any key whose claim
/// the store held on the cell. Any key
/// with a role anywhere (mallory declares a project of her own, which
/// gives her one) can write a claim on someone else's cell, and the log
/// stores it; her renewals of it are then accepted, forwarded by gossip,
/// held among the live leases and handed to every peer that syncs, though
/// alice's project names only `node` as its builder. This is what lets a
/// stranger with a role fill `LEASES_MAX` and the sync hand-over (see the
/// next test).
#[test]
fn a_renewal_by_a_builder_the_project_does_not_trust_is_not_held() {
    let key = SigningKey::from_bytes(&seed_of("node"));
    let me = PublicKey::from(key.verifying_key());
    let mut alice = writer("alice");
    let mut mallory = writer("mallory");
    let project = ProjectId::derive(&alice.author(), "demo");
    let mut store = MemStore::default();
    let mut t = NOW.0 - 100;
    let mut put = |w: &mut ChainWriter, body| {
        t += 1;
        log::insert(&mut store, w.write(Timestamp(t), body).unwrap()).unwrap()
    };
    put(
        &mut alice,
        declaration("demo", BuilderPolicy::Only(vec![me])),
    );
    put(&mut alice, announce(project, 1));
    put(&mut mallory, declaration("mine", BuilderPolicy::Open));
    let stored = put(&mut mallory, claim(project, 1, LINUX, NOW.plus_ms(1_000)));
    assert!(
        matches!(stored, log::Ingested::Applied { .. }),
        "the log stores mallory's claim on alice's cell: {stored:?}"
    );

    let mut service = service(key, store);
    derive(&mut service, project);
    while service.poll_action().is_some() {}

    let signed = renewal(mallory.key(), project, 1, NOW, NOW.plus_ms(60 * 60 * 1000));
    let input = Input::Gossiped {
        topic: Topic::Renewals,
        from: mallory.author(),
        source: mallory.author(),
        message: vec![1],
        bytes: signed.to_wire(),
    };
    service.handle(NOW, input).unwrap();
    let verdict = std::iter::from_fn(|| service.poll_action())
        .find_map(|a| match a {
            Action::Net(replicator::Action::ReportGossip { verdict, .. }) => Some(verdict),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (verdict, service.leases().len()),
        (Verdict::Ignore, 0),
        "an untrusted builder's renewal was accepted and held"
    );
}

/// The simulator's seed 39 (with one more draw in `forks_request`), as
/// one node: the project's other builder's result settles the cell, so
/// the node does not build it; a fork is then proven against that
/// builder, its result stops counting in the views, and the node must
/// build the cell (its claimer used to keep counting the result).
#[test]
fn a_cell_settled_by_a_builder_proven_to_fork_is_built_again() {
    let (mut service, project, _, mallory) = settled_by_mallory();

    let mut twin = writer("mallory"); // the same key, signing seq 1 again
    let passed = fixtures::result(project, 1, LINUX, Outcome::Passed);
    let other = twin.write(NOW, passed).unwrap().to_wire();
    let later = NOW.plus_ms(60_000);
    service.submit(later, &[other.as_slice()]).unwrap();
    let store = service.replicator().store();
    assert!(store.fork(&mallory.author()).unwrap().is_some(), "proven");
    derive_at(&mut service, project, later);
    assert!(
        builds_by(&mut service, later.plus_ms(1_000)),
        "the cell is open again, and built here"
    );
}

/// The same for a revocation that keeps none of a builder's results (a
/// stolen key): its result settled the cell, the owner takes it back, and
/// the node must build the cell again.
#[test]
fn a_cell_settled_by_a_builder_revoked_keeping_nothing_is_built_again() {
    let (mut service, project, mut alice, mallory) = settled_by_mallory();

    let later = NOW.plus_ms(60_000);
    let revoke = Body::RevokeBuilder(BuilderRevocation {
        project,
        subject: mallory.author(),
        kept_through: 0,
    });
    let revocation = alice.write(later, revoke).unwrap().to_wire();
    service.submit(later, &[revocation.as_slice()]).unwrap();
    derive_at(&mut service, project, later);
    assert!(
        builds_by(&mut service, later.plus_ms(1_000)),
        "the cell is open again, and built here"
    );
}

/// A node that builds "demo" with mallory, whose failed result settled
/// commit 1 before the node built it: the service, the project, its owner
/// alice, and mallory.
fn settled_by_mallory() -> (Service<MemStore>, ProjectId, ChainWriter, ChainWriter) {
    let key = SigningKey::from_bytes(&seed_of("node"));
    let me = PublicKey::from(key.verifying_key());
    let mut alice = writer("alice");
    let mut mallory = writer("mallory");
    let project = ProjectId::derive(&alice.author(), "demo");
    let mut store = MemStore::default();
    let builders = BuilderPolicy::Only(vec![me, mallory.author()]);
    for (t, body) in [
        (3, declaration("demo", builders)),
        (2, announce(project, 1)),
    ] {
        log::insert(&mut store, alice.write(Timestamp(NOW.0 - t), body).unwrap()).unwrap();
    }
    let failed = fixtures::result(project, 1, LINUX, Outcome::Failed);
    let settled = mallory.write(Timestamp(NOW.0 - 1), failed).unwrap();
    log::insert(&mut store, settled).unwrap();
    let mut service = service(key, store);
    derive_at(&mut service, project, NOW);
    assert!(!builds_by(&mut service, NOW.plus_ms(60_000)), "settled");
    (service, project, alice, mallory)
}

fn derive_at(service: &mut Service<MemStore>, project: ProjectId, now: Timestamp) {
    let found = work_of(service, project);
    service
        .handle(now, Input::WorkDerived(Arc::new(found)))
        .unwrap();
}

/// Ticks the service on its timeouts until `until`: whether it started a
/// build.
fn builds_by(service: &mut Service<MemStore>, until: Timestamp) -> bool {
    let mut started = false;
    for _ in 0..10_000 {
        while let Some(action) = service.poll_action() {
            started |= matches!(action, Action::StartBuild { .. });
        }
        match service.poll_timeout() {
            Some(at) if at <= until => service.handle(at, Input::Tick).unwrap(),
            _ => return started,
        }
    }
    panic!("the service did not settle");
}

/// Whether a force build signed with a key would count is the service's
/// to say: the project must be declared here, and the key its owner's.
#[test]
fn a_force_counts_only_from_the_owner_of_a_declared_project() {
    use buildmesh_core::service::ForceRefused;
    let (service, project) = sole_builder();
    let alice = writer("alice").author();
    assert_eq!(service.may_force(&project, &alice).unwrap(), Ok(()));
    let mallory = writer("mallory").author();
    assert_eq!(
        service.may_force(&project, &mallory).unwrap(),
        Err(ForceRefused::NotOwner)
    );
    let unknown = ProjectId([9; 32]);
    assert_eq!(
        service.may_force(&unknown, &alice).unwrap(),
        Err(ForceRefused::NoProject)
    );
}
