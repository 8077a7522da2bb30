//! Stats with Envoy's names. Every stat is created once (when its cluster,
//! listener or connection manager is built) and then updated with one
//! relaxed atomic operation: nothing on the request path looks a name up.
//!
//! A stat knows its full Envoy name (`cluster.myservice.upstream_rq_2xx`) and
//! its Prometheus form (`envoy_cluster_upstream_rq_xx` with labels
//! `envoy_cluster_name="myservice"`, `envoy_response_code_class="2"`), taken
//! from the tags given at creation rather than regex-extracted later.

#![forbid(unsafe_code)]

mod codec;
mod histogram;
pub mod io;
mod render;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

pub use codec::{admin_listener_scope, listener_scope, Http2Stats};
pub use histogram::Histogram;
pub use render::{render_json, render_prometheus, render_text, Filter};

/// A monotonically increasing count.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// A value that goes up and down.
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    /// Adds `n` (which may be negative).
    #[inline]
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Increments a gauge now and decrements it when dropped.
#[derive(Debug)]
pub struct GaugeGuard(Gauge);

impl GaugeGuard {
    /// Increments `g` until the guard is dropped.
    pub fn new(g: &Gauge) -> Self {
        g.inc();
        GaugeGuard(g.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Metric {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

/// One registered stat.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// Envoy's name.
    pub name: String,
    /// The name with its tag values taken out (`cluster.upstream_rq_xx`):
    /// Envoy's "tag-extracted name", by which its Prometheus output sorts.
    pub extracted: String,
    /// Prometheus metric name (with `envoy_`).
    pub prom_name: String,
    /// Prometheus labels.
    pub tags: Vec<(String, String)>,
    pub metric: Metric,
}

/// The registry of every stat, for rendering.
#[derive(Debug, Default)]
pub struct Store {
    entries: Mutex<Vec<Entry>>,
}

impl Store {
    /// An empty store.
    pub fn new() -> Arc<Store> {
        Arc::new(Store::default())
    }

    /// A scope whose stats are named `<prefix>.<name>` and carry `tags`.
    /// `prom_prefix` is the prefix with the tag values taken out (for
    /// `cluster.myservice.` it is `cluster.`).
    pub fn scope(
        self: &Arc<Self>,
        prefix: &str,
        prom_prefix: &str,
        tags: &[(&str, &str)],
    ) -> Scope {
        Scope {
            store: self.clone(),
            prefix: prefix.to_string(),
            prom_prefix: prom_prefix.to_string(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The root scope (no prefix, no tags).
    pub fn root(self: &Arc<Self>) -> Scope {
        self.scope("", "", &[])
    }

    fn register(&self, e: Entry) -> Metric {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = entries.iter().find(|x| x.name == e.name) {
            return existing.metric.clone();
        }
        let m = e.metric.clone();
        entries.push(e);
        m
    }

    pub(crate) fn snapshot(&self) -> Vec<Entry> {
        let mut v = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Closes a flush interval of every histogram (Envoy's
    /// `stats_flush_interval`): their `interval` quantiles then show the
    /// samples since the previous flush.
    pub fn flush(&self) {
        let hists: Vec<Histogram> = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|e| match &e.metric {
                Metric::Histogram(h) => Some(h.clone()),
                _ => None,
            })
            .collect();
        for h in hists {
            h.flush();
        }
    }

    /// Sets every counter back to zero (admin `/reset_counters`).
    pub fn reset_counters(&self) {
        for e in self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            if let Metric::Counter(c) = &e.metric {
                c.reset();
            }
        }
    }

    /// The value of a counter or gauge by Envoy name (tests, admin).
    pub fn value(&self, name: &str) -> Option<i64> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| match &e.metric {
                Metric::Counter(c) => Some(c.get() as i64),
                Metric::Gauge(g) => Some(g.get()),
                Metric::Histogram(_) => None,
            })
    }
}

/// A naming scope: `cluster.<name>.`, `http.<prefix>.`, `listener.<addr>.`.
#[derive(Clone, Debug)]
pub struct Scope {
    store: Arc<Store>,
    prefix: String,
    prom_prefix: String,
    tags: Vec<(String, String)>,
}

/// Prometheus metric names keep only `[a-zA-Z0-9_]`.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Scope {
    fn entry(
        &self,
        name: &str,
        prom_name: &str,
        extra: &[(&str, String)],
        metric: Metric,
    ) -> Metric {
        // Envoy lists a stat's own tag (a response code) before its
        // scope's (cluster, connection manager, listener).
        let mut tags: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        tags.extend(self.tags.iter().cloned());
        let extracted = format!("{}{prom_name}", self.prom_prefix);
        self.store.register(Entry {
            name: format!("{}{name}", self.prefix),
            prom_name: format!("envoy_{}", sanitize(&extracted)),
            extracted,
            tags,
            metric,
        })
    }

    /// A counter named `<prefix><name>`.
    pub fn counter(&self, name: &str) -> Counter {
        match self.entry(name, name, &[], Metric::Counter(Counter::default())) {
            Metric::Counter(c) => c,
            _ => Counter::default(),
        }
    }

    /// A counter with an extra tag: `name` is Envoy's, `prom_name` the
    /// name with the tag value taken out.
    pub fn counter_tagged(&self, name: &str, prom_name: &str, tag: (&str, String)) -> Counter {
        match self.entry(name, prom_name, &[tag], Metric::Counter(Counter::default())) {
            Metric::Counter(c) => c,
            _ => Counter::default(),
        }
    }

    /// A gauge named `<prefix><name>`.
    pub fn gauge(&self, name: &str) -> Gauge {
        match self.entry(name, name, &[], Metric::Gauge(Gauge::default())) {
            Metric::Gauge(g) => g,
            _ => Gauge::default(),
        }
    }

    /// A scope below this one: `<prefix><sub>` for names, `<prom
    /// prefix><prom_sub>` for the tag-extracted name, with `tags` added to
    /// this scope's (Envoy's `listener.<addr>.http.<prefix>.`,
    /// `cluster.<name>.external.`).
    pub fn sub(&self, sub: &str, prom_sub: &str, tags: &[(&str, &str)]) -> Scope {
        let mut all: Vec<(String, String)> = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.extend(self.tags.iter().cloned());
        Scope {
            store: self.store.clone(),
            prefix: format!("{}{sub}", self.prefix),
            prom_prefix: format!("{}{prom_sub}", self.prom_prefix),
            tags: all,
        }
    }

    /// The store this scope registers in.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// A histogram named `<prefix><name>`.
    pub fn histogram(&self, name: &str) -> Histogram {
        match self.entry(name, name, &[], Metric::Histogram(Histogram::default())) {
            Metric::Histogram(h) => h,
            _ => Histogram::default(),
        }
    }
}

/// Response-code stats: `<base>_<N>xx` and `<base>_completed` always,
/// `<base>_<code>` on first use unless classes-only; mirrors (Envoy's
/// `external.upstream_rq_*`, `listener.<addr>.http.<prefix>.downstream_rq_*`)
/// count the same responses under their own names.
#[derive(Debug)]
pub struct CodeStats {
    scope: Scope,
    base: &'static str,
    classes: [Counter; 5],
    completed: Counter,
    codes: Option<Box<[OnceLock<Counter>]>>,
    mirrors: Vec<CodeStats>,
}

impl CodeStats {
    /// `<base>_1xx` .. `<base>_5xx`, `<base>_completed` and per-code
    /// counters in `scope` (Envoy's `upstream_rq_*`).
    pub fn new(scope: &Scope, base: &'static str) -> Self {
        let mut c = Self::classes_only(scope, base);
        c.codes = Some((100..600).map(|_| OnceLock::new()).collect());
        c
    }

    /// Like [`CodeStats::new`] without per-code counters (Envoy's
    /// `downstream_rq_*` has only the classes).
    pub fn classes_only(scope: &Scope, base: &'static str) -> Self {
        let classes = [1, 2, 3, 4, 5].map(|c| {
            scope.counter_tagged(
                &format!("{base}_{c}xx"),
                &format!("{base}_xx"),
                ("envoy_response_code_class", c.to_string()),
            )
        });
        CodeStats {
            scope: scope.clone(),
            base,
            classes,
            completed: scope.counter(&format!("{base}_completed")),
            codes: None,
            mirrors: Vec::new(),
        }
    }

    /// Counts every response in `mirror` too.
    pub fn with_mirror(mut self, mirror: CodeStats) -> Self {
        self.mirrors.push(mirror);
        self
    }

    /// Counts one response with `code`.
    pub fn record(&self, code: u16) {
        if !(100..600).contains(&code) {
            return;
        }
        self.classes[usize::from(code / 100 - 1)].inc();
        self.completed.inc();
        if let Some(codes) = &self.codes {
            codes[usize::from(code - 100)]
                .get_or_init(|| {
                    self.scope.counter_tagged(
                        &format!("{}_{code}", self.base),
                        self.base,
                        ("envoy_response_code", code.to_string()),
                    )
                })
                .inc();
        }
        for m in &self.mirrors {
            m.record(code);
        }
    }

    /// The count for a class (1..=5).
    pub fn class(&self, class: usize) -> u64 {
        self.classes
            .get(class.wrapping_sub(1))
            .map(Counter::get)
            .unwrap_or(0)
    }

    /// `<base>_completed`.
    pub fn completed(&self) -> u64 {
        self.completed.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags() {
        let s = Store::new();
        let c = s.scope("cluster.b.", "cluster.", &[("envoy_cluster_name", "b")]);
        let codes = CodeStats::new(&c, "upstream_rq");
        codes.record(200);
        codes.record(204);
        codes.record(503);
        assert_eq!(s.value("cluster.b.upstream_rq_completed"), Some(3));
        assert_eq!(s.value("cluster.b.upstream_rq_2xx"), Some(2));
        assert_eq!(s.value("cluster.b.upstream_rq_200"), Some(1));
        assert_eq!(s.value("cluster.b.upstream_rq_503"), Some(1));
        assert_eq!(s.value("cluster.b.upstream_rq_404"), None);
        let prom = render_prometheus(&s, &Filter::default());
        // Envoy's order: the stat's own tag first, then the scope's.
        assert!(prom.contains(
            "envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"2\",envoy_cluster_name=\"b\"} 2"
        ), "{prom}");
        assert!(
            prom.contains(
                "envoy_cluster_upstream_rq{envoy_response_code=\"503\",envoy_cluster_name=\"b\"} 1"
            ),
            "{prom}"
        );
    }

    #[test]
    fn mirrors_and_classes_only() {
        let s = Store::new();
        let c = s.scope("cluster.b.", "cluster.", &[("envoy_cluster_name", "b")]);
        let ext = CodeStats::new(&c.sub("external.", "external.", &[]), "upstream_rq");
        let up = CodeStats::new(&c, "upstream_rq").with_mirror(ext);
        up.record(404);
        assert_eq!(s.value("cluster.b.external.upstream_rq_404"), Some(1));
        assert_eq!(s.value("cluster.b.external.upstream_rq_completed"), Some(1));
        let h = s.scope(
            "http.in.",
            "http.",
            &[("envoy_http_conn_manager_prefix", "in")],
        );
        let l = s.scope(
            "listener.0.0.0.0_80.",
            "listener.",
            &[("envoy_listener_address", "0.0.0.0_80")],
        );
        let lh = l.sub(
            "http.in.",
            "http.",
            &[("envoy_http_conn_manager_prefix", "in")],
        );
        let down = CodeStats::classes_only(&h, "downstream_rq")
            .with_mirror(CodeStats::classes_only(&lh, "downstream_rq"));
        down.record(200);
        assert_eq!(s.value("http.in.downstream_rq_200"), None);
        assert_eq!(s.value("http.in.downstream_rq_completed"), Some(1));
        assert_eq!(
            s.value("listener.0.0.0.0_80.http.in.downstream_rq_2xx"),
            Some(1)
        );
        let prom = render_prometheus(&s, &Filter::default());
        assert!(prom.contains("envoy_listener_http_downstream_rq_xx{envoy_response_code_class=\"2\",envoy_http_conn_manager_prefix=\"in\",envoy_listener_address=\"0.0.0.0_80\"} 1"), "{prom}");
    }

    #[test]
    fn same_name_same_counter() {
        let s = Store::new();
        let a = s.root().counter("server.x");
        let b = s.root().counter("server.x");
        a.inc();
        assert_eq!(b.get(), 1);
        s.reset_counters();
        assert_eq!(a.get(), 0);
    }

    #[test]
    fn gauge_guard() {
        let s = Store::new();
        let g = s.root().gauge("g");
        {
            let _a = GaugeGuard::new(&g);
            assert_eq!(g.get(), 1);
        }
        assert_eq!(g.get(), 0);
    }
}
