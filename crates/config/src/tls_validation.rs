//! `CertificateValidationContext`: how a peer's certificate is checked
//! (trusted CA, SAN matchers, certificate and SPKI pins, CRL, expiry).

use crate::datasource::{base64_decode, decode_data_source, DataSource};
use crate::decode::{Result, Val};
use crate::error::Origin;
use crate::matcher::{decode_string_matcher, StringMatcher};

/// Which subject alternative names a matcher looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanType {
    /// DNS names (a wildcard SAN covers one label, as in Envoy).
    Dns,
    /// URIs (SPIFFE IDs).
    Uri,
    /// E-mail addresses.
    Email,
    /// IP addresses, compared as text.
    IpAddress,
    /// Any SAN type: the deprecated `match_subject_alt_names`.
    Any,
}

impl SanType {
    /// Envoy's enum name (`Any` has none: it dumps as `match_subject_alt_names`).
    pub fn name(self) -> &'static str {
        match self {
            SanType::Dns => "DNS",
            SanType::Uri => "URI",
            SanType::Email => "EMAIL",
            SanType::IpAddress => "IP_ADDRESS",
            SanType::Any => "",
        }
    }
}

/// One SAN matcher; a peer passes if any matcher matches any of its SANs.
#[derive(Debug, Clone, PartialEq)]
pub struct SanMatcher {
    /// The SAN type it looks at.
    pub kind: SanType,
    /// The string match.
    pub matcher: StringMatcher,
}

/// A `CertificateValidationContext`.
#[derive(Debug, Clone, PartialEq)]
pub struct Validation {
    /// `trusted_ca`: the CA bundle the chain must lead to.
    pub trusted_ca: Option<DataSource>,
    /// `match_typed_subject_alt_names` then `match_subject_alt_names`.
    pub sans: Vec<SanMatcher>,
    /// `verify_certificate_hash`: SHA-256 of the leaf certificate (DER).
    pub hashes: Vec<[u8; 32]>,
    /// `verify_certificate_spki`: SHA-256 of the leaf's SubjectPublicKeyInfo.
    pub spki: Vec<[u8; 32]>,
    /// `crl`: revocation lists (PEM).
    pub crl: Option<DataSource>,
    /// `only_verify_leaf_cert_crl`.
    pub only_leaf_crl: bool,
    /// `allow_expired_certificate`.
    pub allow_expired: bool,
    /// Where it was written (for errors found when the files are read).
    pub origin: Origin,
}

fn decode_san_matcher(v: &Val) -> Result<SanMatcher> {
    let o = v.obj()?;
    let tv = o.req("san_type")?;
    let kind = tv.enumeration(&[
        ("DNS", Some(SanType::Dns)),
        ("URI", Some(SanType::Uri)),
        ("EMAIL", Some(SanType::Email)),
        ("IP_ADDRESS", Some(SanType::IpAddress)),
        ("OTHER_NAME", None),
        ("SAN_TYPE_UNSPECIFIED", None),
    ])?;
    let Some(kind) = kind else {
        let t = tv.str()?;
        if t.eq_ignore_ascii_case("SAN_TYPE_UNSPECIFIED") {
            return Err(tv.err("san_type must not be SAN_TYPE_UNSPECIFIED"));
        }
        return Err(tv.err(
            "san_type OTHER_NAME (with an 'oid') is not supported yet; use DNS, URI, EMAIL or IP_ADDRESS",
        ));
    };
    let matcher = decode_string_matcher(&o.req("matcher")?)?;
    o.finish_with(&["oid"])?;
    Ok(SanMatcher { kind, matcher })
}

/// Parses a `verify_certificate_hash` entry: 64 hex digits, colons allowed.
fn parse_hash(v: &Val) -> Result<[u8; 32]> {
    let s = v.str()?;
    if s.len() < 64 || s.len() > 95 {
        return Err(v.err(format!(
            "value length must be between 64 and 95 characters (verify_certificate_hash), got {}",
            s.len()
        )));
    }
    let hex: String = s.chars().filter(|c| *c != ':').collect();
    let mut out = [0u8; 32];
    let bad = || v.err(format!("Invalid hex-encoded SHA-256 {s}"));
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// Parses a `verify_certificate_spki` entry: base64 of a SHA-256 (44 chars).
fn parse_spki(v: &Val) -> Result<[u8; 32]> {
    let s = v.str()?;
    if s.len() != 44 {
        return Err(v.err(format!(
            "value length must be 44 characters (verify_certificate_spki), got {}",
            s.len()
        )));
    }
    base64_decode(&s)
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| v.err(format!("Invalid base64-encoded SHA-256 {s}")))
}

pub(crate) fn decode_validation(v: &Val) -> Result<Validation> {
    let o = v.obj()?;
    let trusted_ca = o
        .get("trusted_ca")
        .map(|d| decode_data_source(&d))
        .transpose()?;
    let mut sans = Vec::new();
    if let Some(l) = o.get("match_typed_subject_alt_names") {
        for m in l.list()? {
            sans.push(decode_san_matcher(&m)?);
        }
    }
    if let Some(l) = o.get("match_subject_alt_names") {
        for m in l.list()? {
            sans.push(SanMatcher {
                kind: SanType::Any,
                matcher: decode_string_matcher(&m)?,
            });
        }
    }
    let mut hashes = Vec::new();
    for h in o
        .get("verify_certificate_hash")
        .map(|l| l.list())
        .transpose()?
        .unwrap_or_default()
    {
        hashes.push(parse_hash(&h)?);
    }
    let mut spki = Vec::new();
    for h in o
        .get("verify_certificate_spki")
        .map(|l| l.list())
        .transpose()?
        .unwrap_or_default()
    {
        spki.push(parse_spki(&h)?);
    }
    let crlv = o.get("crl");
    let crl = crlv.as_ref().map(decode_data_source).transpose()?;
    let flag = |k: &'static str| -> Result<bool> {
        o.get(k)
            .map(|b| b.bool())
            .transpose()
            .map(|b| b == Some(true))
    };
    let only_leaf_crl = flag("only_verify_leaf_cert_crl")?;
    let allow_expired = flag("allow_expired_certificate")?;
    if let Some(t) = o.get("trust_chain_verification") {
        let verify = t.enumeration(&[("VERIFY_TRUST_CHAIN", true), ("ACCEPT_UNTRUSTED", false)])?;
        if !verify {
            return Err(t.err(
                "trust_chain_verification ACCEPT_UNTRUSTED is not supported: nuncio always verifies the chain when a trusted_ca is given",
            ));
        }
    }
    o.finish_with(&[
        "custom_validator_config",
        "watched_directory",
        "system_root_certs",
        "max_verify_depth",
        "require_signed_certificate_timestamp",
        "ca_certificate_provider_instance",
    ])?;
    // Envoy's checks on a context without a CA.
    if trusted_ca.is_none() {
        if !sans.is_empty() {
            return Err(o.err(
                "SAN-based verification of peer certificates without trusted CA is insecure and not allowed",
            ));
        }
        if let (Some(c), Some(cv)) = (&crl, &crlv) {
            return Err(cv.err(format!(
                "Failed to load CRL from {} without trusted CA",
                c.describe()
            )));
        }
    }
    Ok(Validation {
        trusted_ca,
        sans,
        hashes,
        spki,
        crl,
        only_leaf_crl,
        allow_expired,
        origin: v.origin(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_str;

    fn vc(text: &str) -> Result<Validation> {
        decode_str("t.yaml", text, decode_validation)
    }

    const HASH: &str = "DF6FF72FE9116521268F6F2DD4966F51DF479883632510020CCBACA1C9B3EAAB";

    #[test]
    fn full_context() {
        let v = vc(&format!(
            "trusted_ca: {{filename: ca.pem}}\nmatch_typed_subject_alt_names:\n- {{san_type: URI, matcher: {{prefix: 'spiffe://mesh.local/'}}}}\n- {{san_type: DNS, matcher: {{exact: front}}}}\nmatch_subject_alt_names: [{{suffix: .local}}]\nverify_certificate_hash: ['{HASH}']\nverify_certificate_spki: [NvqYIYSbgK2vCJpQhObf77vv+bQWtc5ek5RIOwPiC9A=]\ncrl: {{filename: x.crl}}\nonly_verify_leaf_cert_crl: true\nallow_expired_certificate: true\ntrust_chain_verification: VERIFY_TRUST_CHAIN\n"
        ))
        .unwrap();
        assert_eq!(v.sans.len(), 3);
        assert_eq!(v.sans[0].kind, SanType::Uri);
        assert_eq!(v.sans[2].kind, SanType::Any);
        assert_eq!(v.hashes[0][0], 0xDF);
        assert_eq!(v.hashes[0][31], 0xAB);
        assert_eq!(v.spki.len(), 1);
        assert!(v.only_leaf_crl && v.allow_expired);
        assert_eq!(v.crl, Some(DataSource::File("x.crl".into())));
    }

    #[test]
    fn hashes_as_envoy() {
        let colons: String = HASH
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":");
        let v = vc(&format!("verify_certificate_hash: ['{colons}']")).unwrap();
        assert_eq!(v.hashes[0][1], 0x6F);
        let e = vc("verify_certificate_hash: [zz]").unwrap_err();
        assert!(
            e.message.contains("at least 64") || e.message.contains("between 64"),
            "{e}"
        );
        let e = vc(&format!("verify_certificate_hash: ['{HASH}1']")).unwrap_err();
        assert_eq!(e.message, format!("Invalid hex-encoded SHA-256 {HASH}1"));
        let e = vc("verify_certificate_spki: [abcd]").unwrap_err();
        assert!(e.message.contains("44 characters"), "{e}");
        let e = vc("verify_certificate_spki: ['@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@=']")
            .unwrap_err();
        assert!(
            e.message.starts_with("Invalid base64-encoded SHA-256"),
            "{e}"
        );
    }

    #[test]
    fn envoys_refusals() {
        let e = vc("match_typed_subject_alt_names: [{san_type: DNS, matcher: {exact: a}}]")
            .unwrap_err();
        assert_eq!(
            e.message,
            "SAN-based verification of peer certificates without trusted CA is insecure and not allowed"
        );
        let e = vc("crl: {filename: x.crl}").unwrap_err();
        assert_eq!(
            e.message,
            "Failed to load CRL from x.crl without trusted CA"
        );
        let e = vc("trusted_ca: {filename: a}\ntrust_chain_verification: ACCEPT_UNTRUSTED")
            .unwrap_err();
        assert!(e.message.contains("ACCEPT_UNTRUSTED"), "{e}");
        let e = vc("trusted_ca: {filename: a}\nmatch_typed_subject_alt_names: [{san_type: OTHER_NAME, matcher: {exact: a}, oid: '1.2.3'}]").unwrap_err();
        assert!(e.message.contains("OTHER_NAME"), "{e}");
        let e = vc("trusted_ca: {filename: a}\nmatch_typed_subject_alt_names: [{san_type: SAN_TYPE_UNSPECIFIED, matcher: {exact: a}}]").unwrap_err();
        assert!(e.message.contains("SAN_TYPE_UNSPECIFIED"), "{e}");
        let e = vc("custom_validator_config: {name: envoy.tls.cert_validator.spiffe}").unwrap_err();
        assert!(e.message.contains("does not support yet"), "{e}");
        // Pins alone need no CA.
        assert!(vc(&format!("verify_certificate_hash: ['{HASH}']")).is_ok());
    }
}
