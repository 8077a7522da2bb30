//! The local rate limit filter: Envoy 1.40's token buckets and decisions.
//!
//! Envoy 1.40's bucket (`AtomicTokenBucketImpl`) starts full and refills
//! continuously at `tokens_per_fill / fill_interval` tokens per second, up
//! to `max_tokens`; a request takes one token. Verified against Envoy 1.40
//! (`max_tokens: 3, tokens_per_fill: 1, fill_interval: 2s`,
//! `enable_x_ratelimit_headers: DRAFT_VERSION_03`, curl): requests 1-3 get
//! 200 with `x-ratelimit-limit: 3`, `x-ratelimit-remaining: 2, 1, 0` and
//! `x-ratelimit-reset: 0, 0, 2`; requests 4-5 get 429, body
//! `local_rate_limited`, the `response_headers_to_add`, and the same three
//! headers (`remaining: 0`, `reset: 2`); 1.2 s later still 429 with
//! `reset: 1`; 2.1 s after the first burst one request passes
//! (`remaining: 0`, `reset: 2`) and the next is limited. Stats after those
//! 8 requests: `myrl.http_local_rate_limit.enabled: 8, enforced: 4, ok: 4,
//! rate_limited: 4` (and `shadow_mode: 0`). `x-ratelimit-reset` is whole
//! seconds rounded up until the next token; `remaining` is rounded down.

mod filter;

pub use filter::LocalRateLimitFilter;

use std::time::{Duration, Instant};

use nuncio_config::filters::{DescriptorEntry, LocalRateLimit, TokenBucket};

use crate::Random;

/// A token bucket that refills continuously (Envoy 1.40's).
#[derive(Debug, Clone)]
pub struct Bucket {
    max: f64,
    /// Tokens per second.
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket at `now`.
    pub fn new(tb: &TokenBucket, now: Instant) -> Bucket {
        let secs = tb.fill_interval.as_secs_f64().max(f64::MIN_POSITIVE);
        Bucket {
            max: f64::from(tb.max_tokens),
            rate: f64::from(tb.tokens_per_fill) / secs,
            tokens: f64::from(tb.max_tokens),
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.max);
        self.at = self.at.max(now);
    }

    /// Takes `n` tokens if there are that many.
    pub fn consume(&mut self, n: u32, now: Instant) -> bool {
        self.refill(now);
        if self.tokens < f64::from(n) {
            return false;
        }
        self.tokens -= f64::from(n);
        true
    }

    /// Tokens per second.
    pub fn fill_rate(&self) -> f64 {
        self.rate
    }

    /// `x-ratelimit-limit`.
    pub fn limit(&self) -> u64 {
        self.max as u64
    }

    /// `x-ratelimit-remaining`: whole tokens left.
    pub fn remaining(&mut self, now: Instant) -> u64 {
        self.refill(now);
        self.tokens.floor() as u64
    }

    /// `x-ratelimit-reset`: whole seconds (rounded up) until a token is
    /// available; 0 when one is.
    pub fn reset_seconds(&mut self, now: Instant) -> u64 {
        self.refill(now);
        if self.tokens >= 1.0 {
            return 0;
        }
        let ms = ((1.0 - self.tokens) / self.rate * 1000.0).floor() as u64;
        ms.div_ceil(1000)
    }
}

/// The `x-ratelimit-*` values for the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XRateLimit {
    /// `x-ratelimit-limit`.
    pub limit: u64,
    /// `x-ratelimit-remaining`.
    pub remaining: u64,
    /// `x-ratelimit-reset`.
    pub reset: u64,
}

impl XRateLimit {
    /// The three headers, in Envoy's order.
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            ("x-ratelimit-limit", self.limit.to_string()),
            ("x-ratelimit-remaining", self.remaining.to_string()),
            ("x-ratelimit-reset", self.reset.to_string()),
        ]
    }
}

/// A counter under `<stat_prefix>.http_local_rate_limit.`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    /// `enabled`.
    Enabled,
    /// `ok`.
    Ok,
    /// `rate_limited`.
    RateLimited,
    /// `enforced`.
    Enforced,
}

impl Stat {
    /// The full counter name.
    pub fn name(self, stat_prefix: &str) -> String {
        let s = match self {
            Stat::Enabled => "enabled",
            Stat::Ok => "ok",
            Stat::RateLimited => "rate_limited",
            Stat::Enforced => "enforced",
        };
        format!("{stat_prefix}.http_local_rate_limit.{s}")
    }
}

/// What to do with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The filter is not enabled for this request: nothing happens.
    Disabled,
    /// Forward it.
    Allowed,
    /// Limited but not enforced: forward it with
    /// `request_headers_to_add_when_not_enforced`.
    LimitedNotEnforced,
    /// Answer locally: `status`, body `local_rate_limited`,
    /// `response_headers_to_add`; for gRPC, this `grpc-status`.
    Limited {
        /// HTTP status.
        status: u16,
        /// `grpc-status` for a gRPC request (14 UNAVAILABLE, or 8
        /// RESOURCE_EXHAUSTED with `rate_limited_as_resource_exhausted`).
        grpc_status: u32,
    },
}

/// A decision, its counters and the `x-ratelimit-*` values to add to the
/// response (when enabled and a bucket decided).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What to do.
    pub decision: Decision,
    /// Counters to bump.
    pub stats: Vec<Stat>,
    /// Response headers' values.
    pub x_ratelimit: Option<XRateLimit>,
}

/// One limiter: per filter (shared by a worker's requests) or, with
/// `local_rate_limit_per_downstream_connection`, per connection.
#[derive(Debug, Clone)]
pub struct Limiter {
    default: Option<Bucket>,
    always_deny_default: bool,
    descriptors: Vec<(Vec<DescriptorEntry>, Bucket)>,
}

impl Limiter {
    /// Full buckets at `now`.
    pub fn new(cfg: &LocalRateLimit, now: Instant) -> Limiter {
        let (default, always_deny_default) = match &cfg.token_bucket {
            Some(tb) if tb.fill_interval > Duration::ZERO && tb.max_tokens == 0 => (None, true),
            Some(tb) if tb.fill_interval > Duration::ZERO => (Some(Bucket::new(tb, now)), false),
            _ => (None, false),
        };
        Limiter {
            default,
            always_deny_default,
            descriptors: cfg
                .descriptors
                .iter()
                .map(|d| (d.entries.clone(), Bucket::new(&d.token_bucket, now)))
                .collect(),
        }
    }

    /// Envoy's `requestAllowed`: which bucket decided (an index: `None` is
    /// the default bucket) and whether the request passes.
    fn allowed(
        &mut self,
        request: &[Vec<DescriptorEntry>],
        cfg: &LocalRateLimit,
        now: Instant,
    ) -> (bool, Option<BucketRef>) {
        let mut matched: Vec<usize> = request
            .iter()
            .filter_map(|r| self.descriptors.iter().position(|(e, _)| e == r))
            .collect();
        matched.sort_by(|a, b| {
            self.descriptors[*a]
                .1
                .fill_rate()
                .total_cmp(&self.descriptors[*b].1.fill_rate())
        });
        for &i in &matched {
            if !self.descriptors[i].1.consume(1, now) {
                return (false, Some(BucketRef::Descriptor(i)));
            }
        }
        let first = matched.first().map(|i| BucketRef::Descriptor(*i));
        if !matched.is_empty() && !cfg.always_consume_default_token_bucket {
            return (true, first);
        }
        match &mut self.default {
            None if self.always_deny_default => (false, None),
            None => (true, first),
            Some(b) => {
                if b.consume(1, now) {
                    (true, first.or(Some(BucketRef::Default)))
                } else {
                    (false, Some(BucketRef::Default))
                }
            }
        }
    }

    fn bucket(&mut self, r: BucketRef) -> Option<&mut Bucket> {
        match r {
            BucketRef::Default => self.default.as_mut(),
            BucketRef::Descriptor(i) => self.descriptors.get_mut(i).map(|(_, b)| b),
        }
    }

    /// Decides one request. `descriptors` are the request's descriptors
    /// (generated by the route's rate limit actions; empty when there are
    /// none). The caller answers a limited gRPC request with the
    /// decision's `grpc_status`.
    pub fn check(
        &mut self,
        cfg: &LocalRateLimit,
        descriptors: &[Vec<DescriptorEntry>],
        now: Instant,
        random: &mut dyn Random,
    ) -> Outcome {
        let enabled = cfg
            .filter_enabled
            .as_ref()
            .is_some_and(|f| f.default_value.hit(random.random()));
        if !enabled {
            return Outcome {
                decision: Decision::Disabled,
                stats: Vec::new(),
                x_ratelimit: None,
            };
        }
        let mut stats = vec![Stat::Enabled];
        let (ok, which) = self.allowed(descriptors, cfg, now);
        let x_ratelimit = match which {
            Some(r) if cfg.x_ratelimit_headers => self.bucket(r).map(|b| XRateLimit {
                limit: b.limit(),
                remaining: b.remaining(now),
                reset: b.reset_seconds(now),
            }),
            _ => None,
        };
        if ok {
            stats.push(Stat::Ok);
            return Outcome {
                decision: Decision::Allowed,
                stats,
                x_ratelimit,
            };
        }
        stats.push(Stat::RateLimited);
        let enforced = cfg
            .filter_enforced
            .as_ref()
            .is_some_and(|f| f.default_value.hit(random.random()));
        if !enforced {
            return Outcome {
                decision: Decision::LimitedNotEnforced,
                stats,
                x_ratelimit,
            };
        }
        stats.push(Stat::Enforced);
        Outcome {
            decision: Decision::Limited {
                status: cfg.status,
                grpc_status: if cfg.rate_limited_as_resource_exhausted {
                    8
                } else {
                    14
                },
            },
            stats,
            x_ratelimit,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum BucketRef {
    Default,
    Descriptor(usize),
}

/// The body of a limited answer.
pub const LIMITED_BODY: &str = "local_rate_limited";

#[cfg(test)]
mod tests {
    use super::*;
    use nuncio_config::filters::{decode_filter_str, HttpFilterConfig};

    struct Zero;
    impl Random for Zero {
        fn random(&mut self) -> u64 {
            0
        }
    }

    fn cfg(extra: &str) -> LocalRateLimit {
        let text = format!(
            "\"@type\": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit\nstat_prefix: myrl\nfilter_enabled: {{default_value: {{numerator: 100}}}}\nfilter_enforced: {{default_value: {{numerator: 100}}}}\nenable_x_ratelimit_headers: DRAFT_VERSION_03\n{extra}"
        );
        match decode_filter_str("rl.yaml", &text).unwrap() {
            HttpFilterConfig::LocalRateLimit(c) => *c,
            other => panic!("{other:?}"),
        }
    }

    fn x(limit: u64, remaining: u64, reset: u64) -> Option<XRateLimit> {
        Some(XRateLimit {
            limit,
            remaining,
            reset,
        })
    }

    #[test]
    fn the_sequence_envoy_answered() {
        let c = cfg("token_bucket: {max_tokens: 3, tokens_per_fill: 1, fill_interval: 2s}");
        let t0 = Instant::now();
        let mut l = Limiter::new(&c, t0);
        let mut at = |ms: u64| l.check(&c, &[], t0 + Duration::from_millis(ms), &mut Zero);
        let r = at(0);
        assert_eq!((r.decision, r.x_ratelimit), (Decision::Allowed, x(3, 2, 0)));
        assert_eq!(at(1).x_ratelimit, x(3, 1, 0));
        assert_eq!(at(2).x_ratelimit, x(3, 0, 2));
        let limited = at(3);
        assert_eq!(
            limited.decision,
            Decision::Limited {
                status: 429,
                grpc_status: 14
            }
        );
        assert_eq!(limited.x_ratelimit, x(3, 0, 2));
        assert_eq!(
            limited.stats,
            vec![Stat::Enabled, Stat::RateLimited, Stat::Enforced]
        );
        assert_eq!(
            at(4).decision,
            Decision::Limited {
                status: 429,
                grpc_status: 14
            }
        );
        let later = at(1200);
        assert_eq!(
            (later.decision.clone(), later.x_ratelimit),
            (
                Decision::Limited {
                    status: 429,
                    grpc_status: 14
                },
                x(3, 0, 1)
            )
        );
        let passes = at(2100);
        assert_eq!(
            (passes.decision, passes.x_ratelimit),
            (Decision::Allowed, x(3, 0, 2))
        );
        assert_eq!(passes.stats, vec![Stat::Enabled, Stat::Ok]);
        assert!(matches!(at(2101).decision, Decision::Limited { .. }));
        assert_eq!(
            Stat::RateLimited.name("myrl"),
            "myrl.http_local_rate_limit.rate_limited"
        );
    }

    #[test]
    fn refill_is_continuous_and_capped() {
        let c = cfg("token_bucket: {max_tokens: 2, tokens_per_fill: 2, fill_interval: 1s}");
        let t0 = Instant::now();
        let mut l = Limiter::new(&c, t0);
        let ok = |l: &mut Limiter, ms: u64| {
            l.check(&c, &[], t0 + Duration::from_millis(ms), &mut Zero)
                .decision
                == Decision::Allowed
        };
        assert!(ok(&mut l, 0) && ok(&mut l, 0) && !ok(&mut l, 0));
        assert!(ok(&mut l, 500), "half an interval refills half the tokens");
        assert!(!ok(&mut l, 500));
        assert!(
            ok(&mut l, 60_000) && ok(&mut l, 60_000) && !ok(&mut l, 60_000),
            "capped at max_tokens"
        );
    }

    #[test]
    fn enabled_enforced_and_status() {
        let t0 = Instant::now();
        let off = cfg("token_bucket: {max_tokens: 1, fill_interval: 1s}\nfilter_enabled: {default_value: {numerator: 0}}").clone();
        let mut off = off;
        off.filter_enabled = None;
        let mut l = Limiter::new(&off, t0);
        let r = l.check(&off, &[], t0, &mut Zero);
        assert_eq!((r.decision, r.stats.len()), (Decision::Disabled, 0));
        let mut shadow = cfg("token_bucket: {max_tokens: 1, fill_interval: 1s}\nstatus: {code: 503}\nrate_limited_as_resource_exhausted: true");
        let mut l = Limiter::new(&shadow, t0);
        l.check(&shadow, &[], t0, &mut Zero);
        assert_eq!(
            l.check(&shadow, &[], t0, &mut Zero).decision,
            Decision::Limited {
                status: 503,
                grpc_status: 8
            }
        );
        shadow.filter_enforced = None;
        let r = l.check(&shadow, &[], t0, &mut Zero);
        assert_eq!(r.decision, Decision::LimitedNotEnforced);
        assert_eq!(r.stats, vec![Stat::Enabled, Stat::RateLimited]);
        let deny = cfg("token_bucket: {max_tokens: 0, fill_interval: 1s}");
        let mut l = Limiter::new(&deny, t0);
        let r = l.check(&deny, &[], t0, &mut Zero);
        assert!(matches!(r.decision, Decision::Limited { .. }));
        assert_eq!(r.x_ratelimit, None);
        let none = cfg("");
        let mut l = Limiter::new(&none, t0);
        assert_eq!(
            l.check(&none, &[], t0, &mut Zero).decision,
            Decision::Allowed
        );
    }

    #[test]
    fn descriptors() {
        let c = cfg(
            "token_bucket: {max_tokens: 10, fill_interval: 1s}\ndescriptors:\n- entries: [{key: client, value: a}]\n  token_bucket: {max_tokens: 1, fill_interval: 60s}\n- entries: [{key: path, value: /x}]\n  token_bucket: {max_tokens: 5, fill_interval: 1s}\n",
        );
        let t0 = Instant::now();
        let mut l = Limiter::new(&c, t0);
        let e = |k: &str, v: &str| {
            vec![DescriptorEntry {
                key: k.into(),
                value: v.into(),
            }]
        };
        let a = [e("client", "a")];
        let r = l.check(&c, &a, t0, &mut Zero);
        assert_eq!(
            (r.decision, r.x_ratelimit),
            (Decision::Allowed, x(1, 0, 60))
        );
        let r = l.check(&c, &a, t0, &mut Zero);
        assert!(matches!(r.decision, Decision::Limited { .. }));
        assert_eq!(r.x_ratelimit, x(1, 0, 60));
        // Another client takes the default bucket (9 left after the first
        // request consumed one: always_consume_default_token_bucket).
        let r = l.check(&c, &[e("client", "b")], t0, &mut Zero);
        assert_eq!(r.x_ratelimit, x(10, 8, 0));
        // The slowest-filling matched descriptor is consumed first.
        let both = [e("path", "/x"), e("client", "a")];
        let r = l.check(&c, &both, t0, &mut Zero);
        assert_eq!(r.x_ratelimit, x(1, 0, 60));
        let mut no_default = c.clone();
        no_default.always_consume_default_token_bucket = false;
        let mut l = Limiter::new(&no_default, t0);
        for _ in 0..20 {
            l.check(&no_default, &[e("path", "/x")], t0, &mut Zero);
        }
        let r = l.check(&no_default, &[], t0, &mut Zero);
        assert_eq!(
            r.x_ratelimit,
            x(10, 9, 0),
            "descriptor requests left the default bucket alone"
        );
    }
}
