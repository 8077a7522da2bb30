//! `tls_params` onto the crypto provider: protocol versions, TLS 1.2
//! cipher suites (BoringSSL's names) and key exchange groups (curves).
//! Names Envoy accepts but rustls does not implement (CBC, RSA key
//! exchange, PSK, 3DES suites) are dropped with a warning; a list left
//! empty is an error, since no handshake could succeed.

use nuncio_config::{Origin, TlsParams, TlsVersion};
use rustls::crypto::CryptoProvider;
use rustls::{CipherSuite, NamedGroup, SupportedCipherSuite, SupportedProtocolVersion};

use crate::error::{TlsError, TlsErrorKind};

/// The TLS 1.2 suites rustls implements, by BoringSSL name.
const CIPHERS: &[(&str, CipherSuite)] = &[
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// BoringSSL's name of a TLS 1.2 suite rustls implements.
pub(crate) fn boringssl_name(s: CipherSuite) -> Option<&'static str> {
    CIPHERS.iter().find(|(_, c)| *c == s).map(|(n, _)| *n)
}

/// Curve names (with BoringSSL's aliases) to TLS named groups.
const CURVES: &[(&str, NamedGroup)] = &[
    ("X25519", NamedGroup::X25519),
    ("x25519", NamedGroup::X25519),
    ("P-256", NamedGroup::secp256r1),
    ("prime256v1", NamedGroup::secp256r1),
    ("P-384", NamedGroup::secp384r1),
    ("secp384r1", NamedGroup::secp384r1),
    ("P-521", NamedGroup::secp521r1),
    ("secp521r1", NamedGroup::secp521r1),
    ("X25519MLKEM768", NamedGroup::X25519MLKEM768),
];

/// The versions to offer: `min..=max`, with anything below TLS 1.2 raised
/// to 1.2 (rustls has no older versions; docs/envoy-differences.md).
pub fn versions(p: &TlsParams) -> Vec<&'static SupportedProtocolVersion> {
    let mut out = Vec::new();
    if p.min <= TlsVersion::V1_2 && p.max >= TlsVersion::V1_2 {
        out.push(&rustls::version::TLS12);
    }
    if p.max >= TlsVersion::V1_3 {
        out.push(&rustls::version::TLS13);
    }
    out
}

fn is_tls12(s: &SupportedCipherSuite) -> bool {
    matches!(s, SupportedCipherSuite::Tls12(_))
}

/// The provider with its suites and groups narrowed to `p`'s lists, in
/// the configured order. TLS 1.3 suites are kept: `cipher_suites` only
/// governs TLS 1.2 in Envoy too.
pub fn narrow(
    mut provider: CryptoProvider,
    p: &TlsParams,
    origin: &Origin,
) -> Result<CryptoProvider, TlsError> {
    if !p.signature_algorithms.is_empty() {
        return Err(TlsError::at(
            origin,
            TlsErrorKind::NotYet {
                what: "tls_params.signature_algorithms".into(),
            },
        ));
    }
    if p.min < TlsVersion::V1_2 {
        tracing::warn!(
            "tls_minimum_protocol_version {} is raised to TLSv1_2: nuncio's TLS speaks TLSv1_2 and TLSv1_3 only",
            p.min.name()
        );
    }
    if !p.ciphers.is_empty() {
        let mut wanted = Vec::new();
        for name in p
            .ciphers
            .iter()
            .flat_map(|c| c.split(':'))
            .flat_map(|c| c.trim_start_matches('[').trim_end_matches(']').split('|'))
        {
            match CIPHERS.iter().find(|(n, _)| *n == name) {
                Some((_, s)) if !wanted.contains(s) => wanted.push(*s),
                Some(_) => {}
                None => tracing::warn!(
                    "cipher suite {name} is not implemented by nuncio's TLS (rustls) and is left out"
                ),
            }
        }
        let tls13: Vec<SupportedCipherSuite> = provider
            .cipher_suites
            .iter()
            .filter(|s| !is_tls12(s))
            .copied()
            .collect();
        let tls12: Vec<SupportedCipherSuite> = wanted
            .iter()
            .filter_map(|w| {
                provider
                    .cipher_suites
                    .iter()
                    .find(|s| is_tls12(s) && s.suite() == *w)
                    .copied()
            })
            .collect();
        if tls12.is_empty() && p.max < TlsVersion::V1_3 {
            return Err(TlsError::at(
                origin,
                TlsErrorKind::Params(format!(
                    "none of the cipher suites {} is implemented by nuncio's TLS, and TLS 1.3 is off: no handshake could succeed",
                    p.ciphers.join(":")
                )),
            ));
        }
        provider.cipher_suites = tls13.into_iter().chain(tls12).collect();
    }
    if !p.curves.is_empty() {
        let mut groups = Vec::new();
        for name in p.curves.iter().flat_map(|c| c.split(':')) {
            let found = CURVES
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, g)| provider.kx_groups.iter().find(|k| k.name() == *g));
            match found {
                Some(k)
                    if !groups
                        .iter()
                        .any(|x: &&dyn rustls::crypto::SupportedKxGroup| x.name() == k.name()) =>
                {
                    groups.push(*k)
                }
                Some(_) => {}
                None => tracing::warn!(
                    "ECDH curve {name} is not available in nuncio's TLS ({}) and is left out",
                    crate::PROVIDER_NAME
                ),
            }
        }
        if groups.is_empty() {
            return Err(TlsError::at(
                origin,
                TlsErrorKind::Params(format!(
                    "none of the ECDH curves {} is available in nuncio's TLS ({})",
                    p.curves.join(":"),
                    crate::PROVIDER_NAME
                )),
            ));
        }
        provider.kx_groups = groups;
    }
    Ok(provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(ciphers: &[&str], curves: &[&str]) -> TlsParams {
        TlsParams {
            ciphers: ciphers.iter().map(|s| s.to_string()).collect(),
            curves: curves.iter().map(|s| s.to_string()).collect(),
            ..TlsParams::default()
        }
    }

    #[test]
    fn version_ranges() {
        let mut p = TlsParams::default();
        assert_eq!(versions(&p).len(), 2);
        p.min = TlsVersion::V1_3;
        assert_eq!(versions(&p), vec![&rustls::version::TLS13]);
        p.min = TlsVersion::V1_0;
        p.max = TlsVersion::V1_2;
        assert_eq!(versions(&p), vec![&rustls::version::TLS12]);
    }

    #[test]
    fn ciphers_in_order_and_unknown_dropped() {
        let p = params(
            &[
                "[ECDHE-RSA-AES128-GCM-SHA256|ECDHE-RSA-CHACHA20-POLY1305]",
                "AES128-SHA",
                "ECDHE-ECDSA-AES256-GCM-SHA384",
            ],
            &[],
        );
        let pr = narrow(crate::provider(), &p, &Origin::default()).unwrap();
        let tls12: Vec<CipherSuite> = pr
            .cipher_suites
            .iter()
            .filter(|s| is_tls12(s))
            .map(|s| s.suite())
            .collect();
        assert_eq!(
            tls12,
            vec![
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
                CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            ]
        );
        assert!(pr.cipher_suites.iter().any(|s| !is_tls12(s)));
        let mut only12 = params(&["AES128-SHA"], &[]);
        only12.max = TlsVersion::V1_2;
        assert!(narrow(crate::provider(), &only12, &Origin::default()).is_err());
    }

    #[test]
    fn curves() {
        let pr = narrow(
            crate::provider(),
            &params(&[], &["P-256", "X25519:prime256v1"]),
            &Origin::default(),
        )
        .unwrap();
        let names: Vec<NamedGroup> = pr.kx_groups.iter().map(|k| k.name()).collect();
        assert_eq!(names, vec![NamedGroup::secp256r1, NamedGroup::X25519]);
        let mut p = params(&[], &[]);
        p.signature_algorithms = vec!["ed25519".into()];
        assert!(narrow(crate::provider(), &p, &Origin::default()).is_err());
    }
}
