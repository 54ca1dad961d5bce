//! A build result as standard attestations, which tools that know nothing
//! of buildmesh verify with the builder's public key.
//!
//! A builder signs a result twice: once as a log entry (the protocol's
//! own format, `docs/protocol.md`), and once as attestations in the
//! in-toto attestation framework's formats, made here:
//!
//! - an in-toto Statement v1 about the commit (subject: its git id, digest
//!   `gitCommit`) with the test-result predicate: `PASSED`, `WARNED` or
//!   `FAILED` ([`verdict`]), the recipe as the configuration, the commit's
//!   page, the failing tests, and the counts under a `buildmesh` extension
//!   field ([`test_result`]);
//! - when the build kept artifacts, a Statement about them (digest
//!   `sha256`, the blob hashes) with SLSA provenance v1: which node built
//!   them, from which commit and recipe, and the steps' logs
//!   ([`provenance`]);
//!
//! each in a DSSE envelope ([`dsse`]) signed with the node's ed25519 key,
//! one envelope per line: an in-toto bundle ([`bundle`]). The node stores
//! the bundle as a blob before it signs the result entry, which names the
//! blob's hash (`Body::Attested`): the attestations cannot name the entry,
//! but the entry vouches for them.
//!
//! Pure functions of their inputs, no IO: the node holds the key and
//! stores the blob. `docs/trust.md` ("Attestations") says how a third
//! party verifies a bundle with stock tools.

mod bundle;
pub mod dsse;
mod provenance;
mod statement;
mod test_result;

pub use bundle::{BUNDLE_MEDIA_TYPE, Facts, RECIPE_NAME, bundle, provenance, test_result};
pub use provenance::{
    BUILD_TYPE, BUILDER_ID_PREFIX, BuildDefinition, Builder, ExternalParameters, Provenance,
    RunDetails, SLSA_PROVENANCE_TYPE,
};
pub use statement::{ResourceDescriptor, STATEMENT_TYPE, Statement};
pub use test_result::{Counts, Extension, TEST_RESULT_TYPE, TestResult, verdict};
