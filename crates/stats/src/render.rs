//! Renders the store as Envoy's admin does: `/stats` text, `?format=json`
//! and `/stats/prometheus`.

use std::fmt::Write;

use crate::histogram::BUCKETS;
use crate::{Entry, Metric, Store};

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

fn fmt_q(v: Option<f64>) -> String {
    v.map(|x| {
        format!("{x:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    })
    .unwrap_or_else(|| "nan".into())
}

/// Envoy's text format: `name: value`, counters and gauges sorted by name,
/// then histograms as quantile summaries.
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
            for (q, name) in QUANTILES {
                let v = fmt_q(h.quantile(q));
                let _ = write!(out, " {name}({v},{v})");
            }
            out.push('\n');
        }
    }
    out
}

/// Envoy's `?format=json`: `{"stats": [{"name", "value"}, ...]}`.
pub fn render_json(store: &Store, f: &Filter) -> serde_json::Value {
    let mut stats = Vec::new();
    let mut hists = Vec::new();
    for e in store.snapshot().iter().filter(|e| f.keep(e)) {
        match &e.metric {
            Metric::Counter(c) => stats.push(serde_json::json!({"name": e.name, "value": c.get()})),
            Metric::Gauge(g) => stats.push(serde_json::json!({"name": e.name, "value": g.get()})),
            Metric::Histogram(h) => hists.push(serde_json::json!({
                "name": e.name,
                "values": QUANTILES.iter().map(|(q, _)| h.quantile(*q)).collect::<Vec<_>>(),
            })),
        }
    }
    stats.push(serde_json::json!({"histograms": {
        "supported_quantiles": QUANTILES.iter().map(|(q, _)| q * 100.0).collect::<Vec<_>>(),
        "computed_quantiles": hists,
    }}));
    serde_json::json!({ "stats": stats })
}

fn labels(tags: &[(String, String)], extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = tags
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus text exposition with Envoy's `envoy_` names and tags.
pub fn render_prometheus(store: &Store, f: &Filter) -> String {
    let mut entries: Vec<Entry> = store.snapshot().into_iter().filter(|e| f.keep(e)).collect();
    entries.sort_by(|a, b| a.prom_name.cmp(&b.prom_name).then(a.name.cmp(&b.name)));
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
                let counts = h.counts();
                let mut cum = 0;
                for (i, b) in BUCKETS.iter().enumerate() {
                    cum += counts[i];
                    let _ = writeln!(
                        out,
                        "{}_bucket{} {cum}",
                        e.prom_name,
                        labels(&e.tags, Some(("le", format!("{b}"))))
                    );
                }
                cum += counts[BUCKETS.len()];
                let _ = writeln!(
                    out,
                    "{}_bucket{} {cum}",
                    e.prom_name,
                    labels(&e.tags, Some(("le", "+Inf".into())))
                );
                let _ = writeln!(
                    out,
                    "{}_sum{} {}",
                    e.prom_name,
                    labels(&e.tags, None),
                    h.sum_ms()
                );
                let _ = writeln!(out, "{}_count{} {cum}", e.prom_name, labels(&e.tags, None));
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
        assert!(
            t.contains("http.ingress_http.downstream_rq_time: P0("),
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
        let p = render_prometheus(&s, &Filter::default());
        assert!(
            p.contains("# TYPE envoy_http_downstream_rq_total counter\n"),
            "{p}"
        );
        assert!(
            p.contains(
                "envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix=\"ingress_http\"} 3"
            ),
            "{p}"
        );
        assert!(p.contains("envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress_http\",le=\"5\"} 1"), "{p}");
        assert!(p.contains("envoy_http_downstream_rq_time_count{envoy_http_conn_manager_prefix=\"ingress_http\"} 1"), "{p}");
        let j = render_json(&s, &Filter::default());
        assert_eq!(j["stats"][1]["value"], 3);
    }
}
