//! Clusters: a named group of upstream endpoints, how to discover them,
//! how to balance across them and which protocol to speak to them. Reads
//! the v2-era form (`hosts`, `http2_protocol_options`) and the v3 form
//! (`load_assignment`, `typed_extension_protocol_options`).

use std::time::Duration;

use crate::address::{decode_address, decode_socket_address, SocketAddress};
use crate::decode::{Result, Val};
use crate::http2::{decode_http2_options, Http2Options};
use crate::tls::{
    decode_transport_socket, decode_upstream, TransportSocket, UpstreamTls, UPSTREAM_TYPE,
};

/// How a cluster finds its endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryType {
    /// Addresses are IPs given in the config.
    Static,
    /// Every address every name resolves to is a host; re-resolved periodically.
    StrictDns,
    /// One logical host: the first address the name resolves to, refreshed.
    LogicalDns,
}

impl DiscoveryType {
    /// Envoy's enum name.
    pub fn name(self) -> &'static str {
        match self {
            DiscoveryType::Static => "STATIC",
            DiscoveryType::StrictDns => "STRICT_DNS",
            DiscoveryType::LogicalDns => "LOGICAL_DNS",
        }
    }
}

/// Load-balancing policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbPolicy {
    /// Each host in turn.
    RoundRobin,
    /// Power of two choices on active requests.
    LeastRequest,
    /// Uniformly random.
    Random,
}

impl LbPolicy {
    /// Envoy's enum name.
    pub fn name(self) -> &'static str {
        match self {
            LbPolicy::RoundRobin => "ROUND_ROBIN",
            LbPolicy::LeastRequest => "LEAST_REQUEST",
            LbPolicy::Random => "RANDOM",
        }
    }
}

/// Which address families a DNS lookup returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsLookupFamily {
    /// IPv4 if there is any, else IPv6. (Envoy's AUTO prefers IPv6; nuncio
    /// reads AUTO as V4_PREFERRED, see docs/envoy-differences.md.)
    V4Preferred,
    /// IPv4 only.
    V4Only,
    /// IPv6 only.
    V6Only,
    /// IPv6 if there is any, else IPv4.
    V6Preferred,
    /// Every address of both families.
    All,
}

/// The protocol spoken to the cluster's endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// HTTP/1.1.
    Http1,
    /// HTTP/2 with prior knowledge (h2c), or over TLS with ALPN h2.
    Http2(Http2Options),
}

/// A cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// The name routes refer to.
    pub name: String,
    /// Service discovery type.
    pub discovery: DiscoveryType,
    /// Load-balancing policy.
    pub lb_policy: LbPolicy,
    /// Timeout for a new upstream TCP connection (default 5 s).
    pub connect_timeout: Duration,
    /// Re-resolution interval for DNS clusters (default 5 s).
    pub dns_refresh_rate: Duration,
    /// DNS address family selection.
    pub dns_lookup_family: DnsLookupFamily,
    /// Endpoints as configured (names for DNS clusters).
    pub endpoints: Vec<SocketAddress>,
    /// Upstream protocol.
    pub protocol: UpstreamProtocol,
    /// Requests per upstream connection before it is closed (0 = unlimited).
    pub max_requests_per_connection: u32,
    /// Idle time after which a pooled connection is closed (default 1 h).
    pub idle_timeout: Duration,
    /// `transport_socket`: plain TCP or TLS to the endpoints.
    pub transport_socket: TransportSocket<UpstreamTls>,
    /// `transport_socket_matches`: per-endpoint transport sockets chosen by
    /// the endpoint's `envoy.transport_socket_match` metadata.
    pub transport_socket_matches: Vec<TransportSocketMatch>,
    /// `upstream_http_protocol_options` of the HttpProtocolOptions.
    pub upstream_http: UpstreamHttpOptions,
}

/// One `transport_socket_matches` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TransportSocketMatch {
    /// Its name (the stats use it).
    pub name: String,
    /// `match`: every key must equal the endpoint's metadata value.
    pub criteria: Vec<MetadataCriterion>,
    /// The transport socket for matching endpoints.
    pub transport_socket: TransportSocket<UpstreamTls>,
}

/// One key of a `transport_socket_matches[].match` struct.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataCriterion {
    /// The metadata key.
    pub key: String,
    /// The value it must have (a protobuf `Value`, as JSON).
    pub value: serde_json::Value,
}

/// `UpstreamHttpProtocolOptions`: how SNI and SAN checks follow the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UpstreamHttpOptions {
    /// `auto_sni`: the SNI is the request's host.
    pub auto_sni: bool,
    /// `auto_san_validation`: the certificate must carry that host.
    pub auto_san_validation: bool,
}

const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

pub(crate) fn decode_cluster(v: &Val) -> Result<Cluster> {
    let o = v.obj()?;
    let name = o.req("name")?.str()?;
    let discovery = match o.get("type") {
        None => DiscoveryType::Static,
        Some(t) => t.enumeration(&[
            ("STATIC", DiscoveryType::Static),
            ("STRICT_DNS", DiscoveryType::StrictDns),
            ("LOGICAL_DNS", DiscoveryType::LogicalDns),
        ])?,
    };
    let lb_policy = match o.get("lb_policy") {
        None => LbPolicy::RoundRobin,
        Some(t) => t.enumeration(&[
            ("ROUND_ROBIN", LbPolicy::RoundRobin),
            ("LEAST_REQUEST", LbPolicy::LeastRequest),
            ("RANDOM", LbPolicy::Random),
        ])?,
    };
    let connect_timeout = o
        .get("connect_timeout")
        .map(|d| d.duration())
        .transpose()?
        .unwrap_or(Duration::from_secs(5));
    let dns_refresh_rate = o
        .get("dns_refresh_rate")
        .map(|d| d.duration())
        .transpose()?
        .unwrap_or(Duration::from_secs(5));
    if dns_refresh_rate < Duration::from_millis(1) {
        return Err(o.err("dns_refresh_rate must be at least 1ms"));
    }
    let dns_lookup_family = match o.get("dns_lookup_family") {
        None => DnsLookupFamily::V4Preferred,
        Some(f) => f.enumeration(&[
            ("AUTO", DnsLookupFamily::V4Preferred),
            ("V4_ONLY", DnsLookupFamily::V4Only),
            ("V6_ONLY", DnsLookupFamily::V6Only),
            ("V4_PREFERRED", DnsLookupFamily::V4Preferred),
            ("ALL", DnsLookupFamily::All),
        ])?,
    };
    o.ignore("respect_dns_ttl");
    o.ignore("cleanup_interval");
    o.ignore("per_connection_buffer_limit_bytes");

    // Endpoints: v2 `hosts` or v3 `load_assignment`.
    let hosts = o.get("hosts");
    let assignment = o.get("load_assignment");
    let endpoints = match (hosts, assignment) {
        (Some(_), Some(la)) => {
            return Err(la.err("give either 'hosts' (v2-era) or 'load_assignment' (v3), not both"))
        }
        (Some(h), None) => h
            .list()?
            .iter()
            .map(decode_v2_host)
            .collect::<Result<Vec<_>>>()?,
        (None, Some(la)) => decode_load_assignment(&la)?,
        (None, None) => Vec::new(),
    };
    for (i, ep) in endpoints.iter().enumerate() {
        if discovery == DiscoveryType::Static && ep.ip().is_none() {
            return Err(v.err(format!(
                "endpoint {i} address '{}' is not an IP address; a STATIC cluster needs IPs (use type: STRICT_DNS for names)",
                ep.address
            )));
        }
    }
    if discovery == DiscoveryType::LogicalDns && endpoints.len() != 1 {
        return Err(v.err(format!(
            "a LOGICAL_DNS cluster takes exactly one endpoint, got {}",
            endpoints.len()
        )));
    }

    // Protocol: v2 `http2_protocol_options` or v3 typed_extension_protocol_options.
    let mut protocol = UpstreamProtocol::Http1;
    let mut idle_timeout = Duration::from_secs(3600);
    let mut upstream_http = UpstreamHttpOptions::default();
    if let Some(h2) = o.get("http2_protocol_options") {
        protocol = UpstreamProtocol::Http2(decode_http2_options(&h2)?);
    }
    o.ignore("http_protocol_options");
    if let Some(c) = o.get("common_http_protocol_options") {
        idle_timeout = decode_common_idle(&c)?.unwrap_or(idle_timeout);
    }
    if let Some(t) = o.get("typed_extension_protocol_options") {
        let to = t.obj()?;
        if let Some(hpo) = to.get(HTTP_PROTOCOL_OPTIONS) {
            let opts = decode_http_protocol_options(&hpo)?;
            if let Some(p) = opts.protocol {
                protocol = p;
            }
            if let Some(idle) = opts.idle_timeout {
                idle_timeout = idle;
            }
            upstream_http = opts.upstream_http;
        }
        to.finish()?;
    }
    let max_requests_per_connection = o
        .get("max_requests_per_connection")
        .map(|v| v.u32())
        .transpose()?
        .unwrap_or(0);
    let transport_socket = match o.get("transport_socket") {
        Some(t) => decode_transport_socket(&t, UPSTREAM_TYPE, decode_upstream)?,
        None => TransportSocket::Plain,
    };
    let mut transport_socket_matches = Vec::new();
    for m in o
        .get("transport_socket_matches")
        .map(|l| l.list())
        .transpose()?
        .unwrap_or_default()
    {
        m.not_served_yet("transport_socket_matches");
        transport_socket_matches.push(decode_socket_match(&m)?);
    }
    o.finish_with(&[
        "health_checks",
        "outlier_detection",
        "circuit_breakers",
        "tls_context",
        "eds_cluster_config",
        "lb_subset_config",
        "ring_hash_lb_config",
        "common_lb_config",
        "upstream_connection_options",
        "cluster_type",
        "lb_config",
        "load_balancing_policy",
        "dns_resolvers",
        "typed_dns_resolver_config",
        "upstream_bind_config",
        "track_cluster_stats",
        "preconnect_policy",
        "alt_stat_name",
        "protocol_selection",
        "upstream_http_protocol_options",
    ])?;
    Ok(Cluster {
        name,
        discovery,
        lb_policy,
        connect_timeout,
        dns_refresh_rate,
        dns_lookup_family,
        endpoints,
        protocol,
        max_requests_per_connection,
        idle_timeout,
        transport_socket,
        transport_socket_matches,
        upstream_http,
    })
}

fn decode_socket_match(v: &Val) -> Result<TransportSocketMatch> {
    let o = v.obj()?;
    let name = o.req("name")?.non_empty_str()?;
    let mut criteria = Vec::new();
    if let Some(m) = o.get("match") {
        for (key, value) in m.entries()? {
            criteria.push(MetadataCriterion {
                key,
                value: value.to_json(),
            });
        }
    }
    let transport_socket =
        decode_transport_socket(&o.req("transport_socket")?, UPSTREAM_TYPE, decode_upstream)?;
    o.finish()?;
    Ok(TransportSocketMatch {
        name,
        criteria,
        transport_socket,
    })
}

fn decode_v2_host(v: &Val) -> Result<SocketAddress> {
    // v2 `hosts` entries are Address messages: {socket_address: {...}}.
    decode_address(v)
}

fn decode_load_assignment(v: &Val) -> Result<Vec<SocketAddress>> {
    let o = v.obj()?;
    // Envoy ignores a mismatched cluster_name on static clusters; so do we.
    o.ignore("cluster_name");
    let mut out = Vec::new();
    for le in o
        .get("endpoints")
        .map(|e| e.list())
        .transpose()?
        .unwrap_or_default()
    {
        let lo = le.obj()?;
        lo.ignore("locality");
        lo.ignore("load_balancing_weight");
        if let Some(p) = lo.get("priority") {
            if p.u32()? != 0 {
                return Err(p.err("endpoint priorities other than 0 are not supported yet"));
            }
        }
        for lb in lo
            .get("lb_endpoints")
            .map(|e| e.list())
            .transpose()?
            .unwrap_or_default()
        {
            let lbo = lb.obj()?;
            let ep = lbo.req("endpoint")?;
            lbo.ignore("load_balancing_weight");
            lbo.ignore("health_status");
            lbo.ignore("metadata");
            lbo.finish()?;
            let eo = ep.obj()?;
            let addr = eo.req("address")?;
            eo.ignore("hostname");
            eo.ignore("health_check_config");
            eo.finish()?;
            let ao = addr.obj()?;
            let sa = ao.req("socket_address")?;
            ao.finish_with(&["pipe", "envoy_internal_address"])?;
            out.push(decode_socket_address(&sa)?);
        }
        lo.finish_with(&["leds_cluster_locality_config"])?;
    }
    o.ignore("policy");
    o.finish_with(&["named_endpoints"])?;
    Ok(out)
}

fn decode_common_idle(v: &Val) -> Result<Option<Duration>> {
    let o = v.obj()?;
    let idle = o.get("idle_timeout").map(|d| d.duration()).transpose()?;
    o.ignore("max_headers_count");
    o.ignore("max_connection_duration");
    o.ignore("max_stream_duration");
    o.ignore("headers_with_underscores_action");
    o.ignore("max_requests_per_connection");
    o.finish()?;
    Ok(idle)
}

/// What a cluster's `HttpProtocolOptions` sets.
struct ProtocolOptions {
    protocol: Option<UpstreamProtocol>,
    idle_timeout: Option<Duration>,
    upstream_http: UpstreamHttpOptions,
}

fn decode_upstream_http(v: &Val) -> Result<UpstreamHttpOptions> {
    let o = v.obj()?;
    let flag = |k: &'static str| -> Result<bool> {
        o.get(k)
            .map(|b| b.bool())
            .transpose()
            .map(|b| b == Some(true))
    };
    let opts = UpstreamHttpOptions {
        auto_sni: flag("auto_sni")?,
        auto_san_validation: flag("auto_san_validation")?,
    };
    for (on, name) in [
        (opts.auto_sni, "auto_sni"),
        (opts.auto_san_validation, "auto_san_validation"),
    ] {
        if on {
            if let Some(f) = o.get(name) {
                f.not_served_yet(name);
            }
        }
    }
    o.finish_with(&["override_auto_sni_header"])?;
    Ok(opts)
}

fn decode_http_protocol_options(v: &Val) -> Result<ProtocolOptions> {
    let o = v.obj()?;
    let ty = o.req("@type")?;
    let t = ty.str()?;
    if !t.ends_with(HTTP_PROTOCOL_OPTIONS) {
        return Err(ty.err(format!(
            "expected type.googleapis.com/{HTTP_PROTOCOL_OPTIONS}, got '{t}'"
        )));
    }
    let idle = o
        .get("common_http_protocol_options")
        .map(|c| decode_common_idle(&c))
        .transpose()?
        .flatten();
    let mut proto = None;
    if let Some(e) = o.get("explicit_http_config") {
        let eo = e.obj()?;
        if let Some(h2) = eo.get("http2_protocol_options") {
            proto = Some(UpstreamProtocol::Http2(decode_http2_options(&h2)?));
        } else if eo.has("http_protocol_options") {
            proto = Some(UpstreamProtocol::Http1);
        }
        eo.finish_with(&["http3_protocol_options"])?;
    }
    let upstream_http = o
        .get("upstream_http_protocol_options")
        .map(|u| decode_upstream_http(&u))
        .transpose()?
        .unwrap_or_default();
    o.finish_with(&[
        "auto_config",
        "use_downstream_protocol_config",
        "http_filters",
        "header_validation_config",
    ])?;
    Ok(ProtocolOptions {
        protocol: proto,
        idle_timeout: idle,
        upstream_http,
    })
}
