//! `envoy.filters.http.local_ratelimit`
//! (`envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`), as
//! the filter's config and as its per-route override (where `token_bucket`
//! is required).
//!
//! Checked with `envoy --mode validate`: `stat_prefix` must not be empty;
//! `fill_interval` is required and must be >= 50 ms ("local rate limit
//! token bucket fill timer must be >= 50ms"); `tokens_per_fill` must be > 0
//! (default 1); `max_tokens: 0` is accepted (every request is limited);
//! `stage` <= 10; a descriptor needs at least one entry and two descriptors
//! may not have the same entries ("duplicate descriptor in the local rate
//! descriptor: a=b"); a `status` below 400 is accepted and means 429.

use std::time::Duration;

use crate::decode::{Result, Val};
use crate::headers::{decode_header_value_options, HeaderValueOption};
use crate::percent::{decode_runtime_fractional_percent, RuntimeFractionalPercent};

/// The `@type`.
pub const LOCAL_RATE_LIMIT_TYPE: &str =
    "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

/// `envoy.type.v3.TokenBucket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    /// Capacity (the bucket starts full).
    pub max_tokens: u32,
    /// Tokens added per `fill_interval` (default 1).
    pub tokens_per_fill: u32,
    /// The refill period.
    pub fill_interval: Duration,
}

/// One `key=value` of a descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorEntry {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// `envoy.extensions.common.ratelimit.v3.LocalRateLimitDescriptor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRateLimitDescriptor {
    /// The entries; a request descriptor must equal them exactly.
    pub entries: Vec<DescriptorEntry>,
    /// This descriptor's own bucket.
    pub token_bucket: TokenBucket,
}

/// `LocalRateLimit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRateLimit {
    /// Stats are `<stat_prefix>.http_local_rate_limit.*`.
    pub stat_prefix: String,
    /// The status of a limited request (default 429; below 400 means 429).
    pub status: u16,
    /// The default bucket (absent: only descriptors limit).
    pub token_bucket: Option<TokenBucket>,
    /// `filter_enabled` (unset: 0 %, the filter does nothing).
    pub filter_enabled: Option<RuntimeFractionalPercent>,
    /// `filter_enforced` (unset: 0 %, limited requests are only counted).
    pub filter_enforced: Option<RuntimeFractionalPercent>,
    /// Added to a limited request that is let through (enabled, not enforced).
    pub request_headers_to_add_when_not_enforced: Vec<HeaderValueOption>,
    /// Added to the limited response.
    pub response_headers_to_add: Vec<HeaderValueOption>,
    /// Per-descriptor buckets.
    pub descriptors: Vec<LocalRateLimitDescriptor>,
    /// `stage` (0..=10).
    pub stage: u32,
    /// One bucket per downstream connection instead of one per filter.
    pub per_connection: bool,
    /// `enable_x_ratelimit_headers: DRAFT_VERSION_03`.
    pub x_ratelimit_headers: bool,
    /// `always_consume_default_token_bucket` (default true).
    pub always_consume_default_token_bucket: bool,
    /// `rate_limited_as_resource_exhausted`: a limited gRPC call gets
    /// RESOURCE_EXHAUSTED instead of UNAVAILABLE.
    pub rate_limited_as_resource_exhausted: bool,
}

/// Decodes the filter's `typed_config`.
pub(crate) fn decode(v: &Val) -> Result<LocalRateLimit> {
    decode_any(v, false)
}

/// Decodes the per-route override (`token_bucket` required).
pub(crate) fn decode_per_route(v: &Val) -> Result<LocalRateLimit> {
    decode_any(v, true)
}

fn decode_any(v: &Val, per_route: bool) -> Result<LocalRateLimit> {
    let o = v.obj()?;
    o.ignore("@type");
    let stat_prefix = o.req("stat_prefix")?.non_empty_str()?;
    let status = match o.get("status") {
        None => 429,
        Some(s) => {
            let so = s.obj()?;
            let code = so.req("code")?.uint(100, 599)? as u16;
            so.finish()?;
            if code < 400 {
                429
            } else {
                code
            }
        }
    };
    let token_bucket = o
        .get("token_bucket")
        .map(|t| decode_token_bucket(&t))
        .transpose()?;
    if per_route && token_bucket.is_none() {
        return Err(o.err("a per-route local rate limit needs a 'token_bucket'"));
    }
    let rf = |k: &'static str| {
        o.get(k)
            .map(|x| decode_runtime_fractional_percent(&x))
            .transpose()
    };
    let filter_enabled = rf("filter_enabled")?;
    let filter_enforced = rf("filter_enforced")?;
    let headers = |k: &'static str| -> Result<Vec<HeaderValueOption>> {
        let Some(x) = o.get(k) else {
            return Ok(Vec::new());
        };
        let h = decode_header_value_options(&x)?;
        if h.len() > 10 {
            return Err(x.err("at most 10 headers may be given here"));
        }
        Ok(h)
    };
    let request_headers_to_add_when_not_enforced =
        headers("request_headers_to_add_when_not_enforced")?;
    let response_headers_to_add = headers("response_headers_to_add")?;
    let mut descriptors: Vec<LocalRateLimitDescriptor> = Vec::new();
    if let Some(l) = o.get("descriptors") {
        for d in l.list()? {
            let desc = decode_descriptor(&d)?;
            if descriptors.iter().any(|x| x.entries == desc.entries) {
                let text: Vec<String> = desc
                    .entries
                    .iter()
                    .map(|e| format!("{}={}", e.key, e.value))
                    .collect();
                return Err(d.err(format!(
                    "duplicate descriptor in the local rate descriptor: {}",
                    text.join(", ")
                )));
            }
            descriptors.push(desc);
        }
    }
    let stage = o
        .get("stage")
        .map(|s| s.uint(0, 10))
        .transpose()?
        .unwrap_or(0) as u32;
    let flag = |k: &'static str| o.get(k).map(|b| b.bool()).transpose();
    let per_connection = flag("local_rate_limit_per_downstream_connection")?.unwrap_or(false);
    let x_ratelimit_headers = match o.get("enable_x_ratelimit_headers") {
        None => false,
        Some(x) => x.enumeration(&[("OFF", false), ("DRAFT_VERSION_03", true)])?,
    };
    let always_consume_default_token_bucket =
        flag("always_consume_default_token_bucket")?.unwrap_or(true);
    let rate_limited_as_resource_exhausted =
        flag("rate_limited_as_resource_exhausted")?.unwrap_or(false);
    o.only_if(
        "vh_rate_limits",
        |x| Ok(x.str()?.eq_ignore_ascii_case("OVERRIDE")),
        "nuncio does not generate descriptors from virtual host rate_limits (OVERRIDE)",
    )?;
    o.finish_with(&[
        "local_cluster_rate_limit",
        "rate_limits",
        "max_dynamic_descriptors",
    ])?;
    Ok(LocalRateLimit {
        stat_prefix,
        status,
        token_bucket,
        filter_enabled,
        filter_enforced,
        request_headers_to_add_when_not_enforced,
        response_headers_to_add,
        descriptors,
        stage,
        per_connection,
        x_ratelimit_headers,
        always_consume_default_token_bucket,
        rate_limited_as_resource_exhausted,
    })
}

/// Decodes a `TokenBucket`.
pub(crate) fn decode_token_bucket(v: &Val) -> Result<TokenBucket> {
    let o = v.obj()?;
    let max_tokens = o.req("max_tokens")?.u32()?;
    let tokens_per_fill = match o.get("tokens_per_fill") {
        None => 1,
        Some(t) => {
            // A UInt32Value: `{value: N}` in JSON-proto form, or N.
            let n = match t.node.kind {
                crate::yaml::NodeKind::Map(_) => {
                    let to = t.obj()?;
                    let n = to.req("value")?.u32()?;
                    to.finish()?;
                    n
                }
                _ => t.u32()?,
            };
            if n == 0 {
                return Err(t.err("tokens_per_fill must be greater than 0"));
            }
            n
        }
    };
    let fv = o.req("fill_interval")?;
    let fill_interval = fv.duration()?;
    o.finish()?;
    if max_tokens > 0 && fill_interval < Duration::from_millis(50) {
        return Err(fv.err("local rate limit token bucket fill timer must be >= 50ms"));
    }
    Ok(TokenBucket {
        max_tokens,
        tokens_per_fill,
        fill_interval,
    })
}

fn decode_descriptor(v: &Val) -> Result<LocalRateLimitDescriptor> {
    let o = v.obj()?;
    let ev = o.req("entries")?;
    let mut entries = Vec::new();
    for e in ev.list()? {
        let eo = e.obj()?;
        let key = eo.req("key")?.non_empty_str()?;
        let vv = eo.req("value")?;
        let value = vv.str()?;
        eo.finish()?;
        if value.is_empty() {
            return Err(vv.err(
                "an empty value (a wildcard descriptor) is not supported yet; give the value to match",
            ));
        }
        entries.push(DescriptorEntry { key, value });
    }
    if entries.is_empty() {
        return Err(ev.err("a descriptor needs at least one entry"));
    }
    let token_bucket = decode_token_bucket(&o.req("token_bucket")?)?;
    o.finish_with(&["shadow_mode"])?;
    Ok(LocalRateLimitDescriptor {
        entries,
        token_bucket,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_str;

    const FULL: &str = r#"
"@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
stat_prefix: myrl
status: {code: 503}
token_bucket: {max_tokens: 3, tokens_per_fill: 1, fill_interval: 2s}
filter_enabled: {default_value: {numerator: 100}, runtime_key: a}
filter_enforced: {default_value: {numerator: 100}, runtime_key: b}
response_headers_to_add: [{header: {key: x-rl, value: "yes"}}]
request_headers_to_add_when_not_enforced: [{header: {key: x-would-limit, value: "1"}}]
descriptors:
- entries: [{key: client, value: a}]
  token_bucket: {max_tokens: 1, tokens_per_fill: {value: 2}, fill_interval: 60s}
stage: 2
local_rate_limit_per_downstream_connection: true
enable_x_ratelimit_headers: DRAFT_VERSION_03
always_consume_default_token_bucket: false
rate_limited_as_resource_exhausted: true
vh_rate_limits: OVERRIDE
"#;

    fn d(text: &str) -> Result<LocalRateLimit> {
        decode_str("t.yaml", text, decode)
    }

    #[test]
    fn every_field() {
        let c = d(FULL).unwrap();
        assert_eq!(c.stat_prefix, "myrl");
        assert_eq!(c.status, 503);
        let tb = c.token_bucket.unwrap();
        assert_eq!((tb.max_tokens, tb.tokens_per_fill), (3, 1));
        assert_eq!(tb.fill_interval, Duration::from_secs(2));
        assert_eq!(c.response_headers_to_add[0].name, "x-rl");
        assert_eq!(c.request_headers_to_add_when_not_enforced.len(), 1);
        assert_eq!(c.descriptors[0].entries[0].value, "a");
        assert_eq!(c.descriptors[0].token_bucket.tokens_per_fill, 2);
        assert_eq!(c.stage, 2);
        assert!(c.per_connection && c.x_ratelimit_headers && c.rate_limited_as_resource_exhausted);
        assert!(!c.always_consume_default_token_bucket);
    }

    #[test]
    fn defaults() {
        let c = d("stat_prefix: s").unwrap();
        assert_eq!(c.status, 429);
        assert!(c.token_bucket.is_none() && c.filter_enabled.is_none());
        assert!(c.always_consume_default_token_bucket && !c.x_ratelimit_headers);
        let c = d(
            "stat_prefix: s\nstatus: {code: 302}\ntoken_bucket: {max_tokens: 0, fill_interval: 0s}",
        )
        .unwrap();
        assert_eq!(c.status, 429);
        assert_eq!(c.token_bucket.unwrap().max_tokens, 0);
        let e = decode_str("t", "stat_prefix: s", decode_per_route).unwrap_err();
        assert!(e.message.contains("needs a 'token_bucket'"), "{e}");
    }

    #[test]
    fn refused() {
        let cases = [
            ("stat_prefix: ''", "must not be empty"),
            ("token_bucket: {max_tokens: 1, fill_interval: 1s}", "'stat_prefix'"),
            ("stat_prefix: s\ntoken_bucket: {max_tokens: 3, fill_interval: 0.01s}", "fill timer must be >= 50ms"),
            ("stat_prefix: s\ntoken_bucket: {max_tokens: 3, tokens_per_fill: 0, fill_interval: 1s}", "greater than 0"),
            ("stat_prefix: s\ntoken_bucket: {max_tokens: 3}", "'fill_interval'"),
            ("stat_prefix: s\nstage: 11", "from 0 to 10"),
            ("stat_prefix: s\ndescriptors: [{entries: [{key: a, value: b}], token_bucket: {max_tokens: 1, fill_interval: 1s}}, {entries: [{key: a, value: b}], token_bucket: {max_tokens: 1, fill_interval: 1s}}]", "duplicate descriptor in the local rate descriptor: a=b"),
            ("stat_prefix: s\ndescriptors: [{entries: [], token_bucket: {max_tokens: 1, fill_interval: 1s}}]", "at least one entry"),
            ("stat_prefix: s\ndescriptors: [{entries: [{key: a, value: ''}], token_bucket: {max_tokens: 1, fill_interval: 1s}}]", "wildcard"),
            ("stat_prefix: s\nlocal_cluster_rate_limit: {}", "does not support yet"),
            ("stat_prefix: s\nmax_dynamic_descriptors: 5", "does not support yet"),
            ("stat_prefix: s\nrate_limits: []", "does not support yet"),
            ("stat_prefix: s\nvh_rate_limits: INCLUDE", "not supported yet"),
            ("stat_prefix: s\nenable_x_ratelimit_headers: DRAFT", "DRAFT_VERSION_03"),
            ("stat_prefix: s\nfilter_enabled: {numerator: 1}", "'default_value'"),
        ];
        for (text, want) in cases {
            let e = d(text).unwrap_err();
            assert!(e.message.contains(want), "{text}: {e}");
        }
        let many: Vec<String> = (0..11)
            .map(|i| format!("{{header: {{key: x{i}, value: v}}}}"))
            .collect();
        let e = d(&format!(
            "stat_prefix: s\nresponse_headers_to_add: [{}]",
            many.join(",")
        ))
        .unwrap_err();
        assert!(e.message.contains("at most 10"), "{e}");
    }
}
