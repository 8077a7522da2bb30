//! `envoy.filters.http.cors`: the filter (`Cors`, no fields) and its
//! policy (`CorsPolicy`), given per virtual host or route either in
//! `typed_per_filter_config` (`envoy.extensions.filters.http.cors.v3.CorsPolicy`)
//! or, older style, in the `cors` field of a virtual host or route action
//! (which also takes the v2-era `allow_origin`, `allow_origin_regex` and
//! `enabled`).
//!
//! Checked with `envoy --mode validate`: `allow_origin` is refused in
//! typed_per_filter_config ("no such field"), `max_age` is any string,
//! string matchers are validated as [`crate::StringMatcher`]s.

use crate::decode::{Result, Val};
use crate::matcher::{decode_string_matcher, SafeRegex, StringMatcher, StringPattern};
use crate::percent::{
    decode_runtime_fractional_percent, FractionalPercent, RuntimeFractionalPercent,
};

/// The `@type` of the filter.
pub const CORS_TYPE: &str = "envoy.extensions.filters.http.cors.v3.Cors";
/// The `@type` of the per-route policy.
pub const CORS_POLICY_TYPE: &str = "envoy.extensions.filters.http.cors.v3.CorsPolicy";

/// A CORS policy of one level (virtual host or route). Unset fields fall
/// through to the next level (route, then virtual host), as Envoy merges.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CorsPolicy {
    /// `allow_origin_string_match` (and v2-era `allow_origin`,
    /// `allow_origin_regex`).
    pub allow_origin: Vec<StringMatcher>,
    /// `allow_methods` (`*` echoes the request's method).
    pub allow_methods: Option<String>,
    /// `allow_headers` (`*` echoes the requested headers).
    pub allow_headers: Option<String>,
    /// `expose_headers`.
    pub expose_headers: Option<String>,
    /// `max_age`, as written.
    pub max_age: Option<String>,
    /// `allow_credentials`.
    pub allow_credentials: Option<bool>,
    /// `allow_private_network_access`.
    pub allow_private_network_access: Option<bool>,
    /// `forward_not_matching_preflights` (Envoy's default: true).
    pub forward_not_matching_preflights: Option<bool>,
    /// `filter_enabled` (unset: enabled for every request).
    pub filter_enabled: Option<RuntimeFractionalPercent>,
    /// `shadow_enabled` (unset: off).
    pub shadow_enabled: Option<RuntimeFractionalPercent>,
}

/// Decodes the filter's `typed_config` (`Cors`: no fields).
pub(crate) fn decode(v: &Val) -> Result<()> {
    let o = v.obj()?;
    o.ignore("@type");
    o.finish()
}

/// Decodes a `CorsPolicy` from `typed_per_filter_config`.
pub(crate) fn decode_policy(v: &Val) -> Result<CorsPolicy> {
    decode_any(v, false)
}

/// Decodes the `cors` field of a virtual host or route action (also takes
/// the v2-era fields).
pub(crate) fn decode_route_cors(v: &Val) -> Result<CorsPolicy> {
    decode_any(v, true)
}

fn decode_any(v: &Val, older: bool) -> Result<CorsPolicy> {
    let o = v.obj()?;
    o.ignore("@type");
    let mut p = CorsPolicy::default();
    if let Some(l) = o.get("allow_origin_string_match") {
        for m in l.list()? {
            p.allow_origin.push(decode_string_matcher(&m)?);
        }
    }
    let s = |k: &'static str| o.get(k).map(|x| x.str()).transpose();
    p.allow_methods = s("allow_methods")?;
    p.allow_headers = s("allow_headers")?;
    p.expose_headers = s("expose_headers")?;
    p.max_age = s("max_age")?;
    let b = |k: &'static str| o.get(k).map(|x| x.bool()).transpose();
    p.allow_credentials = b("allow_credentials")?;
    p.allow_private_network_access = b("allow_private_network_access")?;
    p.forward_not_matching_preflights = b("forward_not_matching_preflights")?;
    let rf = |k: &'static str| {
        o.get(k)
            .map(|x| decode_runtime_fractional_percent(&x))
            .transpose()
    };
    p.filter_enabled = rf("filter_enabled")?;
    p.shadow_enabled = rf("shadow_enabled")?;
    if older {
        if let Some(l) = o.get("allow_origin") {
            for x in l.list()? {
                p.allow_origin.push(StringMatcher::exact(&x.str()?));
            }
        }
        if let Some(l) = o.get("allow_origin_regex") {
            for x in l.list()? {
                let pat = x.str()?;
                let r = SafeRegex::new(&pat)
                    .map_err(|e| x.err(format!("invalid regex '{pat}': {e}")))?;
                p.allow_origin.push(StringMatcher {
                    pattern: StringPattern::SafeRegex(r),
                    ignore_case: false,
                });
            }
        }
        if let Some(e) = o.get("enabled") {
            if p.filter_enabled.is_some() {
                return Err(e.err("give 'filter_enabled' or the v2-era 'enabled', not both"));
            }
            let on = e.bool()?;
            p.filter_enabled = Some(RuntimeFractionalPercent {
                default_value: FractionalPercent::hundred(if on { 100 } else { 0 }),
                runtime_key: None,
            });
        }
    }
    o.finish()?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_str;

    #[test]
    fn typed_policy() {
        let p = decode_str(
            "t",
            r#"
"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy
allow_origin_string_match: [{exact: "https://a.example"}, {suffix: .b.example}]
allow_methods: GET, POST
allow_headers: x-foo
expose_headers: x-bar
max_age: "600"
allow_credentials: true
allow_private_network_access: true
forward_not_matching_preflights: false
filter_enabled: {default_value: {numerator: 50}, runtime_key: cors.on}
shadow_enabled: {default_value: {numerator: 100}}
"#,
            decode_policy,
        )
        .unwrap();
        assert_eq!(p.allow_origin.len(), 2);
        assert!(p.allow_origin[1].matches("https://x.b.example"));
        assert_eq!(p.allow_methods.as_deref(), Some("GET, POST"));
        assert_eq!(p.max_age.as_deref(), Some("600"));
        assert_eq!(p.allow_credentials, Some(true));
        assert_eq!(p.forward_not_matching_preflights, Some(false));
        assert_eq!(p.filter_enabled.unwrap().default_value.numerator, 50);
        assert!(p.shadow_enabled.is_some());
        decode_str("t", "{}", decode).unwrap();
    }

    #[test]
    fn older_route_field() {
        let p = decode_str(
            "t",
            "allow_origin: ['https://a.example']\nallow_origin_regex: ['https://c[0-9]+']\nenabled: false\n",
            decode_route_cors,
        )
        .unwrap();
        assert!(p.allow_origin[0].matches("https://a.example"));
        assert!(p.allow_origin[1].matches("https://c7"));
        assert_eq!(p.filter_enabled.unwrap().default_value.numerator, 0);
    }

    #[test]
    fn refused() {
        let e = decode_str("t", "allow_origin: [x]", decode_policy).unwrap_err();
        assert!(e.message.contains("unknown field 'allow_origin'"), "{e}");
        let e = decode_str("t", "allow_origin_string_match: [{prefix: ''}]", |v| {
            decode_policy(v)
        })
        .unwrap_err();
        assert_eq!(e.path, "allow_origin_string_match[0].prefix");
        let e = decode_str("t", "allow_credentials: yes", decode_policy).unwrap_err();
        assert!(e.message.contains("true or false"), "{e}");
        let e = decode_str(
            "t",
            "enabled: true\nfilter_enabled: {default_value: {}}",
            decode_route_cors,
        )
        .unwrap_err();
        assert!(e.message.contains("not both"), "{e}");
        assert!(decode_str("t", "x: 1", decode).is_err());
    }
}
