//! Peer certificate checks. Upstream ([`ServerVerifier`]): Envoy's
//! default without a validation context (accept any chain, but still
//! check the handshake signature, so the peer must own the key of the
//! certificate it sent), or a trusted CA, then the context's SAN matchers
//! and pins ([`PeerCheck`]); Envoy checks the server's name only through
//! those. Downstream ([`ClientVerifier`]): rustls' WebPKI client verifier
//! for the chain (mandatory or optional as `require_client_certificate`
//! says), then the same SAN matchers and pins.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::peer::PeerCheck;

/// How a client's certificate is checked: the chain by rustls' WebPKI
/// verifier, then the context's SAN matchers and pins.
#[derive(Debug)]
pub struct ClientVerifier {
    inner: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    check: PeerCheck,
}

impl ClientVerifier {
    /// Checks chains against `roots`; a client without a certificate is
    /// refused if `mandatory` (`require_client_certificate`).
    pub fn new(
        provider: Arc<CryptoProvider>,
        roots: Arc<RootCertStore>,
        mandatory: bool,
        check: PeerCheck,
    ) -> Result<ClientVerifier, String> {
        let b = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider);
        let b = if mandatory {
            b
        } else {
            b.allow_unauthenticated()
        };
        let inner = b.build().map_err(|e| e.to_string())?;
        Ok(ClientVerifier { inner, check })
    }
}

impl rustls::server::danger::ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, Error> {
        let ok = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        self.check.check(end_entity)?;
        Ok(ok)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// How a server's certificate is checked.
#[derive(Debug)]
pub struct ServerVerifier {
    provider: Arc<CryptoProvider>,
    roots: Option<Arc<RootCertStore>>,
    check: Option<PeerCheck>,
}

impl ServerVerifier {
    /// No validation context: any certificate is accepted, as in Envoy.
    pub fn accept_any(provider: Arc<CryptoProvider>) -> ServerVerifier {
        ServerVerifier {
            provider,
            roots: None,
            check: None,
        }
    }

    /// The chain must lead to one of `roots`, then `check` (SAN matchers,
    /// pins) must pass.
    pub fn trusted_ca(
        provider: Arc<CryptoProvider>,
        roots: Arc<RootCertStore>,
        check: PeerCheck,
    ) -> ServerVerifier {
        ServerVerifier {
            provider,
            roots: Some(roots),
            check: Some(check),
        }
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if let Some(roots) = &self.roots {
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        if let Some(c) = &self.check {
            c.check(end_entity)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The roots and checks of a validation context. CRLs and
/// `allow_expired_certificate` are refused until built (never ignored);
/// a context without `trusted_ca` was refused by the config loader.
pub(crate) fn context(
    v: &nuncio_config::Validation,
    provider: &Arc<CryptoProvider>,
) -> Result<(Arc<RootCertStore>, PeerCheck), crate::TlsError> {
    use crate::TlsErrorKind;
    if v.crl.is_some() || v.allow_expired {
        return Err(crate::TlsError::at(
            &v.origin,
            TlsErrorKind::NotYet {
                what: "crl and allow_expired_certificate".into(),
            },
        ));
    }
    let Some(ca) = &v.trusted_ca else {
        return Err(crate::TlsError::at(
            &v.origin,
            TlsErrorKind::NotYet {
                what: "a validation context without trusted_ca".into(),
            },
        ));
    };
    let roots = Arc::new(crate::material::load_ca(ca, &v.origin)?);
    Ok((roots, PeerCheck::new(Arc::clone(provider), v)))
}
