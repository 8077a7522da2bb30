//! Renders the store as Envoy's admin does: `/stats` text, `?format=json`
//! and `/stats/prometheus`.

use std::fmt::Write;

use crate::histogram::{cumulative_buckets, quantile, BUCKETS};
use crate::{Entry, Histogram, Metric, Store};

/// Which stats to show.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Only names containing this (a `^` prefix anchors at the start, a `$`
    /// suffix at the end; Envoy takes a full regex here).
    pub pattern: Option<String>,
    /// Only stats that were ever updated (`?usedonly`).
    pub used_only: bool,
}

impl Filter {
    fn keep(&self, e: &Entry) -> bool {
        if self.used_only && !used(e) {
            return false;
        }
        match self.pattern.as_deref() {
            None | Some("") => true,
            Some(p) => {
                let (start, p) = p.strip_prefix('^').map_or((false, p), |r| (true, r));
                let (end, p) = p.strip_suffix('$').map_or((false, p), |r| (true, r));
                let p = p.replace(".*", "");
                match (start, end) {
                    (true, true) => e.name == p,
                    (true, false) => e.name.starts_with(&p),
                    (false, true) => e.name.ends_with(&p),
                    (false, false) => e.name.contains(&p),
                }
            }
        }
    }
}

fn used(e: &Entry) -> bool {
    match &e.metric {
        Metric::Counter(c) => c.get() > 0,
        Metric::Gauge(g) => g.get() != 0,
        Metric::Histogram(h) => h.count() > 0,
    }
}

const QUANTILES: [(f64, &str); 10] = [
    (0.0, "P0"),
    (0.25, "P25"),
    (0.5, "P50"),
    (0.75, "P75"),
    (0.9, "P90"),
    (0.95, "P95"),
    (0.99, "P99"),
    (0.995, "P99.5"),
    (0.999, "P99.9"),
    (1.0, "P100"),
];

/// Envoy's `supported_quantiles`, in percent.
const SUPPORTED: [f64; 10] = [0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 100.0];

/// A number as Envoy prints it: the shortest form that reads back the
/// same, whole numbers without a fraction, `nan` for none.
fn num(v: Option<f64>) -> String {
    match v {
        None => "nan".into(),
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
        Some(x) => format!("{x}"),
    }
}

/// A JSON number as Envoy writes it (whole numbers without a fraction).
fn json_num(v: Option<f64>) -> serde_json::Value {
    match v {
        None => serde_json::Value::Null,
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => serde_json::json!(x as i64),
        Some(x) => serde_json::json!(x),
    }
}

/// (interval, cumulative) quantiles of a histogram, `None` where there is
/// no sample.
fn quantiles(h: &Histogram) -> Vec<(Option<f64>, Option<f64>)> {
    let (interval, all) = (h.interval_bins(), h.bins());
    QUANTILES
        .iter()
        .map(|(q, _)| (quantile(&interval, *q), quantile(&all, *q)))
        .collect()
}

/// Envoy's text format: `name: value` for counters and gauges sorted by
/// name, then each histogram as `name: P0(interval,cumulative) ...` (or
/// `No recorded values`).
pub fn render_text(store: &Store, f: &Filter) -> String {
    let entries = store.snapshot();
    let mut out = String::new();
    for e in entries.iter().filter(|e| f.keep(e)) {
        match &e.metric {
            Metric::Counter(c) => {
                let _ = writeln!(out, "{}: {}", e.name, c.get());
            }
            Metric::Gauge(g) => {
                let _ = writeln!(out, "{}: {}", e.name, g.get());
            }
            Metric::Histogram(_) => {}
        }
    }
    for e in entries.iter().filter(|e| f.keep(e)) {
        if let Metric::Histogram(h) = &e.metric {
            let _ = write!(out, "{}:", e.name);
            if h.count() == 0 {
                let _ = writeln!(out, " No recorded values");
                continue;
            }
            for ((_, name), (i, c)) in QUANTILES.iter().zip(quantiles(h)) {
                let _ = write!(out, " {name}({},{})", num(i), num(c));
            }
            out.push('\n');
        }
    }
    out
}

/// Envoy's `?format=json`: `{"stats": [{"name", "value"}, ...,
/// {"histograms": {"supported_quantiles": [...], "computed_quantiles":
/// [{"name", "values": [{"cumulative", "interval"}, ...]}]}}]}`; the
/// histograms element only when a histogram is shown.
pub fn render_json(store: &Store, f: &Filter) -> serde_json::Value {
    let mut stats = Vec::new();
    let mut hists = Vec::new();
    for e in store.snapshot().iter().filter(|e| f.keep(e)) {
        match &e.metric {
            Metric::Counter(c) => stats.push(serde_json::json!({"name": e.name, "value": c.get()})),
            Metric::Gauge(g) => stats.push(serde_json::json!({"name": e.name, "value": g.get()})),
            Metric::Histogram(h) => hists.push(serde_json::json!({
                "name": e.name,
                "values": quantiles(h)
                    .into_iter()
                    .map(|(i, c)| serde_json::json!({"cumulative": json_num(c), "interval": json_num(i)}))
                    .collect::<Vec<_>>(),
            })),
        }
    }
    if !hists.is_empty() {
        stats.push(serde_json::json!({"histograms": {
            "supported_quantiles": SUPPORTED.iter().map(|q| json_num(Some(*q))).collect::<Vec<_>>(),
            "computed_quantiles": hists,
        }}));
    }
    serde_json::json!({ "stats": stats })
}

/// `{k="v",...}` (Envoy writes `{}` for a stat without tags).
fn labels(tags: &[(String, String)], extra: Option<(&str, &str)>) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in tags.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape(v));
    }
    if let Some((k, v)) = extra {
        if !tags.is_empty() {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{v}\"");
    }
    out.push('}');
    out
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A Prometheus `le` bound as Envoy writes it (`0.5`, `1`, `3600000`).
fn bound(b: f64) -> String {
    num(Some(b))
}

/// Prometheus text exposition as Envoy's `/stats/prometheus` writes it:
/// counters, then gauges, then histograms (`_bucket{le=...}`, `_sum`,
/// `_count`), each kind sorted by tag-extracted name, `envoy_` names and
/// Envoy's tags as labels.
pub fn render_prometheus(store: &Store, f: &Filter) -> String {
    let mut entries: Vec<Entry> = store.snapshot().into_iter().filter(|e| f.keep(e)).collect();
    let rank = |m: &Metric| match m {
        Metric::Counter(_) => 0,
        Metric::Gauge(_) => 1,
        Metric::Histogram(_) => 2,
    };
    entries.sort_by(|a, b| {
        rank(&a.metric)
            .cmp(&rank(&b.metric))
            .then(a.extracted.cmp(&b.extracted))
            .then(a.name.cmp(&b.name))
    });
    let mut out = String::new();
    let mut last = String::new();
    for e in &entries {
        let ty = match e.metric {
            Metric::Counter(_) => "counter",
            Metric::Gauge(_) => "gauge",
            Metric::Histogram(_) => "histogram",
        };
        if e.prom_name != last {
            let _ = writeln!(out, "# TYPE {} {ty}", e.prom_name);
            last = e.prom_name.clone();
        }
        match &e.metric {
            Metric::Counter(c) => {
                let _ = writeln!(out, "{}{} {}", e.prom_name, labels(&e.tags, None), c.get());
            }
            Metric::Gauge(g) => {
                let _ = writeln!(out, "{}{} {}", e.prom_name, labels(&e.tags, None), g.get());
            }
            Metric::Histogram(h) => {
                let (cum, total) = cumulative_buckets(&h.bins());
                for (b, n) in BUCKETS.iter().zip(cum) {
                    let _ = writeln!(
                        out,
                        "{}_bucket{} {n}",
                        e.prom_name,
                        labels(&e.tags, Some(("le", &bound(*b))))
                    );
                }
                let _ = writeln!(
                    out,
                    "{}_bucket{} {total}",
                    e.prom_name,
                    labels(&e.tags, Some(("le", "+Inf")))
                );
                let _ = writeln!(
                    out,
                    "{}_sum{} {}",
                    e.prom_name,
                    labels(&e.tags, None),
                    h.sum()
                );
                let _ = writeln!(
                    out,
                    "{}_count{} {total}",
                    e.prom_name,
                    labels(&e.tags, None)
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn text_and_filters() {
        let s = Store::new();
        let h = s.scope(
            "http.ingress_http.",
            "http.",
            &[("envoy_http_conn_manager_prefix", "ingress_http")],
        );
        h.counter("downstream_rq_total").add(3);
        h.counter("downstream_rq_idle");
        h.histogram("downstream_rq_time")
            .record(Duration::from_millis(2));
        let t = render_text(&s, &Filter::default());
        assert!(
            t.contains("http.ingress_http.downstream_rq_total: 3\n"),
            "{t}"
        );
        // Before a flush there is no interval: Envoy prints `nan` for it.
        assert!(
            t.contains("http.ingress_http.downstream_rq_time: P0(nan,2.05) P25(nan,2.05)"),
            "{t}"
        );
        let used = render_text(
            &s,
            &Filter {
                used_only: true,
                pattern: None,
            },
        );
        assert!(!used.contains("downstream_rq_idle"), "{used}");
        let f = render_text(
            &s,
            &Filter {
                pattern: Some("rq_total$".into()),
                used_only: false,
            },
        );
        assert_eq!(f, "http.ingress_http.downstream_rq_total: 3\n");
        let j = render_json(&s, &Filter::default());
        assert_eq!(j["stats"][1]["value"], 3);
    }

    #[test]
    fn no_recorded_values() {
        let s = Store::new();
        s.root().histogram("server.initialization_time_ms");
        let t = render_text(&s, &Filter::default());
        assert_eq!(t, "server.initialization_time_ms: No recorded values\n");
        let j = render_json(&s, &Filter::default());
        assert_eq!(
            j["stats"][0]["histograms"]["computed_quantiles"][0]["values"][0],
            serde_json::json!({"cumulative": null, "interval": null})
        );
        let unused = Filter {
            used_only: true,
            pattern: None,
        };
        assert_eq!(render_json(&s, &unused), serde_json::json!({"stats": []}));
    }

    /// The shape of Envoy 1.40's `/stats?format=json` histograms.
    #[test]
    fn json_histograms_in_envoys_shape() {
        let s = Store::new();
        let c = s.scope("cluster.b.", "cluster.", &[("envoy_cluster_name", "b")]);
        let h = c.histogram("upstream_cx_length_ms");
        h.record_value(2050);
        h.flush();
        h.record_value(0);
        let j = render_json(&s, &Filter::default());
        let hs = &j["stats"][0]["histograms"];
        assert_eq!(
            hs["supported_quantiles"],
            serde_json::json!([0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100])
        );
        let q = &hs["computed_quantiles"][0];
        assert_eq!(q["name"], "cluster.b.upstream_cx_length_ms");
        assert_eq!(q["values"].as_array().map(Vec::len), Some(10));
        assert_eq!(
            q["values"][0],
            serde_json::json!({"cumulative": 0, "interval": 2050})
        );
        assert_eq!(
            q["values"][9],
            serde_json::json!({"cumulative": 2050, "interval": 2050})
        );
        let t = render_text(&s, &Filter::default());
        assert!(t.contains("P0(2050,0) "), "{t}");
    }

    /// Envoy 1.40's `/stats/prometheus` layout: counters, gauges, then
    /// histograms; `{}` on stats without tags; `_bucket`, `_sum`, `_count`.
    #[test]
    fn prometheus_as_envoy_prints_it() {
        let s = Store::new();
        s.root().gauge("server.live").set(1);
        let h = s.scope(
            "http.ingress_http.",
            "http.",
            &[("envoy_http_conn_manager_prefix", "ingress_http")],
        );
        h.counter("downstream_rq_total").add(3);
        let t = h.histogram("downstream_rq_time");
        t.record(Duration::from_micros(300));
        t.record(Duration::from_millis(3));
        s.root().counter("cluster_manager.cluster_added").inc();
        let c = s.scope("cluster.b.", "cluster.", &[("envoy_cluster_name", "b")]);
        c.counter("upstream_rq_total").inc();
        let p = render_prometheus(&s, &Filter::default());
        let types: Vec<&str> = p.lines().filter(|l| l.starts_with("# TYPE")).collect();
        assert_eq!(
            types,
            [
                // `cluster.upstream...` sorts before `cluster_manager...`.
                "# TYPE envoy_cluster_upstream_rq_total counter",
                "# TYPE envoy_cluster_manager_cluster_added counter",
                "# TYPE envoy_http_downstream_rq_total counter",
                "# TYPE envoy_server_live gauge",
                "# TYPE envoy_http_downstream_rq_time histogram",
            ]
        );
        assert!(p.contains("envoy_server_live{} 1\n"), "{p}");
        let pre = "envoy_http_downstream_rq_time";
        let l = "envoy_http_conn_manager_prefix=\"ingress_http\"";
        for line in [
            format!("{pre}_bucket{{{l},le=\"0.5\"}} 1"),
            format!("{pre}_bucket{{{l},le=\"1\"}} 1"),
            format!("{pre}_bucket{{{l},le=\"5\"}} 2"),
            format!("{pre}_bucket{{{l},le=\"3600000\"}} 2"),
            format!("{pre}_bucket{{{l},le=\"+Inf\"}} 2"),
            format!("{pre}_sum{{{l}}} 3"),
            format!("{pre}_count{{{l}}} 2"),
        ] {
            assert!(p.contains(&format!("{line}\n")), "{line} not in {p}");
        }
    }
}
