//! Whole-file tests of HTTP filters and route-level settings: what
//! `http_filters`, header lists, `cors` and `typed_per_filter_config`
//! decode to, in v3 and v2-era forms, and where refusals point. Each
//! accepted or refused form was first run through `envoy --mode validate`
//! (Envoy 1.40); the messages follow Envoy's where it has one.

use super::*;
use crate::filters::{HttpFilter, HttpFilterConfig};

const ROUTER: &str = "          - name: envoy.filters.http.router\n            typed_config:\n              \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n";

fn front_proxy() -> String {
    let p = format!(
        "{}/../../examples/front-proxy/front-proxy-v3.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// The blog's front proxy with its `http_filters` entries replaced by
/// `filters` (indented 10 spaces).
fn with_filters(filters: &str) -> std::result::Result<Bootstrap, ConfigError> {
    let text = front_proxy();
    assert!(text.contains(ROUTER), "the example changed");
    load_str("t.yaml", &text.replacen(ROUTER, filters, 1))
}

fn hcm(b: &Bootstrap) -> &HttpConnectionManager {
    let NetworkFilter::HttpConnectionManager(h) = &b.listeners[0].filter_chains[0].filter;
    h
}

fn filters_of(filters: &str) -> Vec<HttpFilter> {
    let b = with_filters(filters).unwrap_or_else(|e| panic!("{e}"));
    hcm(&b).http_filters.clone()
}

/// The 1-based line of the first line of `needle` in the config built by
/// [`with_filters`].
fn line_of(filters: &str, needle: &str) -> usize {
    let text = front_proxy().replacen(ROUTER, filters, 1);
    let at = text.find(needle).unwrap_or_else(|| panic!("{needle}"));
    text[..at].lines().count() + usize::from(text[..at].ends_with('\n'))
}

#[test]
fn v3_filters_before_the_router_in_order() {
    let f = filters_of(&format!(
        r#"          - name: envoy.filters.http.health_check
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck
              pass_through_mode: false
              headers: [{{name: ":path", string_match: {{exact: /healthz}}}}]
          - name: envoy.filters.http.cors
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}}
          - name: my_limiter
            disabled: true
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
              stat_prefix: rl
              token_bucket: {{max_tokens: 2, fill_interval: 1s}}
          - name: envoy.filters.http.fault
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
              abort: {{http_status: 503, percentage: {{numerator: 100}}}}
          - name: envoy.filters.http.buffer
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer
              max_request_bytes: 1024
          - name: envoy.filters.http.header_mutation
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation
              mutations: {{request_mutations: [{{remove: x-drop}}]}}
{ROUTER}"#
    ));
    let names: Vec<&str> = f.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "envoy.filters.http.health_check",
            "envoy.filters.http.cors",
            "my_limiter",
            "envoy.filters.http.fault",
            "envoy.filters.http.buffer",
            "envoy.filters.http.header_mutation"
        ]
    );
    assert!(
        matches!(&f[0].config, HttpFilterConfig::HealthCheck(h) if !h.pass_through_mode && h.headers.len() == 1)
    );
    assert_eq!(f[1].config, HttpFilterConfig::Cors);
    assert!(f[2].disabled && !f[1].disabled);
    let HttpFilterConfig::LocalRateLimit(rl) = &f[2].config else {
        panic!("{:?}", f[2])
    };
    assert_eq!(rl.token_bucket.map(|t| t.max_tokens), Some(2));
    assert!(matches!(&f[3].config, HttpFilterConfig::Fault(x) if x.abort.is_some()));
    assert_eq!(
        f[4].config,
        HttpFilterConfig::Buffer(filters::Buffer {
            max_request_bytes: 1024
        })
    );
    assert!(
        matches!(&f[5].config, HttpFilterConfig::HeaderMutation(m) if m.mutations.request.len() == 1)
    );
}

#[test]
fn v2_era_config_and_name_alone() {
    let f = filters_of(
        "          - name: envoy.cors\n          - name: envoy.fault\n            config: {abort: {http_status: 500, percentage: {numerator: 5}}}\n          - name: envoy.buffer\n            config: {max_request_bytes: 7}\n          - name: envoy.filters.http.header_mutation\n          - name: envoy.router\n            config: {}\n",
    );
    assert_eq!(f.len(), 4);
    assert_eq!(f[0].name, "envoy.cors");
    assert_eq!(f[0].config, HttpFilterConfig::Cors);
    assert!(
        matches!(&f[1].config, HttpFilterConfig::Fault(x) if x.abort.map(|a| a.percentage.numerator) == Some(5))
    );
    assert_eq!(
        f[2].config,
        HttpFilterConfig::Buffer(filters::Buffer {
            max_request_bytes: 7
        })
    );
    assert_eq!(
        f[3].config,
        HttpFilterConfig::HeaderMutation(Box::default())
    );
    // v2-era `typed_config` with the v2 @type.
    let f = filters_of(&format!(
        "          - name: envoy.fault\n            typed_config: {{\"@type\": type.googleapis.com/envoy.config.filter.http.fault.v2.HTTPFault, delay: {{fixed_delay: 1s}}}}\n{ROUTER}"
    ));
    assert!(matches!(&f[0].config, HttpFilterConfig::Fault(x) if x.delay.is_some()));
    // No filter but the router: the list is empty.
    assert!(filters_of(ROUTER).is_empty());
}

#[test]
fn name_alone_needs_a_valid_empty_config() {
    // Buffer's `max_request_bytes` is required (Envoy: "BufferValidationError.
    // MaxRequestBytes: value is required").
    let filters = format!("          - name: envoy.filters.http.buffer\n{ROUTER}");
    let e = with_filters(&filters).unwrap_err();
    assert_eq!(
        e.path,
        "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0]"
    );
    assert_eq!(
        e.line,
        line_of(&filters, "          - name: envoy.filters.http.buffer")
    );
    assert!(e.message.contains("needs a typed_config"), "{e}");
    assert!(e.message.contains("max_request_bytes"), "{e}");
}

#[test]
fn optional_and_unknown_filters() {
    // Envoy skips an optional filter it does not have; so does nuncio.
    let f = filters_of(&format!(
        "          - name: envoy.filters.http.lua\n            is_optional: true\n            typed_config: {{\"@type\": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua}}\n          - name: envoy.filters.http.cors\n            is_optional: true\n            typed_config: {{\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}}\n{ROUTER}"
    ));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].name, "envoy.filters.http.cors");
    let filters = format!(
        "          - name: envoy.filters.http.lua\n            typed_config: {{\"@type\": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua}}\n{ROUTER}"
    );
    let e = with_filters(&filters).unwrap_err();
    assert_eq!(
        e.line,
        line_of(&filters, "          - name: envoy.filters.http.lua")
    );
    assert!(e.path.ends_with("http_filters[0]"), "{e}");
    assert!(
        e.message.starts_with("http filter 'envoy.extensions.filters.http.lua.v3.Lua' is not supported yet; nuncio supports the router"),
        "{e}"
    );
    assert!(e.message.contains("header_mutation"), "{e}");
    assert!(!e.message.contains('\n'));
    let e = with_filters(&format!("          - name: envoy.lua\n{ROUTER}")).unwrap_err();
    assert!(
        e.message
            .starts_with("http filter 'envoy.lua' is not supported"),
        "{e}"
    );
}

#[test]
fn router_last_and_not_disabled() {
    let cors = "          - name: envoy.filters.http.cors\n            typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}\n";
    let e = with_filters(&format!("{ROUTER}{cors}")).unwrap_err();
    assert!(e.path.ends_with("http_filters[0]"), "{e}");
    assert!(e.message.contains("router must be the last"), "{e}");
    let e = with_filters(cors).unwrap_err();
    assert!(e.path.ends_with("http_filters[0]"), "{e}");
    assert!(e.message.contains("must end with the router"), "{e}");
    let e = with_filters(&format!(
        "{cors}{}",
        ROUTER.replacen(
            "            typed_config",
            "            disabled: true\n            typed_config",
            1
        )
    ))
    .unwrap_err();
    assert!(e.path.ends_with("http_filters[1]"), "{e}");
    assert!(e.message.contains("cannot be disabled by default"), "{e}");
    // Envoy: "HttpFilterValidationError.Name: value length must be at least 1".
    let e = with_filters(&format!("          - name: ''\n            typed_config: {{\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}}\n{ROUTER}")).unwrap_err();
    assert!(e.path.ends_with("http_filters[0].name"), "{e}");
    assert!(e.message.contains("must not be empty"), "{e}");
    // A bad field inside a filter's config is reported at its path.
    let e = with_filters(&format!(
        "          - name: envoy.filters.http.buffer\n            typed_config: {{\"@type\": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer, max_request_bytes: 0}}\n{ROUTER}"
    ))
    .unwrap_err();
    assert!(
        e.path
            .ends_with("http_filters[0].typed_config.max_request_bytes"),
        "{e}"
    );
}
