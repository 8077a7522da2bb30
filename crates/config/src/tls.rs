//! TLS transport sockets: `envoy.transport_sockets.tls` with a
//! `DownstreamTlsContext` (listeners) or an `UpstreamTlsContext`
//! (clusters), and `raw_buffer` (plain TCP). Decoded with Envoy's checks;
//! the certificate files themselves are read by `nuncio-tls`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::datasource::{decode_data_source, DataSource};
use crate::decode::{Obj, Result, Val};
use crate::error::Origin;
use crate::listener::{type_name, typed_or_v2};
use crate::tls_params::{decode_tls_params, TlsParams};
use crate::tls_validation::{decode_validation, Validation};

/// A transport socket: plain TCP or TLS with context `T`
/// ([`DownstreamTls`] on listeners, [`UpstreamTls`] on clusters).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum TransportSocket<T> {
    /// `raw_buffer`, or no transport socket.
    #[default]
    Plain,
    /// `envoy.transport_sockets.tls`.
    Tls(Box<T>),
}

impl<T> TransportSocket<T> {
    /// The TLS context, if this is TLS.
    pub fn tls(&self) -> Option<&T> {
        match self {
            TransportSocket::Plain => None,
            TransportSocket::Tls(t) => Some(t),
        }
    }
}

/// A certificate and its private key (`TlsCertificate`).
#[derive(Debug, Clone, PartialEq)]
pub struct TlsCertificate {
    /// `certificate_chain`: PEM, leaf first.
    pub chain: DataSource,
    /// `private_key`: PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: DataSource,
    /// Where it was written.
    pub origin: Origin,
}

/// A reference to a secret (`SdsSecretConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdsRef {
    /// The secret's name.
    pub name: String,
    /// The SDS file (`path_config_source`); `None`: a secret of
    /// `static_resources.secrets`.
    pub path: Option<PathBuf>,
    /// Where it was written (unknown names are reported there).
    pub origin: Origin,
}

/// Where a certificate comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum CertSource {
    /// `tls_certificates`.
    Static(TlsCertificate),
    /// `tls_certificate_sds_secret_configs`.
    Sds(SdsRef),
}

/// Where the validation context comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ValidationSource {
    /// `validation_context`.
    Static(Validation),
    /// `validation_context_sds_secret_config`.
    Sds(SdsRef),
    /// `combined_validation_context`: the default context merged with
    /// the secret's.
    Combined(Validation, SdsRef),
}

/// `CommonTlsContext`.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonTls {
    /// `tls_params`.
    pub params: TlsParams,
    /// Certificates, in config order.
    pub certs: Vec<CertSource>,
    /// How the peer is verified; `None`: not at all.
    pub validation: Option<ValidationSource>,
    /// `alpn_protocols`, comma-joined entries split as Envoy does.
    pub alpn: Vec<String>,
    /// Where it was written (`common_tls_context`).
    pub origin: Origin,
}

/// Session resumption settings of a server context.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionCfg {
    /// `disable_stateless_session_resumption` (no tickets).
    pub disable_stateless: bool,
    /// `disable_stateful_session_resumption` (no session cache).
    pub disable_stateful: bool,
    /// `session_timeout`.
    pub timeout: Option<Duration>,
}

/// `DownstreamTlsContext`.
#[derive(Debug, Clone, PartialEq)]
pub struct DownstreamTls {
    /// The common part.
    pub common: CommonTls,
    /// `require_client_certificate`.
    pub require_client_certificate: bool,
    /// Session resumption.
    pub session: SessionCfg,
}

/// `UpstreamTlsContext`.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamTls {
    /// The common part.
    pub common: CommonTls,
    /// `sni`; `None`: no SNI is sent (Envoy's default).
    pub sni: Option<String>,
    /// `max_session_keys` (default 1; 0 disables resumption).
    pub max_session_keys: u32,
    /// `enforce_rsa_key_usage`.
    pub enforce_rsa_key_usage: bool,
}

/// The v3 type names of the transport socket configs.
pub(crate) const DOWNSTREAM_TYPE: &str =
    "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
pub(crate) const UPSTREAM_TYPE: &str =
    "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const RAW_BUFFER_TYPE: &str = "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";
const TLS_NAMES: &[&str] = &["envoy.transport_sockets.tls", "tls"];
const RAW_NAMES: &[&str] = &["envoy.transport_sockets.raw_buffer", "raw_buffer"];

/// Decodes a `TransportSocket` whose TLS form takes `tls_type` (the v3
/// type name) and is read by `decode`.
pub(crate) fn decode_transport_socket<T>(
    v: &Val,
    tls_type: &str,
    decode: impl Fn(&Val) -> Result<T>,
) -> Result<TransportSocket<T>> {
    let o = v.obj()?;
    let name = o.req("name")?.str()?;
    let t = typed_or_v2(&o)?;
    o.finish()?;
    let by_type = t.type_url.as_deref().map(type_name);
    let is_tls = match by_type {
        Some(ty) => ty == tls_type || ty == DOWNSTREAM_TYPE || ty == UPSTREAM_TYPE,
        None => TLS_NAMES.contains(&name.as_str()),
    };
    let is_raw = match by_type {
        Some(ty) => ty == RAW_BUFFER_TYPE,
        None => RAW_NAMES.contains(&name.as_str()),
    };
    if is_raw {
        if let Some(c) = &t.config {
            let co = c.obj()?;
            co.ignore("@type");
            co.finish()?;
        }
        return Ok(TransportSocket::Plain);
    }
    if !is_tls {
        let what = t.type_url.as_deref().unwrap_or(&name);
        return Err(v.err(format!(
            "transport socket '{what}' is not supported; nuncio supports envoy.transport_sockets.tls and envoy.transport_sockets.raw_buffer"
        )));
    }
    if let Some(ty) = by_type {
        if ty != tls_type {
            let want = if tls_type == UPSTREAM_TYPE {
                "an UpstreamTlsContext (a cluster's side)"
            } else {
                "a DownstreamTlsContext (a listener's side)"
            };
            return Err(v.err(format!(
                "this transport socket takes {want}: type.googleapis.com/{tls_type}, got '{ty}'"
            )));
        }
    }
    // No typed_config: Envoy uses an empty context.
    let ctx = match &t.config {
        Some(c) => decode(c)?,
        None => {
            let empty = crate::yaml::Node {
                kind: crate::yaml::NodeKind::Map(Vec::new()),
                mark: v.node.mark,
            };
            decode(&Val {
                ctx: v.ctx,
                node: &empty,
                path: format!("{}.typed_config", v.path),
            })?
        }
    };
    Ok(TransportSocket::Tls(Box::new(ctx)))
}

pub(crate) fn decode_certificate(v: &Val) -> Result<TlsCertificate> {
    let o = v.obj()?;
    let chain = o.get("certificate_chain");
    let key = o.get("private_key");
    o.finish_with(&[
        "pkcs12",
        "password",
        "private_key_provider",
        "ocsp_staple",
        "signed_certificate_timestamp",
        "watched_directory",
    ])?;
    let Some(key) = key else {
        return Err(o.err(
            "missing required field 'private_key' (Envoy: Failed to load incomplete private key)",
        ));
    };
    let Some(chain) = chain else {
        return Err(o.err(
            "missing required field 'certificate_chain' (Envoy: Failed to load incomplete certificate)",
        ));
    };
    Ok(TlsCertificate {
        chain: decode_data_source(&chain)?,
        key: decode_data_source(&key)?,
        origin: v.origin(),
    })
}

/// Decodes an SDS `ConfigSource`: only a file (`path_config_source` or the
/// deprecated `path`); gRPC and ADS are refused.
fn decode_sds_path(v: &Val) -> Result<PathBuf> {
    let o = v.obj()?;
    let pcs = o.get("path_config_source");
    let legacy = o.get("path");
    if let Some(r) = o.get("resource_api_version") {
        r.enumeration(&[("V3", ()), ("AUTO", ())])?;
    }
    o.finish_with(&[
        "api_config_source",
        "ads",
        "self",
        "initial_fetch_timeout",
        "authorities",
    ])?;
    let pv = match (pcs, legacy) {
        (Some(p), None) => {
            let po = p.obj()?;
            let pv = po.req("path")?;
            po.finish_with(&["watched_directory"])?;
            pv
        }
        (None, Some(l)) => l,
        (Some(_), Some(l)) => {
            return Err(l.err("give 'path_config_source' or the deprecated 'path', not both"))
        }
        (None, None) => {
            return Err(o.err(
                "nuncio reads SDS secrets from a file only: give 'path_config_source: {path: ...}' (gRPC and ADS are not supported yet)",
            ))
        }
    };
    let path = pv.non_empty_str()?;
    if !Path::new(&path).exists() {
        return Err(pv.err(format!(
            "paths must refer to an existing path in the system: '{path}' does not exist"
        )));
    }
    if !path.contains('/') {
        return Err(pv.err(format!(
            "invalid file path '{path}': an SDS path needs a directory part, such as ./{path}"
        )));
    }
    Ok(PathBuf::from(path))
}

fn decode_sds_ref(v: &Val) -> Result<SdsRef> {
    let o = v.obj()?;
    let name = o.req("name")?.non_empty_str()?;
    let path = o
        .get("sds_config")
        .map(|c| decode_sds_path(&c))
        .transpose()?;
    o.finish()?;
    Ok(SdsRef {
        name,
        path,
        origin: v.origin(),
    })
}

fn decode_alpn(v: &Val) -> Result<Vec<String>> {
    let joined = v.str_list()?.join(",");
    if joined.is_empty() {
        return Ok(Vec::new());
    }
    let out: Vec<String> = joined.split(',').map(str::to_string).collect();
    if out.iter().any(|p| p.is_empty() || p.len() > 255) {
        return Err(v.err(format!(
            "invalid ALPN protocol list '{joined}': names must be 1 to 255 bytes"
        )));
    }
    Ok(out)
}

pub(crate) fn decode_common(v: &Val) -> Result<CommonTls> {
    let o = v.obj()?;
    let params = o
        .get("tls_params")
        .map(|p| decode_tls_params(&p))
        .transpose()?
        .unwrap_or_default();
    let mut certs = Vec::new();
    for c in o
        .get("tls_certificates")
        .map(|l| l.list())
        .transpose()?
        .unwrap_or_default()
    {
        certs.push(CertSource::Static(decode_certificate(&c)?));
    }
    for c in o
        .get("tls_certificate_sds_secret_configs")
        .map(|l| l.list())
        .transpose()?
        .unwrap_or_default()
    {
        certs.push(CertSource::Sds(decode_sds_ref(&c)?));
    }
    let static_vc = o.get("validation_context");
    let sds_vc = o.get("validation_context_sds_secret_config");
    let combined = o.get("combined_validation_context");
    let validation = match (static_vc, sds_vc, combined) {
        (None, None, None) => None,
        (Some(s), None, None) => Some(ValidationSource::Static(decode_validation(&s)?)),
        (None, Some(s), None) => Some(ValidationSource::Sds(decode_sds_ref(&s)?)),
        (None, None, Some(c)) => {
            let co = c.obj()?;
            let d = decode_validation(&co.req("default_validation_context")?)?;
            let s = decode_sds_ref(&co.req("validation_context_sds_secret_config")?)?;
            co.finish_with(&["validation_context_certificate_provider_instance"])?;
            Some(ValidationSource::Combined(d, s))
        }
        _ => return Err(o.err(
            "give one of 'validation_context', 'validation_context_sds_secret_config', 'combined_validation_context'",
        )),
    };
    let alpn = o
        .get("alpn_protocols")
        .map(|a| decode_alpn(&a))
        .transpose()?
        .unwrap_or_default();
    o.finish_with(&[
        "tls_certificate_provider_instance",
        "custom_tls_certificate_selector",
        "tls_certificate_certificate_provider",
        "tls_certificate_certificate_provider_instance",
        "validation_context_certificate_provider",
        "validation_context_certificate_provider_instance",
        "custom_handshaker",
        "key_log",
    ])?;
    Ok(CommonTls {
        params,
        certs,
        validation,
        alpn,
        origin: v.origin(),
    })
}

/// Refuses `key` unless it is absent or `false`.
fn only_false(o: &Obj, key: &'static str, does: &str) -> Result<()> {
    o.only_if(key, |v| Ok(!v.bool()?), does)
}

pub(crate) fn decode_downstream(v: &Val) -> Result<DownstreamTls> {
    let o = v.obj()?;
    o.ignore("@type");
    let common = o
        .get("common_tls_context")
        .map(|c| decode_common(&c))
        .transpose()?;
    let flag = |k: &'static str| -> Result<bool> {
        o.get(k)
            .map(|b| b.bool())
            .transpose()
            .map(|b| b == Some(true))
    };
    let require_client_certificate = flag("require_client_certificate")?;
    let session = SessionCfg {
        disable_stateless: flag("disable_stateless_session_resumption")?,
        disable_stateful: flag("disable_stateful_session_resumption")?,
        timeout: o.get("session_timeout").map(|d| d.duration()).transpose()?,
    };
    if let Some(p) = o.get("ocsp_staple_policy") {
        let lenient = p.enumeration(&[
            ("LENIENT_STAPLING", true),
            ("STRICT_STAPLING", false),
            ("MUST_STAPLE", false),
        ])?;
        if !lenient {
            return Err(p.err(
                "ocsp_staple_policy other than LENIENT_STAPLING is not supported yet (nuncio does not staple OCSP responses)",
            ));
        }
    }
    only_false(&o, "require_sni", "nuncio accepts handshakes without SNI")?;
    only_false(
        &o,
        "full_scan_certs_on_sni_mismatch",
        "nuncio takes the first certificate whose key type the client supports",
    )?;
    only_false(
        &o,
        "prefer_client_ciphers",
        "nuncio uses the server's cipher order",
    )?;
    o.finish_with(&[
        "session_ticket_keys",
        "session_ticket_keys_sds_secret_config",
        "tls_session_ticket_key_sds",
    ])?;
    let Some(common) = common else {
        return Err(v.err("No TLS certificates found for server context"));
    };
    let has_static = common
        .certs
        .iter()
        .any(|c| matches!(c, CertSource::Static(_)));
    let has_sds = common.certs.iter().any(|c| matches!(c, CertSource::Sds(_)));
    if has_static && has_sds {
        return Err(v.err("SDS and non-SDS TLS certificates may not be mixed in server contexts"));
    }
    if common.certs.is_empty() {
        return Err(v.err("No TLS certificates found for server context"));
    }
    Ok(DownstreamTls {
        common,
        require_client_certificate,
        session,
    })
}

pub(crate) fn decode_upstream(v: &Val) -> Result<UpstreamTls> {
    let o = v.obj()?;
    o.ignore("@type");
    let common = match o.get("common_tls_context") {
        Some(c) => decode_common(&c)?,
        None => CommonTls {
            params: TlsParams::default(),
            certs: Vec::new(),
            validation: None,
            alpn: Vec::new(),
            origin: v.origin(),
        },
    };
    let sni = match o.get("sni") {
        Some(s) => {
            let name = s.str()?;
            if name.len() > 255 {
                return Err(s.err("sni must be at most 255 bytes"));
            }
            Some(name).filter(|n| !n.is_empty())
        }
        None => None,
    };
    let max_session_keys = o
        .get("max_session_keys")
        .map(|m| m.u32())
        .transpose()?
        .unwrap_or(1);
    let enforce_rsa_key_usage = o
        .get("enforce_rsa_key_usage")
        .map(|b| b.bool())
        .transpose()?
        .unwrap_or(false);
    only_false(
        &o,
        "allow_renegotiation",
        "nuncio's TLS (rustls) never renegotiates",
    )?;
    o.finish_with(&["auto_host_sni", "auto_sni_san_validation"])?;
    if common
        .certs
        .iter()
        .filter(|c| matches!(c, CertSource::Static(_)))
        .count()
        > 1
    {
        return Err(v.err("Multiple TLS certificates are not supported for client contexts"));
    }
    Ok(UpstreamTls {
        common,
        sni,
        max_session_keys,
        enforce_rsa_key_usage,
    })
}

/// Decodes a `DownstreamTlsContext` from text (the `typed_config`), for
/// `nuncio-tls`'s tests and tools.
pub fn decode_downstream_str(
    name: &str,
    text: &str,
) -> std::result::Result<DownstreamTls, crate::ConfigError> {
    crate::decode::decode_str(name, text, decode_downstream)
}

/// Decodes an `UpstreamTlsContext` from text (the `typed_config`), for
/// `nuncio-tls`'s tests and tools.
pub fn decode_upstream_str(
    name: &str,
    text: &str,
) -> std::result::Result<UpstreamTls, crate::ConfigError> {
    crate::decode::decode_str(name, text, decode_upstream)
}
