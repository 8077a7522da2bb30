//! HTTP filters other than the router: each filter's typed, validated
//! config (one module per filter), and the dispatch from a filter's `@type`
//! (v3) or name (v2-era `config:` form) to its decoder. `hcm.rs` reads
//! `http_filters` entries with them; `route.rs` reads `typed_per_filter_config`
//! and the `cors` fields.

mod buffer;
mod cors;
mod fault;
mod header_mutation;
mod health_check;
mod local_ratelimit;

pub use buffer::{Buffer, BufferPerRoute, BUFFER_PER_ROUTE_TYPE, BUFFER_TYPE};
pub use cors::{CorsPolicy, CORS_POLICY_TYPE, CORS_TYPE};
pub use fault::{
    AbortKind, DelayKind, FaultAbort, FaultDelay, HttpFault, FAULT_TYPE, FAULT_TYPE_V2,
};
pub use header_mutation::{
    HeaderMutation, HeaderMutationAction, Mutations, HEADER_MUTATION_PER_ROUTE_TYPE,
    HEADER_MUTATION_TYPE,
};
pub use health_check::{HealthCheck, HEALTH_CHECK_TYPE};
pub use local_ratelimit::{
    DescriptorEntry, LocalRateLimit, LocalRateLimitDescriptor, TokenBucket, LOCAL_RATE_LIMIT_TYPE,
};

use crate::decode::{decode_str, Result, Val};
use crate::listener::type_name;
use crate::ConfigError;

/// A decoded HTTP filter config (an `http_filters` entry's settings).
#[derive(Debug, Clone, PartialEq)]
pub enum HttpFilterConfig {
    /// `envoy.filters.http.cors`.
    Cors,
    /// `envoy.filters.http.local_ratelimit`.
    LocalRateLimit(Box<LocalRateLimit>),
    /// `envoy.filters.http.fault`.
    Fault(Box<HttpFault>),
    /// `envoy.filters.http.buffer`.
    Buffer(Buffer),
    /// `envoy.filters.http.health_check`.
    HealthCheck(Box<HealthCheck>),
    /// `envoy.filters.http.header_mutation`.
    HeaderMutation(Box<HeaderMutation>),
}

/// One `http_filters` entry before the router.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpFilter {
    /// Its name as configured (`envoy.filters.http.cors`, or any name the
    /// user chose): `typed_per_filter_config` keys refer to it.
    pub name: String,
    /// Its settings.
    pub config: HttpFilterConfig,
    /// `disabled: true`: off unless a route's `typed_per_filter_config`
    /// enables it (Envoy's `HttpFilter.disabled`).
    pub disabled: bool,
}

/// What a route configuration, virtual host or route says about one
/// filter, by its name, in `typed_per_filter_config`. As in Envoy
/// (`PerFilterConfigs`), [`FilterOverride::Config`] and
/// [`FilterOverride::Enabled`] both enable a filter that is `disabled` in
/// `http_filters`; only [`FilterOverride::Disabled`] turns one off.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterOverride {
    /// The filter's per-route settings (given directly, or as the
    /// `config` of an `envoy.config.route.v3.FilterConfig`).
    Config(PerRouteConfig),
    /// `FilterConfig` with `disabled: true` (its `config` is ignored, as
    /// Envoy ignores it): the filter does not run here.
    Disabled,
    /// `FilterConfig` with `config: {}`, or with `is_optional: true` and a
    /// config nuncio does not read: the filter runs here, without
    /// per-route settings.
    Enabled,
}

/// `typed_per_filter_config`, in the order written: (filter name, what
/// it says).
pub type PerFilterConfig = Vec<(String, FilterOverride)>;

/// A decoded `typed_per_filter_config` value.
#[derive(Debug, Clone, PartialEq)]
pub enum PerRouteConfig {
    /// `CorsPolicy`.
    Cors(Box<CorsPolicy>),
    /// `LocalRateLimit` (with its own bucket).
    LocalRateLimit(Box<LocalRateLimit>),
    /// `HTTPFault`.
    Fault(Box<HttpFault>),
    /// `BufferPerRoute`.
    Buffer(BufferPerRoute),
    /// `HeaderMutationPerRoute`.
    HeaderMutation(Box<HeaderMutation>),
}

const V2_NAMES: &[(&str, &str)] = &[
    ("envoy.cors", CORS_TYPE),
    ("envoy.filters.http.cors", CORS_TYPE),
    ("envoy.fault", FAULT_TYPE),
    ("envoy.filters.http.fault", FAULT_TYPE),
    ("envoy.buffer", BUFFER_TYPE),
    ("envoy.filters.http.buffer", BUFFER_TYPE),
    ("envoy.health_check", HEALTH_CHECK_TYPE),
    ("envoy.filters.http.health_check", HEALTH_CHECK_TYPE),
    ("envoy.filters.http.local_ratelimit", LOCAL_RATE_LIMIT_TYPE),
    ("envoy.filters.http.header_mutation", HEADER_MUTATION_TYPE),
];

/// The v3 message of a filter given by `@type` URL, or for the v2-era
/// `config:` form by name; `None` when nuncio has no decoder for it.
pub(crate) fn filter_message(type_url: Option<&str>, name: &str) -> Option<&'static str> {
    match type_url.map(type_name) {
        Some("envoy.config.filter.http.cors.v2.Cors") => Some(CORS_TYPE),
        Some(FAULT_TYPE_V2) => Some(FAULT_TYPE),
        Some("envoy.config.filter.http.buffer.v2.Buffer") => Some(BUFFER_TYPE),
        Some("envoy.config.filter.http.health_check.v2.HealthCheck") => Some(HEALTH_CHECK_TYPE),
        Some(t) => [
            CORS_TYPE,
            FAULT_TYPE,
            BUFFER_TYPE,
            HEALTH_CHECK_TYPE,
            LOCAL_RATE_LIMIT_TYPE,
            HEADER_MUTATION_TYPE,
        ]
        .into_iter()
        .find(|m| *m == t),
        None => V2_NAMES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t),
    }
}

/// Decodes an HTTP filter's settings `v`, whose v3 message is `message`
/// (from [`filter_message`]).
pub(crate) fn decode_http_filter_config(message: &str, v: &Val) -> Result<HttpFilterConfig> {
    Ok(match message {
        CORS_TYPE => {
            cors::decode(v)?;
            HttpFilterConfig::Cors
        }
        FAULT_TYPE => HttpFilterConfig::Fault(Box::new(fault::decode(v)?)),
        BUFFER_TYPE => HttpFilterConfig::Buffer(buffer::decode(v)?),
        HEALTH_CHECK_TYPE => HttpFilterConfig::HealthCheck(Box::new(health_check::decode(v)?)),
        LOCAL_RATE_LIMIT_TYPE => {
            HttpFilterConfig::LocalRateLimit(Box::new(local_ratelimit::decode(v)?))
        }
        HEADER_MUTATION_TYPE => {
            HttpFilterConfig::HeaderMutation(Box::new(header_mutation::decode(v)?))
        }
        other => return Err(v.err(format!("http filter '{other}' is not supported yet"))),
    })
}

/// Decodes one `typed_per_filter_config` value (its `@type` decides).
pub(crate) fn decode_per_route_config(v: &Val) -> Result<PerRouteConfig> {
    let o = v.obj()?;
    let tv = o.req("@type")?;
    let url = tv.str()?;
    Ok(match type_name(&url) {
        CORS_POLICY_TYPE => PerRouteConfig::Cors(Box::new(cors::decode_policy(v)?)),
        LOCAL_RATE_LIMIT_TYPE => {
            PerRouteConfig::LocalRateLimit(Box::new(local_ratelimit::decode_per_route(v)?))
        }
        FAULT_TYPE | FAULT_TYPE_V2 => PerRouteConfig::Fault(Box::new(fault::decode(v)?)),
        BUFFER_PER_ROUTE_TYPE => PerRouteConfig::Buffer(buffer::decode_per_route(v)?),
        HEADER_MUTATION_PER_ROUTE_TYPE => {
            PerRouteConfig::HeaderMutation(Box::new(header_mutation::decode_per_route(v)?))
        }
        other => return Err(tv.err(format!("per-route config '{other}' is not supported yet"))),
    })
}

/// `envoy.config.route.v3.FilterConfig`, the wrapper that can disable a
/// filter for a route.
pub const FILTER_CONFIG_TYPE: &str = "envoy.config.route.v3.FilterConfig";

/// Filter types that take no per-route config: Envoy says "The filter X
/// doesn't support virtual host or route specific configurations".
const NO_PER_ROUTE: &[&str] = &[
    "envoy.extensions.filters.http.router.v3.Router",
    "envoy.config.filter.http.router.v2.Router",
    HEALTH_CHECK_TYPE,
    "envoy.config.filter.http.health_check.v2.HealthCheck",
];

/// The per-route `@type`s nuncio decodes.
const PER_ROUTE_TYPES: &[&str] = &[
    CORS_POLICY_TYPE,
    LOCAL_RATE_LIMIT_TYPE,
    FAULT_TYPE,
    FAULT_TYPE_V2,
    BUFFER_PER_ROUTE_TYPE,
    HEADER_MUTATION_PER_ROUTE_TYPE,
];

/// Decodes `typed_per_filter_config` (v3) and the v2-era
/// `per_filter_config` of one level (route configuration, virtual host or
/// route), which may not both be given.
///
/// Keys are filter names (`http_filters[].name`); as in Envoy, a key need
/// not name a filter of the chain, and the value's `@type` (not the key)
/// decides how it is read. Checked with `envoy --mode validate` (1.40):
/// an unknown `@type` is an error; `FilterConfig` with `disabled: true` is
/// [`FilterOverride::Disabled`] whatever its `config`; without `config` it
/// is "Empty route/virtual host per filter configuration for X filter";
/// `config: {}` (an empty `Any`) enables the filter
/// ([`FilterOverride::Enabled`]); with `is_optional: true` a config nuncio
/// cannot read (or a filter without per-route config) enables the filter
/// without settings, as Envoy does when the factory is missing; the router
/// and health check refuse per-route config ("The filter X doesn't support
/// virtual host or route specific configurations").
pub(crate) fn decode_per_filter(typed: Option<Val>, v2: Option<Val>) -> Result<PerFilterConfig> {
    let mut out = Vec::new();
    match (typed, v2) {
        (Some(_), Some(p)) => {
            return Err(p.err(
                "give 'typed_per_filter_config' (v3) or 'per_filter_config' (v2-era), not both",
            ))
        }
        (Some(t), None) => {
            for (name, v) in t.entries()? {
                let o = decode_filter_override(&name, &v)?;
                out.push((name, o));
            }
        }
        (None, Some(p)) => {
            for (name, v) in p.entries()? {
                let c = decode_v2_per_filter(&name, &v)?;
                out.push((name, FilterOverride::Config(c)));
            }
        }
        (None, None) => {}
    }
    Ok(out)
}

/// One `typed_per_filter_config` value, for the filter named `name`.
fn decode_filter_override(name: &str, v: &Val) -> Result<FilterOverride> {
    let o = v.obj()?;
    let tv = o.req("@type")?;
    let url = tv.str()?;
    if type_name(&url) != FILTER_CONFIG_TYPE {
        return per_route(name, v, false);
    }
    let disabled = o
        .get("disabled")
        .map(|b| b.bool())
        .transpose()?
        .unwrap_or(false);
    let is_optional = o
        .get("is_optional")
        .map(|b| b.bool())
        .transpose()?
        .unwrap_or(false);
    let config = o.get("config");
    o.finish()?;
    if disabled {
        // Envoy ignores the config of a disabled filter.
        return Ok(FilterOverride::Disabled);
    }
    match config {
        None => Err(v.err(format!(
            "Empty route/virtual host per filter configuration for {name} filter"
        ))),
        Some(c) if c.is_empty_map() => Ok(FilterOverride::Enabled),
        Some(c) => per_route(name, &c, is_optional),
    }
}

/// A per-route config given by `@type`; `optional` turns what nuncio
/// cannot use into "enabled, no settings".
fn per_route(name: &str, v: &Val, optional: bool) -> Result<FilterOverride> {
    let o = v.obj()?;
    let tv = o.req("@type")?;
    let url = tv.str()?;
    let t = type_name(&url);
    if PER_ROUTE_TYPES.contains(&t) {
        return Ok(FilterOverride::Config(decode_per_route_config(v)?));
    }
    if optional {
        return Ok(FilterOverride::Enabled);
    }
    if NO_PER_ROUTE.contains(&t) {
        return Err(tv.err(format!(
            "The filter {name} doesn't support virtual host or route specific configurations"
        )));
    }
    Err(tv.err(format!(
        "per-route config '{t}' is not supported yet; nuncio reads the cors, local_ratelimit, fault, buffer and header_mutation filters' (CorsPolicy, LocalRateLimit, HTTPFault, BufferPerRoute, HeaderMutationPerRoute) and FilterConfig"
    )))
}

/// A v2-era `per_filter_config` value (a struct read by the filter's
/// name): the fault filter's `HTTPFault` or the buffer's `BufferPerRoute`.
fn decode_v2_per_filter(name: &str, v: &Val) -> Result<PerRouteConfig> {
    match name {
        "envoy.fault" | "envoy.filters.http.fault" => {
            Ok(PerRouteConfig::Fault(Box::new(fault::decode(v)?)))
        }
        "envoy.buffer" | "envoy.filters.http.buffer" => {
            Ok(PerRouteConfig::Buffer(buffer::decode_per_route(v)?))
        }
        other => Err(v.err(format!(
            "per_filter_config for '{other}' is not supported; nuncio reads it for envoy.fault and envoy.buffer (use typed_per_filter_config)"
        ))),
    }
}

/// Decodes the `cors` field of a virtual host or route action.
pub(crate) fn decode_route_cors(v: &Val) -> Result<CorsPolicy> {
    cors::decode_route_cors(v)
}

/// Decodes a filter's `typed_config` written alone (YAML or JSON with its
/// `@type`), as source `name`: for tests and tools.
pub fn decode_filter_str(
    name: &str,
    text: &str,
) -> std::result::Result<HttpFilterConfig, ConfigError> {
    decode_str(name, text, |v| {
        let o = v.obj()?;
        let tv = o.req("@type")?;
        let url = tv.str()?;
        let Some(message) = filter_message(Some(&url), "") else {
            return Err(tv.err(format!(
                "http filter '{}' is not supported yet",
                type_name(&url)
            )));
        };
        decode_http_filter_config(message, v)
    })
}

/// Decodes a `typed_per_filter_config` value written alone (YAML or JSON
/// with its `@type`), as source `name`.
pub fn decode_per_route_str(
    name: &str,
    text: &str,
) -> std::result::Result<PerRouteConfig, ConfigError> {
    decode_str(name, text, decode_per_route_config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_by_type_and_name() {
        assert_eq!(
            filter_message(
                Some("type.googleapis.com/envoy.config.filter.http.fault.v2.HTTPFault"),
                ""
            ),
            Some(FAULT_TYPE)
        );
        assert_eq!(filter_message(None, "envoy.cors"), Some(CORS_TYPE));
        assert_eq!(filter_message(None, "envoy.router"), None);
        let c = decode_filter_str(
            "f.yaml",
            "\"@type\": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer\nmax_request_bytes: 5\n",
        )
        .unwrap();
        assert_eq!(
            c,
            HttpFilterConfig::Buffer(Buffer {
                max_request_bytes: 5
            })
        );
        let e = decode_filter_str("f.yaml", "\"@type\": x.Unknown\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.yaml:1:10: @type: http filter 'x.Unknown' is not supported yet"
        );
        let p = decode_per_route_str(
            "r.yaml",
            "\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy\nmax_age: '5'\n",
        )
        .unwrap();
        assert!(matches!(p, PerRouteConfig::Cors(_)));
        let e = decode_per_route_str(
            "r.yaml",
            "\"@type\": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit\nstat_prefix: s\n",
        )
        .unwrap_err();
        assert!(e.message.contains("token_bucket"), "{e}");
    }
}
