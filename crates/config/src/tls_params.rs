//! `TlsParameters`: protocol versions, cipher suites, ECDH curves and
//! signature algorithms, checked against the names BoringSSL (so Envoy)
//! accepts, with Envoy's messages.

use crate::decode::{Result, Val};

/// A TLS protocol version (`tls_minimum/maximum_protocol_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.0 (rustls offers 1.2 and up; see docs/envoy-differences.md).
    V1_0,
    /// TLS 1.1.
    V1_1,
    /// TLS 1.2.
    V1_2,
    /// TLS 1.3.
    V1_3,
}

impl TlsVersion {
    /// Envoy's enum name (`TLSv1_2`).
    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::V1_0 => "TLSv1_0",
            TlsVersion::V1_1 => "TLSv1_1",
            TlsVersion::V1_2 => "TLSv1_2",
            TlsVersion::V1_3 => "TLSv1_3",
        }
    }
}

/// `tls_params`, with Envoy's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsParams {
    /// Lowest version (default TLSv1_2, Envoy's default for both sides).
    pub min: TlsVersion,
    /// Highest version (default TLSv1_3; a client's is TLSv1_2 unless
    /// `max_set`, as in Envoy: see `max_set`).
    pub max: TlsVersion,
    /// `tls_maximum_protocol_version` was set to a version (not absent,
    /// not `TLS_AUTO`). Envoy's default maximum is TLSv1_3 for servers but
    /// TLSv1_2 for clients (`UpstreamTlsContext`); nuncio-tls's client
    /// applies that when this is false.
    pub max_set: bool,
    /// `cipher_suites` for TLS 1.2 in BoringSSL's names, in order;
    /// `[A|B]` groups kept as written. Empty: the default list.
    pub ciphers: Vec<String>,
    /// `ecdh_curves` in BoringSSL's names. Empty: the default list.
    pub curves: Vec<String>,
    /// `signature_algorithms` (IANA names). Empty: the default list.
    pub signature_algorithms: Vec<String>,
}

impl Default for TlsParams {
    fn default() -> Self {
        TlsParams {
            min: TlsVersion::V1_2,
            max: TlsVersion::V1_3,
            max_set: false,
            ciphers: Vec::new(),
            curves: Vec::new(),
            signature_algorithms: Vec::new(),
        }
    }
}

/// The TLS ≤ 1.2 cipher suite names BoringSSL's strict cipher list takes
/// (checked one by one against Envoy 1.40).
pub const BORINGSSL_CIPHERS: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-PSK-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-PSK-AES128-CBC-SHA",
    "ECDHE-PSK-AES256-CBC-SHA",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA",
    "AES256-SHA",
    "PSK-AES128-CBC-SHA",
    "PSK-AES256-CBC-SHA",
    "DES-CBC3-SHA",
];

/// The ECDH curve names Envoy 1.40 accepts (BoringSSL's, aliases included).
pub const BORINGSSL_CURVES: &[&str] = &[
    "X25519",
    "x25519",
    "P-256",
    "prime256v1",
    "P-384",
    "secp384r1",
    "P-521",
    "secp521r1",
    "X25519MLKEM768",
];

/// The signature algorithm names nuncio takes (IANA names, as BoringSSL).
pub const SIGNATURE_ALGORITHMS: &[&str] = &[
    "rsa_pkcs1_sha1",
    "rsa_pkcs1_sha256",
    "rsa_pkcs1_sha384",
    "rsa_pkcs1_sha512",
    "ecdsa_sha1",
    "ecdsa_secp256r1_sha256",
    "ecdsa_secp384r1_sha384",
    "ecdsa_secp521r1_sha512",
    "rsa_pss_rsae_sha256",
    "rsa_pss_rsae_sha384",
    "rsa_pss_rsae_sha512",
    "ed25519",
];

fn version(v: &Val) -> Result<Option<TlsVersion>> {
    v.enumeration(&[
        ("TLS_AUTO", None),
        ("TLSv1_0", Some(TlsVersion::V1_0)),
        ("TLSv1_1", Some(TlsVersion::V1_1)),
        ("TLSv1_2", Some(TlsVersion::V1_2)),
        ("TLSv1_3", Some(TlsVersion::V1_3)),
    ])
}

/// Splits each entry on ':' as BoringSSL does with Envoy's joined list.
fn joined_items(list: &[String]) -> Vec<&str> {
    list.iter().flat_map(|s| s.split(':')).collect()
}

/// Checks `cipher_suites`: Envoy joins the list with ':' and BoringSSL
/// rejects it if any item (or member of an `[A|B]` group) is unknown.
fn check_ciphers(v: &Val, list: &[String]) -> Result<()> {
    let mut rejected = Vec::new();
    for item in joined_items(list) {
        let inner = item
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(item);
        for name in inner.split('|') {
            if !BORINGSSL_CIPHERS.contains(&name) {
                rejected.push(name);
            }
        }
    }
    if rejected.is_empty() {
        return Ok(());
    }
    Err(v.err(format!(
        "Failed to initialize cipher suites {}. The following ciphers were rejected when tried individually: {}",
        list.join(":"),
        rejected.join(", ")
    )))
}

pub(crate) fn decode_tls_params(v: &Val) -> Result<TlsParams> {
    let o = v.obj()?;
    let mut p = TlsParams::default();
    if let Some(min) = o.get("tls_minimum_protocol_version") {
        p.min = version(&min)?.unwrap_or(TlsVersion::V1_2);
    }
    let maxv = o.get("tls_maximum_protocol_version");
    if let Some(max) = &maxv {
        let v = version(max)?;
        p.max_set = v.is_some();
        p.max = v.unwrap_or(TlsVersion::V1_3);
        if p.max < TlsVersion::V1_2 {
            return Err(max.err(format!(
                "tls_maximum_protocol_version {} is not supported: nuncio's TLS (rustls) speaks TLSv1_2 and TLSv1_3 only",
                p.max.name()
            )));
        }
    }
    if p.min > p.max {
        // Envoy accepts this and then fails every handshake.
        return Err(o.err(format!(
            "tls_minimum_protocol_version {} is above tls_maximum_protocol_version {}: no handshake could succeed",
            p.min.name(),
            p.max.name()
        )));
    }
    if let Some(c) = o.get("cipher_suites") {
        p.ciphers = c.str_list()?;
        check_ciphers(&c, &p.ciphers)?;
    }
    if let Some(c) = o.get("ecdh_curves") {
        p.curves = c.str_list()?;
        if joined_items(&p.curves)
            .iter()
            .any(|n| !BORINGSSL_CURVES.contains(n))
        {
            return Err(c.err(format!(
                "Failed to initialize ECDH curves {}",
                p.curves.join(":")
            )));
        }
    }
    if let Some(s) = o.get("signature_algorithms") {
        p.signature_algorithms = s.str_list()?;
        if joined_items(&p.signature_algorithms)
            .iter()
            .any(|n| !SIGNATURE_ALGORITHMS.contains(n))
        {
            return Err(s.err(format!(
                "Failed to initialize TLS signature algorithms {} (nuncio takes the IANA names: {})",
                p.signature_algorithms.join(":"),
                SIGNATURE_ALGORITHMS.join(", ")
            )));
        }
    }
    o.finish_with(&["compliance_policies"])?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_str;

    fn p(text: &str) -> Result<TlsParams> {
        decode_str("t.yaml", text, decode_tls_params)
    }

    #[test]
    fn defaults_and_versions() {
        assert_eq!(p("{}").unwrap(), TlsParams::default());
        let t = p("{tls_minimum_protocol_version: TLSv1_3, tlsMaximumProtocolVersion: TLS_AUTO}")
            .unwrap();
        assert_eq!((t.min, t.max), (TlsVersion::V1_3, TlsVersion::V1_3));
        // Accepted (rustls then offers 1.2+), as Envoy accepts it.
        assert_eq!(
            p("{tls_minimum_protocol_version: TLSv1_0}").unwrap().min,
            TlsVersion::V1_0
        );
        let e = p("{tls_maximum_protocol_version: TLSv1_1}").unwrap_err();
        assert!(e.message.contains("TLSv1_2 and TLSv1_3 only"), "{e}");
        assert_eq!(e.path, "tls_maximum_protocol_version");
        let e = p("{tls_minimum_protocol_version: TLSv1_4}").unwrap_err();
        assert!(e.message.contains("unknown value 'TLSv1_4'"), "{e}");
        let e = p("{tls_minimum_protocol_version: TLSv1_3, tls_maximum_protocol_version: TLSv1_2}")
            .unwrap_err();
        assert!(e.message.contains("above"), "{e}");
    }

    #[test]
    fn ciphers_as_envoy() {
        let t = p("cipher_suites: ['[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]', AES128-SHA, 'ECDHE-RSA-AES128-GCM-SHA256:DES-CBC3-SHA']").unwrap();
        assert_eq!(t.ciphers.len(), 3);
        let e = p("cipher_suites: [TLS_AES_128_GCM_SHA256]").unwrap_err();
        assert_eq!(e.message, "Failed to initialize cipher suites TLS_AES_128_GCM_SHA256. The following ciphers were rejected when tried individually: TLS_AES_128_GCM_SHA256");
        let e = p("cipher_suites: [FOO, AES128-SHA, BAR]").unwrap_err();
        assert_eq!(e.message, "Failed to initialize cipher suites FOO:AES128-SHA:BAR. The following ciphers were rejected when tried individually: FOO, BAR");
        let e = p("cipher_suites: ['[ECDHE-RSA-AES128-GCM-SHA256|FOO]']").unwrap_err();
        assert!(e.message.ends_with("individually: FOO"), "{e}");
        assert!(p("cipher_suites: [ecdhe-rsa-aes128-gcm-sha256]").is_err());
        assert!(p("cipher_suites: [HIGH]").is_err());
    }

    #[test]
    fn curves_and_sigalgs() {
        assert!(p("ecdh_curves: [X25519, P-256, 'X25519MLKEM768:P-384', prime256v1]").is_ok());
        let e = p("ecdh_curves: [FOO, X25519, BAR]").unwrap_err();
        assert_eq!(e.message, "Failed to initialize ECDH curves FOO:X25519:BAR");
        assert!(p("ecdh_curves: [P-224]").is_err());
        assert!(p("signature_algorithms: [rsa_pss_rsae_sha256, ed25519]").is_ok());
        let e = p("signature_algorithms: [foo]").unwrap_err();
        assert!(
            e.message
                .starts_with("Failed to initialize TLS signature algorithms foo"),
            "{e}"
        );
    }
}
