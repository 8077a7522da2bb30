//! `envoy.filters.http.fault`
//! (`envoy.extensions.filters.http.fault.v3.HTTPFault`, v2-era
//! `envoy.config.filter.http.fault.v2.HTTPFault`), as the filter's config
//! and as its per-route override.
//!
//! Checked with `envoy --mode validate`: `abort.http_status` must be in
//! [200, 600); an abort needs one of `http_status`, `grpc_status`,
//! `header_abort`, a delay one of `fixed_delay`, `header_delay`;
//! `fixed_delay` must be > 0; a percentage numerator above its denominator
//! is accepted. The `*_runtime` keys are accepted and have no effect, as in
//! an Envoy without a runtime layer. `response_rate_limit` (pacing the
//! response body) and `filter_metadata` are refused.

use std::time::Duration;

use crate::decode::{Result, Val};
use crate::header_matcher::{decode_header_matcher, HeaderMatcher};
use crate::percent::{decode_fractional_percent, FractionalPercent};

/// The v3 `@type`.
pub const FAULT_TYPE: &str = "envoy.extensions.filters.http.fault.v3.HTTPFault";
/// The v2-era `@type`.
pub const FAULT_TYPE_V2: &str = "envoy.config.filter.http.fault.v2.HTTPFault";

/// How long a delay lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelayKind {
    /// `fixed_delay`.
    Fixed(Duration),
    /// `header_delay`: milliseconds from `x-envoy-fault-delay-request`.
    Header,
}

/// `FaultDelay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultDelay {
    /// The duration's source.
    pub kind: DelayKind,
    /// The share of requests delayed (default 0 %); with `header_delay`,
    /// `x-envoy-fault-delay-request-percentage` may lower it.
    pub percentage: FractionalPercent,
}

/// What an abort answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortKind {
    /// `http_status`.
    Http(u16),
    /// `grpc_status` (HTTP 200 with this `grpc-status`).
    Grpc(u32),
    /// `header_abort`: `x-envoy-fault-abort-request` or
    /// `x-envoy-fault-abort-grpc-request`.
    Header,
}

/// `FaultAbort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultAbort {
    /// The status's source.
    pub kind: AbortKind,
    /// The share of requests aborted (default 0 %); with `header_abort`,
    /// `x-envoy-fault-abort-request-percentage` may lower it.
    pub percentage: FractionalPercent,
}

/// `HTTPFault`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpFault {
    /// `delay`.
    pub delay: Option<FaultDelay>,
    /// `abort`.
    pub abort: Option<FaultAbort>,
    /// Only requests routed to this cluster.
    pub upstream_cluster: Option<String>,
    /// Only requests matching all of these.
    pub headers: Vec<HeaderMatcher>,
    /// Only requests whose `x-envoy-downstream-service-node` is one of these.
    pub downstream_nodes: Vec<String>,
    /// At most this many requests with an active fault (unset: no limit).
    pub max_active_faults: Option<u32>,
    /// No `fault.<downstream-cluster>.*` stats.
    pub disable_downstream_cluster_stats: bool,
}

/// Decodes the filter's `typed_config` (or per-route override).
pub(crate) fn decode(v: &Val) -> Result<HttpFault> {
    let o = v.obj()?;
    o.ignore("@type");
    let delay = o.get("delay").map(|d| decode_delay(&d)).transpose()?;
    let abort = o.get("abort").map(|a| decode_abort(&a)).transpose()?;
    let upstream_cluster = o
        .get("upstream_cluster")
        .map(|c| c.str())
        .transpose()?
        .filter(|c| !c.is_empty());
    let mut headers = Vec::new();
    if let Some(l) = o.get("headers") {
        for h in l.list()? {
            headers.push(decode_header_matcher(&h)?);
        }
    }
    let downstream_nodes = o
        .get("downstream_nodes")
        .map(|l| l.str_list())
        .transpose()?
        .unwrap_or_default();
    let max_active_faults = match o.get("max_active_faults") {
        None => None,
        Some(m) => Some(match m.node.kind {
            crate::yaml::NodeKind::Map(_) => {
                let mo = m.obj()?;
                let n = mo.req("value")?.u32()?;
                mo.finish()?;
                n
            }
            _ => m.u32()?,
        }),
    };
    let disable_downstream_cluster_stats = o
        .get("disable_downstream_cluster_stats")
        .map(|b| b.bool())
        .transpose()?
        .unwrap_or(false);
    for k in [
        "delay_percent_runtime",
        "abort_percent_runtime",
        "delay_duration_runtime",
        "abort_http_status_runtime",
        "max_active_faults_runtime",
        "response_rate_limit_percent_runtime",
        "abort_grpc_status_runtime",
    ] {
        // nuncio has no runtime layer: the configured values apply, as in
        // an Envoy whose runtime does not set these keys.
        if let Some(x) = o.get(k) {
            x.str()?;
        }
    }
    o.finish_with(&["response_rate_limit", "filter_metadata"])?;
    Ok(HttpFault {
        delay,
        abort,
        upstream_cluster,
        headers,
        downstream_nodes,
        max_active_faults,
        disable_downstream_cluster_stats,
    })
}

fn percentage(o: &crate::decode::Obj) -> Result<FractionalPercent> {
    o.get("percentage")
        .map(|p| decode_fractional_percent(&p))
        .transpose()
        .map(Option::unwrap_or_default)
}

fn decode_delay(v: &Val) -> Result<FaultDelay> {
    let o = v.obj()?;
    let fixed = o.get("fixed_delay");
    let header = o.get("header_delay");
    let percentage = percentage(&o)?;
    o.only_if(
        "type",
        |t| Ok(t.str()?.eq_ignore_ascii_case("FIXED")),
        "the v2-era delay type is FIXED",
    )?;
    o.finish()?;
    let kind = match (fixed, header) {
        (Some(f), None) => {
            let d = f.duration()?;
            if d.is_zero() {
                return Err(f.err("fixed_delay must be greater than 0s"));
            }
            DelayKind::Fixed(d)
        }
        (None, Some(h)) => {
            h.obj()?.finish()?;
            DelayKind::Header
        }
        (Some(_), Some(h)) => {
            return Err(h.err("a delay takes one of 'fixed_delay' and 'header_delay'"))
        }
        (None, None) => return Err(o.err("a delay needs 'fixed_delay' or 'header_delay'")),
    };
    Ok(FaultDelay { kind, percentage })
}

fn decode_abort(v: &Val) -> Result<FaultAbort> {
    let o = v.obj()?;
    let mut kinds: Vec<(Val, AbortKind)> = Vec::new();
    if let Some(h) = o.get("http_status") {
        let code = h.u32()?;
        if !(200..600).contains(&code) {
            return Err(h.err(format!("http_status must be in [200, 600), got {code}")));
        }
        kinds.push((h, AbortKind::Http(code as u16)));
    }
    if let Some(g) = o.get("grpc_status") {
        let code = g.u32()?;
        kinds.push((g, AbortKind::Grpc(code)));
    }
    if let Some(h) = o.get("header_abort") {
        h.obj()?.finish()?;
        kinds.push((h, AbortKind::Header));
    }
    let percentage = percentage(&o)?;
    o.finish()?;
    if kinds.len() > 1 {
        return Err(kinds[1]
            .0
            .err("an abort takes one of 'http_status', 'grpc_status' and 'header_abort'"));
    }
    let Some((_, kind)) = kinds.pop() else {
        return Err(o.err("an abort needs 'http_status', 'grpc_status' or 'header_abort'"));
    };
    Ok(FaultAbort { kind, percentage })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_str;
    use crate::percent::Denominator;

    fn d(text: &str) -> Result<HttpFault> {
        decode_str("t.yaml", text, decode)
    }

    #[test]
    fn every_field() {
        let f = d(r#"
"@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
delay: {fixed_delay: 0.3s, percentage: {numerator: 5, denominator: TEN_THOUSAND}}
abort: {http_status: 503, percentage: {numerator: 100}}
upstream_cluster: origin
headers: [{name: x-fault, exact_match: "on"}]
downstream_nodes: [node-a]
max_active_faults: 7
disable_downstream_cluster_stats: true
abort_percent_runtime: fault.x
"#)
        .unwrap();
        let delay = f.delay.unwrap();
        assert_eq!(delay.kind, DelayKind::Fixed(Duration::from_millis(300)));
        assert_eq!(delay.percentage.denominator, Denominator::TenThousand);
        assert_eq!(f.abort.unwrap().kind, AbortKind::Http(503));
        assert_eq!(f.upstream_cluster.as_deref(), Some("origin"));
        assert_eq!(f.headers[0].name, "x-fault");
        assert_eq!(f.downstream_nodes, vec!["node-a"]);
        assert_eq!(f.max_active_faults, Some(7));
        assert!(f.disable_downstream_cluster_stats);
        let h = d("abort: {header_abort: {}, percentage: {numerator: 100}}\ndelay: {header_delay: {}}\nmax_active_faults: {value: 2}").unwrap();
        assert_eq!(h.abort.unwrap().kind, AbortKind::Header);
        assert_eq!(h.delay.unwrap().kind, DelayKind::Header);
        assert_eq!(h.delay.unwrap().percentage, FractionalPercent::hundred(0));
        assert_eq!(h.max_active_faults, Some(2));
        assert_eq!(
            d("abort: {grpc_status: 14}").unwrap().abort.unwrap().kind,
            AbortKind::Grpc(14)
        );
        assert!(d("delay: {type: FIXED, fixed_delay: 1s}").is_ok());
        assert!(d("abort: {http_status: 503, percentage: {numerator: 200}}").is_ok());
    }

    #[test]
    fn refused() {
        let cases = [
            ("abort: {http_status: 600}", "[200, 600)"),
            ("abort: {http_status: 199}", "[200, 600)"),
            (
                "abort: {percentage: {numerator: 100}}",
                "needs 'http_status'",
            ),
            ("abort: {http_status: 503, grpc_status: 1}", "takes one of"),
            (
                "delay: {percentage: {numerator: 10}}",
                "needs 'fixed_delay'",
            ),
            ("delay: {fixed_delay: 0s}", "greater than 0s"),
            ("delay: {fixed_delay: -1s}", "duration"),
            (
                "response_rate_limit: {fixed_limit: {limit_kbps: 1}}",
                "does not support yet",
            ),
            ("filter_metadata: {}", "does not support yet"),
            (
                "headers: [{name: x, exact_match: a, prefix_match: b}]",
                "one match kind",
            ),
            ("delays: {}", "did you mean 'delay'"),
        ];
        for (text, want) in cases {
            let e = d(text).unwrap_err();
            assert!(e.message.contains(want), "{text}: {e}");
        }
    }
}
