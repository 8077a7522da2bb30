//! The HTTP filters and route-level settings written back as Envoy v3
//! JSON for `/config_dump` ([`crate::dump`]): `http_filters` entries with
//! their `typed_config`, the header lists, `cors` and
//! `typed_per_filter_config`. Fields are written when set or different
//! from their default, as Envoy's JSON of the configured protos shows
//! them; v2-era input comes out in its v3 form (`allow_origin` as
//! `allow_origin_string_match`, `per_filter_config` as typed configs).
//! A `FilterConfig` wrapper around a config comes out as the config alone
//! (the same thing to Envoy: a configured filter is enabled), and an
//! `is_optional` config nuncio could not read as `config: {}`. Checked:
//! the dump of a config using every filter and field validates with
//! `envoy --mode validate` and matches the input field for field.

use serde_json::{json, Map, Value};

use crate::filters::{
    AbortKind, Buffer, BufferPerRoute, CorsPolicy, DelayKind, FilterOverride, HeaderMutation,
    HeaderMutationAction, HealthCheck, HttpFault, HttpFilter, HttpFilterConfig, LocalRateLimit,
    PerFilterConfig, PerRouteConfig, TokenBucket, BUFFER_PER_ROUTE_TYPE, BUFFER_TYPE,
    CORS_POLICY_TYPE, CORS_TYPE, FAULT_TYPE, FILTER_CONFIG_TYPE, HEADER_MUTATION_PER_ROUTE_TYPE,
    HEADER_MUTATION_TYPE, HEALTH_CHECK_TYPE, LOCAL_RATE_LIMIT_TYPE,
};
use crate::{
    AppendAction, Denominator, FractionalPercent, HeaderMatch, HeaderMatcher, HeaderMutations,
    HeaderValueOption, RuntimeFractionalPercent, StringMatcher, StringPattern,
};

use crate::dump::dur;

/// `{"@type": type.googleapis.com/<message>, ...fields}`.
fn typed(message: &str, fields: Value) -> Value {
    let mut m = Map::new();
    m.insert(
        "@type".into(),
        format!("type.googleapis.com/{message}").into(),
    );
    if let Value::Object(o) = fields {
        m.extend(o);
    }
    Value::Object(m)
}

/// Inserts `k: v` into `m` when `cond`.
fn put(m: &mut Map<String, Value>, cond: bool, k: &str, v: impl Into<Value>) {
    if cond {
        m.insert(k.into(), v.into());
    }
}

/// An `http_filters` entry.
pub(crate) fn http_filter(f: &HttpFilter) -> Value {
    let (message, fields) = match &f.config {
        HttpFilterConfig::Cors => (CORS_TYPE, json!({})),
        HttpFilterConfig::LocalRateLimit(l) => (LOCAL_RATE_LIMIT_TYPE, local_ratelimit(l)),
        HttpFilterConfig::Fault(x) => (FAULT_TYPE, fault(x)),
        HttpFilterConfig::Buffer(b) => (BUFFER_TYPE, buffer(b)),
        HttpFilterConfig::HealthCheck(h) => (HEALTH_CHECK_TYPE, health_check(h)),
        HttpFilterConfig::HeaderMutation(h) => (HEADER_MUTATION_TYPE, header_mutation(h, true)),
    };
    let mut m = Map::new();
    m.insert("name".into(), f.name.clone().into());
    m.insert("typed_config".into(), typed(message, fields));
    put(&mut m, f.disabled, "disabled", true);
    Value::Object(m)
}

/// A `typed_per_filter_config` map.
pub(crate) fn per_filter(p: &PerFilterConfig) -> Value {
    let mut m = Map::new();
    for (name, o) in p {
        let v = match o {
            FilterOverride::Config(c) => per_route(c),
            FilterOverride::Disabled => typed(FILTER_CONFIG_TYPE, json!({"disabled": true})),
            FilterOverride::Enabled => typed(FILTER_CONFIG_TYPE, json!({"config": {}})),
        };
        m.insert(name.clone(), v);
    }
    Value::Object(m)
}

fn per_route(c: &PerRouteConfig) -> Value {
    match c {
        PerRouteConfig::Cors(p) => typed(CORS_POLICY_TYPE, cors(p)),
        PerRouteConfig::LocalRateLimit(l) => typed(LOCAL_RATE_LIMIT_TYPE, local_ratelimit(l)),
        PerRouteConfig::Fault(x) => typed(FAULT_TYPE, fault(x)),
        PerRouteConfig::Buffer(BufferPerRoute::Disabled) => {
            typed(BUFFER_PER_ROUTE_TYPE, json!({"disabled": true}))
        }
        PerRouteConfig::Buffer(BufferPerRoute::Buffer(b)) => {
            typed(BUFFER_PER_ROUTE_TYPE, json!({"buffer": buffer(b)}))
        }
        PerRouteConfig::HeaderMutation(h) => {
            typed(HEADER_MUTATION_PER_ROUTE_TYPE, header_mutation(h, false))
        }
    }
}

/// Adds one level's header lists, `typed_per_filter_config` and `cors`
/// to `m` (each only when set).
pub(crate) fn route_level(
    m: &mut Map<String, Value>,
    h: &HeaderMutations,
    p: &PerFilterConfig,
    c: Option<&CorsPolicy>,
) {
    let adds = |l: &[HeaderValueOption]| Value::Array(l.iter().map(header_value_option).collect());
    put(
        m,
        !h.request_headers_to_add.is_empty(),
        "request_headers_to_add",
        adds(&h.request_headers_to_add),
    );
    put(
        m,
        !h.request_headers_to_remove.is_empty(),
        "request_headers_to_remove",
        h.request_headers_to_remove.clone(),
    );
    put(
        m,
        !h.response_headers_to_add.is_empty(),
        "response_headers_to_add",
        adds(&h.response_headers_to_add),
    );
    put(
        m,
        !h.response_headers_to_remove.is_empty(),
        "response_headers_to_remove",
        h.response_headers_to_remove.clone(),
    );
    put(m, !p.is_empty(), "typed_per_filter_config", per_filter(p));
    if let Some(c) = c {
        m.insert("cors".into(), cors(c));
    }
}

fn header_value_option(h: &HeaderValueOption) -> Value {
    let mut m = Map::new();
    m.insert(
        "header".into(),
        json!({"key": h.name, "value": h.value.source}),
    );
    let action = match h.append_action {
        AppendAction::AppendIfExistsOrAdd => None,
        AppendAction::AddIfAbsent => Some("ADD_IF_ABSENT"),
        AppendAction::OverwriteIfExistsOrAdd => Some("OVERWRITE_IF_EXISTS_OR_ADD"),
        AppendAction::OverwriteIfExists => Some("OVERWRITE_IF_EXISTS"),
    };
    if let Some(a) = action {
        m.insert("append_action".into(), a.into());
    }
    put(&mut m, h.keep_empty_value, "keep_empty_value", true);
    Value::Object(m)
}

fn fraction(p: &FractionalPercent) -> Value {
    let mut m = Map::new();
    m.insert("numerator".into(), p.numerator.into());
    let d = match p.denominator {
        Denominator::Hundred => None,
        Denominator::TenThousand => Some("TEN_THOUSAND"),
        Denominator::Million => Some("MILLION"),
    };
    if let Some(d) = d {
        m.insert("denominator".into(), d.into());
    }
    Value::Object(m)
}

fn runtime_fraction(p: &RuntimeFractionalPercent) -> Value {
    let mut m = Map::new();
    m.insert("default_value".into(), fraction(&p.default_value));
    if let Some(k) = &p.runtime_key {
        m.insert("runtime_key".into(), k.clone().into());
    }
    Value::Object(m)
}

pub(crate) fn string_matcher(s: &StringMatcher) -> Value {
    let mut m = Map::new();
    let (k, v) = match &s.pattern {
        StringPattern::Exact(x) => ("exact", json!(x)),
        StringPattern::Prefix(x) => ("prefix", json!(x)),
        StringPattern::Suffix(x) => ("suffix", json!(x)),
        StringPattern::Contains(x) => ("contains", json!(x)),
        StringPattern::SafeRegex(r) => ("safe_regex", json!({"regex": r.pattern})),
    };
    m.insert(k.into(), v);
    put(&mut m, s.ignore_case, "ignore_case", true);
    Value::Object(m)
}

fn header_matcher(h: &HeaderMatcher) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), h.name.clone().into());
    match &h.rule {
        HeaderMatch::Present(p) => m.insert("present_match".into(), (*p).into()),
        HeaderMatch::Range { start, end } => m.insert(
            "range_match".into(),
            json!({"start": start.to_string(), "end": end.to_string()}),
        ),
        HeaderMatch::String(s) => m.insert("string_match".into(), string_matcher(s)),
    };
    put(&mut m, h.invert, "invert_match", true);
    put(
        &mut m,
        h.treat_missing_as_empty,
        "treat_missing_header_as_empty",
        true,
    );
    Value::Object(m)
}

/// A `CorsPolicy` (virtual host or route `cors`, or per-route).
fn cors(c: &CorsPolicy) -> Value {
    let mut m = Map::new();
    if !c.allow_origin.is_empty() {
        let l: Vec<Value> = c.allow_origin.iter().map(string_matcher).collect();
        m.insert("allow_origin_string_match".into(), l.into());
    }
    for (k, v) in [
        ("allow_methods", &c.allow_methods),
        ("allow_headers", &c.allow_headers),
        ("expose_headers", &c.expose_headers),
        ("max_age", &c.max_age),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), v.clone().into());
        }
    }
    for (k, v) in [
        ("allow_credentials", c.allow_credentials),
        (
            "allow_private_network_access",
            c.allow_private_network_access,
        ),
        (
            "forward_not_matching_preflights",
            c.forward_not_matching_preflights,
        ),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), v.into());
        }
    }
    for (k, v) in [
        ("filter_enabled", &c.filter_enabled),
        ("shadow_enabled", &c.shadow_enabled),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), runtime_fraction(v));
        }
    }
    Value::Object(m)
}

fn token_bucket(t: &TokenBucket) -> Value {
    json!({
        "max_tokens": t.max_tokens,
        "tokens_per_fill": t.tokens_per_fill,
        "fill_interval": dur(t.fill_interval),
    })
}

fn local_ratelimit(l: &LocalRateLimit) -> Value {
    let mut m = Map::new();
    m.insert("stat_prefix".into(), l.stat_prefix.clone().into());
    put(&mut m, l.status != 429, "status", json!({"code": l.status}));
    if let Some(t) = &l.token_bucket {
        m.insert("token_bucket".into(), token_bucket(t));
    }
    for (k, v) in [
        ("filter_enabled", &l.filter_enabled),
        ("filter_enforced", &l.filter_enforced),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), runtime_fraction(v));
        }
    }
    for (k, v) in [
        (
            "request_headers_to_add_when_not_enforced",
            &l.request_headers_to_add_when_not_enforced,
        ),
        ("response_headers_to_add", &l.response_headers_to_add),
    ] {
        if !v.is_empty() {
            let a: Vec<Value> = v.iter().map(header_value_option).collect();
            m.insert(k.into(), a.into());
        }
    }
    if !l.descriptors.is_empty() {
        let d: Vec<Value> = l
            .descriptors
            .iter()
            .map(|d| {
                json!({
                    "entries": d.entries.iter()
                        .map(|e| json!({"key": e.key, "value": e.value}))
                        .collect::<Vec<_>>(),
                    "token_bucket": token_bucket(&d.token_bucket),
                })
            })
            .collect();
        m.insert("descriptors".into(), d.into());
    }
    put(&mut m, l.stage != 0, "stage", l.stage);
    put(
        &mut m,
        l.per_connection,
        "local_rate_limit_per_downstream_connection",
        true,
    );
    put(
        &mut m,
        l.x_ratelimit_headers,
        "enable_x_ratelimit_headers",
        "DRAFT_VERSION_03",
    );
    put(
        &mut m,
        !l.always_consume_default_token_bucket,
        "always_consume_default_token_bucket",
        false,
    );
    put(
        &mut m,
        l.rate_limited_as_resource_exhausted,
        "rate_limited_as_resource_exhausted",
        true,
    );
    Value::Object(m)
}

fn fault(f: &HttpFault) -> Value {
    let mut m = Map::new();
    if let Some(d) = &f.delay {
        let mut dm = Map::new();
        match d.kind {
            DelayKind::Fixed(t) => dm.insert("fixed_delay".into(), dur(t).into()),
            DelayKind::Header => dm.insert("header_delay".into(), json!({})),
        };
        dm.insert("percentage".into(), fraction(&d.percentage));
        m.insert("delay".into(), Value::Object(dm));
    }
    if let Some(a) = &f.abort {
        let mut am = Map::new();
        match a.kind {
            AbortKind::Http(s) => am.insert("http_status".into(), s.into()),
            AbortKind::Grpc(s) => am.insert("grpc_status".into(), s.into()),
            AbortKind::Header => am.insert("header_abort".into(), json!({})),
        };
        am.insert("percentage".into(), fraction(&a.percentage));
        m.insert("abort".into(), Value::Object(am));
    }
    if let Some(c) = &f.upstream_cluster {
        m.insert("upstream_cluster".into(), c.clone().into());
    }
    if !f.headers.is_empty() {
        let h: Vec<Value> = f.headers.iter().map(header_matcher).collect();
        m.insert("headers".into(), h.into());
    }
    put(
        &mut m,
        !f.downstream_nodes.is_empty(),
        "downstream_nodes",
        f.downstream_nodes.clone(),
    );
    if let Some(n) = f.max_active_faults {
        m.insert("max_active_faults".into(), n.into());
    }
    put(
        &mut m,
        f.disable_downstream_cluster_stats,
        "disable_downstream_cluster_stats",
        true,
    );
    Value::Object(m)
}

fn buffer(b: &Buffer) -> Value {
    json!({"max_request_bytes": b.max_request_bytes})
}

fn health_check(h: &HealthCheck) -> Value {
    let mut m = Map::new();
    m.insert("pass_through_mode".into(), h.pass_through_mode.into());
    if !h.headers.is_empty() {
        let l: Vec<Value> = h.headers.iter().map(header_matcher).collect();
        m.insert("headers".into(), l.into());
    }
    if let Some(t) = h.cache_time {
        m.insert("cache_time".into(), dur(t).into());
    }
    if !h.cluster_min_healthy_percentages.is_empty() {
        let p: Map<String, Value> = h
            .cluster_min_healthy_percentages
            .iter()
            .map(|(c, v)| (c.clone(), json!({"value": v})))
            .collect();
        m.insert("cluster_min_healthy_percentages".into(), Value::Object(p));
    }
    Value::Object(m)
}

fn header_mutation(h: &HeaderMutation, filter: bool) -> Value {
    let list = |l: &[HeaderMutationAction]| -> Value {
        l.iter()
            .map(|a| match a {
                HeaderMutationAction::Remove(n) => json!({"remove": n}),
                HeaderMutationAction::Append(o) => json!({"append": header_value_option(o)}),
            })
            .collect::<Vec<_>>()
            .into()
    };
    let mut mu = Map::new();
    put(
        &mut mu,
        !h.mutations.request.is_empty(),
        "request_mutations",
        list(&h.mutations.request),
    );
    put(
        &mut mu,
        !h.mutations.response.is_empty(),
        "response_mutations",
        list(&h.mutations.response),
    );
    let mut m = Map::new();
    put(&mut m, !mu.is_empty(), "mutations", Value::Object(mu));
    put(
        &mut m,
        filter && h.most_specific_header_mutations_wins,
        "most_specific_header_mutations_wins",
        true,
    );
    Value::Object(m)
}
