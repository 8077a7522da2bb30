//! The CORS filter on the request path: the worked example of a filter.
//!
//! A filter is three things: its config (decoded and validated in
//! `nuncio_config::filters::cors`), its decisions as plain functions
//! (`super::decide`, unit-tested without I/O), and this file, which reads
//! the request through [`RequestCx`], calls the decisions and carries them
//! out: a local reply ([`Flow::Reply`]), headers for the response
//! ([`RequestCx::response_headers`]), counters. `crate::registry` builds it
//! from `http_filters`.

use nuncio_config::filters::{CorsPolicy, PerRouteConfig};
use nuncio_stats::{Counter, Scope};

use super::{decide, CorsDecision, CorsRequest, MergedPolicy, OriginStat};
use crate::chain::{Flow, HttpFilter, LocalResponse, RequestCx};
use crate::headers::HeaderLookup;
use crate::ThreadRandom;

/// `envoy.filters.http.cors`: the policies come from the routes.
#[derive(Debug)]
pub struct CorsFilter {
    origin_valid: Counter,
    origin_invalid: Counter,
}

impl CorsFilter {
    /// The filter, counting under the connection manager's `http.<prefix>.`.
    pub fn new(http: &Scope) -> Self {
        CorsFilter {
            origin_valid: http.counter(OriginStat::Valid.name()),
            origin_invalid: http.counter(OriginStat::Invalid.name()),
        }
    }
}

impl HttpFilter for CorsFilter {
    fn on_request(&self, cx: &mut RequestCx<'_, '_>) -> Flow {
        let Some(route) = cx.route else {
            return Flow::Continue;
        };
        if !route.has_overrides() && route.cors_fields().iter().all(Option::is_none) {
            return Flow::Continue;
        }
        // `typed_per_filter_config` policies, most specific first; the
        // older `cors` fields only when there are none (as Envoy).
        let mut policies: Vec<&CorsPolicy> = cx
            .overrides()
            .filter_map(|c| match c {
                PerRouteConfig::Cors(p) => Some(&**p),
                _ => None,
            })
            .collect();
        if policies.is_empty() {
            policies = route.cors_fields().into_iter().flatten().collect();
        }
        if policies.is_empty() {
            return Flow::Continue;
        }
        let h = &cx.headers;
        let req = CorsRequest {
            method: cx.method,
            origin: h.get("origin"),
            request_method: h.get("access-control-request-method"),
            request_headers: h.get("access-control-request-headers"),
            request_private_network: h.get("access-control-request-private-network"),
        };
        let out = decide(&MergedPolicy::new(&policies), &req, &mut ThreadRandom);
        match out.stat {
            Some(OriginStat::Valid) => self.origin_valid.inc(),
            Some(OriginStat::Invalid) => self.origin_invalid.inc(),
            None => {}
        }
        match out.decision {
            CorsDecision::Pass => Flow::Continue,
            CorsDecision::Preflight { headers } => Flow::Reply(LocalResponse {
                headers: headers
                    .into_iter()
                    .map(|(n, v)| (n.to_string(), v))
                    .collect(),
                local_reply: false,
                ..LocalResponse::new(200, "", crate::chain::NO_FLAG)
            }),
            CorsDecision::Forward { response_headers } => {
                for (n, v) in response_headers {
                    cx.response_headers.set(n, &v);
                }
                Flow::Continue
            }
        }
    }
}
