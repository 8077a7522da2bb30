//! nuncio's TLS, built from the config model of `nuncio-config`:
//!
//! * [`material`]: `DataSource`s read into certificates, keys, CA bundles
//!   and CRLs, checked at load with Envoy's messages;
//! * [`server`]: a `DownstreamTlsContext` as an `Arc<rustls::ServerConfig>`,
//!   with a certificate resolver ([`resolver`]) that holds RSA and ECDSA
//!   certificates side by side;
//! * [`client`]: an `UpstreamTlsContext` as an `Arc<rustls::ClientConfig>`,
//!   with Envoy's SNI choice and its "no validation context, no
//!   verification" default ([`verify`]);
//! * [`chain_match`]: Envoy's filter chain selection;
//! * [`inspect`]: the TLS inspector's ClientHello parser (SNI, ALPN);
//! * [`params`]: versions, cipher suites and curves in BoringSSL's names
//!   mapped onto the crypto provider.
//!
//! One crypto provider is compiled in, chosen by cargo feature: `aws-lc-rs`
//! (the default) or `ring`; [`provider`] returns it, and every config is
//! built with it explicitly, so no process-wide default is ever consulted.

#![forbid(unsafe_code)]

pub mod certs;
pub mod chain_match;
pub mod client;
pub mod conn;
mod error;
pub mod inspect;
pub mod material;
pub mod params;
pub mod peer;
pub mod resolver;
pub mod san;
pub mod server;
pub mod stats;
pub mod transport;
pub mod verify;

#[cfg(test)]
mod bench_handshake;
#[cfg(test)]
mod conn_tests;
#[cfg(test)]
mod testcerts;

pub use conn::{Conn, CountedConn, HandshakeError, Negotiated, TlsConn};
pub use error::{TlsError, TlsErrorKind};
pub use stats::SslStats;
pub use transport::ServerTransport;

#[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
compile_error!("nuncio-tls needs a crypto provider: enable feature \"aws-lc-rs\" or \"ring\"");

/// The crypto provider compiled in (aws-lc-rs if both features are on).
pub fn provider() -> rustls::crypto::CryptoProvider {
    #[cfg(feature = "aws-lc-rs")]
    {
        rustls::crypto::aws_lc_rs::default_provider()
    }
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    {
        rustls::crypto::ring::default_provider()
    }
}

/// The provider's name, for logs and `--version`.
pub const PROVIDER_NAME: &str = if cfg!(feature = "aws-lc-rs") {
    "aws-lc-rs"
} else {
    "ring"
};
