//! DSSE v1 (Dead Simple Signing Envelope, secure-systems-lab/dsse): the
//! signature over a payload and its type, and the JSON envelope that
//! carries both.
//!
//! What is signed is the PAE (pre-authentication encoding) of the payload
//! type and the payload, never the JSON: a verifier checks the signature
//! before it parses anything, and no canonical JSON is needed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use buildmesh_protocol::PublicKey;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The payload type of an in-toto Statement in JSON (the in-toto
/// attestation framework's envelope layer).
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`,
/// lengths in ASCII decimal without leading zeros: the bytes a DSSE
/// signature covers. They start with `DSSEv1 `, which none of the
/// messages the node key signs for the log or the mesh do
/// (`buildmesh/entry/v1\0`, `buildmesh/bid/v1\0`, `buildmesh/renewal/v1\0`,
/// libp2p's own prefixes), so a signature on one never verifies as the
/// other.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let head = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    );
    let mut bytes = Vec::with_capacity(head.len() + payload.len());
    bytes.extend_from_slice(head.as_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// A signed payload, as the DSSE JSON envelope holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// What the payload is ([`PAYLOAD_TYPE`] for an in-toto Statement).
    pub payload_type: String,
    /// The payload's bytes (a Statement's JSON).
    pub payload: Vec<u8>,
    /// The signatures over [`pae`] of the two.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSignature {
    /// Which key signed: buildmesh writes the signer's ed25519 public key
    /// in lower-case hex, the key that signs its log entries. DSSE calls
    /// it a hint; a verifier that is given the key need not trust it.
    pub keyid: String,
    /// The ed25519 signature (RFC 8032, pure Ed25519) over the PAE.
    pub sig: [u8; 64],
}

/// The envelope as JSON: DSSE's field names, base64 (RFC 4648, standard
/// alphabet, padded) for bytes.
#[derive(Serialize, Deserialize)]
struct Json {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: String,
    signatures: Vec<JsonSignature>,
}

#[derive(Serialize, Deserialize)]
struct JsonSignature {
    keyid: String,
    sig: String,
}

/// Why an envelope's JSON could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAnEnvelope(pub String);

impl std::fmt::Display for NotAnEnvelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a DSSE envelope: {}", self.0)
    }
}

impl std::error::Error for NotAnEnvelope {}

impl Envelope {
    /// `payload` of `payload_type`, signed with `key`.
    pub fn sign(key: &SigningKey, payload_type: &str, payload: Vec<u8>) -> Envelope {
        let signature = key.sign(&pae(payload_type, &payload));
        Envelope {
            payload_type: payload_type.to_owned(),
            payload,
            signatures: vec![EnvelopeSignature {
                keyid: PublicKey::from(key.verifying_key()).to_string(),
                sig: signature.to_bytes(),
            }],
        }
    }

    /// Whether a signature verifies under `key`: strictly (ed25519-dalek's
    /// `verify_strict`, which refuses small-order keys and `R`), over the
    /// PAE of this payload type and payload.
    pub fn verifies(&self, key: &VerifyingKey) -> bool {
        let message = pae(&self.payload_type, &self.payload);
        self.signatures.iter().any(|s| {
            key.verify_strict(&message, &Signature::from_bytes(&s.sig))
                .is_ok()
        })
    }

    /// The envelope as one line of JSON (no line break in it).
    pub fn to_json(&self) -> String {
        let json = Json {
            payload: STANDARD.encode(&self.payload),
            payload_type: self.payload_type.clone(),
            signatures: self
                .signatures
                .iter()
                .map(|s| JsonSignature {
                    keyid: s.keyid.clone(),
                    sig: STANDARD.encode(s.sig),
                })
                .collect(),
        };
        // Strings and arrays of strings only: serializing cannot fail.
        serde_json::to_string(&json).unwrap_or_default()
    }

    /// Reads an envelope's JSON (as [`Envelope::to_json`] writes it).
    pub fn from_json(text: &str) -> Result<Envelope, NotAnEnvelope> {
        let json: Json = serde_json::from_str(text).map_err(|e| NotAnEnvelope(e.to_string()))?;
        let bytes = |field: &str, text: &str| {
            STANDARD
                .decode(text)
                .map_err(|e| NotAnEnvelope(format!("{field} is not base64: {e}")))
        };
        let signatures = json
            .signatures
            .into_iter()
            .map(|s| {
                let sig = bytes("sig", &s.sig)?;
                let sig = <[u8; 64]>::try_from(sig.as_slice())
                    .map_err(|_| NotAnEnvelope("sig is not 64 bytes".into()))?;
                Ok(EnvelopeSignature {
                    keyid: s.keyid,
                    sig,
                })
            })
            .collect::<Result<_, NotAnEnvelope>>()?;
        Ok(Envelope {
            payload_type: json.payload_type,
            payload: bytes("payload", &json.payload)?,
            signatures,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The example of DSSE's protocol.md.
    #[test]
    fn pae_is_the_dsse_specs_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
        let long = vec![b'x'; 1000];
        assert!(
            pae(PAYLOAD_TYPE, &long).starts_with(b"DSSEv1 28 application/vnd.in-toto+json 1000 ")
        );
    }

    #[test]
    fn a_signed_envelope_verifies_under_its_key_only() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let envelope = Envelope::sign(&key, PAYLOAD_TYPE, b"{\"a\":1}".to_vec());
        assert!(envelope.verifies(&key.verifying_key()));
        // The signature is over the PAE, checked with ed25519-dalek alone.
        let sig = Signature::from_bytes(&envelope.signatures[0].sig);
        let message = pae(PAYLOAD_TYPE, b"{\"a\":1}");
        assert!(key.verifying_key().verify_strict(&message, &sig).is_ok());
        assert_eq!(
            envelope.signatures[0].keyid,
            hex::encode(key.verifying_key().to_bytes())
        );
        let other = SigningKey::from_bytes(&[8; 32]);
        assert!(!envelope.verifies(&other.verifying_key()));
        let mut retyped = envelope.clone();
        retyped.payload_type = "application/vnd.in-toto+cbor".into();
        assert!(!retyped.verifies(&key.verifying_key()));
        let mut edited = envelope;
        edited.payload[2] ^= 1;
        assert!(!edited.verifies(&key.verifying_key()));
    }

    #[test]
    fn json_round_trips_in_base64_with_dsse_field_names() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let envelope = Envelope::sign(&key, PAYLOAD_TYPE, b"hello world".to_vec());
        let line = envelope.to_json();
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["payload"], "aGVsbG8gd29ybGQ=");
        assert_eq!(value["payloadType"], PAYLOAD_TYPE);
        let sig = value["signatures"][0]["sig"].as_str().unwrap();
        assert_eq!(STANDARD.decode(sig).unwrap().len(), 64);
        assert_eq!(Envelope::from_json(&line).unwrap(), envelope);
        assert!(Envelope::from_json("{}").is_err());
    }
}
