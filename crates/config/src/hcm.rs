//! The HTTP connection manager's settings, its HTTP filters and access
//! logs.
//!
//! `http_filters`: the router, last (Envoy: "terminal filter ... must be
//! the last filter"; a router with `disabled: true` is refused as Envoy
//! refuses it), after any of the filters of [`crate::filters`] (cors,
//! local_ratelimit, fault, buffer, health_check, header_mutation), given by
//! `typed_config` `@type`, v2-era `config:` or name alone. `disabled: true`
//! is kept ([`HttpFilter::disabled`]). An `is_optional` filter nuncio does
//! not have is left out, as Envoy leaves out an optional filter its build
//! lacks (checked with `envoy --mode validate`: an unknown optional filter
//! given by name is accepted); any other unknown filter is an error naming
//! the supported ones. Envoy allows two filters with the same name; so
//! does nuncio.

use std::time::Duration;

use crate::decode::{Result, Val};
use crate::filters::{decode_http_filter_config, filter_message, HttpFilter};
use crate::http2::{decode_http2_options, Http2Options};
use crate::listener::{type_name, typed_or_v2};
use crate::route::{decode_route_config, decode_upgrade_config, ClusterCheck, RouteConfig};
use crate::yaml::{Node, NodeKind};
use crate::ConfigError;

pub(crate) const HCM_TYPES: &[&str] = &[
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    "envoy.config.filter.network.http_connection_manager.v2.HttpConnectionManager",
];
pub(crate) const HCM_NAMES: &[&str] = &[
    "envoy.filters.network.http_connection_manager",
    "envoy.http_connection_manager",
];
const ROUTER_TYPES: &[&str] = &[
    "envoy.extensions.filters.http.router.v3.Router",
    "envoy.config.filter.http.router.v2.Router",
];
const ROUTER_NAMES: &[&str] = &["envoy.filters.http.router", "envoy.router"];

/// Which HTTP versions the downstream side speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecType {
    /// HTTP/1.1, or HTTP/2 when the client sends the h2c preface.
    Auto,
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only.
    Http2,
}

/// An access log sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog {
    /// File path (`/dev/stdout` for the stdout logger).
    pub path: String,
    /// Format string; `None` is Envoy's default format.
    pub format: Option<String>,
}

/// The HTTP connection manager.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConnectionManager {
    /// Stats prefix (`http.<stat_prefix>.`).
    pub stat_prefix: String,
    /// Downstream codec.
    pub codec_type: CodecType,
    /// The inline route configuration.
    pub route_config: RouteConfig,
    /// Access logs.
    pub access_logs: Vec<AccessLog>,
    /// WebSocket upgrades allowed on every route unless a route says otherwise.
    pub websocket: bool,
    /// `server` response header value.
    pub server_name: String,
    /// Use the peer address as the client address and append it to x-forwarded-for.
    pub use_remote_address: bool,
    /// Generate `x-request-id` when absent (default true).
    pub generate_request_id: bool,
    /// Request header size limit in KiB (default 60).
    pub max_request_headers_kb: u32,
    /// Request header count limit (default 100).
    pub max_headers_count: u32,
    /// Connection idle timeout (default 1 h; zero disables).
    pub idle_timeout: Duration,
    /// Stream idle timeout (default 5 min; zero disables).
    pub stream_idle_timeout: Duration,
    /// Whole-request timeout (default off).
    pub request_timeout: Option<Duration>,
    /// Timeout for receiving the request headers, from their first byte
    /// (default 10 s, [`DEFAULT_REQUEST_HEADERS_TIMEOUT`]; Envoy's is off).
    pub request_headers_timeout: Option<Duration>,
    /// Time given to connections to close while draining (default 5 s).
    pub drain_timeout: Duration,
    /// Downstream HTTP/2 settings.
    pub http2: Http2Options,
    /// Accept HTTP/1.0 requests. nuncio's default is true; Envoy's is
    /// false (426 Upgrade Required). `accept_http_10: false` restores Envoy's.
    pub accept_http_10: bool,
    /// The Host given to an HTTP/1.0 request that has none
    /// (`http_protocol_options.default_host_for_http_10`); without it such
    /// a request gets 426, as in Envoy.
    pub default_host_for_http_10: Option<String>,
    /// Keep a client's `x-request-id` at the edge
    /// (`preserve_external_request_id`; Envoy replaces it by default).
    pub preserve_external_request_id: bool,
    /// Do not append the peer to `x-forwarded-for` (`skip_xff_append`).
    pub skip_xff_append: bool,
    /// `xff_num_trusted_hops`: with `use_remote_address`, the client is the
    /// address this many entries from the right of `x-forwarded-for`.
    pub xff_num_trusted_hops: u32,
    /// Router: do not add `x-envoy-*` headers.
    pub suppress_envoy_headers: bool,
    /// How request paths are normalised before routing.
    pub path: PathOptions,
    /// What to do with request header names containing `_`
    /// (`common_http_protocol_options.headers_with_underscores_action`).
    pub underscores: UnderscoresAction,
    /// The HTTP filters before the router, in order.
    pub http_filters: Vec<HttpFilter>,
}

/// nuncio's default `request_headers_timeout`: a client gets 10 s from a
/// request head's first byte to its last (slowloris). Envoy's default is
/// off; its edge guidance asks for one. `0s` turns it off.
pub const DEFAULT_REQUEST_HEADERS_TIMEOUT: Duration = Duration::from_secs(10);

/// `headers_with_underscores_action`: some backends treat `_` and `-` as
/// the same, so `x_user` can smuggle a value past a filter that checked
/// `x-user`. Envoy's default is `ALLOW`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnderscoresAction {
    /// `ALLOW`: forward as sent.
    #[default]
    Allow,
    /// `REJECT_REQUEST`: 400 on HTTP/1, stream reset on HTTP/2.
    Reject,
    /// `DROP_HEADER`: remove the header and go on.
    Drop,
}

/// `normalize_path`, `merge_slashes`, `path_with_escaped_slashes_action`.
/// nuncio's defaults normalise and merge (Envoy's edge recommendation;
/// Envoy's own defaults do neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathOptions {
    /// RFC 3986 normalisation: dot segments removed, percent-encoded
    /// unreserved characters decoded, backslashes made slashes.
    pub normalize: bool,
    /// `//` becomes `/`.
    pub merge_slashes: bool,
    /// What to do with `%2F` / `%5C` in the path.
    pub escaped_slashes: EscapedSlashes,
}

impl Default for PathOptions {
    fn default() -> Self {
        PathOptions {
            normalize: true,
            merge_slashes: true,
            escaped_slashes: EscapedSlashes::Keep,
        }
    }
}

/// `path_with_escaped_slashes_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscapedSlashes {
    /// `KEEP_UNCHANGED` (and `IMPLEMENTATION_SPECIFIC_DEFAULT`).
    Keep,
    /// `REJECT_REQUEST`: 400.
    Reject,
    /// `UNESCAPE_AND_REDIRECT`: 307 to the unescaped path.
    UnescapeAndRedirect,
    /// `UNESCAPE_AND_FORWARD`.
    UnescapeAndForward,
}

pub(crate) fn decode_hcm(v: &Val, clusters: ClusterCheck) -> Result<HttpConnectionManager> {
    let o = v.obj()?;
    o.ignore("@type");
    let stat_prefix = o.req("stat_prefix")?.str()?;
    let codec_type = match o.get("codec_type") {
        None => CodecType::Auto,
        Some(c) => c.enumeration(&[
            ("AUTO", CodecType::Auto),
            ("HTTP1", CodecType::Http1),
            ("HTTP2", CodecType::Http2),
        ])?,
    };
    let route_config = match o.get("route_config") {
        Some(rc) => decode_route_config(&rc, clusters)?,
        None if o.has("rds") => {
            return Err(o.err("'rds' is not supported yet; give an inline 'route_config'"))
        }
        None => return Err(o.err("missing required field 'route_config'")),
    };
    let hf = o.get("http_filters");
    let (http_filters, suppress_envoy_headers) = match &hf {
        Some(h) => decode_http_filters(h)?,
        None => {
            return Err(
                o.err("http_filters must end with the router filter (envoy.filters.http.router)")
            )
        }
    };
    let mut access_logs = Vec::new();
    for a in o
        .get("access_log")
        .map(|l| l.list())
        .transpose()?
        .unwrap_or_default()
    {
        access_logs.push(decode_access_log(&a)?);
    }
    let mut websocket = false;
    if let Some(u) = o.get("upgrade_configs") {
        for uc in u.list()? {
            let (kind, enabled) = decode_upgrade_config(&uc)?;
            if kind.eq_ignore_ascii_case("websocket") {
                websocket = enabled;
            }
        }
    }
    let server_name = o
        .get("server_name")
        .map(|s| s.str())
        .transpose()?
        .unwrap_or_else(|| "nuncio".into());
    o.only_if(
        "server_header_transformation",
        |v| Ok(v.str()?.eq_ignore_ascii_case("OVERWRITE")),
        "nuncio always writes its own server header (OVERWRITE)",
    )?;
    let use_remote_address = o
        .get("use_remote_address")
        .map(|b| b.bool())
        .transpose()?
        .unwrap_or(false);
    let generate_request_id = o
        .get("generate_request_id")
        .map(|b| b.bool())
        .transpose()?
        .unwrap_or(true);
    let max_request_headers_kb = o
        .get("max_request_headers_kb")
        .map(|k| k.uint(1, 8192))
        .transpose()?
        .unwrap_or(60) as u32;
    let mut max_headers_count = 100;
    let mut idle_timeout = Duration::from_secs(3600);
    let mut underscores = UnderscoresAction::Allow;
    if let Some(c) = o.get("common_http_protocol_options") {
        let co = c.obj()?;
        if let Some(m) = co.get("max_headers_count") {
            max_headers_count = m.uint(1, 100_000)? as u32;
        }
        if let Some(i) = co.get("idle_timeout") {
            idle_timeout = i.duration()?;
        }
        if let Some(a) = co.get("headers_with_underscores_action") {
            underscores = a.enumeration(&[
                ("ALLOW", UnderscoresAction::Allow),
                ("REJECT_REQUEST", UnderscoresAction::Reject),
                ("DROP_HEADER", UnderscoresAction::Drop),
            ])?;
        }
        co.finish_with(&[
            "max_connection_duration",
            "max_stream_duration",
            "max_requests_per_connection",
        ])?;
    }
    if let Some(i) = o.get("idle_timeout") {
        idle_timeout = i.duration()?;
    }
    let dur = |k: &'static str| o.get(k).map(|d| d.duration()).transpose();
    let stream_idle_timeout = dur("stream_idle_timeout")?.unwrap_or(Duration::from_secs(300));
    let request_timeout = dur("request_timeout")?.filter(|d| !d.is_zero());
    // Absent: nuncio's safe default; zero: off (Envoy's default is off).
    let request_headers_timeout = match dur("request_headers_timeout")? {
        None => Some(DEFAULT_REQUEST_HEADERS_TIMEOUT),
        Some(d) => Some(d).filter(|d| !d.is_zero()),
    };
    let drain_timeout = dur("drain_timeout")?.unwrap_or(Duration::from_secs(5));
    o.ignore("delayed_close_timeout");
    let http2 = o
        .get("http2_protocol_options")
        .map(|h| decode_http2_options(&h))
        .transpose()?
        .unwrap_or_default();
    let mut accept_http_10 = true;
    let mut default_host_for_http_10 = None;
    if let Some(h) = o.get("http_protocol_options") {
        let ho = h.obj()?;
        accept_http_10 = ho
            .get("accept_http_10")
            .map(|b| b.bool())
            .transpose()?
            .unwrap_or(true);
        default_host_for_http_10 = ho
            .get("default_host_for_http_10")
            .map(|v| v.str())
            .transpose()?
            .filter(|h| !h.is_empty());
        ho.only_if(
            "allow_absolute_url",
            Val::bool,
            "nuncio routes absolute-form targets by their authority (true)",
        )?;
        ho.only_if(
            "allow_chunked_length",
            |v| Ok(!v.bool()?),
            "nuncio refuses Content-Length with chunked (false)",
        )?;
        ho.only_if(
            "header_key_format",
            |v| Ok(!v.obj()?.has("proper_case_words")),
            "nuncio keeps header names as the peer sent them (preserve_case)",
        )?;
        // Read by both values: nuncio relays trailers whatever this says, and
        // resets only the offending HTTP/2 stream (docs/envoy-differences.md
        // lists both).
        ho.ignore("enable_trailers");
        ho.ignore("override_stream_error_on_invalid_http_message");
        ho.finish()?;
    }
    let mut path = PathOptions::default();
    if let Some(b) = o.get("normalize_path") {
        path.normalize = b.bool()?;
    }
    if let Some(b) = o.get("merge_slashes") {
        path.merge_slashes = b.bool()?;
    }
    if let Some(a) = o.get("path_with_escaped_slashes_action") {
        path.escaped_slashes = a.enumeration(&[
            ("IMPLEMENTATION_SPECIFIC_DEFAULT", EscapedSlashes::Keep),
            ("KEEP_UNCHANGED", EscapedSlashes::Keep),
            ("REJECT_REQUEST", EscapedSlashes::Reject),
            ("UNESCAPE_AND_REDIRECT", EscapedSlashes::UnescapeAndRedirect),
            ("UNESCAPE_AND_FORWARD", EscapedSlashes::UnescapeAndForward),
        ])?;
    }
    let flag = |k: &'static str| o.get(k).map(|b| b.bool()).transpose();
    let preserve_external_request_id = flag("preserve_external_request_id")?.unwrap_or(false);
    let skip_xff_append = flag("skip_xff_append")?.unwrap_or(false);
    let xff_num_trusted_hops = o
        .get("xff_num_trusted_hops")
        .map(|v| v.u32())
        .transpose()?
        .unwrap_or(0);
    for k in [
        "add_user_agent",
        "always_set_request_id_in_response",
        "strip_matching_host_port",
        "strip_any_host_port",
    ] {
        o.only_if(k, |v| Ok(!v.bool()?), "nuncio does not do this (false)")?;
    }
    o.only_if(
        "via",
        |v| Ok(v.str()?.is_empty()),
        "nuncio adds its own Via on requests (docs/envoy-differences.md)",
    )?;
    o.finish_with(&[
        "rds",
        "scoped_routes",
        "tracing",
        "internal_address_config",
        "forward_client_cert_details",
        "set_current_client_cert_details",
        "proxy_100_continue",
        "represent_ipv4_remote_address_as_ipv4_mapped_ipv6",
        "local_reply_config",
        "request_id_extension",
        "original_ip_detection_extensions",
        "early_header_mutation_extensions",
        "http3_protocol_options",
        "max_stream_duration",
        "stream_error_on_invalid_http_message",
        "typed_header_validation_config",
        "proxy_status_config",
        "access_log_options",
        "user_agent",
    ])?;
    Ok(HttpConnectionManager {
        stat_prefix,
        codec_type,
        route_config,
        access_logs,
        websocket,
        server_name,
        use_remote_address,
        generate_request_id,
        max_request_headers_kb,
        max_headers_count,
        idle_timeout,
        stream_idle_timeout,
        request_timeout,
        request_headers_timeout,
        drain_timeout,
        http2,
        accept_http_10,
        default_host_for_http_10,
        preserve_external_request_id,
        skip_xff_append,
        xff_num_trusted_hops,
        suppress_envoy_headers,
        path,
        underscores,
        http_filters,
    })
}

/// The filters nuncio runs besides the router, for error messages.
const SUPPORTED_FILTERS: &str = "the router (envoy.filters.http.router, v2-era envoy.router) and \
envoy.filters.http.cors, local_ratelimit, fault, buffer, health_check, header_mutation";

/// One `http_filters` entry, decoded.
enum Entry {
    /// The router, with its `suppress_envoy_headers`.
    Router(bool),
    /// A filter before the router.
    Filter(HttpFilter),
    /// An `is_optional` filter nuncio does not have: left out, as Envoy
    /// leaves out an optional filter its build lacks.
    Skipped,
}

/// Decodes `http_filters`: the filters before the router, in order, and
/// the router's `suppress_envoy_headers`. The router must be last, as in
/// Envoy ("terminal filter ... must be the last filter").
fn decode_http_filters(h: &Val) -> Result<(Vec<HttpFilter>, bool)> {
    let items = h.list()?;
    let mut filters = Vec::new();
    let mut router = None;
    for (i, f) in items.iter().enumerate() {
        if router.is_some() {
            return Err(items[i - 1].err("the router must be the last http filter"));
        }
        match decode_http_filter(f)? {
            Entry::Router(suppress) => router = Some(suppress),
            Entry::Filter(x) => filters.push(x),
            Entry::Skipped => {}
        }
    }
    match router {
        Some(suppress) => Ok((filters, suppress)),
        None => {
            let at = items.last().unwrap_or(h);
            Err(at.err("http_filters must end with the router filter (envoy.filters.http.router)"))
        }
    }
}

/// Decodes one `http_filters` entry: by its `typed_config` `@type` (v3),
/// or by its name (v2-era `config:`, or the name alone, which works where
/// the filter's empty config is valid: cors, fault, header_mutation).
/// Envoy 1.40 itself refuses a filter without `typed_config` ("Didn't find
/// a registered implementation for 'envoy.filters.http.cors' with type URL:
/// ''"); nuncio accepts the name alone as its v2-era syntax, as it does for
/// `envoy.router`.
fn decode_http_filter(v: &Val) -> Result<Entry> {
    let o = v.obj()?;
    let name = o.req("name")?.non_empty_str()?;
    let t = typed_or_v2(&o)?;
    let is_optional = o
        .get("is_optional")
        .map(|b| b.bool())
        .transpose()?
        .unwrap_or(false);
    let disabled = o
        .get("disabled")
        .map(|b| b.bool())
        .transpose()?
        .unwrap_or(false);
    o.finish_with(&["config_discovery"])?;
    let is_router = match &t.type_url {
        Some(url) => ROUTER_TYPES.contains(&type_name(url)),
        None => ROUTER_NAMES.contains(&name.as_str()),
    };
    if is_router {
        if disabled {
            return Err(v.err(format!(
                "the last (terminal) filter ({name}) in the chain cannot be disabled by default"
            )));
        }
        return Ok(Entry::Router(decode_router(t.config.as_ref())?));
    }
    let Some(message) = filter_message(t.type_url.as_deref(), &name) else {
        if is_optional {
            return Ok(Entry::Skipped);
        }
        let what = t.type_url.as_deref().map(type_name).unwrap_or(&name);
        return Err(v.err(format!(
            "http filter '{what}' is not supported yet; nuncio supports {SUPPORTED_FILTERS}"
        )));
    };
    let config = match &t.config {
        Some(c) => decode_http_filter_config(message, c)?,
        None => {
            // The name alone: the filter's empty config, with errors
            // (a required field) placed at the entry.
            let empty = Node {
                kind: NodeKind::Scalar {
                    value: String::new(),
                    plain: true,
                },
                mark: v.node.mark,
            };
            let ev = Val {
                ctx: v.ctx,
                node: &empty,
                path: v.path.clone(),
            };
            decode_http_filter_config(message, &ev).map_err(|e| ConfigError {
                message: format!("'{name}' needs a typed_config: {}", e.message),
                ..e
            })?
        }
    };
    Ok(Entry::Filter(HttpFilter {
        name,
        config,
        disabled,
    }))
}

/// Decodes the router's settings; returns its `suppress_envoy_headers`.
fn decode_router(config: Option<&Val>) -> Result<bool> {
    let Some(c) = config else {
        return Ok(false);
    };
    let co = c.obj()?;
    co.ignore("@type");
    let suppress = co
        .get("suppress_envoy_headers")
        .map(|b| b.bool())
        .transpose()?
        .unwrap_or(false);
    for k in [
        "dynamic_stats",
        "start_child_span",
        "respect_expected_rq_timeout",
        "suppress_grpc_request_failure_code_stats",
    ] {
        co.ignore(k);
    }
    co.finish_with(&[
        "upstream_log",
        "upstream_log_options",
        "strict_check_headers",
        "upstream_http_filters",
    ])?;
    Ok(suppress)
}

const FILE_LOG_TYPES: &[&str] = &[
    "envoy.extensions.access_loggers.file.v3.FileAccessLog",
    "envoy.config.accesslog.v2.FileAccessLog",
];
const STDOUT_LOG_TYPE: &str = "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog";
const STDERR_LOG_TYPE: &str = "envoy.extensions.access_loggers.stream.v3.StderrAccessLog";

/// Decodes an `AccessLog` (file, stdout or stderr logger).
pub(crate) fn decode_access_log(v: &Val) -> Result<AccessLog> {
    let o = v.obj()?;
    let name = o
        .get("name")
        .map(|n| n.str())
        .transpose()?
        .unwrap_or_default();
    let t = typed_or_v2(&o)?;
    o.finish_with(&["filter"])?;
    let kind = match &t.type_url {
        Some(url) => type_name(url).to_string(),
        None => match name.as_str() {
            "envoy.file_access_log" | "envoy.access_loggers.file" => FILE_LOG_TYPES[0].to_string(),
            "envoy.access_loggers.stdout" => STDOUT_LOG_TYPE.to_string(),
            "envoy.access_loggers.stderr" => STDERR_LOG_TYPE.to_string(),
            other => other.to_string(),
        },
    };
    let co = match &t.config {
        Some(c) => Some(c.obj()?),
        None => None,
    };
    let fixed_path = match kind.as_str() {
        k if FILE_LOG_TYPES.contains(&k) => None,
        STDOUT_LOG_TYPE => Some("/dev/stdout"),
        STDERR_LOG_TYPE => Some("/dev/stderr"),
        other => {
            return Err(v.err(format!(
                "access logger '{other}' is not supported; use envoy.access_loggers.file, stdout or stderr"
            )))
        }
    };
    let Some(co) = co else {
        return match fixed_path {
            Some(p) => Ok(AccessLog {
                path: p.into(),
                format: None,
            }),
            None => Err(o.err("the file access logger needs 'typed_config' with a 'path'")),
        };
    };
    co.ignore("@type");
    let path = match fixed_path {
        Some(p) => p.to_string(),
        None => co.req("path")?.str()?,
    };
    let mut format = co.get("format").map(|f| f.str()).transpose()?;
    if let Some(lf) = co.get("log_format") {
        let lo = lf.obj()?;
        if let Some(tf) = lo.get("text_format") {
            format = Some(tf.str()?);
        }
        if let Some(src) = lo.get("text_format_source") {
            let so = src.obj()?;
            format = Some(so.req("inline_string")?.str()?);
            so.finish_with(&["filename", "inline_bytes", "environment_variable"])?;
        }
        lo.ignore("omit_empty_values");
        lo.finish_with(&[
            "json_format",
            "typed_json_format",
            "content_type",
            "formatters",
        ])?;
    }
    co.finish_with(&["json_format", "typed_json_format"])?;
    Ok(AccessLog { path, format })
}
