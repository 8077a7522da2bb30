//! The fault filter on the request path: a delay holds the request on a
//! timer ([`Flow::Pause`]), an abort answers it. A route's own `HTTPFault`
//! replaces the filter's settings. `fault.active_faults` counts requests
//! holding a fault until they end.

use nuncio_config::filters::{HttpFault, PerRouteConfig};
use nuncio_stats::{Counter, Gauge, GaugeGuard, Scope};

use super::{after_delay, on_request, Abort, Decision, ABORT_BODY, ACTIVE_FAULTS};
use crate::chain::{Flow, HttpFilter, LocalResponse, RequestCx};
use crate::{ResponseFlags, ThreadRandom};

/// `envoy.filters.http.fault`.
#[derive(Debug)]
pub struct FaultFilter {
    cfg: HttpFault,
    http: Scope,
    active: Gauge,
}

impl FaultFilter {
    /// The filter, counting under the connection manager's `http.<prefix>.`.
    pub fn new(cfg: HttpFault, http: &Scope) -> Self {
        FaultFilter {
            cfg,
            active: http.gauge(ACTIVE_FAULTS),
            http: http.clone(),
        }
    }

    fn counters(&self, names: &[String]) -> Vec<Counter> {
        names.iter().map(|n| self.http.counter(n)).collect()
    }
}

fn abort_reply(a: Abort) -> Flow {
    Flow::Reply(LocalResponse {
        grpc_status: a.grpc_status,
        ..LocalResponse::new(a.http_status, ABORT_BODY, ResponseFlags::FAULT_INJECTED)
    })
}

/// Whether every fault of `cfg` comes from request headers (then a
/// request without any `x-envoy-fault-*` header gets none).
fn header_controlled(cfg: &HttpFault) -> bool {
    use nuncio_config::filters::{AbortKind, DelayKind};
    cfg.delay.is_none_or(|d| d.kind == DelayKind::Header)
        && cfg.abort.is_none_or(|a| a.kind == AbortKind::Header)
}

/// Whether the request carries a fault header (one scan, by prefix).
fn has_fault_header(cx: &RequestCx<'_, '_>) -> bool {
    const PREFIX: &str = "x-envoy-fault-";
    cx.headers.original.iter().any(|(n, _)| {
        n.len() > PREFIX.len()
            && n.as_bytes()[..PREFIX.len()].eq_ignore_ascii_case(PREFIX.as_bytes())
    }) || cx.headers.edits.added().any(|(n, _)| n.starts_with(PREFIX))
}

impl HttpFilter for FaultFilter {
    fn on_request(&self, cx: &mut RequestCx<'_, '_>) -> Flow {
        let cfg = cx
            .overrides()
            .find_map(|c| match c {
                PerRouteConfig::Fault(c) => Some(&**c),
                _ => None,
            })
            .unwrap_or(&self.cfg);
        // The common case, measured: no fault header, nothing to decide.
        if header_controlled(cfg) && !has_fault_header(cx) {
            return Flow::Continue;
        }
        let cluster = cx.route.and_then(|r| r.cluster());
        let out = on_request(
            cfg,
            cluster,
            &cx.matchable(),
            self.active.get().max(0) as u64,
            &mut ThreadRandom,
        );
        for c in self.counters(&out.stats) {
            c.inc();
        }
        if out.took_active_slot {
            cx.hold(GaugeGuard::new(&self.active));
        }
        match out.decision {
            Decision::None => Flow::Continue,
            Decision::Abort(a) => abort_reply(a),
            Decision::Delay(d) => {
                // Whether to abort after the delay is drawn now, from the
                // headers at hand (the future outlives their borrow); its
                // counters move when the delay ends, as in Envoy.
                let (abort, stats) = after_delay(cfg, &cx.matchable(), &mut ThreadRandom);
                let counters = self.counters(&stats);
                cx.flags |= ResponseFlags::DELAY_INJECTED;
                Flow::Pause(Box::pin(async move {
                    tokio::time::sleep(d).await;
                    for c in counters {
                        c.inc();
                    }
                    match abort {
                        Some(a) => abort_reply(a),
                        None => Flow::Continue,
                    }
                }))
            }
        }
    }
}
