//! The in-toto Statement v1 and its ResourceDescriptor, with field names
//! as the in-toto attestation framework spells them (`spec/v1`).

use serde::Serialize;
use std::collections::BTreeMap;

/// The Statement layer's `_type`.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// An in-toto Statement: what the attestation is about (`subject`) and
/// what it says of it (`predicate`, of `predicateType`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement<P> {
    /// Always [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub type_: &'static str,
    /// The artifacts it is about, each with a digest.
    pub subject: Vec<ResourceDescriptor>,
    /// The predicate's type URI.
    #[serde(rename = "predicateType")]
    pub predicate_type: &'static str,
    /// What is said.
    pub predicate: P,
}

impl<P: Serialize> Statement<P> {
    /// A Statement v1 about `subject`.
    pub fn new(
        subject: Vec<ResourceDescriptor>,
        predicate_type: &'static str,
        predicate: P,
    ) -> Self {
        Statement {
            type_: STATEMENT_TYPE,
            subject,
            predicate_type,
            predicate,
        }
    }

    /// Its JSON, the payload its envelope signs.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// A software artifact or resource, by name and digest (`spec/v1/
/// resource_descriptor.md`): unset fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    /// What the producer calls it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A URI that names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Its digests, by algorithm (`sha256`, `gitCommit`), lower-case hex.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<&'static str, String>,
    /// Where to fetch it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_location: Option<String>,
    /// Its media type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<&'static str>,
}

impl ResourceDescriptor {
    /// `name`, with the one digest `algorithm: hex`.
    pub fn named(name: &str, algorithm: &'static str, hex: String) -> ResourceDescriptor {
        ResourceDescriptor {
            name: Some(name.to_owned()),
            digest: BTreeMap::from([(algorithm, hex)]),
            ..ResourceDescriptor::default()
        }
    }
}
