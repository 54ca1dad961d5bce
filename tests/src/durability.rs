//! The durability writer's chain and its acknowledgement lines.

use buildmesh_protocol::{
    Body, BuilderPolicy, CommitAnnouncement, CommitId, Entry, EntryContent, EntryId, ParseIdError,
    ProjectDeclaration, ProjectId, PublicKey, SignError, Timestamp,
};
use ed25519_dalek::SigningKey;
use std::fmt;
use std::str::FromStr;

/// The writer's fixed key: every run, and the test, agree on the author.
pub fn writer_key() -> SigningKey {
    SigningKey::from_bytes(&[0xd0; 32])
}

/// The writer's author key.
pub fn writer_author() -> PublicKey {
    writer_key().verifying_key().into()
}

/// The writer's entry after `previous` (or its first, when `None`): the
/// declaration of its project first (which gives the writer a role,
/// docs/protocol.md §6.1), then commit announcements whose fields derive
/// from the sequence number.
pub fn next_entry(previous: Option<&Entry>) -> Result<Entry, SignError> {
    let key = writer_key();
    let author = writer_author();
    let seq = previous.map_or(1, |p| p.seq() + 1);
    let mut commit = [0; 20];
    commit[..8].copy_from_slice(&seq.to_be_bytes());
    let body = if seq == 1 {
        declaration()
    } else {
        announcement(author, seq, commit)?
    };
    let timestamp = Timestamp(1_700_000_000_000 + seq);
    let content = match previous {
        Some(previous) => EntryContent::after(previous, timestamp, body),
        None => EntryContent::first(author, timestamp, body),
    };
    Entry::sign(&key, content)
}

fn declaration() -> Body {
    Body::Project(ProjectDeclaration {
        name: "durability".into(),
        repository: "https://example.org/durability.git".into(),
        branches: vec!["main".into()],
        platforms: vec!["linux-x86_64".into()],
        announcers: Vec::new(),
        builders: BuilderPolicy::Only(Vec::new()),
        builds_per_cell: 1,
    })
}

fn announcement(author: PublicKey, seq: u64, commit: [u8; 20]) -> Result<Body, SignError> {
    Ok(Body::Announce(CommitAnnouncement {
        project: ProjectId::derive(&author, "durability"),
        branch: "main".into(),
        commit: CommitId::from_bytes(&commit).ok_or(SignError::WrongKey)?,
        parents: Vec::new(),
        title: format!("commit number {seq}"),
        author: "Durability Writer <writer@example.org>".into(),
        committed_at: Timestamp(seq),
    }))
}

/// One line of the writer's stdout: an entry the store acknowledged
/// (`insert` or `insert_batch` returned `Ok`), as `<seq> <id hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The entry's sequence number.
    pub seq: u64,
    /// The entry's id.
    pub id: EntryId,
}

impl fmt::Display for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.id)
    }
}

/// An acknowledgement line that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadAck {
    /// Not two fields.
    #[error("expected `<seq> <id>`, got {0:?}")]
    Shape(String),
    /// The sequence number is not a number.
    #[error("bad sequence number: {0}")]
    Seq(#[from] std::num::ParseIntError),
    /// The id is not 64 hex digits.
    #[error("bad entry id: {0}")]
    Id(#[from] ParseIdError),
}

impl FromStr for Ack {
    type Err = BadAck;
    fn from_str(line: &str) -> Result<Ack, BadAck> {
        let mut fields = line.split_whitespace();
        match (fields.next(), fields.next(), fields.next()) {
            (Some(seq), Some(id), None) => Ok(Ack {
                seq: seq.parse()?,
                id: id.parse()?,
            }),
            _ => Err(BadAck::Shape(line.chars().take(200).collect())),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn acks_round_trip_through_text() {
        let ack = Ack {
            seq: 42,
            id: EntryId([0xab; 32]),
        };
        assert_eq!(ack.to_string().parse::<Ack>(), Ok(ack));
        assert!("42".parse::<Ack>().is_err());
        assert!("x 00".parse::<Ack>().is_err());
        assert!(format!("1 {} extra", EntryId::ZERO).parse::<Ack>().is_err());
    }

    #[test]
    fn the_chain_links() {
        let first = next_entry(None).unwrap();
        let second = next_entry(Some(&first)).unwrap();
        assert_eq!((first.seq(), second.seq()), (1, 2));
        assert_eq!(second.prev(), first.id());
        assert_eq!(second.author(), writer_author());
    }
}
