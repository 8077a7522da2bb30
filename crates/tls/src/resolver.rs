//! The server's certificate choice: a context may hold several
//! certificates (RSA and ECDSA side by side, or one per name). For each
//! handshake, walk them in config order and take the first whose names
//! cover the SNI and whose key can sign with a scheme the client offers;
//! if none covers the SNI, the first the client can use (Envoy's default
//! without `full_scan_certs_on_sni_mismatch`).

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::ServerName;

/// Chooses among a context's certificates per handshake.
#[derive(Debug)]
pub struct CertResolver {
    keys: Vec<Arc<CertifiedKey>>,
}

impl CertResolver {
    /// A resolver over `keys`, in config order.
    pub fn new(keys: Vec<Arc<CertifiedKey>>) -> CertResolver {
        CertResolver { keys }
    }

    /// The certificates it chooses from.
    pub fn keys(&self) -> &[Arc<CertifiedKey>] {
        &self.keys
    }

    /// The choice for a client that sent `sni` and offers `schemes`.
    pub fn choose(
        &self,
        sni: Option<&str>,
        schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let usable = |k: &&Arc<CertifiedKey>| k.key.choose_scheme(schemes).is_some();
        if let Some(name) = sni.and_then(|n| ServerName::try_from(n).ok()) {
            if let Some(k) = self.keys.iter().filter(usable).find(|k| covers(k, &name)) {
                return Some(Arc::clone(k));
            }
        }
        self.keys.iter().find(usable).map(Arc::clone)
    }
}

/// Whether the leaf certificate's names cover `name` (wildcards as in
/// RFC 6125: one label).
fn covers(k: &CertifiedKey, name: &ServerName<'_>) -> bool {
    let Some(leaf) = k.cert.first() else {
        return false;
    };
    webpki::EndEntityCert::try_from(leaf)
        .map(|ee| ee.verify_is_valid_for_subject_name(name).is_ok())
        .unwrap_or(false)
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.choose(hello.server_name(), hello.signature_schemes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::material::load_certified_key;
    use crate::testcerts::{CertKind, TestCerts};
    use nuncio_config::{Origin, TlsCertificate};
    use rustls::SignatureScheme as S;

    fn key(t: &TestCerts, kind: CertKind, name: &str) -> Arc<CertifiedKey> {
        let (chain, key) = t.leaf(kind, name);
        load_certified_key(
            &TlsCertificate {
                chain,
                key,
                origin: Origin::default(),
            },
            &crate::provider(),
        )
        .unwrap()
    }

    #[test]
    fn by_key_type_then_name() {
        let t = TestCerts::new();
        let ec = key(&t, CertKind::EcdsaP256, "a.example.com");
        let rsa = key(&t, CertKind::Rsa2048, "a.example.com");
        let other = key(&t, CertKind::EcdsaP256, "b.example.com");
        let r = CertResolver::new(vec![Arc::clone(&ec), Arc::clone(&rsa), Arc::clone(&other)]);
        let both = [S::ECDSA_NISTP256_SHA256, S::RSA_PSS_SHA256];
        let ptr = |k: Option<Arc<CertifiedKey>>| k.map(|k| Arc::as_ptr(&k));
        assert_eq!(
            ptr(r.choose(Some("a.example.com"), &both)),
            Some(Arc::as_ptr(&ec))
        );
        assert_eq!(
            ptr(r.choose(Some("a.example.com"), &[S::RSA_PSS_SHA256])),
            Some(Arc::as_ptr(&rsa))
        );
        assert_eq!(
            ptr(r.choose(Some("b.example.com"), &both)),
            Some(Arc::as_ptr(&other))
        );
        // No name matches: the first usable certificate.
        assert_eq!(ptr(r.choose(Some("zzz"), &both)), Some(Arc::as_ptr(&ec)));
        assert_eq!(
            ptr(r.choose(None, &[S::RSA_PKCS1_SHA256])),
            Some(Arc::as_ptr(&rsa))
        );
        // Nothing the client can verify.
        assert!(r.choose(None, &[S::ED25519]).is_none());
    }
}
