//! Errors of building TLS configs: each names the config place it comes
//! from and converts into a [`ConfigError`] with Envoy's wording.

use nuncio_config::{ConfigError, Origin};

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsErrorKind {
    /// A file that does not exist or cannot be read (Envoy's wording).
    #[error("Invalid path: {path}")]
    InvalidPath {
        /// The path as configured.
        path: String,
    },
    /// No certificate in the PEM, or a malformed one.
    #[error("Failed to load certificate chain from {from}")]
    BadChain {
        /// The path, or `<inline>`.
        from: String,
    },
    /// A private key that cannot be read or does not match its certificate.
    #[error("Failed to load private key from {from}, Cause: {cause}")]
    BadKey {
        /// The path, or `<inline>`.
        from: String,
        /// Why.
        cause: String,
    },
    /// A CA bundle with no usable certificate.
    #[error("Failed to load trusted CA certificates from {from}")]
    BadCa {
        /// The path, or `<inline>`.
        from: String,
    },
    /// A CRL file with no usable CRL.
    #[error("Failed to load CRL from {from}")]
    BadCrl {
        /// The path, or `<inline>`.
        from: String,
    },
    /// Settings that leave no cipher suite, curve or version to use.
    #[error("{0}")]
    Params(String),
    /// rustls refused the config.
    #[error("TLS config rejected: {0}")]
    Rustls(String),
    /// A decoded setting that this crate does not build yet.
    #[error("{what} is decoded but not built into a TLS config yet")]
    NotYet {
        /// The setting.
        what: String,
    },
}

/// A [`TlsErrorKind`] at a config place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct TlsError {
    /// Where in the config.
    pub origin: Origin,
    /// What.
    pub kind: TlsErrorKind,
}

impl TlsError {
    /// `kind` at `origin`.
    pub fn at(origin: &Origin, kind: TlsErrorKind) -> TlsError {
        TlsError {
            origin: origin.clone(),
            kind,
        }
    }
}

impl From<TlsError> for ConfigError {
    fn from(e: TlsError) -> ConfigError {
        e.origin.error(e.kind.to_string())
    }
}
