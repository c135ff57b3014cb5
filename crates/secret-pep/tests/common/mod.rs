//! Shared fixtures for secret-pep's integration tests.
#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)]

mod spans;

#[cfg(feature = "authzen")]
use secret_pep::AuthzenConfig;
use secret_pep::Pep;
pub use secrets_test_support::pep::{
    Counting, Recorded, RecordingAudit, TENANT, jti, pep_config as config, pep_with, reader,
};
pub use spans::{CapturedSpan, SpanCapture};

#[cfg(feature = "authzen")]
/// A PEP (test config) over the AuthZEN PDP `authzen` describes.
pub fn authzen_pep(authzen: AuthzenConfig) -> Pep {
    Pep::new(config().with_pdp(secret_pep::PdpSettings::AuthZen(authzen))).expect("valid PEP")
}
