//! The winner rule (`docs/protocol.md` §10.3) against the table in
//! `testdata/winners.txt`, one case per line, in the manner of raft-rs's
//! `quorum/testdata`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use buildmesh_core::claim::{Candidate, CellKey, pick_winners, rendezvous_score};
use buildmesh_protocol::{CommitId, ProjectId, PublicKey, sha256};

const TABLE: &str = include_str!("testdata/winners.txt");

fn key(name: &str) -> PublicKey {
    PublicKey(sha256(&[name.as_bytes()]))
}

fn cell() -> CellKey {
    CellKey {
        project: ProjectId([7; 32]),
        commit: CommitId::from_bytes(&[0xab; 20]).unwrap(),
        platform: "linux-x86_64".into(),
    }
}

fn names(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|w| *w != "-")
        .map(str::to_string)
        .collect()
}

fn candidates(text: &str) -> Vec<Candidate> {
    names(text)
        .iter()
        .map(|item| {
            let (name, load) = item.split_once(':').expect("name:load");
            Candidate {
                bidder: key(name),
                load: load.parse().expect("a u32 load"),
            }
        })
        .collect()
}

/// Table lines without comments and blanks, with their line numbers.
fn lines() -> impl Iterator<Item = (usize, &'static str)> {
    TABLE
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.split('#').next().unwrap_or("").trim()))
        .filter(|(_, line)| !line.is_empty())
}

#[test]
fn scores_agree_with_the_independent_order() {
    let (number, order) = lines()
        .find_map(|(n, line)| line.strip_prefix("order ").map(|rest| (n, rest)))
        .expect("the table states an order");
    let expected = names(order);
    let mut ours = expected.clone();
    ours.sort_by_key(|name| rendezvous_score(&key(name), &cell()));
    assert_eq!(ours, expected, "winners.txt:{number}");
}

#[test]
fn every_case_in_the_table() {
    let mut cases = 0;
    for (number, line) in lines().filter(|(_, l)| !l.starts_with("order ")) {
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        let [bids, needed, winners] = fields[..] else {
            panic!("winners.txt:{number}: want `bids | needed | winners`");
        };
        let needed: usize = needed.parse().expect("needed is a number");
        let expected: Vec<PublicKey> = names(winners).iter().map(|n| key(n)).collect();
        let got = pick_winners(&cell(), &candidates(bids), needed);
        assert_eq!(got, expected, "winners.txt:{number}: {line}");
        cases += 1;
    }
    assert!(cases >= 15, "the table lost its cases");
}
