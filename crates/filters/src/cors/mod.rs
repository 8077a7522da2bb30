//! The CORS filter's decisions, given the policies that apply (route's
//! first, then the virtual host's: each setting is taken from the first
//! policy that sets it, as Envoy merges) and the request's CORS headers.
//!
//! Verified against Envoy 1.40 (`typed_per_filter_config` CorsPolicy on a
//! virtual host and route, curl):
//! - a preflight (OPTIONS with a non-empty `Origin` and
//!   `Access-Control-Request-Method`) from an allowed origin is answered
//!   200 with, in this order, `access-control-allow-origin` (the request's
//!   origin), `access-control-allow-credentials: true` (if set),
//!   `access-control-allow-methods`, `access-control-allow-headers`,
//!   `access-control-max-age`, `access-control-allow-private-network: true`
//!   (if allowed and requested with `Access-Control-Request-Private-Network:
//!   true`), then `access-control-expose-headers` (added when the local reply
//!   passes the filter's response side), and `content-length: 0`;
//! - `allow_methods: "*"` echoes the requested method, `allow_headers: "*"`
//!   the requested headers (an empty header when none were requested);
//! - a preflight from a disallowed origin is forwarded upstream (default),
//!   or with `forward_not_matching_preflights: false` answered 200 without
//!   `access-control-allow-origin`;
//! - other requests from an allowed origin get `access-control-allow-origin`,
//!   `-allow-credentials` and `-expose-headers` on the response; from a
//!   disallowed origin nothing; `ignore_case` exact matching keeps the
//!   request's spelling in the answer;
//! - stats `http.<stat_prefix>.cors.origin_valid` / `origin_invalid`, only
//!   for requests with an `Origin`.

mod filter;

pub use filter::CorsFilter;

use nuncio_config::filters::CorsPolicy;
use nuncio_config::{RuntimeFractionalPercent, StringMatcher};

use crate::Random;

/// The request headers the filter reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct CorsRequest<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `origin`.
    pub origin: Option<&'a str>,
    /// `access-control-request-method`.
    pub request_method: Option<&'a str>,
    /// `access-control-request-headers`.
    pub request_headers: Option<&'a str>,
    /// `access-control-request-private-network`.
    pub request_private_network: Option<&'a str>,
}

/// The counter a request with an `Origin` bumps (under `http.<prefix>.`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginStat {
    /// `cors.origin_valid`.
    Valid,
    /// `cors.origin_invalid`.
    Invalid,
}

impl OriginStat {
    /// The counter's name under the connection manager's stats prefix.
    pub fn name(self) -> &'static str {
        match self {
            OriginStat::Valid => "cors.origin_valid",
            OriginStat::Invalid => "cors.origin_invalid",
        }
    }
}

/// What the filter does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsDecision {
    /// Not a CORS request (or the filter is off, or in shadow mode):
    /// forward, change nothing.
    Pass,
    /// A preflight answered here: status 200, these headers, no body.
    Preflight {
        /// The response headers, in order.
        headers: Vec<(&'static str, String)>,
    },
    /// Forward the request and add these headers to its response (empty
    /// for a disallowed origin, and for a forwarded preflight).
    Forward {
        /// Response headers to set.
        response_headers: Vec<(&'static str, String)>,
    },
}

/// A decision and the counter to bump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsOutcome {
    /// What to do.
    pub decision: CorsDecision,
    /// The counter, for requests with an `Origin`.
    pub stat: Option<OriginStat>,
}

/// The merged view of the policies that apply, most specific first.
#[derive(Debug, Clone, Copy)]
pub struct MergedPolicy<'a> {
    policies: &'a [&'a CorsPolicy],
}

impl<'a> MergedPolicy<'a> {
    /// `policies`: the route's, then the virtual host's (either may be
    /// absent). Envoy uses `typed_per_filter_config` policies when any level
    /// has one, and the older `cors` fields only otherwise; the caller picks.
    pub fn new(policies: &'a [&'a CorsPolicy]) -> Self {
        MergedPolicy { policies }
    }

    fn first<T>(&self, f: impl Fn(&'a CorsPolicy) -> Option<T>) -> Option<T> {
        self.policies.iter().find_map(|p| f(p))
    }

    fn text(&self, f: impl Fn(&'a CorsPolicy) -> &'a Option<String>) -> &'a str {
        self.first(|p| f(p).as_deref().filter(|s| !s.is_empty()))
            .unwrap_or("")
    }

    /// The origin matchers (the first level with any).
    pub fn allow_origins(&self) -> &'a [StringMatcher] {
        self.first(|p| Some(p.allow_origin.as_slice()).filter(|l| !l.is_empty()))
            .unwrap_or(&[])
    }

    /// Whether `origin` is allowed (a `*` matcher allows any).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allow_origins()
            .iter()
            .any(|m| m.matches("*") || m.matches(origin))
    }

    /// `allow_credentials` (default false).
    pub fn allow_credentials(&self) -> bool {
        self.first(|p| p.allow_credentials).unwrap_or(false)
    }

    /// `allow_private_network_access` (default false).
    pub fn allow_private_network_access(&self) -> bool {
        self.first(|p| p.allow_private_network_access)
            .unwrap_or(false)
    }

    /// `forward_not_matching_preflights` (default true).
    pub fn forward_not_matching_preflights(&self) -> bool {
        self.first(|p| p.forward_not_matching_preflights)
            .unwrap_or(true)
    }

    fn fraction(
        &self,
        f: impl Fn(&CorsPolicy) -> &Option<RuntimeFractionalPercent>,
        unset: bool,
        random: &mut dyn Random,
    ) -> bool {
        // Only the most specific policy decides, as in Envoy.
        match self.policies.first() {
            None => false,
            Some(p) => match f(p) {
                None => unset,
                Some(r) => r.default_value.hit(random.random()),
            },
        }
    }
}

/// Decides what to do with a request's headers.
pub fn decide(policy: &MergedPolicy, req: &CorsRequest, random: &mut dyn Random) -> CorsOutcome {
    let pass = |stat| CorsOutcome {
        decision: CorsDecision::Pass,
        stat,
    };
    let enabled = policy.fraction(|p| &p.filter_enabled, true, random);
    let shadow = policy.fraction(|p| &p.shadow_enabled, false, random);
    if !enabled && !shadow {
        return pass(None);
    }
    let Some(origin) = req.origin.filter(|o| !o.is_empty()) else {
        return pass(None);
    };
    let allowed = policy.origin_allowed(origin);
    let stat = Some(if allowed {
        OriginStat::Valid
    } else {
        OriginStat::Invalid
    });
    if !enabled {
        return pass(stat);
    }
    let response_side = |out: &mut Vec<(&'static str, String)>| {
        if !allowed {
            return;
        }
        set(out, "access-control-allow-origin", origin);
        if policy.allow_credentials() {
            set(out, "access-control-allow-credentials", "true");
        }
        let expose = policy.text(|p| &p.expose_headers);
        if !expose.is_empty() {
            set(out, "access-control-expose-headers", expose);
        }
    };
    let request_method = req.request_method.unwrap_or("");
    if req.method != "OPTIONS"
        || request_method.is_empty()
        || (!allowed && policy.forward_not_matching_preflights())
    {
        let mut response_headers = Vec::new();
        let preflight = req.method == "OPTIONS" && !request_method.is_empty();
        if !preflight {
            response_side(&mut response_headers);
        }
        return CorsOutcome {
            decision: CorsDecision::Forward { response_headers },
            stat,
        };
    }
    let mut h: Vec<(&'static str, String)> = Vec::new();
    if allowed {
        set(&mut h, "access-control-allow-origin", origin);
    }
    if policy.allow_credentials() {
        set(&mut h, "access-control-allow-credentials", "true");
    }
    match policy.text(|p| &p.allow_methods) {
        "" => {}
        "*" => set(&mut h, "access-control-allow-methods", request_method),
        m => set(&mut h, "access-control-allow-methods", m),
    }
    match policy.text(|p| &p.allow_headers) {
        "" => {}
        "*" => set(
            &mut h,
            "access-control-allow-headers",
            req.request_headers.unwrap_or(""),
        ),
        m => set(&mut h, "access-control-allow-headers", m),
    }
    let max_age = policy.text(|p| &p.max_age);
    if !max_age.is_empty() {
        set(&mut h, "access-control-max-age", max_age);
    }
    if policy.allow_private_network_access() && req.request_private_network == Some("true") {
        set(&mut h, "access-control-allow-private-network", "true");
    }
    // The local reply passes the filter's response side too.
    response_side(&mut h);
    CorsOutcome {
        decision: CorsDecision::Preflight { headers: h },
        stat,
    }
}

/// Sets `name` in place if present, else appends it.
fn set(h: &mut Vec<(&'static str, String)>, name: &'static str, value: &str) {
    match h.iter_mut().find(|(n, _)| *n == name) {
        Some(e) => e.1 = value.to_string(),
        None => h.push((name, value.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuncio_config::filters::{decode_per_route_str, PerRouteConfig};

    struct Seq(Vec<u64>);
    impl Random for Seq {
        fn random(&mut self) -> u64 {
            if self.0.is_empty() {
                0
            } else {
                self.0.remove(0)
            }
        }
    }

    fn policy(yaml: &str) -> CorsPolicy {
        let text = format!(
            "\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy\n{yaml}"
        );
        match decode_per_route_str("p.yaml", &text).unwrap() {
            PerRouteConfig::Cors(p) => *p,
            other => panic!("{other:?}"),
        }
    }

    const VH: &str = r#"
allow_origin_string_match: [{exact: "https://a.example"}, {suffix: ".b.example"}, {safe_regex: {regex: "https://c[0-9]+\\.example"}}]
allow_methods: "GET, POST"
allow_headers: "x-foo"
expose_headers: "x-bar"
max_age: "600"
allow_credentials: true
allow_private_network_access: true
"#;

    fn h(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        pairs.iter().map(|(a, b)| (*a, b.to_string())).collect()
    }

    fn preflight<'a>(origin: &'a str) -> CorsRequest<'a> {
        CorsRequest {
            method: "OPTIONS",
            origin: Some(origin),
            request_method: Some("PUT"),
            ..CorsRequest::default()
        }
    }

    #[test]
    fn preflight_as_envoy_answers_it() {
        let vh = policy(VH);
        let ps = [&vh];
        let m = MergedPolicy::new(&ps);
        let req = CorsRequest {
            request_headers: Some("x-y"),
            request_private_network: Some("true"),
            ..preflight("https://a.example")
        };
        let out = decide(&m, &req, &mut Seq(vec![]));
        assert_eq!(out.stat, Some(OriginStat::Valid));
        assert_eq!(
            out.decision,
            CorsDecision::Preflight {
                headers: h(&[
                    ("access-control-allow-origin", "https://a.example"),
                    ("access-control-allow-credentials", "true"),
                    ("access-control-allow-methods", "GET, POST"),
                    ("access-control-allow-headers", "x-foo"),
                    ("access-control-max-age", "600"),
                    ("access-control-allow-private-network", "true"),
                    ("access-control-expose-headers", "x-bar"),
                ])
            }
        );
    }

    #[test]
    fn simple_and_forwarded() {
        let vh = policy(VH);
        let ps = [&vh];
        let m = MergedPolicy::new(&ps);
        let fwd = |o: &str, method: &str, acrm: Option<&str>| {
            decide(
                &m,
                &CorsRequest {
                    method: Box::leak(method.to_string().into_boxed_str()),
                    origin: Some(Box::leak(o.to_string().into_boxed_str())),
                    request_method: acrm.map(|s| &*Box::leak(s.to_string().into_boxed_str())),
                    ..CorsRequest::default()
                },
                &mut Seq(vec![]),
            )
        };
        let allowed = h(&[
            ("access-control-allow-origin", "https://x.b.example"),
            ("access-control-allow-credentials", "true"),
            ("access-control-expose-headers", "x-bar"),
        ]);
        assert_eq!(
            fwd("https://x.b.example", "GET", None).decision,
            CorsDecision::Forward {
                response_headers: allowed
            }
        );
        assert!(matches!(
            fwd("https://c12.example", "GET", None).decision,
            CorsDecision::Forward { response_headers } if response_headers.len() == 3
        ));
        // OPTIONS without Access-Control-Request-Method is a simple request.
        assert!(matches!(
            fwd("https://a.example", "OPTIONS", None).decision,
            CorsDecision::Forward { response_headers } if response_headers.len() == 3
        ));
        let evil = fwd("https://evil.example", "GET", None);
        assert_eq!(evil.stat, Some(OriginStat::Invalid));
        assert_eq!(
            evil.decision,
            CorsDecision::Forward {
                response_headers: vec![]
            }
        );
        // A disallowed preflight is forwarded by default (case matters).
        let p = fwd("https://A.EXAMPLE", "OPTIONS", Some("PUT"));
        assert_eq!(
            p.decision,
            CorsDecision::Forward {
                response_headers: vec![]
            }
        );
        assert_eq!(p.stat, Some(OriginStat::Invalid));
        let none = decide(
            &m,
            &CorsRequest {
                method: "GET",
                ..CorsRequest::default()
            },
            &mut Seq(vec![]),
        );
        assert_eq!(
            none,
            CorsOutcome {
                decision: CorsDecision::Pass,
                stat: None
            }
        );
        let empty = decide(
            &m,
            &CorsRequest {
                method: "GET",
                origin: Some(""),
                ..CorsRequest::default()
            },
            &mut Seq(vec![]),
        );
        assert_eq!(empty.stat, None);
    }

    #[test]
    fn route_over_vhost_and_wildcards() {
        let vh = policy(
            "allow_origin_string_match: [{exact: \"https://a.example\", ignore_case: true}]\nallow_methods: \"*\"\nallow_headers: \"*\"\nforward_not_matching_preflights: false\nmax_age: \"600\"\n",
        );
        let route = policy("max_age: \"30\"\nallow_credentials: false\n");
        let ps = [&route, &vh];
        let m = MergedPolicy::new(&ps);
        let req = CorsRequest {
            request_headers: Some("x-y, x-z"),
            ..preflight("https://A.example")
        };
        assert_eq!(
            decide(&m, &req, &mut Seq(vec![])).decision,
            CorsDecision::Preflight {
                headers: h(&[
                    ("access-control-allow-origin", "https://A.example"),
                    ("access-control-allow-methods", "PUT"),
                    ("access-control-allow-headers", "x-y, x-z"),
                    ("access-control-max-age", "30"),
                ])
            }
        );
        let evil = decide(&m, &preflight("https://evil.example"), &mut Seq(vec![]));
        assert_eq!(
            evil.decision,
            CorsDecision::Preflight {
                headers: h(&[
                    ("access-control-allow-methods", "PUT"),
                    ("access-control-allow-headers", ""),
                    ("access-control-max-age", "30"),
                ])
            }
        );
        let star = policy("allow_origin_string_match: [{exact: \"*\"}]");
        let ps = [&star];
        assert!(MergedPolicy::new(&ps).origin_allowed("https://anything"));
    }

    #[test]
    fn enabled_and_shadow() {
        let off = policy("allow_origin_string_match: [{exact: o}]\nfilter_enabled: {default_value: {numerator: 0}}");
        let ps = [&off];
        let m = MergedPolicy::new(&ps);
        let req = CorsRequest {
            method: "GET",
            origin: Some("o"),
            ..CorsRequest::default()
        };
        assert_eq!(
            decide(&m, &req, &mut Seq(vec![])),
            CorsOutcome {
                decision: CorsDecision::Pass,
                stat: None
            }
        );
        let shadow = policy("allow_origin_string_match: [{exact: o}]\nfilter_enabled: {default_value: {numerator: 0}}\nshadow_enabled: {default_value: {numerator: 100}}");
        let ps = [&shadow];
        let out = decide(&MergedPolicy::new(&ps), &req, &mut Seq(vec![]));
        assert_eq!(
            out,
            CorsOutcome {
                decision: CorsDecision::Pass,
                stat: Some(OriginStat::Valid)
            }
        );
        let half = policy("allow_origin_string_match: [{exact: o}]\nfilter_enabled: {default_value: {numerator: 50}}");
        let ps = [&half];
        let m = MergedPolicy::new(&ps);
        assert!(matches!(
            decide(&m, &req, &mut Seq(vec![49])).decision,
            CorsDecision::Forward { .. }
        ));
        assert_eq!(
            decide(&m, &req, &mut Seq(vec![50])).decision,
            CorsDecision::Pass
        );
        assert_eq!(
            decide(&MergedPolicy::new(&[]), &req, &mut Seq(vec![])).stat,
            None
        );
        assert_eq!(OriginStat::Invalid.name(), "cors.origin_invalid");
    }
}
