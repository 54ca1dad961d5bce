//! Bare mirrors of real repositories made in temp dirs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use buildmesh_protocol::{CommitId, Timestamp};
use buildmesh_runner::{Cancel, Mirror, MirrorError};
use std::os::unix::fs::PermissionsExt;
use support::{Source, files_under};

#[test]
fn a_new_commit_is_fetched_and_an_old_one_checks_out_exactly() {
    let source = Source::new();
    let first = source.commit(&[("a.txt", "one"), ("dir/b.txt", "bee")], &[], "first");
    let root = tempfile::tempdir().unwrap();
    let mirror = Mirror::open_or_create(root.path(), &source.url()).unwrap();
    assert!(!mirror.has_commit(&first));
    mirror.fetch(&Cancel::new()).unwrap();
    assert!(mirror.has_commit(&first));

    let second = source.commit(
        &[("c.txt", "sea"), ("a.txt", "two")],
        &["dir/b.txt"],
        "second",
    );
    assert!(!mirror.has_commit(&second));
    // A second handle on the same URL is the same mirror.
    let again = Mirror::open_or_create(root.path(), &source.url()).unwrap();
    assert_eq!(again.path(), mirror.path());
    again.fetch(&Cancel::new()).unwrap();
    assert!(mirror.has_commit(&second));

    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("old");
    mirror.checkout(&first, &dest).unwrap();
    assert_eq!(files_under(&dest), ["a.txt", "dir/b.txt"]);
    assert_eq!(std::fs::read_to_string(dest.join("a.txt")).unwrap(), "one");
    let dest = work.path().join("new");
    mirror.checkout(&second, &dest).unwrap();
    assert_eq!(files_under(&dest), ["a.txt", "c.txt"]);
    assert_eq!(std::fs::read_to_string(dest.join("a.txt")).unwrap(), "two");
}

#[test]
fn checkout_keeps_modes_and_links_and_shares_nothing() {
    let source = Source::new();
    let script = source.dir.path().join("run.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("run.sh", source.dir.path().join("link")).unwrap();
    let commit = source.commit_work_tree("script");
    let root = tempfile::tempdir().unwrap();
    let mirror = Mirror::open_or_create(root.path(), &format!("file://{}", source.url())).unwrap();
    mirror.fetch(&Cancel::new()).unwrap();
    let dest = tempfile::tempdir().unwrap();
    mirror.checkout(&commit, dest.path()).unwrap();
    let mode = std::fs::metadata(dest.path().join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "executable bit kept: {mode:o}");
    assert_eq!(
        std::fs::read_link(dest.path().join("link"))
            .unwrap()
            .to_str(),
        Some("run.sh")
    );
    assert!(!dest.path().join(".git").exists());
}

#[test]
fn files_are_read_at_a_commit_without_a_checkout() {
    let source = Source::new();
    let first = source.commit(&[(".buildmesh.toml", "old")], &[], "first");
    let second = source.commit(&[(".buildmesh.toml", "new")], &[], "second");
    let root = tempfile::tempdir().unwrap();
    let mirror = Mirror::open_or_create(root.path(), &source.url()).unwrap();
    mirror.fetch(&Cancel::new()).unwrap();
    let read = |c: &CommitId| mirror.read_file_at(c, ".buildmesh.toml", 100).unwrap();
    assert_eq!(read(&first).as_deref(), Some(&b"old"[..]));
    assert_eq!(read(&second).as_deref(), Some(&b"new"[..]));
    assert_eq!(mirror.read_file_at(&first, "missing", 100).unwrap(), None);
    let too_big = mirror
        .read_file_at(&first, ".buildmesh.toml", 2)
        .unwrap_err();
    assert!(
        matches!(too_big, MirrorError::FileTooLarge { bytes: 3, .. }),
        "{too_big}"
    );
}

#[test]
fn branch_heads_describe_commits_for_announcements() {
    let source = Source::new();
    let first = source.commit(&[("a", "1")], &[], "First line\n\nbody");
    let second = source.commit(&[("a", "2")], &[], "Second");
    let head = source
        .repo
        .find_commit(git2::Oid::from_bytes(second.as_bytes()).unwrap())
        .unwrap();
    source.repo.branch("feature", &head, false).unwrap();
    let root = tempfile::tempdir().unwrap();
    let mirror = Mirror::open_or_create(root.path(), &source.url()).unwrap();
    mirror.fetch(&Cancel::new()).unwrap();

    let heads = mirror.branch_heads().unwrap();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(heads.iter().any(|h| h.branch == "feature"));
    assert!(heads.iter().all(|h| h.head.commit == second));
    let info = &heads[0].head;
    assert_eq!(info.parents, std::slice::from_ref(&first));
    assert_eq!(info.title, "Second");
    assert_eq!(info.author, "Alice <alice@example.invalid>");
    assert_eq!(info.committed_at, Timestamp(1_700_000_000_000));
    assert_eq!(mirror.commit_info(&first).unwrap().title, "First line");

    // A branch deleted at the source disappears from the mirror.
    source
        .repo
        .find_branch("feature", git2::BranchType::Local)
        .unwrap()
        .delete()
        .unwrap();
    mirror.fetch(&Cancel::new()).unwrap();
    let heads = mirror.branch_heads().unwrap();
    assert!(heads.iter().all(|h| h.branch != "feature"), "{heads:?}");
}

#[test]
fn an_unknown_commit_or_repository_is_an_error() {
    let source = Source::new();
    source.commit(&[("a", "1")], &[], "first");
    let root = tempfile::tempdir().unwrap();
    let mirror = Mirror::open_or_create(root.path(), &source.url()).unwrap();
    mirror.fetch(&Cancel::new()).unwrap();
    let unknown: CommitId = "ab".repeat(20).parse().unwrap();
    let error = mirror.checkout(&unknown, root.path()).unwrap_err();
    assert!(error.to_string().contains("is not in"), "{error}");

    let nowhere = root.path().join("no-such-repository");
    let mirror = Mirror::open_or_create(root.path(), nowhere.to_str().unwrap()).unwrap();
    let error = mirror.fetch(&Cancel::new()).unwrap_err();
    assert!(matches!(error, MirrorError::Fetch { .. }), "{error}");
}
