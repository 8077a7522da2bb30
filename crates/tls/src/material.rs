//! Certificate material: [`DataSource`]s read and parsed from PEM into
//! certificate chains, private keys, CA stores and CRLs, plus the SHA-256
//! digests that certificate and SPKI pins compare. Every failure is a
//! [`TlsError`] with Envoy's message at the config place.

use std::sync::Arc;

use nuncio_config::{DataSource, Origin, TlsCertificate};
use rustls::crypto::hash::HashAlgorithm;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use crate::error::{TlsError, TlsErrorKind};

/// The bytes of `ds`; a file that cannot be read is Envoy's "Invalid path".
pub fn read(ds: &DataSource, origin: &Origin) -> Result<Vec<u8>, TlsError> {
    ds.read().map_err(|_| {
        TlsError::at(
            origin,
            TlsErrorKind::InvalidPath {
                path: ds.describe(),
            },
        )
    })
}

/// Every certificate in a PEM `DataSource` (leaf first for a chain).
pub fn load_certs(
    ds: &DataSource,
    origin: &Origin,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(ds, origin)?;
    let bad = || {
        TlsError::at(
            origin,
            TlsErrorKind::BadChain {
                from: ds.describe(),
            },
        )
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad())?;
    if certs.is_empty() {
        return Err(bad());
    }
    Ok(certs)
}

/// The private key in a PEM `DataSource` (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(ds: &DataSource, origin: &Origin) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(ds, origin)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        TlsError::at(
            origin,
            TlsErrorKind::BadKey {
                from: ds.describe(),
                cause: format!("no PEM private key found ({e})"),
            },
        )
    })
}

/// A certificate and its key, ready for a resolver or a client config.
/// The key must be one the provider can sign with, and must match the
/// leaf certificate.
pub fn load_certified_key(
    cert: &TlsCertificate,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = load_certs(&cert.chain, &cert.origin)?;
    let key = load_key(&cert.key, &cert.origin)?;
    let bad_key = |cause: String| {
        TlsError::at(
            &cert.origin,
            TlsErrorKind::BadKey {
                from: cert.key.describe(),
                cause,
            },
        )
    };
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| bad_key(format!("unsupported private key ({e})")))?;
    let ck = CertifiedKey::new(chain, signer);
    match ck.keys_match() {
        Ok(()) => Ok(Arc::new(ck)),
        // The provider cannot tell: rustls accepts it, and so does nuncio.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(Arc::new(ck)),
        Err(rustls::Error::InconsistentKeys(_)) => Err(bad_key(
            "KEY_VALUES_MISMATCH: the private key does not match the certificate's public key"
                .into(),
        )),
        // An X.509 v1 certificate (Envoy's own examples have one):
        // BoringSSL serves it, and clients decide whether to trust it;
        // webpki cannot read its key to compare, so only that check is
        // skipped.
        Err(e) if format!("{e:?}").contains("UnsupportedCertVersion") => {
            tracing::warn!(
                certificate = %cert.chain.describe(),
                "an X.509 v1 certificate: served, but its key could not be checked against it"
            );
            Ok(Arc::new(ck))
        }
        Err(e) => Err(TlsError::at(
            &cert.origin,
            TlsErrorKind::BadChain {
                from: format!("{} ({e})", cert.chain.describe()),
            },
        )),
    }
}

/// A CA bundle as a root store (at least one usable certificate).
pub fn load_ca(ds: &DataSource, origin: &Origin) -> Result<RootCertStore, TlsError> {
    let bad = || {
        TlsError::at(
            origin,
            TlsErrorKind::BadCa {
                from: ds.describe(),
            },
        )
    };
    let certs = load_certs(ds, origin).map_err(|e| match e.kind {
        TlsErrorKind::InvalidPath { .. } => e,
        _ => bad(),
    })?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(bad());
    }
    Ok(roots)
}

/// The CRLs of a PEM `DataSource` (at least one).
pub fn load_crls(
    ds: &DataSource,
    origin: &Origin,
) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let pem = read(ds, origin)?;
    let bad = || {
        TlsError::at(
            origin,
            TlsErrorKind::BadCrl {
                from: ds.describe(),
            },
        )
    };
    let crls = CertificateRevocationListDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad())?;
    if crls.is_empty() {
        return Err(bad());
    }
    Ok(crls)
}

/// SHA-256 of `data` with the provider's own hash.
pub fn sha256(provider: &CryptoProvider, data: &[u8]) -> Option<[u8; 32]> {
    let hash = provider.cipher_suites.iter().find_map(|s| {
        let h = match s {
            rustls::SupportedCipherSuite::Tls13(t) => t.common.hash_provider,
            rustls::SupportedCipherSuite::Tls12(t) => t.common.hash_provider,
        };
        (h.algorithm() == HashAlgorithm::SHA256).then_some(h)
    })?;
    <[u8; 32]>::try_from(hash.hash(data).as_ref()).ok()
}

/// The certificate's pin: SHA-256 of its DER (`verify_certificate_hash`).
pub fn cert_hash(provider: &CryptoProvider, cert: &CertificateDer<'_>) -> Option<[u8; 32]> {
    sha256(provider, cert.as_ref())
}

/// The SPKI pin: SHA-256 of the certificate's SubjectPublicKeyInfo
/// (`verify_certificate_spki`); `None` if the certificate does not parse.
pub fn spki_hash(provider: &CryptoProvider, cert: &CertificateDer<'_>) -> Option<[u8; 32]> {
    let parsed = rustls::server::ParsedCertificate::try_from(cert).ok()?;
    sha256(provider, parsed.subject_public_key_info().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testcerts::{CertKind, TestCerts};

    fn origin() -> Origin {
        Origin {
            file: "t.yaml".into(),
            line: 3,
            col: 5,
            path: "x.tls_certificates[0]".into(),
        }
    }

    fn tc(chain: DataSource, key: DataSource) -> TlsCertificate {
        TlsCertificate {
            chain,
            key,
            origin: origin(),
        }
    }

    #[test]
    fn loads_matching_pairs() {
        let t = TestCerts::new();
        let p = crate::provider();
        for kind in [CertKind::EcdsaP256, CertKind::Rsa2048] {
            let (c, k) = t.leaf(kind, "a.example.com");
            let ck = load_certified_key(&tc(c, k), &p).unwrap();
            assert_eq!(ck.cert.len(), 1);
        }
    }

    #[test]
    fn mismatched_key_is_envoys_error() {
        let t = TestCerts::new();
        let p = crate::provider();
        let (c, _) = t.leaf(CertKind::EcdsaP256, "a");
        let (_, k) = t.leaf(CertKind::EcdsaP256, "b");
        let path = k.describe();
        let e = load_certified_key(&tc(c.clone(), k), &p).unwrap_err();
        let ce: nuncio_config::ConfigError = e.into();
        assert!(
            ce.message
                .starts_with(&format!("Failed to load private key from {path}, Cause:")),
            "{ce}"
        );
        assert_eq!(ce.line, 3);
        // An RSA key for an ECDSA certificate.
        let (_, rk) = t.leaf(CertKind::Rsa2048, "c");
        assert!(load_certified_key(&tc(c, rk), &p).is_err());
    }

    #[test]
    fn missing_and_garbage() {
        let p = crate::provider();
        let e = load_certified_key(
            &tc(
                DataSource::File("certs/nope.pem".into()),
                DataSource::InlineString(String::new()),
            ),
            &p,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "Invalid path: certs/nope.pem");
        let e = load_certified_key(
            &tc(
                DataSource::InlineString("garbage".into()),
                DataSource::InlineString("garbage".into()),
            ),
            &p,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Failed to load certificate chain from <inline>"
        );
        let t = TestCerts::new();
        let (c, _) = t.leaf(CertKind::EcdsaP256, "a");
        let e =
            load_certified_key(&tc(c, DataSource::InlineString("garbage".into())), &p).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Failed to load private key from <inline>, Cause:"),
            "{e}"
        );
        let e = load_ca(&DataSource::InlineString("x".into()), &origin()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Failed to load trusted CA certificates from <inline>"
        );
        let e = load_crls(&DataSource::InlineString("x".into()), &origin()).unwrap_err();
        assert_eq!(e.to_string(), "Failed to load CRL from <inline>");
    }

    #[test]
    fn ca_crl_and_pins() {
        let t = TestCerts::new();
        let p = crate::provider();
        assert_eq!(load_ca(&t.ca(), &origin()).unwrap().len(), 1);
        assert_eq!(load_crls(&t.crl(), &origin()).unwrap().len(), 1);
        let (c, _) = t.leaf(CertKind::EcdsaP256, "a");
        let der = load_certs(&c, &origin()).unwrap().remove(0);
        assert_eq!(cert_hash(&p, &der), Some(t.openssl_fingerprint(&c)));
        assert_eq!(spki_hash(&p, &der), Some(t.openssl_spki_hash(&c)));
        // The well-known digest of "abc".
        let abc = sha256(&p, b"abc").unwrap();
        assert_eq!(abc[..4], [0xba, 0x78, 0x16, 0xbf]);
    }
}
