//! Who may write to the log and how much (docs/protocol.md §6.1): roles,
//! quotas, and entries held aside until their author's role is known.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod fixtures;

use buildmesh_core::log::{
    self, ASIDE_MS, ASIDE_PER_AUTHOR_MAX, AUTHOR_BYTES_MAX, AUTHOR_DECLARATIONS_MAX,
    AUTHOR_ENTRIES_MAX, Aside, ChainStore, EntryStore, Ingested, MemStore, Quota, Rejected, Usage,
    WriteBatch,
};
use buildmesh_protocol::{
    Body, BuilderPolicy, Entry, EntryContent, EntryId, ProjectId, Role, Timestamp, TrustChange,
};
use ed25519_dalek::SigningKey;
use fixtures::{NOW, PLATFORMS, announce, claim, declaration, seed_of, writer};
use proptest::prelude::*;

fn trust(project: ProjectId, name: &str, role: Role) -> Body {
    Body::Trust(TrustChange {
        project,
        subject: writer(name).author(),
        role,
    })
}

fn revoke(project: ProjectId, name: &str) -> Body {
    Body::Revoke(TrustChange {
        project,
        subject: writer(name).author(),
        role: Role::Builder,
    })
}

/// `owner` declares "demo" with `builders`; returns its id and the entry.
fn declare(owner: &mut log::ChainWriter, builders: BuilderPolicy) -> (ProjectId, Entry) {
    let entry = owner
        .write(Timestamp(1), declaration(&PLATFORMS, builders, 1))
        .unwrap();
    (ProjectId::derive(&owner.author(), "demo"), entry)
}

fn ingest(store: &mut MemStore, entry: &Entry) -> Ingested {
    log::insert(store, entry.clone()).unwrap()
}

const APPLIED: Ingested = Ingested::Applied { linked: 1 };
const NO_ROLE: Ingested = Ingested::Rejected(Rejected::NoRole);

#[test]
fn a_stranger_s_entries_are_refused_and_leave_no_trace() {
    let mut store = MemStore::default();
    let mut alice = writer("alice");
    let (project, declared) = declare(&mut alice, BuilderPolicy::Only(Vec::new()));
    ingest(&mut store, &declared);
    let before = store.clone();
    let mut eve = writer("eve");
    for n in 0..5 {
        let entry = eve.write(Timestamp(2), announce(project, n)).unwrap();
        assert_eq!(ingest(&mut store, &entry), NO_ROLE);
        let claimed = eve.write(Timestamp(3), claim(project, n, PLATFORMS[0], NOW));
        assert_eq!(ingest(&mut store, &claimed.unwrap()), NO_ROLE);
    }
    assert!(store.same_contents(&before), "nothing of eve's is stored");
    assert_eq!(store.version(&eve.author()).unwrap(), 0);
}

#[test]
fn a_declaration_names_its_owner_announcers_and_builders() {
    let mut store = MemStore::default();
    let mut alice = writer("alice");
    let body = Body::Project(buildmesh_protocol::ProjectDeclaration {
        name: "demo".into(),
        repository: "https://example.invalid/demo.git".into(),
        branches: vec!["main".into()],
        platforms: vec![PLATFORMS[0].into()],
        announcers: vec![writer("xavier").author()],
        builders: BuilderPolicy::Only(vec![writer("yolanda").author()]),
        builds_per_cell: 1,
    });
    let declared = alice.write(Timestamp(1), body).unwrap();
    let project = ProjectId::derive(&alice.author(), "demo");
    assert_eq!(ingest(&mut store, &declared), APPLIED, "anyone may declare");
    let by = |name: &str, body: Body| writer(name).write(Timestamp(2), body).unwrap();
    let announced = alice.write(Timestamp(2), announce(project, 0)).unwrap();
    assert_eq!(ingest(&mut store, &announced), APPLIED, "the owner");
    assert_eq!(
        ingest(&mut store, &by("xavier", announce(project, 1))),
        APPLIED
    );
    let claimed = claim(project, 1, PLATFORMS[0], NOW);
    assert_eq!(ingest(&mut store, &by("yolanda", claimed.clone())), APPLIED);
    assert_eq!(ingest(&mut store, &by("zack", claimed)), NO_ROLE);
}

#[test]
fn a_trust_entry_gives_a_role_and_a_revocation_takes_no_entry_back() {
    let mut store = MemStore::default();
    let mut alice = writer("alice");
    let (project, declared) = declare(&mut alice, BuilderPolicy::Only(Vec::new()));
    ingest(&mut store, &declared);
    let mut zack = writer("zack");
    let first = zack.write(Timestamp(2), claim(project, 0, PLATFORMS[0], NOW));
    let first = first.unwrap();
    assert_eq!(ingest(&mut store, &first), NO_ROLE);
    let trusted = alice.write(Timestamp(3), trust(project, "zack", Role::Builder));
    assert_eq!(ingest(&mut store, &trusted.unwrap()), APPLIED);
    assert_eq!(
        ingest(&mut store, &first),
        APPLIED,
        "refused earlier, taken now"
    );
    let revoked = alice.write(Timestamp(4), revoke(project, "zack")).unwrap();
    assert_eq!(ingest(&mut store, &revoked), APPLIED);
    let later = zack.write(Timestamp(5), claim(project, 1, PLATFORMS[0], NOW));
    assert_eq!(
        ingest(&mut store, &later.unwrap()),
        APPLIED,
        "roles only grow: a revocation changes views, not what is stored"
    );
}

#[test]
fn an_open_project_takes_claims_and_results_from_anyone_and_nothing_else() {
    let mut store = MemStore::default();
    let mut alice = writer("alice");
    let (project, declared) = declare(&mut alice, BuilderPolicy::Open);
    let mut zack = writer("zack");
    let early = zack.write(Timestamp(2), claim(project, 0, PLATFORMS[0], NOW));
    let early = early.unwrap();
    assert_eq!(
        ingest(&mut store, &early),
        NO_ROLE,
        "the project is not held yet"
    );
    ingest(&mut store, &declared);
    assert_eq!(ingest(&mut store, &early), APPLIED);
    let announced = zack.write(Timestamp(3), announce(project, 1)).unwrap();
    assert_eq!(ingest(&mut store, &announced), NO_ROLE);
}

#[test]
fn entries_held_aside_are_taken_when_their_role_arrives() {
    let mut store = MemStore::default();
    let mut aside = Aside::default();
    let mut alice = writer("alice");
    let (project, declared) = declare(&mut alice, BuilderPolicy::Only(Vec::new()));
    let offer = |store: &mut MemStore, aside: &mut Aside, now: Timestamp, entry: Entry| {
        let outcome = log::ingest(store, entry.clone()).unwrap();
        aside.settle(store, now, [(entry, outcome)]).unwrap()
    };
    offer(&mut store, &mut aside, NOW, declared);
    let mut zack = writer("zack");
    for n in 0..3 {
        let body = claim(project, n, PLATFORMS[0], NOW);
        let entry = zack.write(Timestamp(2), body).unwrap();
        assert!(offer(&mut store, &mut aside, NOW, entry).is_empty());
    }
    assert_eq!(
        (aside.len(), store.version(&zack.author()).unwrap()),
        (3, 0)
    );
    let trusted = alice.write(Timestamp(3), trust(project, "zack", Role::Builder));
    let taken = offer(&mut store, &mut aside, NOW, trusted.unwrap());
    assert_eq!(taken.len(), 3, "the three waiting claims are in");
    assert_eq!(
        (aside.len(), store.version(&zack.author()).unwrap()),
        (0, 3)
    );
}

#[test]
fn the_aside_buffer_is_bounded_per_author_and_in_time() {
    let mut aside = Aside::default();
    let mut eve = writer("eve");
    let project = ProjectId([9; 32]);
    let held = (0..ASIDE_PER_AUTHOR_MAX as u64 + 10)
        .filter(|n| {
            let entry = eve.write(Timestamp(*n), announce(project, 0)).unwrap();
            aside.hold(NOW, entry)
        })
        .count();
    assert_eq!(held, ASIDE_PER_AUTHOR_MAX);
    let other = writer("mallory").write(NOW, announce(project, 0)).unwrap();
    assert!(
        aside.hold(NOW, other),
        "one author's flood leaves room for others"
    );
    aside.expire(NOW.plus_ms(ASIDE_MS));
    assert!(aside.is_empty());
}

/// An entry by `name` at any `seq`, chained to nothing real: quotas are
/// checked before links.
fn at_seq(name: &str, seq: u64, body: Body) -> Entry {
    let content = EntryContent {
        author: writer(name).author(),
        seq,
        prev: EntryId([1; 32]),
        timestamp: Timestamp(1),
        body,
    };
    Entry::sign(&SigningKey::from_bytes(&seed_of(name)), content).unwrap()
}

#[test]
fn past_the_entry_quota_nothing_is_taken() {
    let (mut store, _) = fixtures::granted(&["alice"]);
    let project = ProjectId([1; 32]);
    let past = at_seq("alice", AUTHOR_ENTRIES_MAX + 1, announce(project, 0));
    assert_eq!(
        ingest(&mut store, &past),
        Ingested::Rejected(Rejected::OverQuota(Quota::Entries))
    );
}

#[test]
fn the_byte_quota_counts_the_linked_chain() {
    let (mut store, _) = fixtures::granted(&["alice"]);
    let mut alice = writer("alice");
    let first = alice
        .write(Timestamp(2), announce(ProjectId([1; 32]), 0))
        .unwrap();
    let room = first.wire_len() as u64 - 1;
    let nearly_full = Usage {
        bytes: AUTHOR_BYTES_MAX - room,
        declarations: 0,
    };
    store
        .apply(WriteBatch {
            usage: vec![(alice.author(), nearly_full)],
            ..WriteBatch::default()
        })
        .unwrap();
    assert_eq!(
        ingest(&mut store, &first),
        Ingested::Rejected(Rejected::OverQuota(Quota::Bytes))
    );
}

#[test]
fn declarations_are_bounded_and_out_of_order_entries_wait_near_the_quota() {
    let mut store = MemStore::default();
    let mut alice = writer("alice");
    let (project, declared) = declare(&mut alice, BuilderPolicy::Only(Vec::new()));
    let mut entries = vec![declared];
    for n in 1..AUTHOR_DECLARATIONS_MAX {
        let body = trust(project, &format!("builder-{n}"), Role::Builder);
        entries.push(alice.write(Timestamp(2), body).unwrap());
    }
    let head = entries.len() as u64;
    let outcomes = log::insert_batch(&mut store, entries).unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Ingested::Applied { .. }))
    );
    let one_more = alice.write(Timestamp(3), trust(project, "zack", Role::Builder));
    let one_more = one_more.unwrap();
    let then = alice.write(Timestamp(4), announce(project, 0)).unwrap();
    assert_eq!(
        ingest(&mut store, &then),
        Ingested::Rejected(Rejected::NearQuota {
            seq: head + 2,
            head
        }),
        "its gap could be a declaration past the quota"
    );
    assert_eq!(
        ingest(&mut store, &one_more),
        Ingested::Rejected(Rejected::OverQuota(Quota::Declarations))
    );
    assert_eq!(store.version(&alice.author()).unwrap(), head);
    // A second, different last declaration: past the quota, but it proves
    // a fork, so it is kept as evidence (unlinked) and the fork recorded.
    let last = store.at(&alice.author(), head).unwrap().remove(0).entry;
    let before_last = store.at(&alice.author(), head - 1).unwrap().remove(0).entry;
    let twin = EntryContent {
        author: alice.author(),
        seq: head,
        prev: before_last.id(),
        timestamp: Timestamp(9),
        body: trust(project, "twin", Role::Builder),
    };
    let twin = Entry::sign(&SigningKey::from_bytes(&seed_of("alice")), twin).unwrap();
    assert_ne!(twin.id(), last.id());
    assert!(matches!(ingest(&mut store, &twin), Ingested::Fork(_)));
    assert!(store.fork(&alice.author()).unwrap().is_some());
    assert!(!store.get(&twin.id()).unwrap().unwrap().linked);
}

/// A project whose owner trusts a builder late, the builder's claims, and
/// a stranger's announcements.
fn late_trust() -> (Vec<Entry>, usize, usize) {
    let mut alice = writer("alice");
    let (project, declared) = declare(&mut alice, BuilderPolicy::Only(Vec::new()));
    let mut dave = writer("dave");
    let mut eve = writer("eve");
    let mut entries = vec![declared];
    for n in 0..4 {
        entries.push(alice.write(Timestamp(2), announce(project, n)).unwrap());
        let body = claim(project, n, PLATFORMS[0], NOW);
        entries.push(dave.write(Timestamp(3), body).unwrap());
        entries.push(eve.write(Timestamp(4), announce(project, n)).unwrap());
    }
    let body = trust(project, "dave", Role::Builder);
    entries.push(alice.write(Timestamp(5), body).unwrap());
    (entries, 4, 4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// However the entries arrive, a node that holds aside what has no role
    /// yet ends with the same store: every entry of the builder trusted
    /// late, none of the stranger's.
    #[test]
    fn roles_give_the_same_log_in_any_order(seed in any::<u64>()) {
        let (entries, _, _) = late_trust();
        let mut order: Vec<usize> = (0..entries.len()).collect();
        let mut state = seed | 1;
        for i in (1..order.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let node = |order: &[usize]| {
            let (mut store, mut aside) = (MemStore::default(), Aside::default());
            for &i in order {
                let outcome = log::ingest(&mut store, entries[i].clone()).unwrap();
                aside.settle(&mut store, NOW, [(entries[i].clone(), outcome)]).unwrap();
            }
            store
        };
        let shuffled = node(&order);
        let in_order = node(&(0..entries.len()).collect::<Vec<_>>());
        prop_assert_eq!(shuffled.versions().unwrap(), in_order.versions().unwrap());
        prop_assert_eq!(shuffled.len().unwrap(), in_order.len().unwrap());
        let current = |s: &MemStore| format!("{s:?}").split("unflushed").next().unwrap_or_default().to_string();
        prop_assert_eq!(current(&shuffled), current(&in_order));
        prop_assert!(shuffled.same_contents(&in_order));
        let (dave, eve) = (writer("dave").author(), writer("eve").author());
        prop_assert_eq!(shuffled.version(&dave).unwrap(), 4);
        prop_assert!(shuffled.entries().all(|s| s.entry.author() != eve));
        prop_assert_eq!(shuffled.len().unwrap(), entries.len() as u64 - 4);
    }
}
