//! The router's route table. A [`RouteTable`] is compiled once from a
//! `RouteConfiguration`: virtual hosts are found by the Host header in
//! Envoy's order (exact domain, longest `*.suffix`, longest `prefix.*`,
//! then `*`; ports ignored when the domain has none), then the first route
//! whose path rule matches wins. Routes hold their cluster directly, so a
//! request never looks a cluster up by name.

#![forbid(unsafe_code)]

pub mod path;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use nuncio_cluster::{Cluster, ClusterManager};
use nuncio_config::filters::{CorsPolicy, FilterOverride, PerFilterConfig};
use nuncio_config::{Action, HeaderMutations, PathMatch, RouteConfig};
use nuncio_filters::chain::RouteConfigs;

/// What one level (route, virtual host, route configuration) gives its
/// requests beyond matching: header mutations, a `cors` policy,
/// `typed_per_filter_config`.
#[derive(Debug, Default)]
pub struct Level {
    /// `request_headers_to_add` and the rest.
    pub headers: HeaderMutations,
    /// The older `cors` field.
    pub cors: Option<CorsPolicy>,
    /// `typed_per_filter_config`.
    pub per_filter: PerFilterConfig,
}

impl Level {
    fn filter(&self, name: &str) -> Option<&FilterOverride> {
        self.per_filter
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, o)| o)
    }
}

/// A route table could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// A route names a cluster that does not exist.
    #[error("route '{route}' in virtual host '{vhost}' names unknown cluster '{cluster}'")]
    UnknownCluster {
        /// Virtual host name.
        vhost: String,
        /// Route name or index.
        route: String,
        /// Cluster name.
        cluster: String,
    },
    /// A header value is not valid.
    #[error("virtual host '{vhost}': '{value}' is not a valid header value")]
    BadHeader {
        /// Virtual host name.
        vhost: String,
        /// The value.
        value: String,
    },
}

/// Forwarding to a cluster.
#[derive(Debug)]
pub struct Forward {
    /// The cluster.
    pub cluster: Arc<Cluster>,
    /// Whole-request timeout (`None` = disabled).
    pub timeout: Option<Duration>,
    /// The timeout in milliseconds as a header value (`x-envoy-expected-rq-timeout-ms`).
    pub timeout_header: Option<HeaderValue>,
    /// Prefix rewrite: (matched prefix, replacement).
    pub prefix_rewrite: Option<(String, String)>,
    /// Host header rewrite.
    pub host_rewrite: Option<HeaderValue>,
    /// WebSocket upgrades allowed.
    pub websocket: bool,
}

/// What a route does.
#[derive(Debug)]
pub enum RouteKind {
    /// Forward to a cluster.
    Forward(Forward),
    /// Answer directly.
    Direct {
        /// Status code.
        status: u16,
        /// Body.
        body: Bytes,
    },
}

#[derive(Debug)]
enum Matcher {
    Prefix(String),
    Path(String),
}

/// One compiled route.
#[derive(Debug)]
pub struct RouteEntry {
    /// Its name (may be empty).
    pub name: String,
    matcher: Matcher,
    case_sensitive: bool,
    /// Its action.
    pub kind: RouteKind,
    /// The route's own level.
    pub level: Level,
    /// Its virtual host's level.
    pub vhost: Arc<Level>,
    /// The route configuration's level.
    pub table: Arc<Level>,
    /// `most_specific_header_mutations_wins`.
    pub most_specific_wins: bool,
    /// Some level mutates headers (worked out once).
    mutates: bool,
    /// Some level has `typed_per_filter_config` (worked out once).
    overridden: bool,
}

impl RouteConfigs for RouteEntry {
    fn name(&self) -> &str {
        &self.name
    }
    fn cluster(&self) -> Option<&str> {
        match &self.kind {
            RouteKind::Forward(f) => Some(f.cluster.name()),
            RouteKind::Direct { .. } => None,
        }
    }
    fn overrides(&self, name: &str) -> [Option<&FilterOverride>; 3] {
        [
            self.level.filter(name),
            self.vhost.filter(name),
            self.table.filter(name),
        ]
    }
    fn cors_fields(&self) -> [Option<&CorsPolicy>; 2] {
        [self.level.cors.as_ref(), self.vhost.cors.as_ref()]
    }
    fn has_overrides(&self) -> bool {
        self.overridden
    }
}

impl RouteEntry {
    /// The header mutation levels in the order Envoy applies them: route,
    /// virtual host, route configuration (the reverse with
    /// `most_specific_header_mutations_wins`).
    pub fn header_levels(&self) -> [&HeaderMutations; 3] {
        let mut l = [
            &self.level.headers,
            &self.vhost.headers,
            &self.table.headers,
        ];
        if self.most_specific_wins {
            l.reverse();
        }
        l
    }

    /// Whether any level mutates headers.
    pub fn mutates_headers(&self) -> bool {
        self.mutates
    }

    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Prefix(p) => {
                if self.case_sensitive {
                    path.starts_with(p.as_str())
                } else {
                    path.len() >= p.len()
                        && path.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
                }
            }
            Matcher::Path(p) => {
                let path = path.split(['?', '#']).next().unwrap_or(path);
                if self.case_sensitive {
                    path == p
                } else {
                    path.eq_ignore_ascii_case(p)
                }
            }
        }
    }

    /// The upstream path after `prefix_rewrite`.
    pub fn rewrite_path<'a>(&self, path: &'a str) -> std::borrow::Cow<'a, str> {
        if let RouteKind::Forward(Forward {
            prefix_rewrite: Some((prefix, repl)),
            ..
        }) = &self.kind
        {
            if let Some(rest) = path.get(prefix.len()..) {
                return format!("{repl}{rest}").into();
            }
        }
        path.into()
    }
}

/// A compiled virtual host.
#[derive(Debug)]
pub struct VirtualHostEntry {
    /// Its name.
    pub name: String,
    routes: Vec<RouteEntry>,
}

/// The compiled route table of one connection manager.
#[derive(Debug, Default)]
pub struct RouteTable {
    vhosts: Vec<VirtualHostEntry>,
    exact: HashMap<String, usize>,
    /// `*.suffix` domains: (suffix without `*`, vhost), longest first.
    suffix: Vec<(String, usize)>,
    /// `prefix.*` domains: (prefix without `*`, vhost), longest first.
    prefix: Vec<(String, usize)>,
    any: Option<usize>,
    /// `ignore_port_in_host_matching`.
    ignore_port: bool,
}

impl RouteTable {
    /// Compiles `cfg`. `hcm_websocket` is the connection manager's
    /// `upgrade_configs` setting, which routes inherit.
    pub fn new(
        cfg: &RouteConfig,
        hcm_websocket: bool,
        clusters: &ClusterManager,
    ) -> Result<Self, RouterError> {
        let mut t = RouteTable {
            ignore_port: cfg.ignore_port_in_host_matching,
            ..RouteTable::default()
        };
        let table = Arc::new(Level {
            headers: cfg.headers.clone(),
            cors: None,
            per_filter: cfg.per_filter.clone(),
        });
        for (vi, vh) in cfg.virtual_hosts.iter().enumerate() {
            let vhost = Arc::new(Level {
                headers: vh.headers.clone(),
                cors: vh.cors.clone(),
                per_filter: vh.per_filter.clone(),
            });
            let mut routes = Vec::new();
            for (ri, r) in vh.routes.iter().enumerate() {
                let kind = match &r.action {
                    Action::Route(a) => {
                        let cluster = clusters.get(&a.cluster).cloned().ok_or_else(|| {
                            RouterError::UnknownCluster {
                                vhost: vh.name.clone(),
                                route: if r.name.is_empty() {
                                    format!("#{ri}")
                                } else {
                                    r.name.clone()
                                },
                                cluster: a.cluster.clone(),
                            }
                        })?;
                        let timeout = a.effective_timeout();
                        let host_rewrite = a
                            .host_rewrite
                            .as_ref()
                            .map(|h| {
                                HeaderValue::from_str(h).map_err(|_| RouterError::BadHeader {
                                    vhost: vh.name.clone(),
                                    value: h.clone(),
                                })
                            })
                            .transpose()?;
                        let prefix_rewrite = match (&r.matcher.path, &a.prefix_rewrite) {
                            (PathMatch::Prefix(p), Some(repl)) => Some((p.clone(), repl.clone())),
                            (PathMatch::Path(p), Some(repl)) => Some((p.clone(), repl.clone())),
                            _ => None,
                        };
                        RouteKind::Forward(Forward {
                            cluster,
                            timeout,
                            timeout_header: timeout.map(|d| {
                                HeaderValue::from(d.as_millis().min(u128::from(u64::MAX)) as u64)
                            }),
                            prefix_rewrite,
                            host_rewrite,
                            websocket: a.websocket.unwrap_or(hcm_websocket),
                        })
                    }
                    Action::DirectResponse { status, body } => RouteKind::Direct {
                        status: *status,
                        body: Bytes::from(body.clone().unwrap_or_default()),
                    },
                };
                let matcher = match &r.matcher.path {
                    PathMatch::Prefix(p) => Matcher::Prefix(p.clone()),
                    PathMatch::Path(p) => Matcher::Path(p.clone()),
                };
                let level = Level {
                    headers: r.headers.clone(),
                    cors: r.cors.clone(),
                    per_filter: r.per_filter.clone(),
                };
                let levels = [&level, &*vhost, &*table];
                routes.push(RouteEntry {
                    mutates: levels.iter().any(|l| !l.headers.is_empty()),
                    overridden: levels.iter().any(|l| !l.per_filter.is_empty()),
                    name: r.name.clone(),
                    matcher,
                    case_sensitive: r.matcher.case_sensitive,
                    kind,
                    level,
                    vhost: vhost.clone(),
                    table: table.clone(),
                    most_specific_wins: cfg.most_specific_header_mutations_wins,
                });
            }
            for d in &vh.domains {
                let d = d.to_ascii_lowercase();
                if d == "*" {
                    t.any.get_or_insert(vi);
                } else if let Some(s) = d.strip_prefix('*') {
                    t.suffix.push((s.to_string(), vi));
                } else if let Some(p) = d.strip_suffix('*') {
                    t.prefix.push((p.to_string(), vi));
                } else {
                    t.exact.entry(d).or_insert(vi);
                }
            }
            t.vhosts.push(VirtualHostEntry {
                name: vh.name.clone(),
                routes,
            });
        }
        t.suffix.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        t.prefix.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        Ok(t)
    }

    fn find_index(&self, host: &str) -> Option<usize> {
        if let Some(i) = self.exact.get(host) {
            return Some(*i);
        }
        // A wildcard never matches the empty string.
        if let Some((_, i)) = self
            .suffix
            .iter()
            .find(|(s, _)| host.len() > s.len() && host.ends_with(s.as_str()))
        {
            return Some(*i);
        }
        if let Some((_, i)) = self
            .prefix
            .iter()
            .find(|(p, _)| host.len() > p.len() && host.starts_with(p.as_str()))
        {
            return Some(*i);
        }
        None
    }

    /// The virtual host for a Host header value.
    pub fn virtual_host(&self, host: &str) -> Option<&VirtualHostEntry> {
        let lower;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = host.to_ascii_lowercase();
            lower.as_str()
        } else {
            host
        };
        // Domains match the whole Host, port included, as in Envoy; with
        // `ignore_port_in_host_matching` the port is dropped first (not
        // inside an IPv6 literal).
        let host = match host.rfind(':') {
            Some(i)
                if self.ignore_port
                    && !host[i..].contains(']')
                    && host[i + 1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                &host[..i]
            }
            _ => host,
        };
        let idx = self
            .exact
            .get(host)
            .copied()
            .or_else(|| self.find_index(host));
        idx.or(self.any).map(|i| &self.vhosts[i])
    }

    /// Every forwarding action in the table.
    pub fn forwards(&self) -> impl Iterator<Item = &Forward> {
        self.vhosts
            .iter()
            .flat_map(|v| v.routes.iter())
            .filter_map(|r| match &r.kind {
                RouteKind::Forward(f) => Some(f),
                RouteKind::Direct { .. } => None,
            })
    }

    /// The route for a request, or `None` (Envoy's 404 `NR`).
    pub fn route(&self, host: &str, path: &str) -> Option<&RouteEntry> {
        self.virtual_host(host)?
            .routes
            .iter()
            .find(|r| r.matches(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuncio_cluster::Resolver;
    use nuncio_stats::Store;

    fn table(yaml_routes: &str) -> RouteTable {
        let text = format!(
            "static_resources:\n  clusters:\n  - name: a\n  - name: b\n  listeners:\n  - address: {{socket_address: {{address: 127.0.0.1, port_value: 1}}}}\n    filter_chains:\n    - filters:\n      - name: envoy.http_connection_manager\n        config:\n          stat_prefix: x\n          http_filters: [{{name: envoy.router}}]\n          route_config:\n{yaml_routes}"
        );
        let b = nuncio_config::load_str("t", &text).unwrap();
        let cm =
            ClusterManager::new(&b.clusters, &[], &Store::new(), 1, Resolver::default()).unwrap();
        let nuncio_config::NetworkFilter::HttpConnectionManager(h) =
            &b.listeners[0].filter_chains[0].filter;
        RouteTable::new(&h.route_config, h.websocket, &cm).unwrap()
    }

    fn cluster_of(t: &RouteTable, host: &str, path: &str) -> Option<String> {
        match &t.route(host, path)?.kind {
            RouteKind::Forward(f) => Some(f.cluster.name().to_string()),
            RouteKind::Direct { status, .. } => Some(format!("direct {status}")),
        }
    }

    #[test]
    fn domain_order() {
        let t = table(
            "            virtual_hosts:
            - {name: any, domains: ['*'], routes: [{match: {prefix: /}, route: {cluster: a}}]}
            - {name: exact, domains: [api.example.com], routes: [{match: {prefix: /}, route: {cluster: b}}]}
            - {name: suffix, domains: ['*.example.com'], routes: [{match: {prefix: /}, direct_response: {status: 201}}]}
            - {name: prefix, domains: ['api.*'], routes: [{match: {prefix: /}, direct_response: {status: 202}}]}
",
        );
        assert_eq!(t.virtual_host("api.example.com").unwrap().name, "exact");
        // The port is part of the Host Envoy matches: `api.*` takes it.
        assert_eq!(
            t.virtual_host("API.Example.com:8080").unwrap().name,
            "prefix"
        );
        assert_eq!(t.virtual_host("www.example.com:80").unwrap().name, "any");
        assert_eq!(t.virtual_host("www.example.com").unwrap().name, "suffix");
        assert_eq!(t.virtual_host("api.other.org").unwrap().name, "prefix");
        assert_eq!(t.virtual_host("other.org").unwrap().name, "any");
        assert_eq!(t.virtual_host(".example.com").unwrap().name, "any");
        assert_eq!(t.virtual_host("[::1]:80").unwrap().name, "any");
        // ignore_port_in_host_matching drops it first.
        let t = table(
            "            ignore_port_in_host_matching: true
            virtual_hosts:
            - {name: any, domains: ['*'], routes: [{match: {prefix: /}, route: {cluster: a}}]}
            - {name: exact, domains: [api.example.com], routes: [{match: {prefix: /}, route: {cluster: b}}]}
",
        );
        assert_eq!(
            t.virtual_host("api.example.com:8080").unwrap().name,
            "exact"
        );
        assert_eq!(t.virtual_host("[::1]:80").unwrap().name, "any");
    }

    #[test]
    fn routes_in_order() {
        let t = table(
            "            virtual_hosts:
            - name: v
              domains: ['*']
              routes:
              - {match: {path: /exact}, route: {cluster: b}}
              - {match: {prefix: /ws}, route: {cluster: b, use_websocket: true}}
              - {match: {prefix: /API, case_sensitive: false}, route: {cluster: b, prefix_rewrite: /v2}}
              - {match: {prefix: /}, route: {cluster: a}}
",
        );
        assert_eq!(cluster_of(&t, "h", "/exact").as_deref(), Some("b"));
        assert_eq!(cluster_of(&t, "h", "/exact?x=1").as_deref(), Some("b"));
        assert_eq!(cluster_of(&t, "h", "/exactly").as_deref(), Some("a"));
        assert_eq!(cluster_of(&t, "h", "/wsx").as_deref(), Some("b"));
        assert_eq!(cluster_of(&t, "h", "/api/x").as_deref(), Some("b"));
        let r = t.route("h", "/api/x").unwrap();
        assert_eq!(r.rewrite_path("/api/x"), "/v2/x");
        let RouteKind::Forward(f) = &t.route("h", "/ws").unwrap().kind else {
            panic!()
        };
        assert!(f.websocket);
        assert_eq!(f.timeout, Some(Duration::from_secs(15)));
        assert_eq!(f.timeout_header.as_ref().unwrap(), "15000");
    }

    #[test]
    fn no_route() {
        let t = table(
            "            virtual_hosts:
            - {name: v, domains: [example.com], routes: [{match: {prefix: /a}, route: {cluster: a}}]}
",
        );
        assert!(t.route("example.com", "/b").is_none());
        assert!(t.route("other.com", "/a").is_none());
    }
}
