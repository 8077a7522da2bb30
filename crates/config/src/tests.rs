//! Whole-file tests: the blog's configs load unchanged, v2-era and v3 forms
//! give the same model, and errors point at the right place.

use super::*;
use std::time::Duration;

fn example(rel: &str) -> String {
    let p = format!("{}/../../examples/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn err(text: &str) -> ConfigError {
    load_str("t.yaml", text).unwrap_err()
}

#[test]
fn blog_simple_proxy_loads_unchanged() {
    let b = load_str("simple-proxy.yaml", &example("blog/simple-proxy.yaml")).unwrap();
    assert_eq!(b.listeners.len(), 1);
    let l = &b.listeners[0];
    assert_eq!(l.address.to_string(), "0.0.0.0:80");
    let NetworkFilter::HttpConnectionManager(h) = &l.filter_chains[0].filter;
    assert_eq!(h.stat_prefix, "ingress_http");
    assert_eq!(h.codec_type, CodecType::Auto);
    let vh = &h.route_config.virtual_hosts[0];
    assert_eq!(vh.domains, vec!["*"]);
    assert_eq!(vh.routes[0].matcher.path, PathMatch::Prefix("/".into()));
    let c = &b.clusters[0];
    assert_eq!(c.name, "myservice");
    assert_eq!(c.discovery, DiscoveryType::StrictDns);
    assert_eq!(c.lb_policy, LbPolicy::RoundRobin);
    assert_eq!(c.connect_timeout, Duration::from_millis(250));
    assert_eq!(c.endpoints.len(), 2);
    assert_eq!(c.endpoints[1].address, "service2");
    assert_eq!(c.protocol, UpstreamProtocol::Http1);
    let a = b.admin.unwrap();
    assert_eq!(a.address.port, 8001);
    assert_eq!(a.access_log_path.as_deref(), Some("/dev/null"));
}

#[test]
fn every_blog_config_loads() {
    for f in [
        "simple-proxy.yaml",
        "simple-proxy-ws.yaml",
        "proxy-envoy.yaml",
        "service-envoy.yaml",
        "service-envoy.fixed.yaml",
    ] {
        load_str(f, &example(&format!("blog/{f}"))).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn blog_mesh_options() {
    let b = load_str("p", &example("blog/proxy-envoy.yaml")).unwrap();
    assert!(matches!(b.clusters[0].protocol, UpstreamProtocol::Http2(_)));
    let NetworkFilter::HttpConnectionManager(h) = &b.listeners[0].filter_chains[0].filter;
    let Action::Route(ws) = &h.route_config.virtual_hosts[0].routes[0].action else {
        panic!()
    };
    assert_eq!(ws.websocket, Some(true));
}

#[test]
fn v2_and_v3_front_proxy_are_the_same_model() {
    let v2 = load_str("v2", &example("front-proxy/front-proxy-v2.yaml")).unwrap();
    let v3 = load_str("v3", &example("front-proxy/front-proxy-v3.yaml")).unwrap();
    assert_eq!(v2, v3);
    assert_eq!(dump::config_dump(&v2), dump::config_dump(&v3));
}

#[test]
fn blog_configs_are_verbatim_copies_of_the_seed() {
    // The repo carries the blog's configs; when the seed sits beside the
    // checkout (as on the developers' machines and CI) they must not drift.
    let seed = format!(
        "{}/../../../shared/seed/configs",
        env!("CARGO_MANIFEST_DIR")
    );
    let Ok(dir) = std::fs::read_dir(&seed) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.ends_with(".yaml") {
            assert_eq!(
                std::fs::read_to_string(e.path()).unwrap(),
                example(&format!("blog/{name}")),
                "{name}"
            );
        }
    }
}

#[test]
fn json_config_loads() {
    let yaml = example("front-proxy/front-proxy-v3.yaml");
    let model = load_str("y", &yaml).unwrap();
    let json = dump::bootstrap(&model).to_string();
    let again = load_str("j.json", &json).unwrap();
    assert_eq!(model, again);
}

#[test]
fn unknown_field_points_at_it() {
    let e = err("static_resources:\n  clusters:\n  - name: a\n    lb_polcy: ROUND_ROBIN\n");
    assert_eq!((e.line, e.col), (4, 5));
    assert_eq!(e.path, "static_resources.clusters[0].lb_polcy");
    assert!(e.message.contains("did you mean 'lb_policy'"), "{e}");
    assert!(e
        .to_string()
        .starts_with("t.yaml:4:5: static_resources.clusters[0].lb_polcy: unknown field"));
}

#[test]
fn allow_unknown_fields_collects_them_all() {
    let text = "bogus_top: 1\nstatic_resources:\n  clusters:\n  - name: a\n    lb_polcy: ROUND_ROBIN\n    extra: {x: 1}\n";
    let src = [Source {
        name: "t.yaml".into(),
        text: text.into(),
    }];
    let opts = LoadOptions {
        allow_unknown_fields: true,
    };
    let loaded = load_with(&src, opts).unwrap();
    assert_eq!(loaded.bootstrap.clusters.len(), 1);
    let paths: Vec<&str> = loaded
        .unknown_fields
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "static_resources.clusters[0].lb_polcy",
            "static_resources.clusters[0].extra",
            "bogus_top"
        ]
    );
    assert!(loaded.unknown_fields[0]
        .to_string()
        .starts_with("t.yaml:5:5: "));
    // Strict loading still fails on the first.
    assert!(load(&src).is_err());
    // An Envoy field nuncio lacks is still an error.
    let src = [Source {
        name: "t.yaml".into(),
        text: "static_resources:\n  clusters:\n  - name: a\n    outlier_detection: {}\n".into(),
    }];
    assert!(load_with(&src, opts).is_err());
}

#[test]
fn bad_enum_and_duration() {
    let e = err("static_resources:\n  clusters:\n  - name: a\n    type: strict_dnz\n");
    assert_eq!(e.path, "static_resources.clusters[0].type");
    assert!(e.message.contains("did you mean STRICT_DNS"), "{e}");
    let e = err("static_resources:\n  clusters:\n  - name: a\n    connect_timeout: 250ms\n");
    assert_eq!(e.line, 4);
    assert!(e.message.contains("\"0.25s\""), "{e}");
}

#[test]
fn envoy_fields_not_yet_supported_say_so() {
    let e = err("static_resources:\n  clusters:\n  - name: a\n    outlier_detection: {}\n");
    assert!(
        e.message
            .contains("Envoy field that nuncio does not support"),
        "{e}"
    );
}

#[test]
fn tls_fields_warn_that_removing_them_drops_tls() {
    // A cluster's TLS is served now (an empty context: TLS, no checks).
    let b = load_str(
        "t.yaml",
        "static_resources:\n  clusters:\n  - name: a\n    transport_socket: {name: envoy.transport_sockets.tls}\n",
    )
    .unwrap();
    assert!(b.clusters[0].transport_socket.tls().is_some());
    // The v2-era field is refused, saying what removing it would do.
    let e = err("static_resources:\n  clusters:\n  - name: a\n    tls_context: {}\n");
    assert!(e.message.contains("clear text"), "{e}");
}

#[test]
fn single_value_for_a_list_and_repeated_keys_load_as_in_envoy() {
    // `domains: "*"` is a list of one; the second `stat_prefix` wins.
    let text = example("front-proxy/front-proxy-v3.yaml");
    let text = text
        .replacen("domains: [\"*\"]", "domains: \"*\"", 1)
        .replacen(
            "          stat_prefix: ingress_http\n",
            "          stat_prefix: first\n          stat_prefix: ingress_http\n",
            1,
        );
    assert!(text.contains("domains: \"*\""), "the example changed");
    let b = load_str("t.yaml", &text).unwrap();
    let h = hcm_of(&b);
    assert_eq!(h.stat_prefix, "ingress_http");
    assert_eq!(h.route_config.virtual_hosts[0].domains, vec!["*"]);
}

#[test]
fn http_protocol_options_of_http10_and_xff() {
    let b = front_proxy_with(
        "          http_protocol_options: {default_host_for_http_10: d.example}\n          skip_xff_append: true\n          preserve_external_request_id: true\n",
    )
    .unwrap();
    let h = hcm_of(&b);
    assert_eq!(h.default_host_for_http_10.as_deref(), Some("d.example"));
    assert!(h.skip_xff_append && h.preserve_external_request_id);
    let b = front_proxy_with("").unwrap();
    let h = hcm_of(&b);
    assert!(h.default_host_for_http_10.is_none() && !h.skip_xff_append);
}

#[test]
fn fields_are_accepted_only_with_values_nuncio_implements() {
    for ok in [
        "          http_protocol_options: {allow_absolute_url: true, allow_chunked_length: false}\n",
        "          http_protocol_options: {header_key_format: {stateful_formatter: {name: preserve_case}}}\n",
        "          always_set_request_id_in_response: false\n          server_header_transformation: OVERWRITE\n",
    ] {
        front_proxy_with(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for (bad, path) in [
        (
            "          http_protocol_options: {allow_chunked_length: true}\n",
            "http_protocol_options.allow_chunked_length",
        ),
        (
            "          http_protocol_options: {header_key_format: {proper_case_words: {}}}\n",
            "http_protocol_options.header_key_format",
        ),
        (
            "          strip_any_host_port: true\n",
            "strip_any_host_port",
        ),
        ("          via: proxy-1\n", "via"),
        (
            "          server_header_transformation: PASS_THROUGH\n",
            "server_header_transformation",
        ),
    ] {
        let e = front_proxy_with(bad).unwrap_err();
        assert!(e.path.ends_with(path), "{bad}: {e}");
        assert!(e.message.contains("not supported yet"), "{e}");
    }
}

#[test]
fn route_to_unknown_cluster() {
    let text = example("blog/simple-proxy.yaml").replace("cluster: myservice", "cluster: nosuch");
    let e = err(&text);
    assert!(e.message.contains("unknown cluster 'nosuch'"), "{e}");
    assert!(e.path.ends_with("routes[0].route.cluster"), "{e}");
}

#[test]
fn static_cluster_needs_ips() {
    let text = example("blog/simple-proxy.yaml").replace("type: strict_dns", "type: static");
    let e = err(&text);
    assert!(e.message.contains("STATIC cluster needs IPs"), "{e}");
}

#[test]
fn syntax_error_has_position() {
    let e = err("static_resources:\n  clusters: [\n");
    assert!(e.line >= 2, "{e}");
    assert!(e.message.starts_with("invalid YAML/JSON"), "{e}");
}

#[test]
fn wrong_type_at_path() {
    let e = err("admin:\n  address: 8001\n");
    assert_eq!(e.path, "admin.address");
    assert!(e.message.contains("expected a map"), "{e}");
}

#[test]
fn both_forms_at_once_rejected() {
    let text = "static_resources:\n  clusters:\n  - name: a\n    hosts: []\n    load_assignment: {cluster_name: a}\n";
    assert!(err(text).message.contains("not both"));
}

#[test]
fn config_yaml_merges_over_file() {
    let base = Source {
        name: "f".into(),
        text: example("blog/simple-proxy.yaml"),
    };
    let over = Source {
        name: "<config-yaml>".into(),
        text: "admin: {address: {socket_address: {address: 127.0.0.1, port_value: 9}}}".into(),
    };
    let b = load(&[base, over]).unwrap();
    assert_eq!(b.admin.unwrap().address.to_string(), "127.0.0.1:9");
}

#[test]
fn upgrade_configs_v3() {
    let text = example("front-proxy/front-proxy-v3.yaml").replace(
        "          stat_prefix: ingress_http\n",
        "          stat_prefix: ingress_http\n          upgrade_configs: [{upgrade_type: websocket}]\n",
    );
    let b = load_str("t", &text).unwrap();
    let NetworkFilter::HttpConnectionManager(h) = &b.listeners[0].filter_chains[0].filter;
    assert!(h.websocket);
}

/// The blog's front proxy with `extra` added to its connection manager.
fn front_proxy_with(extra: &str) -> std::result::Result<Bootstrap, ConfigError> {
    let text = example("front-proxy/front-proxy-v3.yaml").replace(
        "          stat_prefix: ingress_http\n",
        &format!("          stat_prefix: ingress_http\n{extra}"),
    );
    load_str("t.yaml", &text)
}

fn hcm_of(b: &Bootstrap) -> &HttpConnectionManager {
    let NetworkFilter::HttpConnectionManager(h) = &b.listeners[0].filter_chains[0].filter;
    h
}

#[test]
fn headers_with_underscores_action() {
    let b = front_proxy_with("").unwrap();
    assert_eq!(hcm_of(&b).underscores, UnderscoresAction::Allow);
    let b = front_proxy_with(
        "          common_http_protocol_options: {headers_with_underscores_action: DROP_HEADER}\n",
    )
    .unwrap();
    assert_eq!(hcm_of(&b).underscores, UnderscoresAction::Drop);
    let e = front_proxy_with(
        "          common_http_protocol_options: {headers_with_underscores_action: DROP}\n",
    )
    .unwrap_err();
    assert!(e.path.ends_with("headers_with_underscores_action"), "{e}");
    assert!(e.message.contains("REJECT_REQUEST"), "{e}");
}

#[test]
fn http2_flood_limits() {
    let b = front_proxy_with("").unwrap();
    assert_eq!(hcm_of(&b).http2.flood, FloodLimits::default());
    assert_eq!(hcm_of(&b).http2.flood.max_outbound_control_frames, 1_000);
    let b = front_proxy_with(
        "          http2_protocol_options: {max_inbound_priority_frames_per_stream: 5, \
         max_consecutive_inbound_frames_with_empty_payload: 0}\n",
    )
    .unwrap();
    let f = hcm_of(&b).http2.flood;
    assert_eq!(f.max_priority_frames_per_stream, 5);
    assert_eq!(f.max_consecutive_empty_frames, 0);
    assert_eq!(f.max_window_update_frames_per_data_frame, 10);
    let e = front_proxy_with("          http2_protocol_options: {max_outbound_frames: 0}\n")
        .unwrap_err();
    assert!(e.message.contains("from 1 to"), "{e}");
}
