//! Test fixtures (feature `test-fixtures`, dev-only): the demo PKI plus what makes cards that must
//! be refused — an untrusted root with an impostor CA, certificates without the usages a card
//! login needs, cards out of their validity period. Never compiled into the production binary
//! (`tests/fixtures-absent` checks it).
use crate::demopki::{DemoCa, DemoCard, DemoPki, DemoPkiError};

pub use crate::demopki::{CA_CN, CardSpec, Holder, KeyAlg, ROOT_CN, ROOT_DN, RevocationReason, pem};

/// A CA of the test PKI, with its key.
pub type TestCa = DemoCa;
/// A card certificate and its key.
pub type TestCard = DemoCard;
/// Why the test PKI could not make something.
pub type TestPkiError = DemoPkiError;

/// Common name of the untrusted root (the impostor CA under it reuses [`CA_CN`]).
pub const UNTRUSTED_ROOT_CN: &str = "AC RACINE INCONNUE";

/// The demo PKI and an impostor beside it. The demo's CAs and what they issue are reached through
/// `Deref` (`pki.ca`, `pki.issue(…)`), so that a test reads like the demo and nothing is copied.
#[derive(Debug)]
pub struct TestPki {
    demo: DemoPki,
    /// A root nobody trusts.
    pub untrusted_root: TestCa,
    /// An impostor: same subject as `ca`, another key, issued by `untrusted_root`.
    pub untrusted_ca: TestCa,
}

impl std::ops::Deref for TestPki {
    type Target = DemoPki;

    fn deref(&self) -> &DemoPki {
        &self.demo
    }
}

impl TestPki {
    /// Generates the PKI with P-256 keys.
    pub fn generate() -> Result<TestPki, TestPkiError> {
        TestPki::generate_with(KeyAlg::EcdsaP256)
    }

    /// Generates the PKI with keys of `alg`. CAs are valid from a year ago for twenty years.
    pub fn generate_with(alg: KeyAlg) -> Result<TestPki, TestPkiError> {
        let demo = DemoPki::generate_with(alg)?;
        let untrusted_root = TestCa::root(UNTRUSTED_ROOT_CN, alg)?;
        let untrusted_ca = untrusted_root.intermediate(CA_CN, alg)?;
        Ok(TestPki { demo, untrusted_root, untrusted_ca })
    }
}

impl CardSpec {
    /// Sets the validity period (Unix seconds).
    pub fn valid(mut self, not_before: i64, not_after: i64) -> Self {
        (self.not_before, self.not_after) = (not_before, not_after);
        self
    }

    /// EKU emailProtection instead of clientAuth.
    pub fn without_client_auth_eku(mut self) -> Self {
        self.client_auth_eku = false;
        self
    }

    /// keyUsage keyEncipherment instead of digitalSignature.
    pub fn without_digital_signature(mut self) -> Self {
        self.digital_signature = false;
        self
    }
}
