//! `/clusters`: every cluster and its hosts with their counters, in Envoy's
//! `cluster::host::stat::value` text form or as JSON.

use std::fmt::Write;

use nuncio_cluster::{ClusterManager, Host};

fn host_stats(h: &Host) -> [(&'static str, i64); 8] {
    [
        ("cx_active", h.conn_stats.host_cx_active.get()),
        (
            "cx_connect_fail",
            h.conn_stats.host_cx_connect_fail.get() as i64,
        ),
        ("cx_total", h.conn_stats.host_cx_total.get() as i64),
        ("rq_active", h.stats.rq_active.get()),
        ("rq_error", h.stats.rq_error.get() as i64),
        ("rq_success", h.stats.rq_success.get() as i64),
        ("rq_timeout", h.stats.rq_timeout.get() as i64),
        ("rq_total", h.stats.rq_total.get() as i64),
    ]
}

/// The text form.
pub fn text(cm: &ClusterManager) -> String {
    let mut out = String::new();
    for c in cm.clusters() {
        let n = c.name();
        let _ = writeln!(out, "{n}::observability_name::{n}");
        let _ = writeln!(out, "{n}::added_via_api::false");
        for h in c.hosts().iter() {
            let a = h.addr;
            for (k, v) in host_stats(h) {
                let _ = writeln!(out, "{n}::{a}::{k}::{v}");
            }
            let _ = writeln!(out, "{n}::{a}::hostname::{}", h.hostname);
            let health = if h.healthy() {
                "healthy"
            } else {
                "/failed_active_hc"
            };
            let _ = writeln!(out, "{n}::{a}::health_flags::{health}");
            let _ = writeln!(out, "{n}::{a}::weight::1");
        }
    }
    out
}

/// The JSON form (`?format=json`).
pub fn json(cm: &ClusterManager) -> serde_json::Value {
    let statuses: Vec<serde_json::Value> = cm
        .clusters()
        .iter()
        .map(|c| {
            let hosts: Vec<serde_json::Value> = c
                .hosts()
                .iter()
                .map(|h| {
                    let stats: Vec<serde_json::Value> = host_stats(h)
                        .iter()
                        .map(|(k, v)| {
                            let ty = if k.ends_with("active") { "GAUGE" } else { "COUNTER" };
                            serde_json::json!({"name": k, "value": v.to_string(), "type": ty})
                        })
                        .collect();
                    serde_json::json!({
                        "address": {"socket_address": {"address": h.addr.ip().to_string(), "port_value": h.addr.port()}},
                        "hostname": h.hostname,
                        "stats": stats,
                        "health_status": {"eds_health_status": if h.healthy() { "HEALTHY" } else { "UNHEALTHY" }},
                        "weight": 1,
                    })
                })
                .collect();
            serde_json::json!({"name": c.name(), "added_via_api": false, "host_statuses": hosts})
        })
        .collect();
    serde_json::json!({ "cluster_statuses": statuses })
}
