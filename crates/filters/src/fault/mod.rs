//! The fault filter's decisions: delay and abort, from the config and the
//! request's `x-envoy-fault-*` headers.
//!
//! Follows Envoy 1.40's `FaultFilter::decodeHeaders`: nothing unless the
//! route's cluster is `upstream_cluster` (when set), the request's
//! `x-envoy-downstream-service-node` is in `downstream_nodes` (when set)
//! and every `headers` matcher matches; a delay first (a header delay of
//! `x-envoy-fault-delay-request` milliseconds, 0 or unparsable meaning
//! none), else an abort; each fault takes an "active fault" slot unless
//! `max_active_faults` are active (`faults_overflow`); after a delay the
//! abort is decided again. Header percentages
//! (`x-envoy-fault-*-request-percentage`) can only lower the configured
//! numerator, over the configured denominator. Header abort codes outside
//! [200, 600) are ignored; a gRPC abort answers HTTP 200 with `grpc-status`
//! (an HTTP abort wins when both headers are sent).
//!
//! Verified against Envoy 1.40 (`header_abort` and `header_delay` at
//! 100 %, curl): `x-envoy-fault-abort-request: 503` gives 503 with body
//! `fault filter abort`; `99`, `600` and `abc` are ignored;
//! `x-envoy-fault-abort-grpc-request: 14` gives 200 (`grpc-status: 14`,
//! `grpc-message: fault filter abort` for a gRPC request); with both
//! headers, 503; `x-envoy-fault-abort-request-percentage: 0` disables it;
//! `x-envoy-fault-delay-request: 300` delays ~300 ms. Stats:
//! `http.<prefix>.fault.aborts_injected`, `.delays_injected`,
//! `.faults_overflow`, gauge `.active_faults`, and with
//! `x-envoy-downstream-service-cluster: dc1`
//! `http.<prefix>.fault.dc1.aborts_injected`.

mod filter;

pub use filter::FaultFilter;

use std::time::Duration;

use nuncio_config::filters::{AbortKind, DelayKind, FaultAbort, FaultDelay, HttpFault};
use nuncio_config::FractionalPercent;

use crate::headers::HeaderLookup;
use crate::Random;

/// The body of an abort.
pub const ABORT_BODY: &str = "fault filter abort";

/// An abort to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abort {
    /// HTTP status (200 for a gRPC abort).
    pub http_status: u16,
    /// `grpc-status`, for a gRPC abort.
    pub grpc_status: Option<u32>,
}

/// What to do with the request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No fault.
    None,
    /// Hold the request this long, then call [`after_delay`].
    Delay(Duration),
    /// Answer with this.
    Abort(Abort),
}

/// A decision and its bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What to do.
    pub decision: Decision,
    /// The request now holds an active-fault slot (`active_faults` + 1;
    /// give it back when the request ends, or after a delay not followed
    /// by an abort).
    pub took_active_slot: bool,
    /// Counters to bump, under `http.<stat_prefix>.`.
    pub stats: Vec<String>,
}

fn header_percent(
    configured: FractionalPercent,
    headers: &dyn HeaderLookup,
    name: &str,
) -> FractionalPercent {
    match headers.get(name).and_then(|v| v.parse::<u32>().ok()) {
        Some(n) => FractionalPercent {
            numerator: n.min(configured.numerator),
            denominator: configured.denominator,
        },
        None => configured,
    }
}

fn delay_duration(
    d: &FaultDelay,
    headers: &dyn HeaderLookup,
    random: &mut dyn Random,
) -> Option<Duration> {
    let percent = match d.kind {
        DelayKind::Header => header_percent(
            d.percentage,
            headers,
            "x-envoy-fault-delay-request-percentage",
        ),
        DelayKind::Fixed(_) => d.percentage,
    };
    if !percent.hit(random.random()) {
        return None;
    }
    let dur = match d.kind {
        DelayKind::Fixed(f) => f,
        DelayKind::Header => {
            Duration::from_millis(headers.get("x-envoy-fault-delay-request")?.parse().ok()?)
        }
    };
    (dur.as_millis() > 0).then_some(dur)
}

/// Envoy's `abortStatus`: whether (and how) to abort.
fn abort_status(
    a: &FaultAbort,
    headers: &dyn HeaderLookup,
    random: &mut dyn Random,
) -> Option<Abort> {
    let percent = match a.kind {
        AbortKind::Header => header_percent(
            a.percentage,
            headers,
            "x-envoy-fault-abort-request-percentage",
        ),
        _ => a.percentage,
    };
    if !percent.hit(random.random()) {
        return None;
    }
    let num = |h: &str| headers.get(h).and_then(|v| v.parse::<u64>().ok());
    match a.kind {
        AbortKind::Http(s) => Some(Abort {
            http_status: s,
            grpc_status: None,
        }),
        AbortKind::Grpc(g) => Some(Abort {
            http_status: 200,
            grpc_status: Some(g),
        }),
        AbortKind::Header => {
            if let Some(code) =
                num("x-envoy-fault-abort-request").filter(|c| (200..600).contains(c))
            {
                return Some(Abort {
                    http_status: code as u16,
                    grpc_status: None,
                });
            }
            let g = num("x-envoy-fault-abort-grpc-request")?;
            Some(Abort {
                http_status: 200,
                grpc_status: Some(g as u32),
            })
        }
    }
}

fn applies(cfg: &HttpFault, route_cluster: Option<&str>, headers: &dyn HeaderLookup) -> bool {
    if let Some(c) = &cfg.upstream_cluster {
        if route_cluster != Some(c.as_str()) {
            return false;
        }
    }
    if !cfg.downstream_nodes.is_empty() {
        match headers.get("x-envoy-downstream-service-node") {
            Some(n) if cfg.downstream_nodes.iter().any(|d| d == n) => {}
            _ => return false,
        }
    }
    cfg.headers
        .iter()
        .all(|m| m.matches(headers.get_joined(&m.name).as_deref()))
}

fn count(cfg: &HttpFault, headers: &dyn HeaderLookup, what: &str, stats: &mut Vec<String>) {
    if let Some(dc) = headers
        .get("x-envoy-downstream-service-cluster")
        .filter(|d| !d.is_empty())
    {
        if !cfg.disable_downstream_cluster_stats {
            stats.push(format!("fault.{dc}.{what}"));
        }
    }
    stats.push(format!("fault.{what}"));
}

/// Decides a request's fault when its headers arrive. `route_cluster` is
/// the routed cluster; `active_faults` the current `fault.active_faults`.
pub fn on_request(
    cfg: &HttpFault,
    route_cluster: Option<&str>,
    headers: &dyn HeaderLookup,
    active_faults: u64,
    random: &mut dyn Random,
) -> Outcome {
    let mut out = Outcome {
        decision: Decision::None,
        took_active_slot: false,
        stats: Vec::new(),
    };
    if !applies(cfg, route_cluster, headers) {
        return out;
    }
    let max = cfg.max_active_faults.map_or(u64::MAX, u64::from);
    let try_slot = |out: &mut Outcome| {
        if active_faults >= max {
            out.stats.push("fault.faults_overflow".into());
            return false;
        }
        out.took_active_slot = true;
        true
    };
    if let Some(d) = cfg
        .delay
        .as_ref()
        .and_then(|d| delay_duration(d, headers, random))
    {
        if try_slot(&mut out) {
            count(cfg, headers, "delays_injected", &mut out.stats);
            out.decision = Decision::Delay(d);
            return out;
        }
    }
    if let Some(a) = cfg
        .abort
        .as_ref()
        .and_then(|a| abort_status(a, headers, random))
    {
        if try_slot(&mut out) {
            count(cfg, headers, "aborts_injected", &mut out.stats);
            out.decision = Decision::Abort(a);
        }
    }
    out
}

/// After a delay: abort (decided again, as Envoy does), or continue. The
/// request already holds its active-fault slot.
pub fn after_delay(
    cfg: &HttpFault,
    headers: &dyn HeaderLookup,
    random: &mut dyn Random,
) -> (Option<Abort>, Vec<String>) {
    let mut stats = Vec::new();
    let abort = cfg
        .abort
        .as_ref()
        .and_then(|a| abort_status(a, headers, random));
    if abort.is_some() {
        count(cfg, headers, "aborts_injected", &mut stats);
    }
    (abort, stats)
}

/// The gauge's name under `http.<stat_prefix>.`.
pub const ACTIVE_FAULTS: &str = "fault.active_faults";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::HeaderList;
    use nuncio_config::filters::{decode_filter_str, HttpFilterConfig};

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

    fn cfg(yaml: &str) -> HttpFault {
        let text = format!("\"@type\": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault\n{yaml}");
        match decode_filter_str("f.yaml", &text).unwrap() {
            HttpFilterConfig::Fault(f) => *f,
            other => panic!("{other:?}"),
        }
    }

    fn h(pairs: &[(&str, &str)]) -> HeaderList {
        HeaderList(
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    const HEADER: &str = "abort: {header_abort: {}, percentage: {numerator: 100}}\ndelay: {header_delay: {}, percentage: {numerator: 100}}\nmax_active_faults: 100";

    fn abort_of(c: &HttpFault, pairs: &[(&str, &str)]) -> Decision {
        on_request(c, Some("origin"), &h(pairs), 0, &mut Seq(vec![])).decision
    }

    #[test]
    fn header_faults_as_envoy_answered() {
        let c = cfg(HEADER);
        let http = |s| {
            Decision::Abort(Abort {
                http_status: s,
                grpc_status: None,
            })
        };
        assert_eq!(abort_of(&c, &[]), Decision::None);
        assert_eq!(
            abort_of(&c, &[("x-envoy-fault-abort-request", "503")]),
            http(503)
        );
        for bad in ["99", "600", "abc"] {
            assert_eq!(
                abort_of(&c, &[("x-envoy-fault-abort-request", bad)]),
                Decision::None,
                "{bad}"
            );
        }
        let grpc = Decision::Abort(Abort {
            http_status: 200,
            grpc_status: Some(14),
        });
        assert_eq!(
            abort_of(&c, &[("x-envoy-fault-abort-grpc-request", "14")]),
            grpc
        );
        assert_eq!(
            abort_of(
                &c,
                &[
                    ("x-envoy-fault-abort-request", "503"),
                    ("x-envoy-fault-abort-grpc-request", "14")
                ]
            ),
            http(503)
        );
        assert_eq!(
            abort_of(
                &c,
                &[
                    ("x-envoy-fault-abort-request", "503"),
                    ("x-envoy-fault-abort-request-percentage", "0")
                ]
            ),
            Decision::None
        );
        assert_eq!(
            abort_of(&c, &[("x-envoy-fault-delay-request", "300")]),
            Decision::Delay(Duration::from_millis(300))
        );
        assert_eq!(
            abort_of(&c, &[("x-envoy-fault-delay-request", "0")]),
            Decision::None
        );
        let o = on_request(
            &c,
            None,
            &h(&[
                ("x-envoy-fault-abort-request", "503"),
                ("x-envoy-downstream-service-cluster", "dc1"),
            ]),
            0,
            &mut Seq(vec![]),
        );
        assert_eq!(
            o.stats,
            vec!["fault.dc1.aborts_injected", "fault.aborts_injected"]
        );
        assert!(o.took_active_slot);
    }

    #[test]
    fn percentages_are_sampled_and_capped() {
        let c = cfg("abort: {http_status: 503, percentage: {numerator: 10}}\ndelay: {header_delay: {}, percentage: {numerator: 20, denominator: TEN_THOUSAND}}");
        let none = h(&[]);
        assert_eq!(
            on_request(&c, None, &none, 0, &mut Seq(vec![0, 9])).decision,
            Decision::Abort(Abort {
                http_status: 503,
                grpc_status: None
            })
        );
        assert_eq!(
            on_request(&c, None, &none, 0, &mut Seq(vec![0, 10])).decision,
            Decision::None
        );
        assert_eq!(
            on_request(&c, None, &none, 0, &mut Seq(vec![0, 110])).decision,
            Decision::None,
            "random % 100"
        );
        let d = h(&[
            ("x-envoy-fault-delay-request", "5"),
            ("x-envoy-fault-delay-request-percentage", "500"),
        ]);
        assert_eq!(
            on_request(&c, None, &d, 0, &mut Seq(vec![19])).decision,
            Decision::Delay(Duration::from_millis(5)),
            "header 500 capped at 20/10000"
        );
        assert_eq!(
            on_request(&c, None, &d, 0, &mut Seq(vec![20, 99])).decision,
            Decision::None
        );
    }

    #[test]
    fn targeting_and_overflow() {
        let c = cfg("abort: {http_status: 503, percentage: {numerator: 100}}\nupstream_cluster: origin\ndownstream_nodes: [n1]\nheaders: [{name: x-fault, exact_match: 'on'}]\nmax_active_faults: 2\ndisable_downstream_cluster_stats: true");
        let ok = h(&[
            ("x-envoy-downstream-service-node", "n1"),
            ("x-fault", "on"),
            ("x-envoy-downstream-service-cluster", "dc"),
        ]);
        let o = on_request(&c, Some("origin"), &ok, 1, &mut Seq(vec![]));
        assert!(matches!(o.decision, Decision::Abort(_)));
        assert_eq!(o.stats, vec!["fault.aborts_injected"]);
        assert_eq!(
            on_request(&c, Some("other"), &ok, 0, &mut Seq(vec![])).decision,
            Decision::None
        );
        let wrong_node = h(&[("x-envoy-downstream-service-node", "n2"), ("x-fault", "on")]);
        assert_eq!(
            on_request(&c, Some("origin"), &wrong_node, 0, &mut Seq(vec![])).decision,
            Decision::None
        );
        let no_hdr = h(&[("x-envoy-downstream-service-node", "n1")]);
        assert_eq!(
            on_request(&c, Some("origin"), &no_hdr, 0, &mut Seq(vec![])).decision,
            Decision::None
        );
        let full = on_request(&c, Some("origin"), &ok, 2, &mut Seq(vec![]));
        assert_eq!(full.decision, Decision::None);
        assert_eq!(full.stats, vec!["fault.faults_overflow"]);
        assert!(!full.took_active_slot);
    }

    #[test]
    fn delay_then_abort() {
        let c = cfg("delay: {fixed_delay: 1s, percentage: {numerator: 100}}\nabort: {grpc_status: 5, percentage: {numerator: 50}}");
        let none = h(&[]);
        let o = on_request(&c, None, &none, 0, &mut Seq(vec![0]));
        assert_eq!(o.decision, Decision::Delay(Duration::from_secs(1)));
        assert_eq!(o.stats, vec!["fault.delays_injected"]);
        let (a, stats) = after_delay(&c, &none, &mut Seq(vec![10]));
        assert_eq!(
            a,
            Some(Abort {
                http_status: 200,
                grpc_status: Some(5)
            })
        );
        assert_eq!(stats, vec!["fault.aborts_injected"]);
        assert_eq!(after_delay(&c, &none, &mut Seq(vec![60])).0, None);
    }
}
