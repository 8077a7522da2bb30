//! Route configuration: virtual hosts (matched on the Host header) and
//! their ordered routes (matched on the path), each with an action.
//!
//! Each of the three levels (route configuration, virtual host, route)
//! carries its header lists (`request_headers_to_add` and the rest,
//! [`HeaderMutations`]) and `typed_per_filter_config` (v2-era
//! `per_filter_config` on virtual hosts and routes); the virtual host and
//! the route action carry the older `cors` field, kept on the [`Route`].
//! `most_specific_header_mutations_wins` is a route configuration field
//! (Envoy refuses it on a virtual host). Header lists of weighted-cluster
//! entries are out of scope: `weighted_clusters` is refused.

use std::time::Duration;

use crate::decode::{Result, Val};
use crate::filters::{decode_per_filter, decode_route_cors, CorsPolicy, PerFilterConfig};
use crate::headers::{decode_header_mutations, HeaderMutations};

/// A `RouteConfiguration`.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    /// Its name.
    pub name: String,
    /// Virtual hosts, in order.
    pub virtual_hosts: Vec<VirtualHost>,
    /// `ignore_port_in_host_matching`: match domains against the Host
    /// without its port (Envoy's default compares the whole Host).
    pub ignore_port_in_host_matching: bool,
    /// `request_headers_to_add` and the rest at the route config level.
    pub headers: HeaderMutations,
    /// `most_specific_header_mutations_wins`.
    pub most_specific_header_mutations_wins: bool,
    /// `typed_per_filter_config` at the route config level.
    pub per_filter: PerFilterConfig,
}

/// A virtual host.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualHost {
    /// Its name (used in stats).
    pub name: String,
    /// Domains: exact, `*.suffix`, `prefix.*` or `*`.
    pub domains: Vec<String>,
    /// Routes, first match wins.
    pub routes: Vec<Route>,
    /// The virtual host's header mutations.
    pub headers: HeaderMutations,
    /// The virtual host's `cors` policy (the older field; the v3 way is
    /// `typed_per_filter_config`).
    pub cors: Option<CorsPolicy>,
    /// `typed_per_filter_config`.
    pub per_filter: PerFilterConfig,
}

/// A route.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Optional name.
    pub name: String,
    /// What the route matches.
    pub matcher: RouteMatch,
    /// What it does.
    pub action: Action,
    /// The route's header mutations.
    pub headers: HeaderMutations,
    /// The route action's `cors` policy (the older field).
    pub cors: Option<CorsPolicy>,
    /// `typed_per_filter_config`.
    pub per_filter: PerFilterConfig,
}

/// Path matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// The path starts with this.
    Prefix(String),
    /// The path (without query) equals this.
    Path(String),
}

/// A route's match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The path rule.
    pub path: PathMatch,
    /// Case-sensitive matching (default true).
    pub case_sensitive: bool,
}

/// What a matched route does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Forward to a cluster.
    Route(RouteAction),
    /// Answer directly.
    DirectResponse {
        /// HTTP status.
        status: u16,
        /// Body, if any.
        body: Option<String>,
    },
}

/// Forwarding to a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteAction {
    /// Target cluster.
    pub cluster: String,
    /// Whole-request timeout; `None` is Envoy's default 15 s, zero disables.
    pub timeout: Option<Duration>,
    /// Replace the matched prefix with this.
    pub prefix_rewrite: Option<String>,
    /// Replace the Host header with this.
    pub host_rewrite: Option<String>,
    /// WebSocket upgrades: `Some(true/false)` overrides the connection
    /// manager's `upgrade_configs`; `None` inherits it.
    pub websocket: Option<bool>,
}

/// Envoy's default route timeout.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

impl RouteAction {
    /// The effective timeout: `None` when disabled.
    pub fn effective_timeout(&self) -> Option<Duration> {
        match self.timeout {
            None => Some(DEFAULT_ROUTE_TIMEOUT),
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
        }
    }
}

/// Checks every cluster a route names exists (Envoy's `validate_clusters`).
pub(crate) type ClusterCheck<'c> = &'c dyn Fn(&str) -> bool;

pub(crate) fn decode_route_config(v: &Val, clusters: ClusterCheck) -> Result<RouteConfig> {
    let o = v.obj()?;
    let name = o
        .get("name")
        .map(|n| n.str())
        .transpose()?
        .unwrap_or_default();
    let mut virtual_hosts = Vec::new();
    for vh in o
        .get("virtual_hosts")
        .map(|l| l.list())
        .transpose()?
        .unwrap_or_default()
    {
        virtual_hosts.push(decode_virtual_host(&vh, clusters)?);
    }
    o.ignore("validate_clusters");
    let ignore_port_in_host_matching = o
        .get("ignore_port_in_host_matching")
        .map(|b| b.bool())
        .transpose()?
        .unwrap_or(false);
    let headers = decode_header_mutations(&o)?;
    let most_specific_header_mutations_wins = o
        .get("most_specific_header_mutations_wins")
        .map(|b| b.bool())
        .transpose()?
        .unwrap_or(false);
    let per_filter = decode_per_filter(o.get("typed_per_filter_config"), None)?;
    o.finish_with(&[
        "internal_only_headers",
        "vhds",
        "cluster_specifier_plugins",
        "request_mirror_policies",
        "max_direct_response_body_size_bytes",
    ])?;
    // Envoy rejects a domain that appears in two virtual hosts.
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for (i, vh) in virtual_hosts.iter().enumerate() {
        for d in &vh.domains {
            if let Some((_, j)) = seen.iter().find(|(s, _)| s.eq_ignore_ascii_case(d)) {
                return Err(v.err(format!(
                    "domain '{d}' is in virtual_hosts[{j}] and virtual_hosts[{i}]; each domain may appear once"
                )));
            }
            seen.push((d, i));
        }
    }
    Ok(RouteConfig {
        name,
        virtual_hosts,
        ignore_port_in_host_matching,
        headers,
        most_specific_header_mutations_wins,
        per_filter,
    })
}

fn decode_virtual_host(v: &Val, clusters: ClusterCheck) -> Result<VirtualHost> {
    let o = v.obj()?;
    let name = o.req("name")?.str()?;
    let dv = o.req("domains")?;
    let domains = dv.str_list()?;
    if domains.is_empty() {
        return Err(dv.err("a virtual host needs at least one domain (use \"*\" for any)"));
    }
    for d in &domains {
        let stars = d.matches('*').count();
        let ok = stars == 0 || d == "*" || (stars == 1 && (d.starts_with('*') || d.ends_with('*')));
        if !ok || d.is_empty() {
            return Err(dv.err(format!(
                "domain '{d}' is not valid: use an exact name, '*.suffix', 'prefix.*' or '*'"
            )));
        }
    }
    let mut routes = Vec::new();
    for r in o
        .get("routes")
        .map(|l| l.list())
        .transpose()?
        .unwrap_or_default()
    {
        routes.push(decode_route(&r, clusters)?);
    }
    let headers = decode_header_mutations(&o)?;
    let cors = o.get("cors").map(|c| decode_route_cors(&c)).transpose()?;
    let per_filter =
        decode_per_filter(o.get("typed_per_filter_config"), o.get("per_filter_config"))?;
    o.finish_with(&[
        "require_tls",
        "virtual_clusters",
        "rate_limits",
        "include_request_attempt_count",
        "include_attempt_count_in_response",
        "retry_policy",
        "hedge_policy",
        "per_request_buffer_limit_bytes",
        "request_mirror_policies",
        "matcher",
        "metadata",
    ])?;
    Ok(VirtualHost {
        name,
        domains,
        routes,
        headers,
        cors,
        per_filter,
    })
}

fn decode_route(v: &Val, clusters: ClusterCheck) -> Result<Route> {
    let o = v.obj()?;
    let name = o
        .get("name")
        .map(|n| n.str())
        .transpose()?
        .unwrap_or_default();
    let matcher = decode_match(&o.req("match")?)?;
    let route = o.get("route");
    let direct = o.get("direct_response");
    let mut cors = None;
    let action = match (route, direct) {
        (Some(r), None) => {
            let (a, c) = decode_route_action(&r, clusters)?;
            cors = c;
            Action::Route(a)
        }
        (None, Some(d)) => decode_direct_response(&d)?,
        (Some(_), Some(d)) => {
            return Err(d.err("a route takes one of 'route' and 'direct_response'"))
        }
        (None, None) if o.has("redirect") => {
            return Err(
                o.err("'redirect' routes are not supported yet; use 'route' or 'direct_response'")
            )
        }
        (None, None) => return Err(o.err("a route needs an action: 'route' or 'direct_response'")),
    };
    o.ignore("decorator");
    o.ignore("metadata");
    let headers = decode_header_mutations(&o)?;
    let per_filter =
        decode_per_filter(o.get("typed_per_filter_config"), o.get("per_filter_config"))?;
    o.finish_with(&[
        "redirect",
        "filter_action",
        "non_forwarding_action",
        "tracing",
        "per_request_buffer_limit_bytes",
        "stat_prefix",
    ])?;
    Ok(Route {
        name,
        matcher,
        action,
        headers,
        cors,
        per_filter,
    })
}

fn decode_match(v: &Val) -> Result<RouteMatch> {
    let o = v.obj()?;
    let prefix = o.get("prefix").map(|p| p.str()).transpose()?;
    let path = o.get("path").map(|p| p.str()).transpose()?;
    let path = match (prefix, path) {
        (Some(p), None) => PathMatch::Prefix(p),
        (None, Some(p)) => PathMatch::Path(p),
        (Some(_), Some(_)) => {
            return Err(o.err("a match takes one of 'prefix' and 'path', not both"))
        }
        (None, None) => {
            for k in [
                "safe_regex",
                "regex",
                "path_separated_prefix",
                "connect_matcher",
                "path_match_policy",
            ] {
                if o.has(k) {
                    return Err(o.err(format!(
                        "match '{k}' is not supported yet; use 'prefix' or 'path'"
                    )));
                }
            }
            return Err(o.err("a match needs 'prefix' or 'path'"));
        }
    };
    let case_sensitive = o
        .get("case_sensitive")
        .map(|b| b.bool())
        .transpose()?
        .unwrap_or(true);
    o.finish_with(&[
        "safe_regex",
        "regex",
        "path_separated_prefix",
        "connect_matcher",
        "path_match_policy",
        "headers",
        "query_parameters",
        "grpc",
        "tls_context",
        "runtime_fraction",
        "dynamic_metadata",
        "filter_state",
    ])?;
    Ok(RouteMatch {
        path,
        case_sensitive,
    })
}

/// Decodes a `RouteAction`, and its `cors` policy (kept on the [`Route`]).
fn decode_route_action(
    v: &Val,
    clusters: ClusterCheck,
) -> Result<(RouteAction, Option<CorsPolicy>)> {
    let o = v.obj()?;
    let cv = o.get("cluster");
    let cluster = match &cv {
        Some(c) => c.str()?,
        None => {
            for k in [
                "cluster_header",
                "weighted_clusters",
                "cluster_specifier_plugin",
            ] {
                if o.has(k) {
                    return Err(o.err(format!("'{k}' is not supported yet; name a 'cluster'")));
                }
            }
            return Err(o.err("missing required field 'cluster'"));
        }
    };
    if let Some(c) = &cv {
        if !clusters(&cluster) {
            return Err(c.err(format!(
                "unknown cluster '{cluster}': no cluster of that name in static_resources.clusters"
            )));
        }
    }
    let timeout = o.get("timeout").map(|t| t.duration()).transpose()?;
    let prefix_rewrite = o.get("prefix_rewrite").map(|p| p.str()).transpose()?;
    let host_rewrite = match (o.get("host_rewrite_literal"), o.get("host_rewrite")) {
        (Some(h), None) | (None, Some(h)) => Some(h.str()?),
        (None, None) => None,
        (Some(_), Some(h)) => {
            return Err(h.err("give 'host_rewrite_literal' (v3) or 'host_rewrite' (v2), not both"))
        }
    };
    let mut websocket = o.get("use_websocket").map(|b| b.bool()).transpose()?;
    if let Some(u) = o.get("upgrade_configs") {
        for uc in u.list()? {
            let (kind, enabled) = decode_upgrade_config(&uc)?;
            if kind.eq_ignore_ascii_case("websocket") {
                websocket = Some(enabled);
            }
        }
    }
    o.ignore("idle_timeout");
    o.ignore("priority");
    let cors = o.get("cors").map(|c| decode_route_cors(&c)).transpose()?;
    o.finish_with(&[
        "cluster_header",
        "weighted_clusters",
        "cluster_specifier_plugin",
        "cluster_not_found_response_code",
        "metadata_match",
        "regex_rewrite",
        "path_rewrite_policy",
        "auto_host_rewrite",
        "host_rewrite_header",
        "host_rewrite_path_regex",
        "append_x_forwarded_host",
        "retry_policy",
        "retry_policy_typed_config",
        "request_mirror_policies",
        "rate_limits",
        "include_vh_rate_limits",
        "hash_policy",
        "max_grpc_timeout",
        "grpc_timeout_offset",
        "internal_redirect_policy",
        "max_stream_duration",
        "hedge_policy",
    ])?;
    Ok((
        RouteAction {
            cluster,
            timeout,
            prefix_rewrite,
            host_rewrite,
            websocket,
        },
        cors,
    ))
}

/// Decodes an `UpgradeConfig`: `{upgrade_type, enabled}`.
pub(crate) fn decode_upgrade_config(v: &Val) -> Result<(String, bool)> {
    let o = v.obj()?;
    let kind = o.req("upgrade_type")?.str()?;
    let enabled = o
        .get("enabled")
        .map(|b| b.bool())
        .transpose()?
        .unwrap_or(true);
    o.finish_with(&["connect_config", "filters"])?;
    Ok((kind, enabled))
}

fn decode_direct_response(v: &Val) -> Result<Action> {
    let o = v.obj()?;
    let status = o.req("status")?.uint(200, 599)? as u16;
    let body = match o.get("body") {
        None => None,
        Some(b) => {
            let bo = b.obj()?;
            let s = bo.get("inline_string").map(|s| s.str()).transpose()?;
            bo.finish_with(&["filename", "inline_bytes", "environment_variable"])?;
            s
        }
    };
    o.finish()?;
    Ok(Action::DirectResponse { status, body })
}
