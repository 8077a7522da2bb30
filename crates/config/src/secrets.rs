//! `static_resources.secrets`: named certificates and validation contexts
//! that TLS contexts refer to by `tls_certificate_sds_secret_configs` and
//! `validation_context_sds_secret_config` (without an `sds_config`).

use crate::decode::{Result, Val};
use crate::tls::decode_certificate;
use crate::tls::{
    CertSource, CommonTls, SdsRef, TlsCertificate, TransportSocket, ValidationSource,
};
use crate::tls_validation::{decode_validation, Validation};
use crate::{Bootstrap, ConfigError};

/// A static secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Secret {
    /// The name contexts refer to.
    pub name: String,
    /// What it holds.
    pub kind: SecretKind,
}

/// What a secret holds.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretKind {
    /// `tls_certificate`.
    TlsCertificate(TlsCertificate),
    /// `validation_context`.
    ValidationContext(Validation),
}

pub(crate) fn decode_secret(v: &Val) -> Result<Secret> {
    let o = v.obj()?;
    let name = o.req("name")?.non_empty_str()?;
    let cert = o.get("tls_certificate");
    let vc = o.get("validation_context");
    o.finish_with(&["session_ticket_keys", "generic_secret"])?;
    let kind = match (cert, vc) {
        (Some(c), None) => SecretKind::TlsCertificate(decode_certificate(&c)?),
        (None, Some(c)) => SecretKind::ValidationContext(decode_validation(&c)?),
        _ => {
            return Err(
                o.err("a secret needs exactly one of 'tls_certificate', 'validation_context'")
            )
        }
    };
    Ok(Secret { name, kind })
}

fn check_common(c: &CommonTls, secrets: &[Secret]) -> std::result::Result<(), ConfigError> {
    let has = |r: &SdsRef, cert: bool| {
        r.path.is_some()
            || secrets.iter().any(|s| {
                s.name == r.name
                    && matches!(
                        (&s.kind, cert),
                        (SecretKind::TlsCertificate(_), true)
                            | (SecretKind::ValidationContext(_), false)
                    )
            })
    };
    for cs in &c.certs {
        if let CertSource::Sds(r) = cs {
            if !has(r, true) {
                return Err(r.origin.error(format!("Unknown static secret: {}", r.name)));
            }
        }
    }
    let vr = match &c.validation {
        Some(ValidationSource::Sds(r)) | Some(ValidationSource::Combined(_, r)) => Some(r),
        _ => None,
    };
    if let Some(r) = vr {
        if !has(r, false) {
            return Err(r.origin.error(format!(
                "Unknown static certificate validation context: {}",
                r.name
            )));
        }
    }
    Ok(())
}

/// Checks that every secret a TLS context names without an SDS file is a
/// static secret of the right kind (Envoy's messages).
pub(crate) fn check_references(b: &Bootstrap) -> std::result::Result<(), ConfigError> {
    for l in &b.listeners {
        for fc in l.filter_chains.iter().chain(&l.default_filter_chain) {
            if let TransportSocket::Tls(t) = &fc.transport_socket {
                check_common(&t.common, &b.secrets)?;
            }
        }
    }
    for c in &b.clusters {
        let sockets = std::iter::once(&c.transport_socket).chain(
            c.transport_socket_matches
                .iter()
                .map(|m| &m.transport_socket),
        );
        for s in sockets {
            if let TransportSocket::Tls(t) = s {
                check_common(&t.common, &b.secrets)?;
            }
        }
    }
    Ok(())
}
