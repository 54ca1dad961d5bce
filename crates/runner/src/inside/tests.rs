#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use std::io::Read;
use std::os::unix::fs::symlink;
use tempfile::TempDir;

/// A work dir holding one of everything, beside a directory outside it
/// (same file system, so hard links across work well).
struct Fixture {
    _root: TempDir,
    work: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("work");
    let outside = root.path().join("outside");
    std::fs::create_dir_all(work.join("dir/sub")).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), "do not publish").unwrap();
    std::fs::write(work.join("plain"), "plain text").unwrap();
    std::fs::write(work.join("dir/sub/deep"), "deep text").unwrap();
    std::fs::write(work.join("twice"), "two names").unwrap();
    std::fs::hard_link(work.join("twice"), work.join("dir/twice_again")).unwrap();
    std::fs::hard_link(outside.join("secret"), work.join("secret_hard")).unwrap();
    symlink(outside.join("secret"), work.join("secret_link")).unwrap();
    symlink("plain", work.join("plain_link")).unwrap();
    symlink(&outside, work.join("outdir")).unwrap();
    symlink("dir", work.join("dir_link")).unwrap();
    nix::unistd::mkfifo(&work.join("fifo"), Mode::S_IRWXU).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(work.join("socket")).unwrap();
    Fixture { _root: root, work }
}

/// Both ways of resolving: the kernel's (on Linux) and the walk.
fn both(work: &Path) -> [Inside; 2] {
    let kernel = Inside::open(work).unwrap();
    let mut walking = Inside::open(work).unwrap();
    walking.kernel_resolution = false;
    [kernel, walking]
}

fn read(inside: &Inside, path: &str) -> Result<String, Refusal> {
    let mut text = String::new();
    inside
        .open_file(Path::new(path))?
        .read_to_string(&mut text)
        .unwrap();
    Ok(text)
}

/// The refusal for `path`, as text (so cases compare in one table).
fn refusal(inside: &Inside, path: &str) -> String {
    match inside.open_file(Path::new(path)) {
        Ok(_) => "opened".into(),
        Err(Refusal::Io(e)) => format!("io: {e}"),
        Err(refusal) => format!("{refusal:?}"),
    }
}

#[test]
fn regular_files_with_one_link_are_opened() {
    let fixture = fixture();
    for inside in both(&fixture.work) {
        assert_eq!(read(&inside, "plain").unwrap(), "plain text");
        assert_eq!(read(&inside, "./dir/sub/deep").unwrap(), "deep text");
        assert_eq!(read(&inside, "dir/./sub//deep").unwrap(), "deep text");
    }
}

#[test]
fn everything_else_is_refused_for_what_it_is() {
    let fixture = fixture();
    let cases = [
        ("secret_hard", "HardLinks(2)", true),
        ("twice", "HardLinks(2)", true),
        ("dir/twice_again", "HardLinks(2)", true),
        ("secret_link", "Symlink", true),
        ("plain_link", "Symlink", true),
        ("outdir/secret", "SymlinkOnPath", true),
        ("dir_link/sub/deep", "SymlinkOnPath", true),
        ("dir", "NotRegular(Directory)", true),
        (".", "NotRegular(Directory)", true),
        ("fifo", "NotRegular(Fifo)", true),
        ("socket", "NotRegular(Socket)", true),
        ("../outside/secret", "Outside", true),
        ("dir/../plain", "Outside", true),
        ("/etc/passwd", "Outside", true),
        ("missing", "Missing", false),
        ("dir/missing/deep", "Missing", false),
        ("plain/under_a_file", "Missing", false),
    ];
    for (index, inside) in both(&fixture.work).iter().enumerate() {
        for (path, expected, safety) in cases {
            assert_eq!(refusal(inside, path), expected, "{path} (way {index})");
            let why = inside.open_file(Path::new(path)).unwrap_err();
            assert_eq!(why.is_safety(), safety, "{path}");
        }
    }
}

#[test]
fn directories_are_listed_only_when_reached_without_links() {
    let fixture = fixture();
    for inside in both(&fixture.work) {
        let mut names = inside.list(Path::new("dir")).unwrap();
        names.sort();
        assert_eq!(names, ["sub", "twice_again"]);
        assert!(inside.list(Path::new("")).unwrap().len() > 5);
        assert!(matches!(
            inside.list(Path::new("outdir")),
            Err(Refusal::SymlinkOnPath)
        ));
        assert!(matches!(
            inside.list(Path::new("dir_link")),
            Err(Refusal::SymlinkOnPath)
        ));
        assert!(matches!(
            inside.list(Path::new("plain")),
            Err(Refusal::Missing)
        ));
        assert!(matches!(
            inside.list(Path::new("..")),
            Err(Refusal::Outside)
        ));
    }
}

#[test]
fn a_work_dir_that_is_a_link_is_not_opened() {
    let fixture = fixture();
    let link = fixture.work.with_file_name("work_link");
    symlink(&fixture.work, &link).unwrap();
    assert!(Inside::open(&link).is_err());
    assert!(Inside::open(&fixture.work.join("plain")).is_err());
}

#[test]
fn refusals_read_as_one_bounded_message() {
    let mut refused = Refused::default();
    assert!(refused.is_empty());
    refused.push("artifact", "shadow_hard", &Refusal::HardLinks(2));
    assert_eq!(
        refused.to_string(),
        "artifact \"shadow_hard\" refused: it has 2 hard links; buildmesh publishes only \
         regular files with a single link inside the work dir"
    );
    refused.push("metric x file", "m\ntxt", &Refusal::NotRegular(Kind::Fifo));
    assert!(
        refused
            .to_string()
            .contains("; metric x file \"m\\ntxt\" refused: it is a FIFO, not a regular file;"),
        "{refused}"
    );
    for _ in 0..20 {
        refused.push("artifact", &"long".repeat(1000), &Refusal::Symlink);
    }
    let text = refused.to_string();
    assert_eq!(refused.len(), 22);
    assert!(
        text.contains("; and 14 more; buildmesh publishes"),
        "{text}"
    );
    assert!(
        text.len() <= buildmesh_protocol::LONG_TEXT_BYTES_MAX,
        "{}",
        text.len()
    );
}
