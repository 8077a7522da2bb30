//! Listeners and their filter chains. A filter chain's network filter is
//! chosen by its v3 `typed_config` `@type`, or for the v2-era `config:`
//! form by its name (`envoy.http_connection_manager`).

use crate::address::{decode_address, SocketAddress};
use crate::decode::{Result, Val};
use crate::hcm::{decode_hcm, HttpConnectionManager, HCM_NAMES, HCM_TYPES};
use crate::route::ClusterCheck;

/// A listener.
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    /// Its name (defaults to the address, as Envoy's stats do).
    pub name: String,
    /// Where it binds.
    pub address: SocketAddress,
    /// Filter chains; nuncio serves the first one (no filter_chain_match yet).
    pub filter_chains: Vec<FilterChain>,
    /// Per-connection buffer limit (default 1 MiB).
    pub per_connection_buffer_limit_bytes: u32,
}

/// A filter chain: its network filters.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterChain {
    /// The terminal network filter.
    pub filter: NetworkFilter,
}

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
    let fcv = o.req("filter_chains")?;
    let mut filter_chains = Vec::new();
    for fc in fcv.list()? {
        filter_chains.push(decode_filter_chain(&fc, clusters)?);
    }
    if filter_chains.is_empty() {
        return Err(fcv.err("a listener needs at least one filter chain"));
    }
    if filter_chains.len() > 1 {
        return Err(fcv.err(
            "more than one filter chain needs filter_chain_match, which nuncio does not support yet",
        ));
    }
    let per_connection_buffer_limit_bytes = o
        .get("per_connection_buffer_limit_bytes")
        .map(|b| b.u32())
        .transpose()?
        .unwrap_or(1024 * 1024);
    o.ignore("stat_prefix");
    o.ignore("drain_type");
    o.ignore("traffic_direction");
    o.finish_with(&[
        "listener_filters",
        "listener_filters_timeout",
        "use_original_dst",
        "default_filter_chain",
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
        per_connection_buffer_limit_bytes,
    })
}

fn decode_filter_chain(v: &Val, clusters: ClusterCheck) -> Result<FilterChain> {
    let o = v.obj()?;
    let fv = o.req("filters")?;
    let filters = fv.list()?;
    let mut decoded = Vec::new();
    for f in &filters {
        decoded.push(decode_network_filter(f, clusters)?);
    }
    o.ignore("name");
    o.finish_with(&[
        "filter_chain_match",
        "tls_context",
        "transport_socket",
        "transport_socket_connect_timeout",
        "use_proxy_proto",
        "metadata",
        "on_demand_configuration",
    ])?;
    match decoded.len() {
        1 => Ok(FilterChain {
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
