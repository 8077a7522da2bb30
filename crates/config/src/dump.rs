//! The model written back as Envoy v3 JSON: what `/config_dump` serves, and
//! the proof that v2-era input was normalised (a v2 file dumps as v3).

use serde_json::{json, Map, Value};

use crate::cluster::{Cluster, DnsLookupFamily, UpstreamProtocol};
use crate::dump_filters::{http_filter, route_level};
use crate::dump_tls::{
    chain_match, downstream_socket, secret, upstream_socket, upstream_socket_always,
};
use crate::hcm::{CodecType, HttpConnectionManager};
use crate::listener::{FilterChain, Listener, ListenerFilter, NetworkFilter};
use crate::route::{Action, PathMatch, RouteConfig};
use crate::{Bootstrap, Http2Options, SocketAddress};

pub(crate) fn dur(d: std::time::Duration) -> String {
    let s = format!("{}.{:09}", d.as_secs(), d.subsec_nanos());
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}s")
}

fn addr(a: &SocketAddress) -> Value {
    json!({"socket_address": {"address": a.address, "port_value": a.port}})
}

fn h2(o: &Http2Options) -> Value {
    json!({
        "max_concurrent_streams": o.max_concurrent_streams,
        "initial_stream_window_size": o.initial_stream_window_size,
        "initial_connection_window_size": o.initial_connection_window_size,
        "allow_connect": o.allow_connect,
        "max_outbound_frames": o.flood.max_outbound_frames,
        "max_outbound_control_frames": o.flood.max_outbound_control_frames,
        "max_consecutive_inbound_frames_with_empty_payload": o.flood.max_consecutive_empty_frames,
        "max_inbound_priority_frames_per_stream": o.flood.max_priority_frames_per_stream,
        "max_inbound_window_update_frames_per_data_frame_sent":
            o.flood.max_window_update_frames_per_data_frame,
    })
}

/// A cluster in v3 form.
pub fn cluster(c: &Cluster) -> Value {
    let mut v = json!({
        "name": c.name,
        "type": c.discovery.name(),
        "lb_policy": c.lb_policy.name(),
        "connect_timeout": dur(c.connect_timeout),
        "load_assignment": {
            "cluster_name": c.name,
            "endpoints": [{"lb_endpoints": c.endpoints.iter()
                .map(|e| json!({"endpoint": {"address": addr(e)}}))
                .collect::<Vec<_>>()}],
        },
    });
    if let Some(m) = v.as_object_mut() {
        if c.discovery != crate::DiscoveryType::Static {
            m.insert("dns_refresh_rate".into(), dur(c.dns_refresh_rate).into());
            let fam = match c.dns_lookup_family {
                DnsLookupFamily::V4Preferred => "V4_PREFERRED",
                DnsLookupFamily::V4Only => "V4_ONLY",
                DnsLookupFamily::V6Only => "V6_ONLY",
                DnsLookupFamily::V6Preferred => "AUTO",
                DnsLookupFamily::All => "ALL",
            };
            m.insert("dns_lookup_family".into(), fam.into());
        }
        let explicit = match &c.protocol {
            UpstreamProtocol::Http1 => json!({"http_protocol_options": {}}),
            UpstreamProtocol::Http2(o) => json!({"http2_protocol_options": h2(o)}),
        };
        m.insert(
            "typed_extension_protocol_options".into(),
            json!({"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "common_http_protocol_options": {"idle_timeout": dur(c.idle_timeout)},
                "explicit_http_config": explicit,
            }}),
        );
        let u = c.upstream_http;
        if u.auto_sni || u.auto_san_validation {
            if let Some(o) = m
                .get_mut("typed_extension_protocol_options")
                .and_then(|t| t.get_mut("envoy.extensions.upstreams.http.v3.HttpProtocolOptions"))
                .and_then(Value::as_object_mut)
            {
                o.insert(
                    "upstream_http_protocol_options".into(),
                    json!({"auto_sni": u.auto_sni, "auto_san_validation": u.auto_san_validation}),
                );
            }
        }
        if let Some(ts) = upstream_socket(&c.transport_socket) {
            m.insert("transport_socket".into(), ts);
        }
        if !c.transport_socket_matches.is_empty() {
            let tsm: Vec<Value> = c
                .transport_socket_matches
                .iter()
                .map(|t| {
                    let crit: Map<String, Value> = t
                        .criteria
                        .iter()
                        .map(|c| (c.key.clone(), c.value.clone()))
                        .collect();
                    json!({"name": t.name, "match": crit,
                        "transport_socket": upstream_socket_always(&t.transport_socket)})
                })
                .collect();
            m.insert("transport_socket_matches".into(), tsm.into());
        }
        if c.max_requests_per_connection > 0 {
            m.insert(
                "max_requests_per_connection".into(),
                c.max_requests_per_connection.into(),
            );
        }
    }
    v
}

fn route_config(rc: &RouteConfig) -> Value {
    let vhs: Vec<Value> = rc
        .virtual_hosts
        .iter()
        .map(|vh| {
            let routes: Vec<Value> = vh
                .routes
                .iter()
                .map(|r| {
                    let mut m = Map::new();
                    match &r.matcher.path {
                        PathMatch::Prefix(p) => m.insert("prefix".into(), p.clone().into()),
                        PathMatch::Path(p) => m.insert("path".into(), p.clone().into()),
                    };
                    if !r.matcher.case_sensitive {
                        m.insert("case_sensitive".into(), false.into());
                    }
                    let mut out = Map::new();
                    if !r.name.is_empty() {
                        out.insert("name".into(), r.name.clone().into());
                    }
                    out.insert("match".into(), Value::Object(m));
                    match &r.action {
                        Action::Route(a) => {
                            let mut ra = Map::new();
                            ra.insert("cluster".into(), a.cluster.clone().into());
                            if let Some(t) = a.timeout {
                                ra.insert("timeout".into(), dur(t).into());
                            }
                            if let Some(p) = &a.prefix_rewrite {
                                ra.insert("prefix_rewrite".into(), p.clone().into());
                            }
                            if let Some(h) = &a.host_rewrite {
                                ra.insert("host_rewrite_literal".into(), h.clone().into());
                            }
                            if let Some(ws) = a.websocket {
                                ra.insert(
                                    "upgrade_configs".into(),
                                    json!([{"upgrade_type": "websocket", "enabled": ws}]),
                                );
                            }
                            // The route's `cors` is a RouteAction field.
                            route_level(&mut ra, &Default::default(), &Vec::new(), r.cors.as_ref());
                            out.insert("route".into(), Value::Object(ra));
                        }
                        Action::DirectResponse { status, body } => {
                            let mut d = json!({"status": status});
                            if let (Some(b), Some(m)) = (body, d.as_object_mut()) {
                                m.insert("body".into(), json!({"inline_string": b}));
                            }
                            out.insert("direct_response".into(), d);
                        }
                    }
                    route_level(&mut out, &r.headers, &r.per_filter, None);
                    Value::Object(out)
                })
                .collect();
            let mut v = Map::new();
            v.insert("name".into(), vh.name.clone().into());
            v.insert("domains".into(), vh.domains.clone().into());
            v.insert("routes".into(), routes.into());
            route_level(&mut v, &vh.headers, &vh.per_filter, vh.cors.as_ref());
            Value::Object(v)
        })
        .collect();
    let mut v = Map::new();
    v.insert("name".into(), rc.name.clone().into());
    v.insert("virtual_hosts".into(), vhs.into());
    route_level(&mut v, &rc.headers, &rc.per_filter, None);
    if rc.most_specific_header_mutations_wins {
        v.insert("most_specific_header_mutations_wins".into(), true.into());
    }
    Value::Object(v)
}

fn hcm(h: &HttpConnectionManager) -> Value {
    let codec = match h.codec_type {
        CodecType::Auto => "AUTO",
        CodecType::Http1 => "HTTP1",
        CodecType::Http2 => "HTTP2",
    };
    let logs: Vec<Value> = h
        .access_logs
        .iter()
        .map(|l| {
            let mut c = json!({
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": l.path,
            });
            if let (Some(f), Some(m)) = (&l.format, c.as_object_mut()) {
                m.insert("log_format".into(), json!({"text_format_source": {"inline_string": f}}));
            }
            json!({"name": "envoy.access_loggers.file", "typed_config": c})
        })
        .collect();
    let mut v = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": h.stat_prefix,
        "codec_type": codec,
        "route_config": route_config(&h.route_config),
        "http_filters": h.http_filters.iter().map(http_filter).chain([json!({
            "name": "envoy.filters.http.router",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                "suppress_envoy_headers": h.suppress_envoy_headers,
            },
        })]).collect::<Vec<_>>(),
        "server_name": h.server_name,
        "use_remote_address": h.use_remote_address,
        "generate_request_id": h.generate_request_id,
        "max_request_headers_kb": h.max_request_headers_kb,
        "common_http_protocol_options": {
            "idle_timeout": dur(h.idle_timeout),
            "max_headers_count": h.max_headers_count,
            "headers_with_underscores_action": match h.underscores {
                crate::UnderscoresAction::Allow => "ALLOW",
                crate::UnderscoresAction::Reject => "REJECT_REQUEST",
                crate::UnderscoresAction::Drop => "DROP_HEADER",
            },
        },
        "stream_idle_timeout": dur(h.stream_idle_timeout),
        "drain_timeout": dur(h.drain_timeout),
        "normalize_path": h.path.normalize,
        "merge_slashes": h.path.merge_slashes,
        "path_with_escaped_slashes_action": match h.path.escaped_slashes {
            crate::EscapedSlashes::Keep => "KEEP_UNCHANGED",
            crate::EscapedSlashes::Reject => "REJECT_REQUEST",
            crate::EscapedSlashes::UnescapeAndRedirect => "UNESCAPE_AND_REDIRECT",
            crate::EscapedSlashes::UnescapeAndForward => "UNESCAPE_AND_FORWARD",
        },
        "http2_protocol_options": h2(&h.http2),
        "http_protocol_options": {"accept_http_10": h.accept_http_10},
    });
    if let (Some(host), Some(o)) = (
        &h.default_host_for_http_10,
        v.get_mut("http_protocol_options")
            .and_then(Value::as_object_mut),
    ) {
        o.insert("default_host_for_http_10".into(), json!(host));
    }
    if let Some(m) = v.as_object_mut() {
        for (k, on) in [
            (
                "preserve_external_request_id",
                h.preserve_external_request_id,
            ),
            ("skip_xff_append", h.skip_xff_append),
        ] {
            if on {
                m.insert(k.into(), json!(true));
            }
        }
        if h.xff_num_trusted_hops > 0 {
            m.insert("xff_num_trusted_hops".into(), json!(h.xff_num_trusted_hops));
        }
    }
    if let Some(m) = v.as_object_mut() {
        if !logs.is_empty() {
            m.insert("access_log".into(), Value::Array(logs));
        }
        if h.websocket {
            m.insert(
                "upgrade_configs".into(),
                json!([{"upgrade_type": "websocket"}]),
            );
        }
        if let Some(t) = h.request_timeout {
            m.insert("request_timeout".into(), dur(t).into());
        }
        if let Some(t) = h.request_headers_timeout {
            m.insert("request_headers_timeout".into(), dur(t).into());
        }
    }
    v
}

fn filter_chain(fc: &FilterChain) -> Value {
    let filter = match &fc.filter {
        NetworkFilter::HttpConnectionManager(h) => json!({
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": hcm(h),
        }),
    };
    let mut m = Map::new();
    if !fc.name.is_empty() {
        m.insert("name".into(), fc.name.clone().into());
    }
    if let Some(cm) = chain_match(&fc.chain_match) {
        m.insert("filter_chain_match".into(), cm);
    }
    m.insert("filters".into(), json!([filter]));
    if let Some(ts) = downstream_socket(&fc.transport_socket) {
        m.insert("transport_socket".into(), ts);
    }
    if let Some(t) = fc.transport_socket_connect_timeout {
        m.insert("transport_socket_connect_timeout".into(), dur(t).into());
    }
    Value::Object(m)
}

/// A listener in v3 form.
pub fn listener(l: &Listener) -> Value {
    let chains: Vec<Value> = l.filter_chains.iter().map(filter_chain).collect();
    let mut v = json!({
        "name": l.name,
        "address": addr(&l.address),
        "filter_chains": chains,
        "per_connection_buffer_limit_bytes": l.per_connection_buffer_limit_bytes,
    });
    if let Some(m) = v.as_object_mut() {
        if let Some(d) = &l.default_filter_chain {
            m.insert("default_filter_chain".into(), filter_chain(d));
        }
        if !l.listener_filters.is_empty() {
            let lf: Vec<Value> = l
                .listener_filters
                .iter()
                .map(|f| match f {
                    ListenerFilter::TlsInspector(t) => {
                        let mut c = Map::new();
                        c.insert("@type".into(), "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector".into());
                        if let Some(s) = t.max_client_hello_size {
                            c.insert("max_client_hello_size".into(), s.into());
                        }
                        json!({"name": "envoy.filters.listener.tls_inspector", "typed_config": c})
                    }
                })
                .collect();
            m.insert("listener_filters".into(), lf.into());
            m.insert(
                "listener_filters_timeout".into(),
                dur(l.listener_filters_timeout).into(),
            );
        }
    }
    v
}

/// The whole bootstrap in v3 form.
pub fn bootstrap(b: &Bootstrap) -> Value {
    let mut v = json!({
        "node": {"id": b.node.id, "cluster": b.node.cluster},
        "static_resources": {
            "listeners": b.listeners.iter().map(listener).collect::<Vec<_>>(),
            "clusters": b.clusters.iter().map(cluster).collect::<Vec<_>>(),
        },
    });
    if !b.secrets.is_empty() {
        if let Some(sr) = v.get_mut("static_resources").and_then(Value::as_object_mut) {
            sr.insert(
                "secrets".into(),
                b.secrets.iter().map(secret).collect::<Vec<_>>().into(),
            );
        }
    }
    if let (Some(a), Some(m)) = (&b.admin, v.as_object_mut()) {
        let mut admin = json!({"address": addr(&a.address)});
        if let (Some(p), Some(am)) = (&a.access_log_path, admin.as_object_mut()) {
            am.insert(
                "access_log".into(),
                json!([{"name": "envoy.access_loggers.file", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": p,
                }}]),
            );
        }
        m.insert("admin".into(), admin);
    }
    v
}

fn typed(url: &str, v: Value) -> Value {
    let mut m = Map::new();
    m.insert("@type".into(), url.into());
    if let Value::Object(o) = v {
        m.extend(o);
    }
    Value::Object(m)
}

/// Envoy's `/config_dump` document.
pub fn config_dump(b: &Bootstrap) -> Value {
    let mut v = json!({"configs": [
        {
            "@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
            "bootstrap": bootstrap(b),
        },
        {
            "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
            "static_clusters": b.clusters.iter().map(|c| json!({"cluster": typed(
                "type.googleapis.com/envoy.config.cluster.v3.Cluster",
                cluster(c),
            )})).collect::<Vec<_>>(),
        },
        {
            "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
            "static_listeners": b.listeners.iter().map(|l| json!({"listener": typed(
                "type.googleapis.com/envoy.config.listener.v3.Listener",
                listener(l),
            )})).collect::<Vec<_>>(),
        },
    ]});
    if !b.secrets.is_empty() {
        if let Some(c) = v.get_mut("configs").and_then(Value::as_array_mut) {
            c.push(json!({
                "@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
                "static_secrets": b.secrets.iter().map(|s| json!({
                    "name": s.name,
                    "secret": typed(
                        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
                        secret(s),
                    ),
                })).collect::<Vec<_>>(),
            }));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::dur;
    use std::time::Duration;

    #[test]
    fn durations_print_like_protobuf() {
        assert_eq!(dur(Duration::from_millis(250)), "0.25s");
        assert_eq!(dur(Duration::from_secs(5)), "5s");
        assert_eq!(dur(Duration::ZERO), "0s");
    }
}
