//! Whole-file tests of HTTP filters and route-level settings: what
//! `http_filters`, header lists, `cors` and `typed_per_filter_config`
//! decode to, in v3 and v2-era forms, and where refusals point. Each
//! accepted or refused form was first run through `envoy --mode validate`
//! (Envoy 1.40); the messages follow Envoy's where it has one.

use super::*;
use crate::filters::{FilterOverride, HttpFilter, HttpFilterConfig, PerRouteConfig};

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
    text[..at].matches('\n').count() + 1
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

/// Text to insert at each level of the front proxy's route config, each
/// line already indented for its level (12, 14, 16 and 18 spaces).
#[derive(Default)]
struct Levels<'a> {
    rc: &'a str,
    vh: &'a str,
    route: &'a str,
    action: &'a str,
}

fn route_text(l: &Levels) -> String {
    let mut t = front_proxy();
    for (after, extra) in [
        ("            name: local_route\n", l.rc),
        ("              domains: [\"*\"]\n", l.vh),
        ("                  prefix: \"/\"\n", l.route),
        ("                  cluster: myservice\n", l.action),
    ] {
        assert!(t.contains(after), "the example changed");
        t = t.replacen(after, &format!("{after}{extra}"), 1);
    }
    t
}

fn with_levels(l: &Levels) -> std::result::Result<Bootstrap, ConfigError> {
    load_str("t.yaml", &route_text(l))
}

fn line_in(l: &Levels, needle: &str) -> usize {
    let t = route_text(l);
    let at = t.find(needle).unwrap_or_else(|| panic!("{needle}"));
    t[..at].matches('\n').count() + 1
}

#[test]
fn header_lists_at_three_levels() {
    let b = with_levels(&Levels {
        rc: "            response_headers_to_add: [{header: {key: x-rc, value: \"%PROTOCOL%\"}}]\n            most_specific_header_mutations_wins: true\n            request_headers_to_remove: [X-Rc-Drop]\n",
        vh: "              request_headers_to_add:\n              - header: {key: x-vh, value: v}\n                append_action: OVERWRITE_IF_EXISTS_OR_ADD\n",
        route: "                response_headers_to_remove: [x-secret]\n                request_headers_to_add: [{header: {key: x-r, value: r}, append: false}]\n",
        action: "",
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let rc = &hcm(&b).route_config;
    assert!(rc.most_specific_header_mutations_wins);
    assert_eq!(rc.headers.response_headers_to_add[0].name, "x-rc");
    assert_eq!(rc.headers.request_headers_to_remove, ["x-rc-drop"]);
    let vh = &rc.virtual_hosts[0];
    assert_eq!(
        vh.headers.request_headers_to_add[0].append_action,
        AppendAction::OverwriteIfExistsOrAdd
    );
    let r = &vh.routes[0];
    assert_eq!(r.headers.response_headers_to_remove, ["x-secret"]);
    assert_eq!(
        r.headers.request_headers_to_add[0].append_action,
        AppendAction::OverwriteIfExistsOrAdd
    );
    // Dumped as configured, at the level where each was given.
    let d = dump::config_dump(&b);
    let rcj = &d["configs"][0]["bootstrap"]["static_resources"]["listeners"][0]["filter_chains"][0]
        ["filters"][0]["typed_config"]["route_config"];
    assert_eq!(rcj["most_specific_header_mutations_wins"], true);
    assert_eq!(
        rcj["response_headers_to_add"],
        serde_json::json!([{"header": {"key": "x-rc", "value": "%PROTOCOL%"}}])
    );
    assert_eq!(
        rcj["virtual_hosts"][0]["request_headers_to_add"][0]["append_action"],
        "OVERWRITE_IF_EXISTS_OR_ADD"
    );
    assert_eq!(
        rcj["virtual_hosts"][0]["routes"][0]["response_headers_to_remove"],
        serde_json::json!(["x-secret"])
    );
}

#[test]
fn header_list_refusals_point_at_the_field() {
    let l = Levels {
        vh: "              request_headers_to_add: [{header: {key: host, value: v}}]\n",
        ..Levels::default()
    };
    let e = with_levels(&l).unwrap_err();
    assert_eq!(
        e.line,
        line_in(&l, "request_headers_to_add: [{header: {key: host")
    );
    assert_eq!(
        e.path,
        "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].request_headers_to_add[0].header.key"
    );
    assert!(e.message.contains("may not be modified"), "{e}");
    // Envoy: most_specific_header_mutations_wins is not a virtual host field.
    let e = with_levels(&Levels {
        vh: "              most_specific_header_mutations_wins: true\n",
        ..Levels::default()
    })
    .unwrap_err();
    assert!(e.message.contains("unknown field"), "{e}");
    let e = with_levels(&Levels {
        route: "                response_headers_to_remove: [':status']\n",
        ..Levels::default()
    })
    .unwrap_err();
    assert!(
        e.path.ends_with("routes[0].response_headers_to_remove[0]"),
        "{e}"
    );
}

#[test]
fn cors_fields_on_virtual_host_and_route_action() {
    let b = with_levels(&Levels {
        vh: "              cors:\n                allow_origin_string_match: [{exact: \"https://a.example\"}]\n                allow_methods: GET\n",
        action: "                  cors: {allow_origin: [\"https://b.example\"], enabled: false}\n",
        ..Levels::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let vh = &hcm(&b).route_config.virtual_hosts[0];
    let c = vh.cors.as_ref().unwrap();
    assert!(c.allow_origin[0].matches("https://a.example"));
    assert_eq!(c.allow_methods.as_deref(), Some("GET"));
    let rc = vh.routes[0].cors.as_ref().unwrap();
    assert!(rc.allow_origin[0].matches("https://b.example"));
    assert_eq!(
        rc.filter_enabled.as_ref().unwrap().default_value.numerator,
        0
    );
    let d = dump::config_dump(&b);
    let vhj = &d["configs"][0]["bootstrap"]["static_resources"]["listeners"][0]["filter_chains"][0]
        ["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0];
    assert_eq!(
        vhj["cors"],
        serde_json::json!({"allow_origin_string_match": [{"exact": "https://a.example"}], "allow_methods": "GET"})
    );
    // The v2-era fields come out in their v3 form.
    assert_eq!(
        vhj["routes"][0]["route"]["cors"],
        serde_json::json!({"allow_origin_string_match": [{"exact": "https://b.example"}], "filter_enabled": {"default_value": {"numerator": 0}}})
    );
    // `cors` directly on a route is not a Route field (Envoy: unknown field).
    let e = with_levels(&Levels {
        route: "                cors: {allow_methods: GET}\n",
        ..Levels::default()
    })
    .unwrap_err();
    assert!(e.message.contains("unknown field 'cors'"), "{e}");
}

const CORS_POLICY: &str = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy";
const FILTER_CONFIG: &str = "type.googleapis.com/envoy.config.route.v3.FilterConfig";

#[test]
fn typed_per_filter_config_at_three_levels() {
    let rc = format!(
        "            typed_per_filter_config:\n              envoy.filters.http.cors:\n                \"@type\": {CORS_POLICY}\n                max_age: \"60\"\n"
    );
    let vh = format!(
        "              typed_per_filter_config:\n                envoy.filters.http.buffer: {{\"@type\": {FILTER_CONFIG}, disabled: true}}\n                my_limiter: {{\"@type\": {FILTER_CONFIG}, config: {{}}}}\n                envoy.filters.http.lua: {{\"@type\": {FILTER_CONFIG}, is_optional: true, config: {{\"@type\": type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute, disabled: true}}}}\n"
    );
    let route = format!(
        "                typed_per_filter_config:\n                  envoy.filters.http.fault:\n                    \"@type\": {FILTER_CONFIG}\n                    config: {{\"@type\": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault, abort: {{http_status: 418, percentage: {{numerator: 100}}}}}}\n                  envoy.filters.http.header_mutation:\n                    \"@type\": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute\n                    mutations: {{response_mutations: [{{remove: x-a}}]}}\n"
    );
    let b = with_levels(&Levels {
        rc: &rc,
        vh: &vh,
        route: &route,
        action: "",
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let rcm = &hcm(&b).route_config;
    assert_eq!(rcm.per_filter.len(), 1);
    assert_eq!(rcm.per_filter[0].0, "envoy.filters.http.cors");
    assert!(
        matches!(&rcm.per_filter[0].1, FilterOverride::Config(PerRouteConfig::Cors(p)) if p.max_age.as_deref() == Some("60"))
    );
    let vhm = &rcm.virtual_hosts[0];
    assert_eq!(
        vhm.per_filter,
        vec![
            (
                "envoy.filters.http.buffer".to_string(),
                FilterOverride::Disabled
            ),
            ("my_limiter".to_string(), FilterOverride::Enabled),
            (
                "envoy.filters.http.lua".to_string(),
                FilterOverride::Enabled
            ),
        ]
    );
    let r = &vhm.routes[0].per_filter;
    assert!(
        matches!(&r[0].1, FilterOverride::Config(PerRouteConfig::Fault(f)) if f.abort.is_some())
    );
    assert!(matches!(
        &r[1].1,
        FilterOverride::Config(PerRouteConfig::HeaderMutation(_))
    ));
    let d = dump::config_dump(&b);
    let rcj = &d["configs"][0]["bootstrap"]["static_resources"]["listeners"][0]["filter_chains"][0]
        ["filters"][0]["typed_config"]["route_config"];
    assert_eq!(
        rcj["typed_per_filter_config"],
        serde_json::json!({"envoy.filters.http.cors": {"@type": CORS_POLICY, "max_age": "60"}})
    );
    assert_eq!(
        rcj["virtual_hosts"][0]["typed_per_filter_config"]["envoy.filters.http.buffer"],
        serde_json::json!({"@type": FILTER_CONFIG, "disabled": true})
    );
    assert_eq!(
        rcj["virtual_hosts"][0]["routes"][0]["typed_per_filter_config"]
            ["envoy.filters.http.header_mutation"],
        serde_json::json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute",
            "mutations": {"response_mutations": [{"remove": "x-a"}]},
        })
    );
}

#[test]
fn v2_era_per_filter_config() {
    let b = with_levels(&Levels {
        route: "                per_filter_config:\n                  envoy.fault: {delay: {fixed_delay: 2s, percentage: {numerator: 10}}}\n                  envoy.buffer: {disabled: true}\n",
        ..Levels::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let r = &hcm(&b).route_config.virtual_hosts[0].routes[0].per_filter;
    assert!(
        matches!(&r[0].1, FilterOverride::Config(PerRouteConfig::Fault(f)) if f.delay.is_some())
    );
    assert_eq!(
        r[1].1,
        FilterOverride::Config(PerRouteConfig::Buffer(filters::BufferPerRoute::Disabled))
    );
    let e = with_levels(&Levels {
        vh: "              per_filter_config: {envoy.lua: {}}\n",
        ..Levels::default()
    })
    .unwrap_err();
    assert!(
        e.path
            .ends_with("virtual_hosts[0].per_filter_config.envoy.lua"),
        "{e}"
    );
    assert!(e.message.contains("use typed_per_filter_config"), "{e}");
    let e = with_levels(&Levels {
        vh: "              per_filter_config: {envoy.fault: {}}\n              typed_per_filter_config: {}\n",
        ..Levels::default()
    })
    .unwrap_err();
    assert!(e.message.contains("not both"), "{e}");
}

#[test]
fn typed_per_filter_config_refused_as_envoy_refuses() {
    let at_vh = |value: &str| {
        let vh = format!("              typed_per_filter_config:\n                f:\n{value}");
        let l = Levels {
            vh: &vh,
            ..Levels::default()
        };
        with_levels(&l).unwrap_err()
    };
    // Envoy: "could not find @type 'type.googleapis.com/foo.Bar'".
    let e = at_vh("                  \"@type\": type.googleapis.com/foo.Bar\n");
    assert!(e.path.ends_with("typed_per_filter_config.f.@type"), "{e}");
    assert!(
        e.message
            .contains("per-route config 'foo.Bar' is not supported"),
        "{e}"
    );
    let e = at_vh(&format!("                  \"@type\": {FILTER_CONFIG}\n"));
    assert_eq!(
        e.message,
        "Empty route/virtual host per filter configuration for f filter"
    );
    let e = at_vh(&format!(
        "                  \"@type\": {FILTER_CONFIG}\n                  is_optional: true\n"
    ));
    assert!(e.message.starts_with("Empty route/virtual host"), "{e}");
    let e = at_vh("                  \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n");
    assert_eq!(
        e.message,
        "The filter f doesn't support virtual host or route specific configurations"
    );
    let e = at_vh(&format!(
        "                  \"@type\": {FILTER_CONFIG}\n                  config: {{\"@type\": type.googleapis.com/foo.Bar}}\n"
    ));
    assert!(e.path.ends_with("f.config.@type"), "{e}");
    let e = at_vh(&format!(
        "                  \"@type\": {FILTER_CONFIG}\n                  disabld: true\n"
    ));
    assert!(e.message.contains("did you mean 'disabled'"), "{e}");
    let e = at_vh("                  max_age: \"5\"\n");
    assert!(e.message.contains("missing required field '@type'"), "{e}");
    // A decoder's own check, at its path.
    let e = at_vh(&format!(
        "                  \"@type\": {CORS_POLICY}\n                  allow_credentials: yes\n"
    ));
    assert!(e.path.ends_with("f.allow_credentials"), "{e}");
}

#[test]
fn http_filters_dump_with_their_typed_config() {
    let b = with_filters(&format!(
        "          - name: envoy.filters.http.cors\n          - name: rl\n            disabled: true\n            typed_config: {{\"@type\": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit, stat_prefix: rl, token_bucket: {{max_tokens: 3, fill_interval: 0.5s}}, filter_enabled: {{default_value: {{numerator: 100}}}}}}\n{ROUTER}"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let d = dump::config_dump(&b);
    let hf = &d["configs"][0]["bootstrap"]["static_resources"]["listeners"][0]["filter_chains"][0]
        ["filters"][0]["typed_config"]["http_filters"];
    assert_eq!(
        hf[0],
        serde_json::json!({"name": "envoy.filters.http.cors", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}})
    );
    assert_eq!(
        hf[1],
        serde_json::json!({"name": "rl", "disabled": true, "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            "stat_prefix": "rl",
            "token_bucket": {"max_tokens": 3, "tokens_per_fill": 1, "fill_interval": "0.5s"},
            "filter_enabled": {"default_value": {"numerator": 100}},
        }})
    );
    assert_eq!(hf[2]["name"], "envoy.filters.http.router");
    assert_eq!(hf.as_array().map(Vec::len), Some(3));
}
#[test]
fn v2_era_and_v3_filters_are_the_same_model() {
    let v2 = with_filters(
        "          - name: envoy.fault\n            config: {abort: {http_status: 503, percentage: {numerator: 1}}}\n          - name: envoy.cors\n          - name: envoy.router\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let v3 = with_filters(&format!(
        "          - name: envoy.fault\n            typed_config: {{\"@type\": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault, abort: {{http_status: 503, percentage: {{numerator: 1}}}}}}\n          - name: envoy.cors\n            typed_config: {{\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}}\n{ROUTER}"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v2, v3);
    assert_eq!(dump::config_dump(&v2), dump::config_dump(&v3));
}
/// Envoy's own example configs that use these filters and fields
/// (`../shared/envoy-corpus`, when it sits beside the checkout; every one
/// is accepted by Envoy 1.40) load, and what they configure is in the model.
#[test]
fn envoy_corpus_filter_examples_load() {
    let dir = format!(
        "{}/../../../shared/envoy-corpus",
        env!("CARGO_MANIFEST_DIR")
    );
    if !std::path::Path::new(&dir).is_dir() {
        return;
    }
    let load = |rel: &str| {
        let path = format!("{dir}/{rel}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        load_str(rel, &text).unwrap_or_else(|e| panic!("{e}"))
    };
    let names = |b: &Bootstrap| -> Vec<String> {
        hcm(b).http_filters.iter().map(|f| f.name.clone()).collect()
    };
    let b = load("configs/envoyproxy-examples%cors__backend__envoy.yaml");
    assert_eq!(names(&b), ["envoy.filters.http.cors"]);
    assert!(hcm(&b).route_config.virtual_hosts[0]
        .routes
        .iter()
        .any(|r| !r.per_filter.is_empty()));
    let b = load("configs/envoyproxy-examples%cors__frontend__envoy.yaml");
    assert_eq!(names(&b), ["envoy.filters.http.cors"]);
    let b = load("configs/envoyproxy-examples%local_ratelimit__envoy.yaml");
    assert_eq!(names(&b), ["envoy.filters.http.local_ratelimit"]);
    load("configs/envoyproxy-envoy%docs__root__configuration__http__http_filters___include__local-rate-limit-global-configuration.yaml");
    let b = load("withfiles/envoyproxy-examples%fault-injection__envoy.yaml/config.yaml");
    assert!(matches!(
        hcm(&b).http_filters[0].config,
        HttpFilterConfig::Fault(_)
    ));
}
