//! A `DownstreamTlsContext` built into an `Arc<rustls::ServerConfig>`:
//! the certificates (all loaded and checked now, so a bad file fails the
//! config load), versions, suites and curves, ALPN, and the session
//! cache switch. Client certificate validation is a later step and is
//! refused here, not skipped.

use std::sync::Arc;

use nuncio_config::{CertSource, DownstreamTls, Secret, SecretKind, TlsCertificate};
use rustls::server::NoServerSessionStorage;
use rustls::ServerConfig;

use crate::error::{TlsError, TlsErrorKind};
use crate::material::load_certified_key;
use crate::params::{narrow, versions};
use crate::resolver::CertResolver;
use crate::verify::ClientVerifier;

/// The certificate a `CertSource` names: inline, or a static secret.
pub(crate) fn certificate<'a>(
    source: &'a CertSource,
    secrets: &'a [Secret],
) -> Result<&'a TlsCertificate, TlsError> {
    match source {
        CertSource::Static(c) => Ok(c),
        CertSource::Sds(r) if r.path.is_none() => secrets
            .iter()
            .find_map(|s| match &s.kind {
                SecretKind::TlsCertificate(c) if s.name == r.name => Some(c),
                _ => None,
            })
            .ok_or_else(|| {
                TlsError::at(
                    &r.origin,
                    TlsErrorKind::Params(format!("Unknown static secret: {}", r.name)),
                )
            }),
        CertSource::Sds(r) => Err(TlsError::at(
            &r.origin,
            TlsErrorKind::NotYet {
                what: "an SDS secret from a file (path_config_source)".into(),
            },
        )),
    }
}

/// Builds the server config of a listener chain's TLS context.
pub fn build_server(
    tls: &DownstreamTls,
    secrets: &[Secret],
) -> Result<Arc<ServerConfig>, TlsError> {
    let common = &tls.common;
    let not_yet =
        |what: &str| TlsError::at(&common.origin, TlsErrorKind::NotYet { what: what.into() });
    if tls.session.timeout.is_some() {
        return Err(not_yet("session_timeout"));
    }
    let provider = Arc::new(narrow(crate::provider(), &common.params, &common.origin)?);
    let mut keys = Vec::with_capacity(common.certs.len());
    for source in &common.certs {
        keys.push(load_certified_key(
            certificate(source, secrets)?,
            &provider,
        )?);
    }
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions(&common.params))
        .map_err(|e| TlsError::at(&common.origin, TlsErrorKind::Rustls(e.to_string())))?;
    let builder = match &common.validation {
        Some(source) => {
            let v = crate::client::validation(source, secrets)?;
            let (roots, check) = crate::verify::context(v, &provider)?;
            let verifier = ClientVerifier::new(
                Arc::clone(&provider),
                roots,
                tls.require_client_certificate,
                check,
            )
            .map_err(|e| TlsError::at(&v.origin, TlsErrorKind::Rustls(e)))?;
            builder.with_client_cert_verifier(Arc::new(verifier))
        }
        None if tls.require_client_certificate => {
            return Err(not_yet(
                "require_client_certificate without a validation_context",
            ))
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(CertResolver::new(keys)));
    config.alpn_protocols = common.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    // BoringSSL (Envoy) uses the server's preference unless
    // prefer_client_ciphers, which nuncio refuses.
    config.ignore_client_order = true;
    if tls.session.disable_stateful {
        config.session_storage = Arc::new(NoServerSessionStorage {});
    }
    // Envoy (BoringSSL) issues session tickets unless told not to; the
    // ticket key is made at start and kept for the process, as Envoy's is
    // without `session_ticket_keys`.
    if !tls.session.disable_stateless {
        config.ticketer = ticketer()
            .map_err(|e| TlsError::at(&common.origin, TlsErrorKind::Rustls(e.to_string())))?;
    }
    Ok(Arc::new(config))
}

/// The compiled-in provider's session ticket encrypter.
fn ticketer() -> Result<Arc<dyn rustls::server::ProducesTickets>, rustls::Error> {
    #[cfg(feature = "aws-lc-rs")]
    {
        rustls::crypto::aws_lc_rs::Ticketer::new()
    }
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    {
        rustls::crypto::ring::Ticketer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::build_client;
    use crate::testcerts::{handshake, CertKind, TestCerts};
    use nuncio_config::tls::{decode_downstream_str, decode_upstream_str};
    use nuncio_config::DataSource;

    fn files(c: &DataSource, k: &DataSource) -> String {
        format!(
            "{{certificate_chain: {{filename: '{}'}}, private_key: {{filename: '{}'}}}}",
            c.describe(),
            k.describe()
        )
    }

    #[test]
    fn serves_rsa_and_ecdsa_with_alpn() {
        let t = TestCerts::new();
        let (ec, eck) = t.leaf(CertKind::EcdsaP256, "front.example.com");
        let (rsa, rsak) = t.leaf(CertKind::Rsa2048, "front.example.com");
        let ds = decode_downstream_str(
            "t.yaml",
            &format!(
                "common_tls_context: {{tls_certificates: [{}, {}], alpn_protocols: ['h2,http/1.1']}}",
                files(&ec, &eck),
                files(&rsa, &rsak)
            ),
        )
        .unwrap();
        let server = build_server(&ds, &[]).unwrap();
        assert_eq!(
            server.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let us = decode_upstream_str(
            "t.yaml",
            &format!(
                "{{sni: front.example.com, common_tls_context: {{tls_params: {{tls_maximum_protocol_version: TLSv1_3}}, validation_context: {{trusted_ca: {{filename: '{}'}}}}, alpn_protocols: [h2]}}}}",
                t.ca().describe()
            ),
        )
        .unwrap();
        let client = build_client(&us, &[], false).unwrap();
        let (c, s) = handshake(&client, &server).unwrap();
        assert_eq!(c.alpn_protocol(), Some(&b"h2"[..]));
        assert_eq!(s.server_name(), Some("front.example.com"));
        assert_eq!(c.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    }

    #[test]
    fn refuses_what_it_does_not_build_yet() {
        let t = TestCerts::new();
        let (c, k) = t.leaf(CertKind::EcdsaP256, "a");
        let ds = decode_downstream_str(
            "t.yaml",
            &format!(
                "require_client_certificate: true\ncommon_tls_context: {{tls_certificates: [{}]}}",
                files(&c, &k)
            ),
        )
        .unwrap();
        let e = build_server(&ds, &[]).unwrap_err();
        assert!(matches!(e.kind, TlsErrorKind::NotYet { .. }), "{e}");
    }

    #[test]
    fn bad_material_fails_the_build_with_envoys_message() {
        let t = TestCerts::new();
        let (c, _) = t.leaf(CertKind::EcdsaP256, "a");
        let ds = decode_downstream_str(
            "t.yaml",
            &format!(
                "common_tls_context:\n  tls_certificates:\n  - {{certificate_chain: {{filename: '{}'}}, private_key: {{filename: certs/missing.key}}}}",
                c.describe()
            ),
        )
        .unwrap();
        let e: nuncio_config::ConfigError = build_server(&ds, &[]).unwrap_err().into();
        assert_eq!(e.message, "Invalid path: certs/missing.key");
        assert_eq!(e.path, "common_tls_context.tls_certificates[0]");
        assert_eq!(e.line, 3);
    }
}
