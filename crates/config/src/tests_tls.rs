//! TLS decoding: §2.2 of docs/design/tls.md row by row, §2.4's samples,
//! camelCase keys, the dump (private keys redacted) and the runtime's gate.

use super::*;
use crate::decode_ungated;

const HCM: &str = r#"[{name: envoy.filters.network.http_connection_manager, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager, stat_prefix: x, route_config: {virtual_hosts: [{name: a, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: c}}]}]}, http_filters: [{name: envoy.filters.http.router, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]}}]"#;

const DS: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const US: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";

/// A listener whose one chain has `downstream` as its DownstreamTlsContext body.
fn listener_with(downstream: &str) -> String {
    format!(
        "static_resources:\n  clusters: [{{name: c}}]\n  listeners:\n  - address: {{socket_address: {{address: 127.0.0.1, port_value: 10000}}}}\n    filter_chains:\n    - filters: {HCM}\n      transport_socket:\n        name: envoy.transport_sockets.tls\n        typed_config: {{\"@type\": {DS}, {downstream}}}\n"
    )
}

/// A cluster whose transport socket has `upstream` as its UpstreamTlsContext body.
fn cluster_with(upstream: &str) -> String {
    format!(
        "static_resources:\n  clusters:\n  - name: c\n    transport_socket:\n      name: envoy.transport_sockets.tls\n      typed_config: {{\"@type\": {US}{upstream}}}\n"
    )
}

const CERT: &str = "tls_certificates: [{certificate_chain: {filename: certs/a.pem}, private_key: {filename: certs/a.key}}]";

fn chain_tls(b: &Bootstrap) -> &DownstreamTls {
    b.listeners[0].filter_chains[0]
        .transport_socket
        .tls()
        .expect("a TLS chain")
}

fn cluster_tls(b: &Bootstrap) -> &UpstreamTls {
    b.clusters[0].transport_socket.tls().expect("a TLS cluster")
}

fn bad(text: &str) -> ConfigError {
    decode_ungated("t.yaml", text).unwrap_err()
}

#[test]
fn first_slice_downstream() {
    let b = decode_ungated(
        "t.yaml",
        &listener_with(&format!("common_tls_context: {{{CERT}, tls_params: {{tls_minimum_protocol_version: TLSv1_3}}, alpn_protocols: ['h2,http/1.1']}}")),
    )
    .unwrap();
    let t = chain_tls(&b);
    assert_eq!(t.common.alpn, vec!["h2", "http/1.1"]);
    assert_eq!(t.common.params.min, TlsVersion::V1_3);
    let CertSource::Static(c) = &t.common.certs[0] else {
        panic!("static cert")
    };
    assert_eq!(c.chain, DataSource::File("certs/a.pem".into()));
    assert_eq!(c.origin.path, "static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.common_tls_context.tls_certificates[0]");
    assert!(c.origin.line > 0);
    assert!(!t.require_client_certificate);
}

#[test]
fn first_slice_upstream() {
    let b = decode_ungated(
        "t.yaml",
        &cluster_with(", sni: www.example.com, common_tls_context: {tls_params: {tls_maximum_protocol_version: TLSv1_3}}"),
    )
    .unwrap();
    let t = cluster_tls(&b);
    assert_eq!(t.sni.as_deref(), Some("www.example.com"));
    assert_eq!(t.max_session_keys, 1);
    assert!(t.common.validation.is_none());
    // No typed_config at all: Envoy's empty UpstreamTlsContext.
    let b = decode_ungated(
        "t.yaml",
        "static_resources:\n  clusters:\n  - name: c\n    transport_socket: {name: envoy.transport_sockets.tls}\n",
    )
    .unwrap();
    assert_eq!(cluster_tls(&b).sni, None);
    // raw_buffer is plain.
    let b = decode_ungated("t.yaml", "static_resources:\n  clusters:\n  - name: c\n    transport_socket: {name: envoy.transport_sockets.raw_buffer, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer}}\n").unwrap();
    assert_eq!(b.clusters[0].transport_socket, TransportSocket::Plain);
    let e = bad(&cluster_with(", common_tls_context: {tls_certificates: [{certificate_chain: {filename: a}, private_key: {filename: b}}, {certificate_chain: {filename: a}, private_key: {filename: b}}]}"));
    assert!(e.message.contains("Multiple TLS certificates"), "{e}");
}

#[test]
fn data_source_forms_and_key_checks() {
    std::env::set_var("NUNCIO_TEST_TLS_KEY", "-----BEGIN PRIVATE KEY-----");
    let b = decode_ungated("t.yaml", &listener_with("common_tls_context: {tls_certificates: [{certificate_chain: {inline_string: abc}, private_key: {environment_variable: NUNCIO_TEST_TLS_KEY}}, {certificate_chain: {inline_bytes: YWJj}, private_key: {inline_bytes: YWJj}}]}")).unwrap();
    assert_eq!(chain_tls(&b).common.certs.len(), 2);
    let e = bad(&listener_with(
        "common_tls_context: {tls_certificates: [{certificate_chain: {filename: a}}]}",
    ));
    assert!(e.message.contains("private_key"), "{e}");
    let e = bad(&listener_with(
        "common_tls_context: {tls_certificates: [{certificate_chain: {filename: a}, private_key: {}}]}",
    ));
    assert!(e.message.contains("specifier"), "{e}");
}

#[test]
fn server_context_needs_certificates() {
    let e = bad(&listener_with("common_tls_context: {}"));
    assert_eq!(e.message, "No TLS certificates found for server context");
    let e = bad(&listener_with("require_client_certificate: true"));
    assert_eq!(e.message, "No TLS certificates found for server context");
}

#[test]
fn later_column_decodes() {
    // require_client_certificate + validation_context, session settings.
    let b = decode_ungated("t.yaml", &listener_with(&format!("require_client_certificate: true, disable_stateless_session_resumption: true, session_timeout: 300s, ocsp_staple_policy: LENIENT_STAPLING, common_tls_context: {{{CERT}, validation_context: {{trusted_ca: {{filename: ca.pem}}, match_typed_subject_alt_names: [{{san_type: DNS, matcher: {{exact: front}}}}], crl: {{filename: x.crl}}, only_verify_leaf_cert_crl: true}}, tls_params: {{signature_algorithms: [ecdsa_secp256r1_sha256]}}}}"))).unwrap();
    let t = chain_tls(&b);
    assert!(t.require_client_certificate);
    assert!(t.session.disable_stateless && !t.session.disable_stateful);
    assert_eq!(t.session.timeout, Some(std::time::Duration::from_secs(300)));
    let Some(ValidationSource::Static(v)) = &t.common.validation else {
        panic!("static validation")
    };
    assert_eq!(v.sans[0].kind, SanType::Dns);
    assert!(v.only_leaf_crl);
    // Upstream: max_session_keys, client certificate.
    let b = decode_ungated("t.yaml", &cluster_with(&format!(", max_session_keys: 0, common_tls_context: {{{CERT}, validation_context: {{trusted_ca: {{filename: ca.pem}}}}}}"))).unwrap();
    assert_eq!(cluster_tls(&b).max_session_keys, 0);
    assert_eq!(cluster_tls(&b).common.certs.len(), 1);
}

#[test]
fn third_column_refused_by_name() {
    for (body, field) in [
        ("common_tls_context: {tls_certificates: [{certificate_chain: {filename: a}, private_key: {filename: b}, private_key_provider: {provider_name: x}}]}", "private_key_provider"),
        ("common_tls_context: {tls_certificate_provider_instance: {instance_name: x}}", "tls_certificate_provider_instance"),
        ("common_tls_context: {custom_handshaker: {name: x}}", "custom_handshaker"),
        (&format!("common_tls_context: {{{CERT}, validation_context: {{custom_validator_config: {{name: envoy.tls.cert_validator.spiffe}}}}}}"), "custom_validator_config"),
        (&format!("common_tls_context: {{{CERT}}}, session_ticket_keys: {{keys: [{{inline_string: abc}}]}}"), "session_ticket_keys"),
        ("common_tls_context: {tls_certificates: [{certificate_chain: {filename: a}, private_key: {filename: b}, password: {inline_string: x}}]}", "password"),
        ("common_tls_context: {tls_certificates: [{pkcs12: {filename: a}}]}", "pkcs12"),
        ("common_tls_context: {tls_certificates: [{certificate_chain: {filename: a}, private_key: {filename: b}, ocsp_staple: {filename: o}}]}", "ocsp_staple"),
    ] {
        let e = bad(&listener_with(body));
        assert!(e.path.ends_with(field), "{field}: {e}");
        assert!(e.message.contains("does not support yet"), "{field}: {e}");
    }
    for (body, words) in [
        (format!("common_tls_context: {{{CERT}}}, ocsp_staple_policy: STRICT_STAPLING"), "LENIENT_STAPLING"),
        (format!("common_tls_context: {{{CERT}, validation_context: {{trusted_ca: {{filename: a}}, trust_chain_verification: ACCEPT_UNTRUSTED}}}}"), "ACCEPT_UNTRUSTED"),
        (format!("common_tls_context: {{{CERT}, tls_params: {{tls_maximum_protocol_version: TLSv1_1}}}}"), "TLSv1_2 and TLSv1_3 only"),
        (format!("common_tls_context: {{{CERT}, tls_certificate_sds_secret_configs: [{{name: x, sds_config: {{ads: {{}}}}}}]}}"), "ads"),
    ] {
        let e = bad(&listener_with(&body));
        assert!(e.message.contains(words) || e.path.ends_with(words), "{words}: {e}");
    }
    let e = bad(&cluster_with(", allow_renegotiation: true"));
    assert!(e.message.contains("never renegotiates"), "{e}");
    assert!(decode_ungated(
        "t.yaml",
        &cluster_with(", allow_renegotiation: false, enforce_rsa_key_usage: true")
    )
    .is_ok());
    // Accepted with the minimum below 1.2 (rustls offers 1.2 and up).
    assert!(decode_ungated(
        "t.yaml",
        &listener_with(&format!(
            "common_tls_context: {{{CERT}, tls_params: {{tls_minimum_protocol_version: TLSv1_0}}}}"
        ))
    )
    .is_ok());
    // Other transport sockets and listener filters.
    let e = bad("static_resources:\n  clusters:\n  - name: c\n    transport_socket: {name: envoy.transport_sockets.proxy_protocol, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport}}\n");
    assert!(e.message.contains("transport socket 'type.googleapis.com/envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport' is not supported"), "{e}");
    let e = bad(&format!("static_resources:\n  clusters: [{{name: c}}]\n  listeners:\n  - address: {{socket_address: {{address: 127.0.0.1, port_value: 1}}}}\n    listener_filters: [{{name: envoy.filters.listener.proxy_protocol, typed_config: {{\"@type\": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol}}}}]\n    filter_chains: [{{filters: {HCM}}}]\n"));
    assert!(e.message.contains("listener filter"), "{e}");
    // The wrong context for the side.
    let e = bad(&listener_with("").replace(DS, US));
    assert!(e.message.contains("takes a DownstreamTlsContext"), "{e}");
}

#[test]
fn envoy_messages() {
    let e = bad(&listener_with(&format!(
        "common_tls_context: {{{CERT}, tls_params: {{cipher_suites: [TLS_AES_128_GCM_SHA256]}}}}"
    )));
    assert!(
        e.message
            .starts_with("Failed to initialize cipher suites TLS_AES_128_GCM_SHA256"),
        "{e}"
    );
    assert!(e.path.ends_with("tls_params.cipher_suites"), "{e}");
    let e = bad(&listener_with(&format!(
        "common_tls_context: {{{CERT}, tls_certificate_sds_secret_configs: [{{name: x}}]}}"
    )));
    assert_eq!(
        e.message,
        "SDS and non-SDS TLS certificates may not be mixed in server contexts"
    );
    let e = bad(&listener_with(
        "common_tls_context: {tls_certificate_sds_secret_configs: [{name: nope}]}",
    ));
    assert_eq!(e.message, "Unknown static secret: nope");
    assert!(
        e.path.ends_with("tls_certificate_sds_secret_configs[0]"),
        "{e}"
    );
    let e = bad(&listener_with(&format!(
        "common_tls_context: {{{CERT}, validation_context_sds_secret_config: {{name: nope}}}}"
    )));
    assert_eq!(
        e.message,
        "Unknown static certificate validation context: nope"
    );
    let e = bad(&listener_with(&format!("common_tls_context: {{{CERT}, validation_context_sds_secret_config: {{name: x, sds_config: {{path_config_source: {{path: /nonexistent/sds.yaml}}}}}}}}")));
    assert_eq!(e.message, "paths must refer to an existing path in the system: '/nonexistent/sds.yaml' does not exist");
}

fn chains(a: &str, b: &str, extra: &str) -> String {
    format!("static_resources:\n  clusters: [{{name: c}}]\n  listeners:\n  - address: {{socket_address: {{address: 127.0.0.1, port_value: 1}}}}\n{extra}    filter_chains:\n    - {{name: one, filter_chain_match: {a}, filters: {HCM}}}\n    - {{name: two, filter_chain_match: {b}, filters: {HCM}}}\n")
}

#[test]
fn filter_chains() {
    let inspector = "    listener_filters: [{name: envoy.filters.listener.tls_inspector, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}}]\n    listener_filters_timeout: 2s\n";
    let b = decode_ungated(
        "t.yaml",
        &chains(
            "{server_names: [a.com]}",
            "{server_names: ['*.b.com'], transport_protocol: tls}",
            inspector,
        ),
    )
    .unwrap();
    let l = &b.listeners[0];
    assert_eq!(l.filter_chains.len(), 2);
    assert_eq!(l.filter_chains[1].name, "two");
    assert_eq!(
        l.filter_chains[1].chain_match.transport_protocol.as_deref(),
        Some("tls")
    );
    assert_eq!(
        l.listener_filters,
        vec![ListenerFilter::TlsInspector(TlsInspector::default())]
    );
    assert_eq!(
        l.listener_filters_timeout,
        std::time::Duration::from_secs(2)
    );
    let e = bad(&chains("{}", "{}", ""));
    assert_eq!(
        e.message,
        "filter chain 'two' has the same matching rules defined as 'one'"
    );
    let e = bad(&chains("{server_names: [a]}", "{server_names: [A]}", ""));
    assert_eq!(
        e.message,
        "multiple filter chains with overlapping matching rules are defined"
    );
    let e = bad(&chains("{server_names: ['*']}", "{}", ""));
    assert_eq!(
        e.message,
        "partial wildcards are not supported in \"server_names\""
    );
    let e = bad("static_resources:\n  listeners:\n  - address: {socket_address: {address: 127.0.0.1, port_value: 1}}\n");
    assert_eq!(e.message, "no filter chains specified");
    // Only a default chain.
    let b = decode_ungated("t.yaml", &format!("static_resources:\n  clusters: [{{name: c}}]\n  listeners:\n  - address: {{socket_address: {{address: 127.0.0.1, port_value: 1}}}}\n    default_filter_chain: {{filters: {HCM}}}\n")).unwrap();
    assert!(b.listeners[0].filter_chains.is_empty());
    assert!(b.listeners[0].default_filter_chain.is_some());
    let e = bad(&chains("{}", "{server_names: [a]}", "    listener_filters: [{name: envoy.filters.listener.tls_inspector, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector, max_client_hello_size: 100}}]\n"));
    assert!(e.path.ends_with("max_client_hello_size"), "{e}");
}

#[test]
fn camel_case_keys() {
    let text = format!("staticResources:\n  clusters: [{{name: c}}]\n  listeners:\n  - address: {{socketAddress: {{address: 127.0.0.1, portValue: 1}}}}\n    listenerFilters: [{{name: envoy.filters.listener.tls_inspector, typedConfig: {{\"@type\": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}}}}]\n    filterChains:\n    - filterChainMatch: {{serverNames: [a.com], transportProtocol: tls}}\n      transportSocketConnectTimeout: 5s\n      filters: {HCM}\n      transportSocket:\n        name: envoy.transport_sockets.tls\n        typedConfig: {{\"@type\": {DS}, requireClientCertificate: true, commonTlsContext: {{tlsCertificates: [{{certificateChain: {{filename: a}}, privateKey: {{inlineString: k}}}}], alpnProtocols: [h2], validationContext: {{trustedCa: {{filename: ca}}, matchTypedSubjectAltNames: [{{sanType: URI, matcher: {{prefix: 'spiffe://'}}}}]}}}}}}\n");
    let b = decode_ungated("t.yaml", &text).unwrap();
    let fc = &b.listeners[0].filter_chains[0];
    assert_eq!(fc.chain_match.server_names, vec!["a.com"]);
    assert_eq!(
        fc.transport_socket_connect_timeout,
        Some(std::time::Duration::from_secs(5))
    );
    let t = chain_tls(&b);
    assert!(t.require_client_certificate);
    assert_eq!(t.common.alpn, vec!["h2"]);
}

/// §2.4's first sample, verbatim apart from the elided HCMs.
fn edge_sample() -> String {
    format!(
        r#"static_resources:
  clusters: [{{name: c}}]
  listeners:
  - address: {{socket_address: {{address: 0.0.0.0, port_value: 443}}}}
    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}}
    filter_chains:
    - filter_chain_match: {{server_names: ["front", "*.mesh.local"]}}
      transport_socket_connect_timeout: 5s
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": {DS}
          require_client_certificate: true
          common_tls_context:
            tls_params:
              tls_minimum_protocol_version: TLSv1_2
              tls_maximum_protocol_version: TLSv1_3
              cipher_suites: ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"]
              ecdh_curves: ["X25519", "P-256"]
            alpn_protocols: ["h2", "http/1.1"]
            tls_certificates:
            - {{certificate_chain: {{filename: certs/front.pem}}, private_key: {{filename: certs/front.key}}}}
            - {{certificate_chain: {{filename: certs/rsa.pem}}, private_key: {{filename: certs/rsa.key}}}}
            validation_context:
              trusted_ca: {{filename: certs/ca.pem}}
              match_typed_subject_alt_names:
              - {{san_type: URI, matcher: {{prefix: "spiffe://mesh.local/"}}}}
              - {{san_type: DNS, matcher: {{exact: front}}}}
      filters: {HCM}
    default_filter_chain:
      filters: {HCM}
"#
    )
}

#[test]
fn sample_edge_listener() {
    let b = decode_ungated("edge.yaml", &edge_sample()).unwrap();
    let l = &b.listeners[0];
    assert!(l.default_filter_chain.is_some());
    let t = chain_tls(&b);
    assert_eq!(t.common.certs.len(), 2);
    assert_eq!(t.common.params.curves, vec!["X25519", "P-256"]);
    // The runtime serves all of it (chains, inspector, mTLS).
    load_str("edge.yaml", &edge_sample()).unwrap();
}

#[test]
fn sample_upstream_secrets_sds_and_matches() {
    let dir = std::env::temp_dir().join(format!("nuncio-tls-sds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sds = dir.join("sds-cert.yaml");
    std::fs::write(&sds, "resources: []\n").unwrap();
    let text = format!(
        r#"node: {{id: front, cluster: front-proxy}}
static_resources:
  secrets:
  - name: mesh_ca
    validation_context:
      trusted_ca: {{filename: certs/ca.pem}}
      match_typed_subject_alt_names: [{{san_type: DNS, matcher: {{suffix: ".mesh.local"}}}}]
  clusters:
  - name: service1
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        upstream_http_protocol_options: {{auto_sni: true, auto_san_validation: true}}
        explicit_http_config: {{http2_protocol_options: {{}}}}
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": {US}
        sni: service1.mesh.local
        common_tls_context:
          alpn_protocols: [h2]
          tls_certificate_sds_secret_configs:
          - name: front_cert
            sds_config: {{path_config_source: {{path: {sds}}}, resource_api_version: V3}}
          validation_context_sds_secret_config: {{name: mesh_ca}}
  - name: mixed
    transport_socket_matches:
    - {{name: tls, match: {{tls: "true"}}, transport_socket: {{name: envoy.transport_sockets.tls, typed_config: {{"@type": {US}, common_tls_context: {{validation_context: {{trusted_ca: {{filename: certs/ca.pem}}}}}}}}}}}}
    - {{name: plain, match: {{}}, transport_socket: {{name: envoy.transport_sockets.raw_buffer, typed_config: {{"@type": type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer}}}}}}
"#,
        sds = sds.display()
    );
    let b = decode_ungated("up.yaml", &text).unwrap();
    assert_eq!(b.secrets.len(), 1);
    assert!(matches!(
        b.secrets[0].kind,
        SecretKind::ValidationContext(_)
    ));
    let c = &b.clusters[0];
    assert!(c.upstream_http.auto_sni && c.upstream_http.auto_san_validation);
    let t = cluster_tls(&b);
    let CertSource::Sds(r) = &t.common.certs[0] else {
        panic!("sds cert")
    };
    assert_eq!(r.path.as_deref(), Some(sds.as_path()));
    assert!(
        matches!(&t.common.validation, Some(ValidationSource::Sds(r)) if r.name == "mesh_ca" && r.path.is_none())
    );
    let m = &b.clusters[1].transport_socket_matches;
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].criteria[0].key, "tls");
    assert_eq!(m[0].criteria[0].value, serde_json::json!("true"));
    assert_eq!(m[1].transport_socket, TransportSocket::Plain);
    let d = dump::config_dump(&b);
    assert_eq!(d["configs"][3]["static_secrets"][0]["name"], "mesh_ca");
    assert_eq!(
        d["configs"][0]["bootstrap"]["static_resources"]["clusters"][1]["transport_socket_matches"]
            [1]["transport_socket"]["name"],
        "envoy.transport_sockets.raw_buffer"
    );
    let e = bad(&text.replace(
        "  clusters:\n",
        "  - {name: mesh_ca, validation_context: {trusted_ca: {filename: x}}}\n  clusters:\n",
    ));
    assert_eq!(
        e.message,
        "Duplicate static CertificateValidationContext secret name mesh_ca"
    );
    // A secret reference of the wrong kind is unknown.
    let e = bad(&text.replace(
        "validation_context_sds_secret_config: {name: mesh_ca}",
        "validation_context_sds_secret_config: {name: front_cert}",
    ));
    assert_eq!(
        e.message,
        "Unknown static certificate validation context: front_cert"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn dump_shows_tls_and_redacts_inline_keys() {
    let text = listener_with("common_tls_context: {tls_certificates: [{certificate_chain: {inline_string: CHAIN}, private_key: {inline_string: SECRET-KEY}}, {certificate_chain: {filename: a.pem}, private_key: {filename: a.key}}], alpn_protocols: [h2]}");
    let b = decode_ungated("t.yaml", &text).unwrap();
    let d = dump::config_dump(&b);
    let s = d.to_string();
    assert!(!s.contains("SECRET-KEY"), "{s}");
    let ctx = &d["configs"][0]["bootstrap"]["static_resources"]["listeners"][0]["filter_chains"][0]
        ["transport_socket"]["typed_config"];
    assert_eq!(ctx["@type"], DS);
    let certs = &ctx["common_tls_context"]["tls_certificates"];
    assert_eq!(certs[0]["private_key"]["inline_string"], "[redacted]");
    assert_eq!(certs[0]["certificate_chain"]["inline_string"], "CHAIN");
    assert_eq!(certs[1]["private_key"]["filename"], "a.key");
    assert_eq!(
        ctx["common_tls_context"]["tls_params"]["tls_minimum_protocol_version"],
        "TLSv1_2"
    );
    let d2 = dump::config_dump(&decode_ungated("t.yaml", &edge_sample()).unwrap());
    let l = &d2["configs"][0]["bootstrap"]["static_resources"]["listeners"][0];
    assert_eq!(
        l["listener_filters"][0]["name"],
        "envoy.filters.listener.tls_inspector"
    );
    assert_eq!(
        l["filter_chains"][0]["filter_chain_match"]["server_names"][1],
        "*.mesh.local"
    );
    assert_eq!(
        l["filter_chains"][0]["transport_socket_connect_timeout"],
        "5s"
    );
    assert!(l["default_filter_chain"]["filters"].is_array());
}

#[test]
fn runtime_gate_refuses_each_unserved_feature() {
    // A listener's TLS is served (nuncio-tls and the listener).
    load_str(
        "t.yaml",
        &listener_with(&format!("common_tls_context: {{{CERT}}}")),
    )
    .unwrap();
    // And a cluster's.
    load_str("t.yaml", &cluster_with("")).unwrap();
    // And several chains told apart by their matches.
    load_str(
        "t.yaml",
        &chains("{server_names: [a]}", "{server_names: [b]}", ""),
    )
    .unwrap();
    // What is decoded but not built yet.
    let cases = [(
        "static_resources:\n  clusters:\n  - name: c\n    transport_socket_matches:\n    - name: m\n      match: {}\n      transport_socket: {name: envoy.transport_sockets.raw_buffer}\n".to_string(),
        "transport_socket_matches",
    )];
    for (text, what) in cases {
        let e = load_str("t.yaml", &text).unwrap_err();
        assert!(
            e.message
                .starts_with(&format!("{what} is decoded but not served yet")),
            "{what}: {e}"
        );
        assert!(e.message.contains("clear text"), "{e}");
        assert!(e.line > 0, "{e}");
    }
    // Plain sockets and an empty match are served as before.
    let plain = format!("static_resources:\n  clusters: [{{name: c, transport_socket: {{name: envoy.transport_sockets.raw_buffer}}}}]\n  listeners:\n  - address: {{socket_address: {{address: 127.0.0.1, port_value: 1}}}}\n    filter_chains: [{{filter_chain_match: {{}}, transport_socket_connect_timeout: 1s, filters: {HCM}}}]\n");
    load_str("t.yaml", &plain).unwrap();
}
