//! The verifier behind `buildmesh log verify` (docs/protocol.md §7).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use buildmesh_audit::{Header, Problem, Report, Verifier, export_line};
use buildmesh_core::log::ChainWriter;
use buildmesh_core::log::Rejected;
use buildmesh_protocol::{
    Body, BuilderPolicy, Entry, EntryContent, ProjectDeclaration, ProjectId, Role, Timestamp,
    TrustChange,
};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;

/// Declarations: a key needs no role to sign one (docs/protocol.md §6.1).
fn body(n: u8) -> Body {
    Body::Project(ProjectDeclaration {
        name: format!("p{n}"),
        repository: "https://example.org/p.git".into(),
        branches: vec!["main".into()],
        platforms: vec!["linux-x86_64".into()],
        announcers: Vec::new(),
        builders: BuilderPolicy::Open,
        builds_per_cell: 1,
    })
}

fn chain(seed: u8, n: u8) -> Vec<Entry> {
    let mut w = ChainWriter::new(SigningKey::from_bytes(&[seed; 32]));
    (0..n)
        .map(|i| w.write(Timestamp(u64::from(i)), body(i)).unwrap())
        .collect()
}

fn export(entries: &[Entry]) -> Vec<String> {
    let mut lines = vec![Header::new(Timestamp(9)).to_line()];
    lines.extend(entries.iter().map(export_line));
    lines
}

fn verify(lines: &[String]) -> Report {
    let mut verifier = Verifier::new();
    for line in lines {
        verifier.line(line);
    }
    verifier.finish()
}

#[test]
fn a_clean_export_verifies() {
    let entries: Vec<Entry> = chain(1, 5).into_iter().chain(chain(2, 3)).collect();
    let report = verify(&export(&entries));
    assert!(report.is_clean(), "{report}");
    assert_eq!(
        (report.entries, report.heads.len(), report.lines),
        (8, 2, 9)
    );
    assert!(
        report
            .to_string()
            .starts_with("OK: 8 entries from 2 authors")
    );
}

#[test]
fn a_tampered_content_byte_is_caught() {
    let mut lines = export(&chain(1, 3));
    // Change one hex digit near the end of the content of line 3.
    let at = lines[2].rfind("\"}").unwrap() - 2;
    let mut bytes = lines[2].clone().into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    lines[2] = String::from_utf8(bytes).unwrap();
    let report = verify(&lines);
    assert!(
        matches!(report.problems[0], Problem::BadLine { line: 3, .. }),
        "{report}"
    );
    assert!(
        report.problems.iter().any(|p| matches!(
            p,
            Problem::Gap {
                missing_seq: 2,
                unchained: 1,
                ..
            }
        )),
        "{report}"
    );
}

#[test]
fn a_lying_id_field_is_caught() {
    let entries = chain(1, 1);
    let mut lines = export(&entries);
    lines[1] = lines[1].replace(&entries[0].id().to_string(), &"ab".repeat(32));
    let report = verify(&lines);
    assert!(report.to_string().contains("field id says"), "{report}");
}

#[test]
fn a_missing_entry_is_a_gap() {
    let entries = chain(1, 4);
    let report = verify(&export(&[
        entries[0].clone(),
        entries[2].clone(),
        entries[3].clone(),
    ]));
    assert_eq!(report.problems.len(), 1, "{report}");
    assert!(matches!(
        report.problems[0],
        Problem::Gap {
            missing_seq: 2,
            unchained: 2,
            ..
        }
    ));
}

#[test]
fn forks_and_duplicates_are_reported() {
    let entries = chain(1, 2);
    let key = SigningKey::from_bytes(&[1; 32]);
    let twin = Entry::sign(
        &key,
        EntryContent {
            body: body(77),
            ..entries[1].content().clone()
        },
    )
    .unwrap();
    let mut all = entries.clone();
    all.push(twin);
    all.push(entries[0].clone());
    let report = verify(&export(&all));
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::Fork { .. })),
        "{report}"
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::Duplicate { line: 5, .. })),
        "{report}"
    );
    assert!(
        report
            .to_string()
            .contains("forked: signed two different entries at seq 2")
    );
}

#[test]
fn headers_are_checked() {
    assert_eq!(verify(&[]).problems, vec![Problem::MissingHeader]);
    let report = verify(&["{\"format\":\"tar\",\"version\":1,\"exported_at\":0}".to_string()]);
    assert!(
        report
            .to_string()
            .contains("is this a buildmesh log export?"),
        "{report}"
    );
}

proptest! {
    #[test]
    fn garbage_lines_are_problems_never_panics(lines in proptest::collection::vec(".{0,300}", 1..20)) {
        let mut all = vec![Header::new(Timestamp(0)).to_line()];
        all.extend(lines.iter().filter(|l| !l.trim().is_empty()).cloned());
        let report = verify(&all);
        prop_assert_eq!(report.entries, 0);
        prop_assert_eq!(report.problems.len(), all.len() - 1);
    }
}

#[test]
fn entries_before_the_declaration_naming_their_author_verify_and_strangers_do_not() {
    let mut owner = ChainWriter::new(SigningKey::from_bytes(&[1; 32]));
    let mut builder = ChainWriter::new(SigningKey::from_bytes(&[2; 32]));
    let mut stranger = ChainWriter::new(SigningKey::from_bytes(&[3; 32]));
    let project = ProjectId::derive(&owner.author(), "p0");
    let trust = |subject| {
        Body::Trust(TrustChange {
            project,
            subject,
            role: Role::Builder,
        })
    };
    let claim_like = trust(stranger.author());
    let entries = vec![
        builder
            .write(Timestamp(3), trust(builder.author()))
            .unwrap(),
        stranger.write(Timestamp(4), claim_like).unwrap(),
        owner.write(Timestamp(1), body(0)).unwrap(),
        owner.write(Timestamp(2), trust(builder.author())).unwrap(),
    ];
    let report = verify(&export(&entries));
    assert_eq!(report.entries, 3, "{report}");
    assert!(
        matches!(
            report.problems.as_slice(),
            [Problem::Refused {
                line: 3,
                reason: Rejected::NoRole
            }]
        ),
        "{report}"
    );
}
