//! An `UpstreamTlsContext` built into an `Arc<rustls::ClientConfig>`: the
//! server check (none without a validation context, as Envoy), the client
//! certificate, ALPN (when none is configured: `h2` for HTTP/2 clusters,
//! `http/1.1` for the others, as Envoy's connection pools offer them),
//! the versions (TLS 1.2 at most unless `tls_maximum_protocol_version`
//! says otherwise: Envoy's client default), session resumption
//! (`max_session_keys`) and the SNI to send.

use std::sync::Arc;

use nuncio_config::{
    Secret, SecretKind, TlsParams, TlsVersion, UpstreamTls, Validation, ValidationSource,
};
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::sign::CertifiedKey;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use crate::error::{TlsError, TlsErrorKind};
use crate::material::load_certified_key;
use crate::params::{narrow, versions};
use crate::server::certificate;
use crate::verify::ServerVerifier;

/// A cluster's TLS client side.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// The rustls config, shared by every connection of the cluster.
    pub config: Arc<ClientConfig>,
    /// The SNI from `sni`. `None`: SNI is off in `config` (Envoy sends none
    /// without `sni`), and the connector passes the endpoint's IP address
    /// as the server name.
    pub sni: Option<ServerName<'static>>,
}

/// Always presents the one configured client certificate.
#[derive(Debug)]
struct OneClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for OneClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.0
            .key
            .choose_scheme(sigschemes)
            .map(|_| Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The validation context of `source`: inline, or a static secret.
pub(crate) fn validation<'a>(
    source: &'a ValidationSource,
    secrets: &'a [Secret],
) -> Result<&'a Validation, TlsError> {
    match source {
        ValidationSource::Static(v) => Ok(v),
        ValidationSource::Sds(r) if r.path.is_none() => secrets
            .iter()
            .find_map(|s| match &s.kind {
                SecretKind::ValidationContext(v) if s.name == r.name => Some(v),
                _ => None,
            })
            .ok_or_else(|| {
                TlsError::at(
                    &r.origin,
                    TlsErrorKind::Params(format!(
                        "Unknown static certificate validation context: {}",
                        r.name
                    )),
                )
            }),
        ValidationSource::Sds(r) | ValidationSource::Combined(_, r) => Err(TlsError::at(
            &r.origin,
            TlsErrorKind::NotYet {
                what: "an SDS or combined validation context".into(),
            },
        )),
    }
}

/// A client's `tls_params` with Envoy's client default filled in: without
/// a `tls_maximum_protocol_version`, TLS 1.2 at most (unless the minimum
/// is TLS 1.3: then 1.3, so that a handshake can happen).
fn client_params(p: &TlsParams) -> TlsParams {
    let mut p = p.clone();
    if !p.max_set && p.min <= TlsVersion::V1_2 {
        p.max = TlsVersion::V1_2;
    }
    p
}

/// Builds a cluster's client side; `http2` for clusters that speak HTTP/2.
pub fn build_client(
    tls: &UpstreamTls,
    secrets: &[Secret],
    http2: bool,
) -> Result<ClientTls, TlsError> {
    let common = &tls.common;
    if tls.enforce_rsa_key_usage {
        return Err(TlsError::at(
            &common.origin,
            TlsErrorKind::NotYet {
                what: "enforce_rsa_key_usage".into(),
            },
        ));
    }
    let provider = Arc::new(narrow(crate::provider(), &common.params, &common.origin)?);
    let verifier = match &common.validation {
        None => ServerVerifier::accept_any(Arc::clone(&provider)),
        Some(source) => {
            let v = validation(source, secrets)?;
            let (roots, check) = crate::verify::context(v, &provider)?;
            ServerVerifier::trusted_ca(Arc::clone(&provider), roots, check)
        }
    };
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions(&client_params(&common.params)))
        .map_err(|e| TlsError::at(&common.origin, TlsErrorKind::Rustls(e.to_string())))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match common.certs.first() {
        None => builder.with_no_client_auth(),
        Some(source) => {
            let ck = load_certified_key(certificate(source, secrets)?, &provider)?;
            builder.with_client_cert_resolver(Arc::new(OneClientCert(ck)))
        }
    };
    config.alpn_protocols = if common.alpn.is_empty() {
        // Envoy's pools offer their protocol when the context names none.
        vec![if http2 {
            b"h2".to_vec()
        } else {
            b"http/1.1".to_vec()
        }]
    } else {
        common.alpn.iter().map(|p| p.as_bytes().to_vec()).collect()
    };
    config.resumption = match tls.max_session_keys {
        0 => Resumption::disabled(),
        n => Resumption::in_memory_sessions(n as usize),
    };
    let sni = match &tls.sni {
        Some(name) => Some(ServerName::try_from(name.clone()).map_err(|_| {
            TlsError::at(
                &common.origin,
                TlsErrorKind::Params(format!("sni '{name}' is not a valid DNS name")),
            )
        })?),
        None => None,
    };
    config.enable_sni = sni.is_some();
    Ok(ClientTls {
        config: Arc::new(config),
        sni,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::build_server;
    use crate::testcerts::{handshake, CertKind, TestCerts};
    use nuncio_config::tls::{decode_downstream_str, decode_upstream_str};

    fn server_for(t: &TestCerts, name: &str) -> Arc<rustls::ServerConfig> {
        let (c, k) = t.leaf(CertKind::EcdsaP256, name);
        let ds = decode_downstream_str(
            "t.yaml",
            &format!(
                "common_tls_context: {{tls_certificates: [{{certificate_chain: {{filename: '{}'}}, private_key: {{filename: '{}'}}}}]}}",
                c.describe(),
                k.describe()
            ),
        )
        .unwrap();
        build_server(&ds, &[]).unwrap()
    }

    #[test]
    fn no_validation_accepts_any_certificate_and_sends_no_sni() {
        let t = TestCerts::new();
        let server = server_for(&t, "origin.example.com");
        let us = decode_upstream_str("t.yaml", "{}").unwrap();
        let client = build_client(&us, &[], true).unwrap();
        assert!(client.sni.is_none());
        assert!(!client.config.enable_sni);
        assert_eq!(client.config.alpn_protocols, vec![b"h2".to_vec()]);
        let (_, s) = handshake(&client, &server).unwrap();
        assert_eq!(s.server_name(), None);
    }

    #[test]
    fn trusted_ca_checks_the_chain_not_the_name() {
        let t = TestCerts::new();
        let other = TestCerts::new();
        let server = server_for(&t, "origin.example.com");
        let with_ca = |ca: &TestCerts| {
            decode_upstream_str(
                "t.yaml",
                &format!(
                    "{{sni: some.other.name, common_tls_context: {{validation_context: {{trusted_ca: {{filename: '{}'}}}}}}}}",
                    ca.ca().describe()
                ),
            )
            .unwrap()
        };
        let good = build_client(&with_ca(&t), &[], false).unwrap();
        let (c, _) = handshake(&good, &server).unwrap();
        // Envoy's client defaults: TLS 1.2 at most, ALPN http/1.1 for an
        // HTTP/1.1 cluster.
        assert_eq!(good.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert_eq!(c.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
        let bad = build_client(&with_ca(&other), &[], false).unwrap();
        let e = handshake(&bad, &server).unwrap_err();
        // Same CA name, other key: the chain does not verify.
        assert!(e.contains("InvalidCertificate"), "{e}");
    }

    #[test]
    fn tls_maximum_protocol_version_lifts_the_client_default() {
        let t = TestCerts::new();
        let server = server_for(&t, "origin.example.com");
        for (params, want) in [
            ("{}", rustls::ProtocolVersion::TLSv1_2),
            (
                "{tls_maximum_protocol_version: TLS_AUTO}",
                rustls::ProtocolVersion::TLSv1_2,
            ),
            (
                "{tls_maximum_protocol_version: TLSv1_3}",
                rustls::ProtocolVersion::TLSv1_3,
            ),
            (
                "{tls_minimum_protocol_version: TLSv1_3}",
                rustls::ProtocolVersion::TLSv1_3,
            ),
        ] {
            let us = decode_upstream_str(
                "t.yaml",
                &format!("{{common_tls_context: {{tls_params: {params}}}}}"),
            )
            .unwrap();
            let client = build_client(&us, &[], false).unwrap();
            let (c, _) = handshake(&client, &server).unwrap();
            assert_eq!(c.protocol_version(), Some(want), "{params}");
        }
    }

    #[test]
    fn client_certificate_and_resumption() {
        let t = TestCerts::new();
        let (c, k) = t.leaf(CertKind::Rsa2048, "client");
        let us = decode_upstream_str(
            "t.yaml",
            &format!(
                "{{max_session_keys: 0, common_tls_context: {{tls_certificates: [{{certificate_chain: {{filename: '{}'}}, private_key: {{filename: '{}'}}}}], alpn_protocols: [http/1.1]}}}}",
                c.describe(),
                k.describe()
            ),
        )
        .unwrap();
        let client = build_client(&us, &[], true).unwrap();
        assert!(client.config.client_auth_cert_resolver.has_certs());
        assert_eq!(client.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let us = decode_upstream_str(
            "t.yaml",
            "{common_tls_context: {validation_context: {verify_certificate_spki: [NvqYIYSbgK2vCJpQhObf77vv+bQWtc5ek5RIOwPiC9A=]}}}",
        )
        .unwrap();
        assert!(matches!(
            build_client(&us, &[], false).unwrap_err().kind,
            TlsErrorKind::NotYet { .. }
        ));
    }
}
