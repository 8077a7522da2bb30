//! What admin `/certs` shows: every certificate the config's TLS contexts
//! (listener chains and clusters) load, each with its serial number, SANs
//! and validity, read from the DER (the same walk as `san.rs`).

use nuncio_config::{
    Bootstrap, CertSource, CommonTls, DataSource, Secret, SecretKind, ValidationSource,
};

use crate::san::{element, subject_alt_names, San};

/// A moment as a certificate writes it (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertTime {
    /// Year (four digits).
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=59.
    pub second: u32,
}

/// One certificate, as `/certs` describes it.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// Its file, or `<inline>`.
    pub path: String,
    /// The serial number, lowercase hex.
    pub serial: String,
    /// Its subject alternative names.
    pub sans: Vec<San>,
    /// notBefore.
    pub valid_from: Option<CertTime>,
    /// notAfter.
    pub expiration: Option<CertTime>,
}

/// The certificates of one TLS context.
#[derive(Debug, Clone, Default)]
pub struct ContextCerts {
    /// The trusted CA certificates (`validation_context.trusted_ca`).
    pub ca: Vec<CertInfo>,
    /// The context's own certificates (leaf of each chain).
    pub chain: Vec<CertInfo>,
}

/// Every TLS context of `b`: listener chains (in order, the default chain
/// last), then clusters.
pub fn contexts(b: &Bootstrap) -> Vec<ContextCerts> {
    let mut out = Vec::new();
    for l in &b.listeners {
        for fc in l.filter_chains.iter().chain(&l.default_filter_chain) {
            if let Some(t) = fc.transport_socket.tls() {
                out.push(context(&t.common, &b.secrets));
            }
        }
    }
    for c in &b.clusters {
        if let Some(t) = c.transport_socket.tls() {
            out.push(context(&t.common, &b.secrets));
        }
    }
    out
}

fn context(common: &CommonTls, secrets: &[Secret]) -> ContextCerts {
    let mut ctx = ContextCerts::default();
    for source in &common.certs {
        let cert = match source {
            CertSource::Static(c) => Some(c),
            CertSource::Sds(r) => secrets.iter().find_map(|s| match &s.kind {
                SecretKind::TlsCertificate(c) if s.name == r.name => Some(c),
                _ => None,
            }),
        };
        if let Some(c) = cert {
            ctx.chain.extend(describe(&c.chain, 1));
        }
    }
    let validation = match &common.validation {
        Some(ValidationSource::Static(v) | ValidationSource::Combined(v, _)) => Some(v),
        Some(ValidationSource::Sds(r)) => secrets.iter().find_map(|s| match &s.kind {
            SecretKind::ValidationContext(v) if s.name == r.name => Some(v),
            _ => None,
        }),
        None => None,
    };
    if let Some(ca) = validation.and_then(|v| v.trusted_ca.as_ref()) {
        ctx.ca.extend(describe(ca, usize::MAX));
    }
    ctx
}

/// The first `n` certificates of a PEM source.
fn describe(ds: &DataSource, n: usize) -> Vec<CertInfo> {
    let path = match ds {
        DataSource::File(p) => p.display().to_string(),
        _ => "<inline>".to_string(),
    };
    let origin = nuncio_config::Origin::default();
    let Ok(ders) = crate::material::load_certs(ds, &origin) else {
        return Vec::new();
    };
    ders.iter()
        .take(n)
        .filter_map(|d| {
            info(d).map(|(serial, from, to)| CertInfo {
                path: path.clone(),
                serial,
                sans: subject_alt_names(d),
                valid_from: from,
                expiration: to,
            })
        })
        .collect()
}

/// Serial (hex) and validity of a certificate.
fn info(der: &[u8]) -> Option<(String, Option<CertTime>, Option<CertTime>)> {
    let (0x30, cert, _) = element(der)? else {
        return None;
    };
    let (0x30, tbs, _) = element(cert)? else {
        return None;
    };
    let mut rest = tbs;
    let (mut tag, mut body, mut next) = element(rest)?;
    if tag == 0xa0 {
        // [0] version
        rest = next;
        (tag, body, next) = element(rest)?;
    }
    if tag != 0x02 {
        return None;
    }
    let serial: String = body
        .iter()
        .skip_while(|b| **b == 0 && body.len() > 1)
        .map(|b| format!("{b:02x}"))
        .collect();
    // signature, issuer, then validity.
    let (_, _, next) = element(next)?;
    let (_, _, next) = element(next)?;
    let (0x30, validity, _) = element(next)? else {
        return None;
    };
    let (t1, b1, after) = element(validity)?;
    let (t2, b2, _) = element(after)?;
    Some((serial, time(t1, b1), time(t2, b2)))
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn time(tag: u8, b: &[u8]) -> Option<CertTime> {
    let s = std::str::from_utf8(b).ok()?.strip_suffix('Z')?;
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let (year, rest) = match tag {
        0x17 if s.len() == 12 => {
            let yy = i64::from(num(0..2)?);
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
        }
        0x18 if s.len() == 14 => (i64::from(num(0..4)?), 4),
        _ => return None,
    };
    Some(CertTime {
        year,
        month: num(rest..rest + 2)?,
        day: num(rest + 2..rest + 4)?,
        hour: num(rest + 4..rest + 6)?,
        minute: num(rest + 6..rest + 8)?,
        second: num(rest + 8..rest + 10)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_sans_and_validity_of_an_openssl_certificate() {
        let t = crate::testcerts::TestCerts::new();
        let (c, _) = t.leaf(crate::testcerts::CertKind::EcdsaP256, "front.example.com");
        let infos = describe(&c, 1);
        assert_eq!(infos.len(), 1);
        let i = &infos[0];
        let want = t.sh(&format!(
            "openssl x509 -in '{}' -noout -serial | cut -d= -f2",
            c.describe()
        ));
        let want = String::from_utf8(want).unwrap().trim().to_ascii_lowercase();
        // Byte by byte, as openssl and Envoy print it.
        assert_eq!(i.serial, want);
        assert!(i.sans.contains(&San::Dns("front.example.com".into())));
        let (from, to) = (i.valid_from.unwrap(), i.expiration.unwrap());
        assert!(from.year >= 2024 && to.year >= from.year);
        assert!((1..=12).contains(&from.month) && (1..=31).contains(&to.day));
    }

    #[test]
    fn times_in_both_forms() {
        assert_eq!(
            time(0x17, b"261208033952Z"),
            Some(CertTime {
                year: 2026,
                month: 12,
                day: 8,
                hour: 3,
                minute: 39,
                second: 52
            })
        );
        assert_eq!(time(0x18, b"20501231235959Z").map(|t| t.year), Some(2050));
        assert_eq!(time(0x17, b"2612Z"), None);
        assert!(info(&[0x30, 0x03, 0x30, 0x01, 0x00]).is_none());
    }
}
