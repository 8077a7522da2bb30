//! Listeners and their filter chains. A filter chain's network filter is
//! chosen by its v3 `typed_config` `@type`, or for the v2-era `config:`
//! form by its name (`envoy.http_connection_manager`).

use std::time::Duration;

use crate::address::{decode_address, SocketAddress};
use crate::chain_match::{check_chains, decode_chain_match, FilterChainMatch};
use crate::decode::{Result, Val};
use crate::hcm::{decode_hcm, HttpConnectionManager, HCM_NAMES, HCM_TYPES};
use crate::route::ClusterCheck;
use crate::tls::{
    decode_downstream, decode_transport_socket, DownstreamTls, TransportSocket, DOWNSTREAM_TYPE,
};

/// A listener.
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    /// Its name (defaults to the address, as Envoy's stats do).
    pub name: String,
    /// Where it binds.
    pub address: SocketAddress,
    /// Filter chains, chosen per connection by their `filter_chain_match`
    /// (the runtime serves one chain without criteria so far).
    pub filter_chains: Vec<FilterChain>,
    /// `default_filter_chain`: for connections no chain matches.
    pub default_filter_chain: Option<FilterChain>,
    /// `listener_filters`, in order.
    pub listener_filters: Vec<ListenerFilter>,
    /// `listener_filters_timeout` (default 15 s).
    pub listener_filters_timeout: Duration,
    /// Per-connection buffer limit (default 1 MiB).
    pub per_connection_buffer_limit_bytes: u32,
}

/// A filter chain: which connections it takes, how their bytes are
/// carried (plain or TLS) and its network filters.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterChain {
    /// `name` (empty if not given).
    pub name: String,
    /// `filter_chain_match` (empty: any connection).
    pub chain_match: FilterChainMatch,
    /// `transport_socket`.
    pub transport_socket: TransportSocket<DownstreamTls>,
    /// `transport_socket_connect_timeout`: the TLS handshake's limit.
    pub transport_socket_connect_timeout: Option<Duration>,
    /// The terminal network filter.
    pub filter: NetworkFilter,
}

/// A listener filter: runs on a new connection before a chain is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerFilter {
    /// `envoy.filters.listener.tls_inspector`: reads the ClientHello's
    /// SNI and ALPN for `filter_chain_match`.
    TlsInspector(TlsInspector),
}

/// The TLS inspector's settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsInspector {
    /// `max_client_hello_size` (Envoy's default 64 KiB when unset).
    pub max_client_hello_size: Option<u32>,
}

const TLS_INSPECTOR_TYPE: &str = "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector";

/// A terminal network filter.
#[derive(Debug, Clone, PartialEq)]
pub enum NetworkFilter {
    /// `envoy.filters.network.http_connection_manager`.
    HttpConnectionManager(Box<HttpConnectionManager>),
}

/// Where a filter's settings are, and which form they were written in.
pub(crate) struct TypedOrV2<'a> {
    /// The settings map (the `config` or the `typed_config`).
    pub config: Option<Val<'a>>,
    /// The `@type` (v3) if given.
    pub type_url: Option<String>,
}

/// Reads `config:` (v2-era) or `typed_config:` (v3) of a filter/extension.
pub(crate) fn typed_or_v2<'a>(o: &crate::decode::Obj<'a>) -> Result<TypedOrV2<'a>> {
    let config = o.get("config");
    let typed = o.get("typed_config");
    match (config, typed) {
        (Some(_), Some(t)) => Err(t.err("give 'config' (v2-era) or 'typed_config' (v3), not both")),
        (Some(c), None) => Ok(TypedOrV2 {
            config: Some(c),
            type_url: None,
        }),
        (None, Some(t)) => {
            let to = t.obj()?;
            let url = to.req("@type")?.str()?;
            Ok(TypedOrV2 {
                config: Some(t),
                type_url: Some(url),
            })
        }
        (None, None) => Ok(TypedOrV2 {
            config: None,
            type_url: None,
        }),
    }
}

/// The message name of a type URL (`type.googleapis.com/a.b.C` → `a.b.C`).
pub(crate) fn type_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

pub(crate) fn decode_listener(v: &Val, clusters: ClusterCheck) -> Result<Listener> {
    let o = v.obj()?;
    let address = decode_address(&o.req("address")?)?;
    let name = o
        .get("name")
        .map(|n| n.str())
        .transpose()?
        .unwrap_or_else(|| address.to_string());
    let fcv = o.get("filter_chains");
    let mut filter_chains = Vec::new();
    for fc in fcv
        .as_ref()
        .map(|l| l.list())
        .transpose()?
        .unwrap_or_default()
    {
        filter_chains.push(decode_filter_chain(&fc, clusters)?);
    }
    let default_filter_chain = match o.get("default_filter_chain") {
        Some(d) => Some(decode_filter_chain(&d, clusters)?),
        None => None,
    };
    if filter_chains.is_empty() && default_filter_chain.is_none() {
        return Err(fcv
            .map(|f| f.err("no filter chains specified"))
            .unwrap_or_else(|| o.err("no filter chains specified")));
    }
    if let Some(f) = &fcv {
        let named: Vec<(&str, &FilterChainMatch)> = filter_chains
            .iter()
            .map(|c| (c.name.as_str(), &c.chain_match))
            .collect();
        check_chains(f, &named)?;
    }
    let mut listener_filters = Vec::new();
    for lf in o
        .get("listener_filters")
        .map(|l| l.list())
        .transpose()?
        .unwrap_or_default()
    {
        listener_filters.push(decode_listener_filter(&lf)?);
    }
    let listener_filters_timeout = o
        .get("listener_filters_timeout")
        .map(|d| d.duration())
        .transpose()?
        .unwrap_or(Duration::from_secs(15));
    let per_connection_buffer_limit_bytes = o
        .get("per_connection_buffer_limit_bytes")
        .map(|b| b.u32())
        .transpose()?
        .unwrap_or(1024 * 1024);
    o.ignore("stat_prefix");
    o.ignore("drain_type");
    o.ignore("traffic_direction");
    o.finish_with(&[
        "use_original_dst",
        "filter_chain_matcher",
        "transparent",
        "freebind",
        "socket_options",
        "tcp_fast_open_queue_length",
        "udp_listener_config",
        "api_listener",
        "connection_balance_config",
        "reuse_port",
        "enable_reuse_port",
        "access_log",
        "tcp_backlog_size",
        "bind_to_port",
        "additional_addresses",
        "metadata",
        "deprecated_v1",
        "continue_on_listener_filters_timeout",
        "enable_mptcp",
        "ignore_global_conn_limit",
        "max_connections_to_accept_per_socket_event",
        "internal_listener",
    ])?;
    Ok(Listener {
        name,
        address,
        filter_chains,
        default_filter_chain,
        listener_filters,
        listener_filters_timeout,
        per_connection_buffer_limit_bytes,
    })
}

fn decode_listener_filter(v: &Val) -> Result<ListenerFilter> {
    let o = v.obj()?;
    let name = o.req("name")?.str()?;
    let t = typed_or_v2(&o)?;
    o.finish_with(&["filter_disabled"])?;
    let is_inspector = t.type_url.as_deref().map(type_name) == Some(TLS_INSPECTOR_TYPE);
    if !is_inspector {
        let what = t.type_url.as_deref().unwrap_or(&name);
        return Err(v.err(format!(
            "listener filter '{what}' is not supported; nuncio supports envoy.filters.listener.tls_inspector (with typed_config @type type.googleapis.com/{TLS_INSPECTOR_TYPE})"
        )));
    }
    let mut inspector = TlsInspector::default();
    if let Some(c) = &t.config {
        let co = c.obj()?;
        co.ignore("@type");
        if let Some(m) = co.get("max_client_hello_size") {
            inspector.max_client_hello_size = Some(m.uint(256, 16384)? as u32);
        }
        for k in ["enable_ja3_fingerprinting", "enable_ja4_fingerprinting"] {
            co.only_if(
                k,
                |b| Ok(!b.bool()?),
                "nuncio does not compute JA3/JA4 fingerprints",
            )?;
        }
        co.finish_with(&["initial_read_buffer_size"])?;
    }
    Ok(ListenerFilter::TlsInspector(inspector))
}

fn decode_filter_chain(v: &Val, clusters: ClusterCheck) -> Result<FilterChain> {
    let o = v.obj()?;
    let fv = o.req("filters")?;
    let filters = fv.list()?;
    let mut decoded = Vec::new();
    for f in &filters {
        decoded.push(decode_network_filter(f, clusters)?);
    }
    let name = o
        .get("name")
        .map(|n| n.str())
        .transpose()?
        .unwrap_or_default();
    let chain_match = match o.get("filter_chain_match") {
        Some(m) => decode_chain_match(&m)?,
        None => FilterChainMatch::default(),
    };
    let transport_socket = match o.get("transport_socket") {
        Some(t) => decode_transport_socket(&t, DOWNSTREAM_TYPE, decode_downstream)?,
        None => TransportSocket::Plain,
    };
    let transport_socket_connect_timeout = o
        .get("transport_socket_connect_timeout")
        .map(|d| d.duration())
        .transpose()?;
    o.finish_with(&[
        "tls_context",
        "use_proxy_proto",
        "metadata",
        "on_demand_configuration",
    ])?;
    match decoded.len() {
        1 => Ok(FilterChain {
            name,
            chain_match,
            transport_socket,
            transport_socket_connect_timeout,
            filter: decoded.remove(0),
        }),
        0 => Err(fv.err("a filter chain needs a terminal filter such as envoy.filters.network.http_connection_manager")),
        _ => Err(fv.err("only one network filter (the http_connection_manager) per chain is supported yet")),
    }
}

fn decode_network_filter(v: &Val, clusters: ClusterCheck) -> Result<NetworkFilter> {
    let o = v.obj()?;
    let nv = o.req("name")?;
    let name = nv.str()?;
    let t = typed_or_v2(&o)?;
    o.finish()?;
    let is_hcm = match &t.type_url {
        Some(url) => HCM_TYPES.contains(&type_name(url)),
        None => HCM_NAMES.contains(&name.as_str()),
    };
    if !is_hcm {
        let what = t.type_url.as_deref().unwrap_or(&name);
        return Err(v.err(format!(
            "network filter '{what}' is not supported; nuncio supports envoy.filters.network.http_connection_manager (v2-era name envoy.http_connection_manager)"
        )));
    }
    let Some(cfg) = t.config else {
        return Err(o.err(
            "the http_connection_manager needs its settings in 'typed_config' (or v2-era 'config')",
        ));
    };
    Ok(NetworkFilter::HttpConnectionManager(Box::new(decode_hcm(
        &cfg, clusters,
    )?)))
}
