//! The local rate limit filter on the request path. Its token buckets are
//! shared by every worker (Envoy 1.40 shares them process-wide), behind a
//! mutex held for one decision. A route's own `LocalRateLimit` (in
//! `typed_per_filter_config`) has its own buckets and counters.

use std::sync::Mutex;
use std::time::Instant;

use nuncio_config::filters::{LocalRateLimit, PerRouteConfig};
use nuncio_stats::{Counter, Scope};

use super::{Decision, Limiter, Stat, LIMITED_BODY};
use crate::chain::{Flow, HttpFilter, LocalResponse, RequestCx};
use crate::formatter::format;
use crate::headers::apply_formatted;
use crate::ThreadRandom;

/// One configuration's buckets and counters.
#[derive(Debug)]
struct Limited {
    limiter: Mutex<Limiter>,
    stats: [Counter; 4],
}

impl Limited {
    fn new(cfg: &LocalRateLimit, scope: &Scope) -> Self {
        let c = |s: Stat| scope.counter(&s.name(&cfg.stat_prefix));
        Limited {
            limiter: Mutex::new(Limiter::new(cfg, Instant::now())),
            stats: [
                c(Stat::Enabled),
                c(Stat::Ok),
                c(Stat::RateLimited),
                c(Stat::Enforced),
            ],
        }
    }

    fn count(&self, s: Stat) {
        let i = match s {
            Stat::Enabled => 0,
            Stat::Ok => 1,
            Stat::RateLimited => 2,
            Stat::Enforced => 3,
        };
        self.stats[i].inc();
    }
}

/// `envoy.filters.http.local_ratelimit`.
#[derive(Debug)]
pub struct LocalRateLimitFilter {
    cfg: LocalRateLimit,
    own: Limited,
    /// Buckets of routes' own configs, by the config's address (stable for
    /// the life of the route table this filter was built with).
    per_route: Mutex<Vec<(usize, std::sync::Arc<Limited>)>>,
    scope: Scope,
}

impl LocalRateLimitFilter {
    /// The filter; counters under the root scope (`<stat_prefix>.http_local_rate_limit.*`).
    pub fn new(cfg: LocalRateLimit, root: &Scope) -> Self {
        LocalRateLimitFilter {
            own: Limited::new(&cfg, root),
            cfg,
            per_route: Mutex::new(Vec::new()),
            scope: root.clone(),
        }
    }

    fn route_limited(&self, cfg: &LocalRateLimit) -> std::sync::Arc<Limited> {
        let key = cfg as *const LocalRateLimit as usize;
        let mut all = self.per_route.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, l)) = all.iter().find(|(k, _)| *k == key) {
            return l.clone();
        }
        let l = std::sync::Arc::new(Limited::new(cfg, &self.scope));
        all.push((key, l.clone()));
        l
    }
}

impl HttpFilter for LocalRateLimitFilter {
    fn on_request(&self, cx: &mut RequestCx<'_, '_>) -> Flow {
        let route_cfg = cx.overrides().find_map(|c| match c {
            PerRouteConfig::LocalRateLimit(c) => Some(&**c),
            _ => None,
        });
        let held;
        let (cfg, limited) = match route_cfg {
            Some(c) => {
                held = self.route_limited(c);
                (c, &*held)
            }
            None => (&self.cfg, &self.own),
        };
        let out = {
            let mut l = limited.limiter.lock().unwrap_or_else(|p| p.into_inner());
            l.check(cfg, &[], Instant::now(), &mut ThreadRandom)
        };
        for s in &out.stats {
            limited.count(*s);
        }
        if let Some(x) = out.x_ratelimit {
            for (n, v) in x.headers() {
                cx.response_headers.set(n, &v);
            }
        }
        match out.decision {
            Decision::Disabled | Decision::Allowed => Flow::Continue,
            Decision::LimitedNotEnforced => {
                let stream = cx.stream;
                let route = cx.route;
                apply_formatted(
                    &cfg.request_headers_to_add_when_not_enforced,
                    &[],
                    &mut cx.headers,
                    &|f, req| format(f, &crate::chain::Facts::request_time(stream, req, route)),
                );
                Flow::Continue
            }
            Decision::Limited {
                status,
                grpc_status,
            } => {
                let facts = cx.facts(&cx.headers);
                let headers = cfg
                    .response_headers_to_add
                    .iter()
                    .map(|h| (h.name.clone(), format(&h.value, &facts)))
                    .filter(|(_, v)| !v.is_empty())
                    .collect();
                Flow::Reply(LocalResponse {
                    headers,
                    grpc_status: Some(grpc_status),
                    ..LocalResponse::new(status, LIMITED_BODY, crate::ResponseFlags::RATE_LIMITED)
                })
            }
        }
    }
}
