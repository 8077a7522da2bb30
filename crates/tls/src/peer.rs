//! What both sides check of a peer's certificate beyond its chain, as
//! Envoy's `CertificateValidationContext` says: SAN matchers
//! (`match_typed_subject_alt_names`, failing as a name mismatch:
//! `ssl.fail_verify_san`) and certificate or SPKI pins
//! (`verify_certificate_hash`, `verify_certificate_spki`: either may match;
//! failing as `ssl.fail_verify_cert_hash`).

use std::fmt;
use std::sync::Arc;

use nuncio_config::{SanMatcher, Validation};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, Error, OtherError};
use rustls_pki_types::CertificateDer;

use crate::material::{cert_hash, spki_hash};
use crate::san::{any_matches, subject_alt_names};

/// A peer certificate none of whose SANs the matchers accept. Envoy
/// (BoringSSL) refuses it with a `certificate_unknown` alert, which
/// rustls sends for an `Other` certificate error (for `NotValidForName`
/// it would send `bad_certificate`); counted as `ssl.fail_verify_san`.
#[derive(Debug)]
pub struct SanMismatch;

impl fmt::Display for SanMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no subject alternative name of the certificate matched")
    }
}

impl std::error::Error for SanMismatch {}

impl SanMismatch {
    /// The handshake error for a SAN mismatch.
    pub fn error() -> Error {
        Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(SanMismatch))))
    }

    /// Whether `e` is a SAN mismatch (ours, or a name mismatch from
    /// rustls).
    pub fn is(e: &CertificateError) -> bool {
        match e {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                true
            }
            CertificateError::Other(o) => o.0.is::<SanMismatch>(),
            _ => false,
        }
    }
}

/// The checks of one validation context after its chain check.
#[derive(Debug)]
pub struct PeerCheck {
    provider: Arc<CryptoProvider>,
    sans: Vec<SanMatcher>,
    hashes: Vec<[u8; 32]>,
    spki: Vec<[u8; 32]>,
}

impl PeerCheck {
    /// The checks of `v`.
    pub fn new(provider: Arc<CryptoProvider>, v: &Validation) -> Self {
        PeerCheck {
            provider,
            sans: v.sans.clone(),
            hashes: v.hashes.clone(),
            spki: v.spki.clone(),
        }
    }

    /// Checks the peer's leaf certificate.
    pub fn check(&self, leaf: &CertificateDer<'_>) -> Result<(), Error> {
        if !self.hashes.is_empty() || !self.spki.is_empty() {
            let by_hash = cert_hash(&self.provider, leaf).is_some_and(|h| self.hashes.contains(&h));
            let by_spki = spki_hash(&self.provider, leaf).is_some_and(|h| self.spki.contains(&h));
            if !by_hash && !by_spki {
                return Err(Error::InvalidCertificate(
                    CertificateError::ApplicationVerificationFailure,
                ));
            }
        }
        if !self.sans.is_empty() && !any_matches(&self.sans, &subject_alt_names(leaf)) {
            return Err(SanMismatch::error());
        }
        Ok(())
    }
}
