//! The TLS part of `/config_dump`: transport sockets, filter chain
//! matches, listener filters and static secrets, in Envoy's v3 JSON.
//! Inline private keys are written as `[redacted]`, as Envoy does.

use serde_json::{json, Map, Value};

use crate::chain_match::{Cidr, FilterChainMatch, SourceType};
use crate::datasource::{base64_encode, DataSource};
use crate::dump::dur;
use crate::dump_filters::string_matcher;
use crate::secrets::{Secret, SecretKind};
use crate::tls::{
    CertSource, CommonTls, DownstreamTls, SdsRef, TlsCertificate, TransportSocket, UpstreamTls,
    ValidationSource, DOWNSTREAM_TYPE, UPSTREAM_TYPE,
};
use crate::tls_params::TlsParams;
use crate::tls_validation::{SanType, Validation};

/// What Envoy writes in place of a secret value.
const REDACTED: &str = "[redacted]";

fn data_source(d: &DataSource, secret: bool) -> Value {
    match d {
        DataSource::File(p) => json!({"filename": p.display().to_string()}),
        DataSource::InlineString(_) if secret => json!({"inline_string": REDACTED}),
        DataSource::InlineString(s) => json!({"inline_string": s}),
        DataSource::InlineBytes(_) if secret => {
            json!({"inline_bytes": base64_encode(REDACTED.as_bytes())})
        }
        DataSource::InlineBytes(b) => json!({"inline_bytes": base64_encode(b)}),
        DataSource::EnvironmentVariable { name, .. } => json!({"environment_variable": name}),
    }
}

fn certificate(c: &TlsCertificate) -> Value {
    json!({
        "certificate_chain": data_source(&c.chain, false),
        "private_key": data_source(&c.key, true),
    })
}

fn sds(r: &SdsRef) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), r.name.clone().into());
    if let Some(p) = &r.path {
        m.insert(
            "sds_config".into(),
            json!({"path_config_source": {"path": p.display().to_string()}, "resource_api_version": "V3"}),
        );
    }
    Value::Object(m)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn validation(v: &Validation) -> Value {
    let mut m = Map::new();
    if let Some(ca) = &v.trusted_ca {
        m.insert("trusted_ca".into(), data_source(ca, false));
    }
    let typed: Vec<Value> = v
        .sans
        .iter()
        .filter(|s| s.kind != SanType::Any)
        .map(|s| json!({"san_type": s.kind.name(), "matcher": string_matcher(&s.matcher)}))
        .collect();
    if !typed.is_empty() {
        m.insert("match_typed_subject_alt_names".into(), typed.into());
    }
    let any: Vec<Value> = v
        .sans
        .iter()
        .filter(|s| s.kind == SanType::Any)
        .map(|s| string_matcher(&s.matcher))
        .collect();
    if !any.is_empty() {
        m.insert("match_subject_alt_names".into(), any.into());
    }
    if !v.hashes.is_empty() {
        let h: Vec<String> = v.hashes.iter().map(|h| hex(h)).collect();
        m.insert("verify_certificate_hash".into(), h.into());
    }
    if !v.spki.is_empty() {
        let h: Vec<String> = v.spki.iter().map(|h| base64_encode(h)).collect();
        m.insert("verify_certificate_spki".into(), h.into());
    }
    if let Some(c) = &v.crl {
        m.insert("crl".into(), data_source(c, false));
    }
    for (k, on) in [
        ("only_verify_leaf_cert_crl", v.only_leaf_crl),
        ("allow_expired_certificate", v.allow_expired),
    ] {
        if on {
            m.insert(k.into(), true.into());
        }
    }
    Value::Object(m)
}

fn params(p: &TlsParams) -> Value {
    let mut m = Map::new();
    m.insert("tls_minimum_protocol_version".into(), p.min.name().into());
    m.insert("tls_maximum_protocol_version".into(), p.max.name().into());
    for (k, l) in [
        ("cipher_suites", &p.ciphers),
        ("ecdh_curves", &p.curves),
        ("signature_algorithms", &p.signature_algorithms),
    ] {
        if !l.is_empty() {
            m.insert(k.into(), l.clone().into());
        }
    }
    Value::Object(m)
}

fn common(c: &CommonTls) -> Value {
    let mut m = Map::new();
    m.insert("tls_params".into(), params(&c.params));
    let statics: Vec<Value> = c
        .certs
        .iter()
        .filter_map(|s| match s {
            CertSource::Static(t) => Some(certificate(t)),
            CertSource::Sds(_) => None,
        })
        .collect();
    if !statics.is_empty() {
        m.insert("tls_certificates".into(), statics.into());
    }
    let refs: Vec<Value> = c
        .certs
        .iter()
        .filter_map(|s| match s {
            CertSource::Sds(r) => Some(sds(r)),
            CertSource::Static(_) => None,
        })
        .collect();
    if !refs.is_empty() {
        m.insert("tls_certificate_sds_secret_configs".into(), refs.into());
    }
    match &c.validation {
        None => {}
        Some(ValidationSource::Static(v)) => {
            m.insert("validation_context".into(), validation(v));
        }
        Some(ValidationSource::Sds(r)) => {
            m.insert("validation_context_sds_secret_config".into(), sds(r));
        }
        Some(ValidationSource::Combined(v, r)) => {
            m.insert(
                "combined_validation_context".into(),
                json!({"default_validation_context": validation(v), "validation_context_sds_secret_config": sds(r)}),
            );
        }
    }
    if !c.alpn.is_empty() {
        m.insert("alpn_protocols".into(), c.alpn.clone().into());
    }
    Value::Object(m)
}

fn tls_socket(typed_config: Value) -> Value {
    json!({"name": "envoy.transport_sockets.tls", "typed_config": typed_config})
}

fn plain_socket() -> Value {
    json!({"name": "envoy.transport_sockets.raw_buffer", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"}})
}

fn downstream(t: &DownstreamTls) -> Value {
    let mut m = Map::new();
    m.insert(
        "@type".into(),
        format!("type.googleapis.com/{DOWNSTREAM_TYPE}").into(),
    );
    m.insert("common_tls_context".into(), common(&t.common));
    for (k, on) in [
        ("require_client_certificate", t.require_client_certificate),
        (
            "disable_stateless_session_resumption",
            t.session.disable_stateless,
        ),
        (
            "disable_stateful_session_resumption",
            t.session.disable_stateful,
        ),
    ] {
        if on {
            m.insert(k.into(), true.into());
        }
    }
    if let Some(d) = t.session.timeout {
        m.insert("session_timeout".into(), dur(d).into());
    }
    Value::Object(m)
}

fn upstream(t: &UpstreamTls) -> Value {
    let mut m = Map::new();
    m.insert(
        "@type".into(),
        format!("type.googleapis.com/{UPSTREAM_TYPE}").into(),
    );
    m.insert("common_tls_context".into(), common(&t.common));
    if let Some(s) = &t.sni {
        m.insert("sni".into(), s.clone().into());
    }
    m.insert("max_session_keys".into(), t.max_session_keys.into());
    if t.enforce_rsa_key_usage {
        m.insert("enforce_rsa_key_usage".into(), true.into());
    }
    Value::Object(m)
}

/// A listener chain's transport socket; `None` when plain (Envoy omits it).
pub(crate) fn downstream_socket(s: &TransportSocket<DownstreamTls>) -> Option<Value> {
    s.tls().map(|t| tls_socket(downstream(t)))
}

/// A cluster's transport socket; `None` when plain.
pub(crate) fn upstream_socket(s: &TransportSocket<UpstreamTls>) -> Option<Value> {
    s.tls().map(|t| tls_socket(upstream(t)))
}

/// A `transport_socket_matches` entry's socket, plain ones included.
pub(crate) fn upstream_socket_always(s: &TransportSocket<UpstreamTls>) -> Value {
    upstream_socket(s).unwrap_or_else(plain_socket)
}

fn cidrs(l: &[Cidr]) -> Value {
    l.iter()
        .map(|c| json!({"address_prefix": c.addr.to_string(), "prefix_len": c.len}))
        .collect::<Vec<_>>()
        .into()
}

/// A `filter_chain_match`; `None` when it has no criteria.
pub(crate) fn chain_match(f: &FilterChainMatch) -> Option<Value> {
    if f.is_empty() {
        return None;
    }
    let mut m = Map::new();
    if let Some(p) = f.destination_port {
        m.insert("destination_port".into(), p.into());
    }
    for (k, l) in [
        ("prefix_ranges", &f.prefix_ranges),
        (
            "direct_source_prefix_ranges",
            &f.direct_source_prefix_ranges,
        ),
        ("source_prefix_ranges", &f.source_prefix_ranges),
    ] {
        if !l.is_empty() {
            m.insert(k.into(), cidrs(l));
        }
    }
    for (k, l) in [
        ("server_names", &f.server_names),
        ("application_protocols", &f.application_protocols),
    ] {
        if !l.is_empty() {
            m.insert(k.into(), l.clone().into());
        }
    }
    if let Some(t) = &f.transport_protocol {
        m.insert("transport_protocol".into(), t.clone().into());
    }
    if f.source_type != SourceType::Any {
        m.insert("source_type".into(), f.source_type.name().into());
    }
    if !f.source_ports.is_empty() {
        m.insert("source_ports".into(), f.source_ports.clone().into());
    }
    Some(Value::Object(m))
}

/// A static secret, private keys redacted (Envoy's `SecretsConfigDump`
/// `static_secrets` entry).
pub(crate) fn secret(s: &Secret) -> Value {
    let inner = match &s.kind {
        SecretKind::TlsCertificate(c) => json!({"tls_certificate": certificate(c)}),
        SecretKind::ValidationContext(v) => json!({"validation_context": validation(v)}),
    };
    let mut m = Map::new();
    m.insert("name".into(), s.name.clone().into());
    if let Value::Object(o) = inner {
        m.extend(o);
    }
    Value::Object(m)
}
