//! Pull requests (docs/protocol.md §6.2): a head is work only while its
//! project builds pull requests, never a row of a branch, and only the
//! owner's latest setting counts.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod fixtures;

use buildmesh_core::log::{self, ChainWriter, MemStore};
use buildmesh_core::view::{
    Acceptance, CellStatus, LiveLeases, MatrixOptions, ProjectLog, Work, matrix, pull, pulls,
    same_repository, work,
};
use buildmesh_protocol::{
    Body, BuilderPolicy, CommitId, Outcome, ProjectId, ProjectSetting, PublicKey, PullAnnouncement,
    PullClosed, Setting, Timestamp,
};
use fixtures::{announce, commit, declaration, writer};
use std::collections::BTreeSet;

fn pull_body(project: ProjectId, number: u64, n: u8) -> Body {
    Body::Pull(PullAnnouncement {
        project,
        number,
        base: "main".into(),
        commit: commit(n),
        parents: vec![commit(1)],
        title: format!("head {n}"),
        author: "octocat".into(),
        committed_at: Timestamp(0),
    })
}

fn closed(project: ProjectId, number: u64) -> Body {
    Body::PullClosed(PullClosed { project, number })
}

fn setting(project: ProjectId, on: bool) -> Body {
    Body::Setting(ProjectSetting {
        project,
        setting: Setting::PullRequests(on),
    })
}

struct World {
    store: MemStore,
    maintainer: ChainWriter,
    owner: PublicKey,
    project: ProjectId,
    at: u64,
}

impl World {
    /// A project on `linux` built by anyone, commit 1 announced on main.
    fn new() -> World {
        let maintainer = writer("maintainer");
        let owner = maintainer.author();
        let mut world = World {
            store: MemStore::default(),
            maintainer,
            owner,
            project: ProjectId::derive(&owner, "demo"),
            at: 0,
        };
        world.put(declaration(&["linux"], BuilderPolicy::Open, 1));
        let main = announce(world.project, 1);
        world.put(main);
        world
    }

    fn put(&mut self, body: Body) {
        self.at += 1;
        let entry = self.maintainer.write(Timestamp(self.at), body).unwrap();
        log::insert(&mut self.store, entry).unwrap();
    }

    fn put_by(&mut self, writer: &mut ChainWriter, body: Body) {
        self.at += 1;
        let entry = writer.write(Timestamp(self.at), body).unwrap();
        log::insert(&mut self.store, entry).unwrap();
    }

    fn work(&self, acceptance: &Acceptance) -> Work {
        let linux: BTreeSet<String> = ["linux".to_string()].into();
        work(
            &self.store,
            &self.owner,
            &linux,
            acceptance,
            50,
            &LiveLeases::default(),
        )
        .unwrap()
    }

    fn wanted(&self) -> Vec<CommitId> {
        self.wanted_with(&Acceptance::only(self.project))
    }

    fn wanted_with(&self, acceptance: &Acceptance) -> Vec<CommitId> {
        self.work(acceptance)
            .wanted
            .iter()
            .map(|c| c.commit.clone())
            .collect()
    }

    fn log(&self) -> ProjectLog {
        ProjectLog::load(&self.store, &self.project, 50).unwrap()
    }
}

#[test]
fn a_pull_head_is_work_only_while_the_project_builds_pull_requests() {
    let mut world = World::new();
    world.put(pull_body(world.project, 7, 70));
    assert_eq!(world.wanted(), [commit(1)], "off by default");
    let watch = &world.work(&Acceptance::only(world.project)).watches[0];
    assert!(!watch.pull_requests);
    assert!(!watch.wants_pull(&watch.repository.clone(), 7, &commit(71)));

    world.put(setting(world.project, true));
    assert_eq!(world.wanted(), [commit(1), commit(70)]);
    let watch = &world.work(&Acceptance::only(world.project)).watches[0];
    assert!(watch.pull_requests);
    assert!(watch.announced_pulls.contains(&(7, commit(70))));
    let repository = watch.repository.clone();
    assert!(!watch.wants_pull(&repository, 7, &commit(70)), "announced");
    assert!(watch.wants_pull(&repository, 7, &commit(71)));
    assert!(!watch.wants_pull("https://example.invalid/other", 7, &commit(71)));

    world.put(setting(world.project, false));
    assert_eq!(world.wanted(), [commit(1)], "the latest setting wins");
}

#[test]
fn only_the_latest_head_of_each_pull_request_is_wanted() {
    let mut world = World::new();
    world.put(setting(world.project, true));
    world.put(pull_body(world.project, 7, 70));
    world.put(pull_body(world.project, 8, 80));
    world.put(pull_body(world.project, 7, 71));
    assert_eq!(world.wanted(), [commit(1), commit(80), commit(71)]);
}

#[test]
fn a_donor_can_refuse_pull_requests_and_an_unsandboxed_node_never_builds_them() {
    let mut world = World::new();
    world.put(setting(world.project, true));
    world.put(pull_body(world.project, 7, 70));
    let refusing = Acceptance {
        no_pull_requests: true,
        ..Acceptance::only(world.project)
    };
    assert_eq!(world.wanted_with(&refusing), [commit(1)]);
    let unsandboxed = Acceptance {
        unsandboxed_only: Some([world.owner].into()),
        ..Acceptance::only(world.project)
    };
    assert_eq!(world.wanted_with(&unsandboxed), [commit(1)]);
    assert!(
        !world
            .wanted_with(&Acceptance::default())
            .contains(&commit(70))
    );
}

#[test]
fn settings_and_pulls_by_others_do_not_count() {
    let mut world = World::new();
    let mut stranger = writer("stranger");
    // The stranger needs a role for its entries to be stored at all.
    let own = declaration(&["linux"], BuilderPolicy::Open, 1);
    world.put_by(&mut stranger, own);
    let project = world.project;
    world.put_by(&mut stranger, setting(project, true));
    assert_eq!(world.wanted(), [commit(1)], "not the owner's setting");
    world.put(setting(project, true));
    world.put_by(&mut stranger, pull_body(project, 9, 90));
    assert_eq!(world.wanted(), [commit(1)], "not a trusted announcer");
    assert!(
        pulls(&world.log(), Timestamp(100), 10)
            .unwrap()
            .pulls
            .is_empty()
    );
}

#[test]
fn a_pull_head_is_never_on_a_branch_row_and_shows_on_its_own_page() {
    let mut world = World::new();
    world.put(setting(world.project, true));
    world.put(pull_body(world.project, 7, 70));
    world.put(pull_body(world.project, 7, 71));
    let mut builder = writer("builder");
    let project = world.project;
    world.put_by(
        &mut builder,
        fixtures::result(project, 71, "linux", Outcome::Failed),
    );

    let log = world.log();
    let now = Timestamp(1_000);
    let rows: Vec<&CommitId> = matrix(&log, now, &MatrixOptions::default())
        .unwrap()
        .rows
        .iter()
        .map(|r| r.commit)
        .collect();
    assert_eq!(rows, [&commit(1)], "not on the matrix");
    let main = MatrixOptions {
        branch: Some("main".into()),
        ..MatrixOptions::default()
    };
    assert_eq!(matrix(&log, now, &main).unwrap().rows.len(), 1);

    let listed = pulls(&log, now, 10).unwrap();
    assert!(listed.enabled);
    assert_eq!(listed.pulls.len(), 1);
    let seven = &listed.pulls[0];
    assert_eq!((seven.number, seven.head), (7, &commit(71)));
    assert_eq!((seven.base, seven.author), ("main", "octocat"));
    assert_eq!(seven.status, CellStatus::Failed);

    let one = ProjectLog::load_pull(&world.store, &project, 7, 50).unwrap();
    let page = pull(&one, 7, now).unwrap();
    let heads: Vec<&CommitId> = page.heads.iter().map(|h| h.commit).collect();
    assert_eq!(heads, [&commit(71), &commit(70)], "newest first");
    assert_eq!(page.heads[0].cells[0].status, CellStatus::Failed);
    assert_eq!(page.heads[1].cells[0].status, CellStatus::Pending);
    assert!(pull(&one, 8, now).is_none());
    let none = ProjectLog::load_pull(&world.store, &project, 8, 50).unwrap();
    assert!(pull(&none, 8, now).is_none());
}

#[test]
fn a_closed_pull_request_is_not_work_until_a_newer_head_reopens_it() {
    let mut world = World::new();
    let project = world.project;
    world.put(setting(project, true));
    world.put(pull_body(project, 7, 70));
    world.put(pull_body(project, 8, 80));
    assert_eq!(world.wanted(), [commit(1), commit(70), commit(80)]);
    let open = |world: &World| -> Vec<(u64, bool)> {
        let log = world.log();
        let listed = pulls(&log, Timestamp(1_000), 10).unwrap();
        listed.pulls.iter().map(|p| (p.number, p.open)).collect()
    };
    let page_open = |world: &World| {
        let one = ProjectLog::load_pull(&world.store, &project, 7, 50).unwrap();
        pull(&one, 7, Timestamp(1_000)).unwrap().open
    };
    assert_eq!(open(&world), [(8, true), (7, true)]);
    assert!(page_open(&world));
    let watch = world.work(&Acceptance::only(project)).watches[0].clone();
    assert!(watch.wants_close(&watch.repository, 7));
    assert!(!watch.wants_close(&watch.repository, 9), "never announced");
    assert!(!watch.wants_close("https://elsewhere.invalid/x.git", 7));

    world.put(closed(project, 7));
    assert_eq!(world.wanted(), [commit(1), commit(80)], "closed: not work");
    assert_eq!(open(&world), [(8, true), (7, false)], "open ones first");
    assert!(!page_open(&world));
    let watch = world.work(&Acceptance::only(project)).watches[0].clone();
    assert!(!watch.wants_close(&watch.repository, 7), "already closed");
    assert!(
        watch.wants_pull(&watch.repository, 7, &commit(70)),
        "reopening with the same head announces it again"
    );

    // A close by someone who may not announce counts for nothing.
    let mut stranger = writer("stranger");
    world.put_by(
        &mut stranger,
        declaration(&["linux"], BuilderPolicy::Open, 1),
    );
    world.put_by(&mut stranger, closed(project, 8));
    assert_eq!(open(&world), [(8, true), (7, false)]);

    // Reopened: a head announced after the close, even the same one.
    world.put(pull_body(project, 7, 70));
    assert_eq!(world.wanted(), [commit(1), commit(80), commit(70)]);
    assert_eq!(open(&world), [(7, true), (8, true)]);
    assert!(page_open(&world));
}

#[test]
fn repositories_match_across_the_forms_forges_write() {
    let declared = "https://github.com/Owner/Repo.git";
    for same in [
        "https://github.com/Owner/Repo",
        "https://github.com/Owner/Repo/",
        "http://GitHub.com/Owner/Repo.git",
        "git://github.com/Owner/Repo",
        "https://user@github.com/Owner/Repo.git",
    ] {
        assert!(same_repository(declared, same), "{same}");
    }
    for other in [
        "https://github.com/owner/repo",
        "https://github.com/Owner/Repo2",
        "https://gitlab.com/Owner/Repo",
        "",
    ] {
        assert!(!same_repository(declared, other), "{other}");
    }
    assert!(same_repository(
        "/srv/git/demo.git",
        "file:///srv/git/demo.git"
    ));
    assert!(same_repository("/srv/git/demo.git", "/srv/git/demo"));
    assert!(!same_repository("/srv/git/demo.git", "/srv/git/other.git"));
    assert!(!same_repository("", ""));
}
