//! A certificate's subject alternative names, read straight from its DER
//! (the extension 2.5.29.17 of the TBSCertificate), and Envoy's SAN
//! matching over them (`match_typed_subject_alt_names`): a DNS matcher
//! `exact: a.example.com` matches a `*.example.com` SAN (one label), IP
//! addresses compare as text. Only the few DER forms a certificate uses
//! are read; anything malformed is "no SANs", never a panic.

use std::net::IpAddr;

use nuncio_config::{SanMatcher, SanType, StringPattern};

/// One subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    /// dNSName.
    Dns(String),
    /// uniformResourceIdentifier (a SPIFFE ID, say).
    Uri(String),
    /// rfc822Name.
    Email(String),
    /// iPAddress.
    Ip(IpAddr),
}

/// A DER element: its tag and contents, and what follows it.
pub(crate) fn element(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &x| (a << 8) | x as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The elements of a constructed value, in order.
fn children(mut b: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (tag, body, rest) = element(b)?;
        b = rest;
        Some((tag, body))
    })
}

/// The DER of the subjectAltName OID, 2.5.29.17.
const SAN_OID: &[u8] = &[0x55, 0x1d, 0x11];

/// The SANs of a certificate (empty if it has none or does not parse).
pub fn subject_alt_names(cert_der: &[u8]) -> Vec<San> {
    let Some((0x30, cert, _)) = element(cert_der) else {
        return Vec::new();
    };
    let Some((0x30, tbs, _)) = element(cert) else {
        return Vec::new();
    };
    // Extensions are the [3] field of the TBSCertificate.
    let Some((_, exts)) = children(tbs).find(|(tag, _)| *tag == 0xa3) else {
        return Vec::new();
    };
    let Some((0x30, exts, _)) = element(exts) else {
        return Vec::new();
    };
    for (_, ext) in children(exts) {
        let mut parts = children(ext);
        if parts.next() != Some((0x06, SAN_OID)) {
            continue;
        }
        // `critical` may come before the OCTET STRING.
        let Some((_, value)) = parts.find(|(tag, _)| *tag == 0x04) else {
            return Vec::new();
        };
        let Some((0x30, names, _)) = element(value) else {
            return Vec::new();
        };
        return children(names).filter_map(general_name).collect();
    }
    Vec::new()
}

fn general_name((tag, body): (u8, &[u8])) -> Option<San> {
    let text = || std::str::from_utf8(body).ok().map(str::to_string);
    match tag {
        0x81 => text().map(San::Email),
        0x82 => text().map(San::Dns),
        0x86 => text().map(San::Uri),
        0x87 => match body.len() {
            4 => {
                let a: [u8; 4] = body.try_into().ok()?;
                Some(San::Ip(IpAddr::from(a)))
            }
            16 => {
                let a: [u8; 16] = body.try_into().ok()?;
                Some(San::Ip(IpAddr::from(a)))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Whether any of `matchers` matches any of `sans` (Envoy's rule; no
/// matchers: true).
pub fn any_matches(matchers: &[SanMatcher], sans: &[San]) -> bool {
    matchers.is_empty() || matchers.iter().any(|m| sans.iter().any(|s| matches(m, s)))
}

fn matches(m: &SanMatcher, san: &San) -> bool {
    match (m.kind, san) {
        (SanType::Dns | SanType::Any, San::Dns(d)) => dns_matches(m, d),
        (SanType::Uri | SanType::Any, San::Uri(u)) => m.matcher.matches(u),
        (SanType::Email | SanType::Any, San::Email(e)) => m.matcher.matches(e),
        (SanType::IpAddress | SanType::Any, San::Ip(ip)) => m.matcher.matches(&ip.to_string()),
        _ => false,
    }
}

/// A DNS SAN: the matcher as written, and for an exact matcher a
/// wildcard SAN covering its first label (Envoy's `dnsNameMatch`).
fn dns_matches(m: &SanMatcher, san: &str) -> bool {
    if m.matcher.matches(san) {
        return true;
    }
    let (StringPattern::Exact(want), Some(suffix)) = (&m.matcher.pattern, san.strip_prefix('*'))
    else {
        return false;
    };
    match want.find('.') {
        Some(dot) if dot > 0 => want[dot..].eq_ignore_ascii_case(suffix),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuncio_config::StringMatcher;

    fn dns(exact: &str) -> SanMatcher {
        SanMatcher {
            kind: SanType::Dns,
            matcher: StringMatcher::exact(exact),
        }
    }

    #[test]
    fn wildcards_cover_one_label_for_exact_matchers() {
        let sans = [San::Dns("*.example.com".into())];
        assert!(any_matches(&[dns("a.example.com")], &sans));
        assert!(!any_matches(&[dns("a.b.example.com")], &sans));
        assert!(!any_matches(&[dns("example.com")], &sans));
        assert!(any_matches(&[dns("*.example.com")], &sans));
        assert!(any_matches(&[], &sans));
        assert!(!any_matches(&[dns("x")], &[]));
    }

    #[test]
    fn types_are_kept_apart_and_ips_compare_as_text() {
        let sans = [
            San::Uri("spiffe://blog/service1".into()),
            San::Ip("127.0.0.1".parse().unwrap()),
        ];
        let uri = SanMatcher {
            kind: SanType::Uri,
            matcher: StringMatcher::exact("spiffe://blog/service1"),
        };
        assert!(any_matches(&[uri], &sans));
        let ip = SanMatcher {
            kind: SanType::IpAddress,
            matcher: StringMatcher::exact("127.0.0.1"),
        };
        assert!(any_matches(&[ip], &sans));
        assert!(!any_matches(&[dns("spiffe://blog/service1")], &sans));
    }

    #[test]
    fn reads_the_sans_openssl_wrote() {
        let t = crate::testcerts::TestCerts::new();
        let (c, _) = t.leaf(crate::testcerts::CertKind::EcdsaP256, "front.example.com");
        let nuncio_config::DataSource::File(path) = &c else {
            panic!("a file")
        };
        let pem = std::fs::read(path).unwrap();
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
        let sans = subject_alt_names(&der);
        assert!(
            sans.contains(&San::Dns("front.example.com".into())),
            "{sans:?}"
        );
    }

    #[test]
    fn garbage_has_no_sans_and_never_panics() {
        assert!(subject_alt_names(&[]).is_empty());
        assert!(subject_alt_names(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_empty());
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for len in 0..300 {
            let b: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = subject_alt_names(&b);
        }
    }
}
