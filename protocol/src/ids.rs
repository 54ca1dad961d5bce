//! Fixed-size identifiers: keys, entry ids, blob hashes, project and commit ids.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// A hex string that is not the expected identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} hex digits, got {got:?}")]
pub struct ParseIdError {
    expected: usize,
    got: String,
}

fn parse_hex32(text: &str) -> Result<[u8; 32], ParseIdError> {
    let error = || ParseIdError {
        expected: 64,
        got: text.chars().take(80).collect(),
    };
    let bytes = hex::decode(text.trim()).map_err(|_| error())?;
    bytes.try_into().map_err(|_| error())
}

macro_rules! hash32 {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// All zeros.
            pub const ZERO: $name = $name([0; 32]);

            /// The 32 bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// The first 12 hex digits, for people.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..6])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                parse_hex32(text).map($name)
            }
        }
    };
}

hash32!(
    /// An ed25519 public key: a node's libp2p identity and its signing key.
    PublicKey
);
hash32!(
    /// SHA-256 of an entry's signed bytes (see `docs/protocol.md` §3).
    EntryId
);
hash32!(
    /// SHA-256 of a content-addressed blob (a build log, an artifact).
    BlobHash
);
hash32!(
    /// A project: SHA-256 of a domain string, the declaring maintainer's key
    /// and the project name, so two maintainers never collide on a name.
    ProjectId
);

impl ProjectId {
    /// Domain string hashed in front of every project id.
    pub const DOMAIN: &'static [u8] = b"buildmesh/project/v1";

    /// The id of the project `name` declared by `owner`.
    pub fn derive(owner: &PublicKey, name: &str) -> ProjectId {
        ProjectId(sha256(&[Self::DOMAIN, &owner.0, name.as_bytes()]))
    }
}

impl BlobHash {
    /// The hash of `content`.
    pub fn of(content: &[u8]) -> BlobHash {
        BlobHash(sha256(&[content]))
    }
}

impl From<ed25519_dalek::VerifyingKey> for PublicKey {
    fn from(key: ed25519_dalek::VerifyingKey) -> Self {
        PublicKey(key.to_bytes())
    }
}

/// A git commit id: 20 bytes (SHA-1 repositories) or 32 (SHA-256 ones).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CommitId(Vec<u8>);

impl CommitId {
    /// Wraps raw id bytes; `None` unless they are 20 or 32 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Option<CommitId> {
        matches!(bytes.len(), 20 | 32).then(|| CommitId(bytes.to_vec()))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether the length is one git uses.
    pub fn is_valid(&self) -> bool {
        matches!(self.0.len(), 20 | 32)
    }

    /// The first 10 hex digits, as `git log --oneline` shows them: the one
    /// way every page, log line and command shortens a commit.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..self.0.len().min(5)])
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommitId({})", self.short())
    }
}

impl FromStr for CommitId {
    type Err = ParseIdError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParseIdError {
            expected: 40,
            got: text.chars().take(80).collect(),
        };
        let bytes = hex::decode(text.trim()).map_err(|_| error())?;
        CommitId::from_bytes(&bytes).ok_or_else(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = EntryId([0xab; 32]);
        assert_eq!(id.to_string().parse::<EntryId>(), Ok(id));
        assert!("abc".parse::<EntryId>().is_err());
        assert!("zz".repeat(32).parse::<EntryId>().is_err());
    }

    #[test]
    fn commit_ids_are_20_or_32_bytes() {
        assert!("00".repeat(20).parse::<CommitId>().is_ok());
        assert!("00".repeat(32).parse::<CommitId>().is_ok());
        assert!("00".repeat(21).parse::<CommitId>().is_err());
    }

    #[test]
    fn a_short_commit_id_is_its_first_ten_hex_digits() {
        let sha1 = "0123456789abcdef0123456789abcdef01234567".parse::<CommitId>();
        assert_eq!(sha1.map(|c| c.short()), Ok("0123456789".into()));
        let sha256 = "fe".repeat(32).parse::<CommitId>();
        assert_eq!(sha256.map(|c| c.short()), Ok("fefefefefe".into()));
    }

    #[test]
    fn project_ids_depend_on_owner_and_name() {
        let alice = PublicKey([1; 32]);
        let bob = PublicKey([2; 32]);
        assert_ne!(ProjectId::derive(&alice, "x"), ProjectId::derive(&bob, "x"));
        assert_ne!(
            ProjectId::derive(&alice, "x"),
            ProjectId::derive(&alice, "y")
        );
    }
}
