//! Envoy's `ssl.*` stats of a listener (`listener.<address>.ssl.`) or a
//! cluster (`cluster.<name>.ssl.`): handshakes, failures, resumptions, and
//! one counter per cipher suite, version and curve agreed, named as
//! BoringSSL names them (`ssl.ciphers.TLS_AES_128_GCM_SHA256`,
//! `ssl.versions.TLSv1.3`, `ssl.curves.X25519`).

use std::sync::Mutex;

use nuncio_stats::{Counter, Scope};

use crate::conn::Negotiated;

/// One side's `ssl.*` stats.
#[derive(Debug)]
pub struct SslStats {
    scope: Scope,
    /// `ssl.handshake`: handshakes completed.
    pub handshake: Counter,
    /// `ssl.connection_error`: handshakes (or records) that failed.
    pub connection_error: Counter,
    /// `ssl.no_certificate`: handshakes where the peer sent none.
    pub no_certificate: Counter,
    /// `ssl.session_reused`.
    pub session_reused: Counter,
    /// `ssl.fail_verify_error`: the peer's certificate failed the chain
    /// checks.
    pub fail_verify_error: Counter,
    /// `ssl.fail_verify_san`: no SAN matched.
    pub fail_verify_san: Counter,
    /// `ssl.fail_verify_no_cert`: a certificate was required and none came.
    pub fail_verify_no_cert: Counter,
    /// `ssl.fail_verify_cert_hash`: no certificate hash or SPKI pin matched.
    pub fail_verify_cert_hash: Counter,
    /// Counters by (kind, code), made on first use.
    seen: Mutex<Vec<(Kind, u16, Counter)>>,
}

/// Which dynamic family a counter belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Cipher,
    Version,
    Curve,
}

impl SslStats {
    /// The stats under `scope` (`listener.<address>.` or `cluster.<name>.`).
    pub fn new(scope: &Scope) -> Self {
        let s = scope.sub("ssl.", "ssl.", &[]);
        // Envoy shows these from the start; nuncio staples no OCSP
        // response, so they stay 0.
        for z in [
            "ocsp_staple_failed",
            "ocsp_staple_omitted",
            "ocsp_staple_requests",
            "ocsp_staple_responses",
        ] {
            let _ = s.counter(z);
        }
        SslStats {
            handshake: s.counter("handshake"),
            connection_error: s.counter("connection_error"),
            no_certificate: s.counter("no_certificate"),
            session_reused: s.counter("session_reused"),
            fail_verify_error: s.counter("fail_verify_error"),
            fail_verify_san: s.counter("fail_verify_san"),
            fail_verify_no_cert: s.counter("fail_verify_no_cert"),
            fail_verify_cert_hash: s.counter("fail_verify_cert_hash"),
            scope: s,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Counts a completed handshake and what it agreed.
    pub fn handshake_done(&self, n: &Negotiated) {
        self.handshake.inc();
        if !n.peer_certificate {
            self.no_certificate.inc();
        }
        if n.resumed {
            self.session_reused.inc();
        }
        if let Some(s) = n.suite {
            self.dynamic(Kind::Cipher, u16::from(s), || suite_name(s));
        }
        if let Some(v) = n.version {
            self.dynamic(Kind::Version, u16::from(v), || version_name(v));
        }
        if let Some(g) = n.group {
            self.dynamic(Kind::Curve, u16::from(g), || group_name(g));
        }
    }

    fn dynamic(&self, kind: Kind, code: u16, name: impl FnOnce() -> String) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, _, c)) = seen.iter().find(|(k, c, _)| *k == kind && *c == code) {
            c.inc();
            return;
        }
        let n = name();
        let c = match kind {
            Kind::Cipher => self.scope.counter_tagged(
                &format!("ciphers.{n}"),
                "ciphers",
                ("envoy.ssl_cipher", n),
            ),
            Kind::Curve => {
                self.scope
                    .counter_tagged(&format!("curves.{n}"), "curves", ("envoy.ssl_curve", n))
            }
            Kind::Version => self.scope.counter(&format!("versions.{n}")),
        };
        c.inc();
        seen.push((kind, code, c));
    }
}

/// Counts a failed handshake as Envoy sorts it: a certificate that failed
/// verification (`fail_verify_san` for a name mismatch, else
/// `fail_verify_error`), a required certificate that never came
/// (`fail_verify_no_cert`), or any other TLS error (`connection_error`).
pub fn count_failure(stats: &SslStats, e: &rustls::Error) {
    use rustls::{CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(c) if crate::peer::SanMismatch::is(c) => stats.fail_verify_san.inc(),
        E::InvalidCertificate(C::ApplicationVerificationFailure) => {
            stats.fail_verify_cert_hash.inc()
        }
        E::InvalidCertificate(_) => stats.fail_verify_error.inc(),
        E::NoCertificatesPresented => stats.fail_verify_no_cert.inc(),
        _ => stats.connection_error.inc(),
    }
}

/// A suite's name as BoringSSL (and so Envoy) prints it.
fn suite_name(s: rustls::CipherSuite) -> String {
    use rustls::CipherSuite as C;
    match s {
        C::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256".into(),
        C::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384".into(),
        C::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256".into(),
        other => crate::params::boringssl_name(other)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{other:?}")),
    }
}

fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        other => format!("{other:?}"),
    }
}

fn group_name(g: rustls::NamedGroup) -> String {
    match g {
        rustls::NamedGroup::X25519 => "X25519".into(),
        rustls::NamedGroup::secp256r1 => "P-256".into(),
        rustls::NamedGroup::secp384r1 => "P-384".into(),
        rustls::NamedGroup::secp521r1 => "P-521".into(),
        rustls::NamedGroup::X25519MLKEM768 => "X25519MLKEM768".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_boringssls() {
        assert_eq!(
            suite_name(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256),
            "TLS_AES_128_GCM_SHA256"
        );
        assert_eq!(
            suite_name(rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
            "ECDHE-RSA-AES128-GCM-SHA256"
        );
        assert_eq!(version_name(rustls::ProtocolVersion::TLSv1_3), "TLSv1.3");
        assert_eq!(group_name(rustls::NamedGroup::secp256r1), "P-256");
    }

    #[test]
    fn a_handshake_counts_its_suite_version_and_curve_once_each() {
        let store = nuncio_stats::Store::new();
        let s = SslStats::new(&store.root().sub("listener.x.", "listener.", &[]));
        let n = Negotiated {
            version: Some(rustls::ProtocolVersion::TLSv1_3),
            suite: Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256),
            group: Some(rustls::NamedGroup::X25519),
            resumed: false,
            peer_certificate: false,
        };
        s.handshake_done(&n);
        s.handshake_done(&n);
        assert_eq!(store.value("listener.x.ssl.handshake"), Some(2));
        assert_eq!(
            store.value("listener.x.ssl.ciphers.TLS_AES_128_GCM_SHA256"),
            Some(2)
        );
        assert_eq!(store.value("listener.x.ssl.versions.TLSv1.3"), Some(2));
        assert_eq!(store.value("listener.x.ssl.curves.X25519"), Some(2));
        assert_eq!(store.value("listener.x.ssl.session_reused"), Some(0));
        // As Envoy counts it: no client certificate, required or not.
        assert_eq!(store.value("listener.x.ssl.no_certificate"), Some(2));
    }

    #[test]
    fn a_san_mismatch_counts_fail_verify_san_and_alerts_certificate_unknown() {
        use rustls::{AlertDescription, CertificateError as C, Error as E};
        let store = nuncio_stats::Store::new();
        let s = SslStats::new(&store.root().sub("listener.x.", "listener.", &[]));
        let mismatch = crate::peer::SanMismatch::error();
        count_failure(&s, &mismatch);
        count_failure(&s, &E::InvalidCertificate(C::NotValidForName));
        count_failure(&s, &E::InvalidCertificate(C::UnknownIssuer));
        assert_eq!(store.value("listener.x.ssl.fail_verify_san"), Some(2));
        assert_eq!(store.value("listener.x.ssl.fail_verify_error"), Some(1));
        // The alert rustls sends for it: Envoy's (BoringSSL's) for a SAN
        // that no matcher accepts.
        let E::InvalidCertificate(c) = mismatch else {
            panic!("{mismatch:?}")
        };
        assert_eq!(
            AlertDescription::from(c),
            AlertDescription::CertificateUnknown
        );
    }
}
