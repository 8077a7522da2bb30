//! Envoy's HTTP/2 codec stats (`http2.*` for downstream connections,
//! `cluster.<name>.http2.*` for upstream ones), and the other families
//! Envoy always shows that nuncio registers so the same queries find them.

use crate::{Counter, Gauge, Histogram, Scope};

/// The HTTP/2 codec counters nuncio's codec (`crates/h2`) and flood guard
/// (`crates/h2flood`) observe; the rest of Envoy's family is registered
/// at 0 (see [`Http2Stats::new`]).
#[derive(Debug, Clone, Default)]
pub struct Http2Stats {
    /// `rx_reset`: RST_STREAM frames received.
    pub rx_reset: Counter,
    /// `tx_reset`: RST_STREAM frames sent.
    pub tx_reset: Counter,
    /// `goaway_sent`: GOAWAY frames sent.
    pub goaway_sent: Counter,
    /// `header_overflow`: header lists over the limit.
    pub header_overflow: Counter,
    /// `headers_cb_no_stream`: header blocks for no open stream.
    pub headers_cb_no_stream: Counter,
    /// `rx_messaging_error`: requests that broke RFC 9113 section 8.
    pub rx_messaging_error: Counter,
    /// `trailers`: trailers received on requests.
    pub trailers: Counter,
    /// `streams_active`: open streams.
    pub streams_active: Gauge,
    /// `pending_send_bytes`: response bytes waiting for flow-control window.
    pub pending_send_bytes: Gauge,
    /// `header_count`: fields per request header block.
    pub header_count: Histogram,
    /// `header_list_size`: bytes per request header list.
    pub header_list_size: Histogram,
}

/// Counters of Envoy's family that nuncio has no event for (no outbound
/// frame limits, no keepalive PINGs, no METADATA, no nghttp2/oghttp2).
const ZERO_COUNTERS: &[&str] = &[
    "cookies_total_bytes_too_large",
    "header_list_size_too_large",
    "keepalive_timeout",
    "metadata_empty_frames",
    "nghttp2_downstream_connections",
    "nghttp2_upstream_connections",
    "oghttp2_downstream_connections",
    "oghttp2_upstream_connections",
    "outbound_control_flood",
    "outbound_flood",
    "stream_refused_errors",
    "tx_flush_timeout",
];

/// Gauges of the family that stay 0 in nuncio.
const ZERO_GAUGES: &[&str] = &[
    "deferred_stream_close",
    "outbound_control_frames_active",
    "outbound_frames_active",
];

impl Http2Stats {
    /// Registers (or finds) the family under `<scope>http2.`: the root
    /// scope for downstream connections, `cluster.<name>.` for upstream
    /// ones. The flood counters are `nuncio_h2flood::FloodStats`'.
    pub fn new(scope: &Scope) -> Self {
        let h = scope.sub("http2.", "http2.", &[]);
        for n in ZERO_COUNTERS {
            let _ = h.counter(n);
        }
        for n in ZERO_GAUGES {
            let _ = h.gauge(n);
        }
        let _ = h.histogram("cookie_count");
        let _ = h.histogram("cookie_size");
        Http2Stats {
            rx_reset: h.counter("rx_reset"),
            tx_reset: h.counter("tx_reset"),
            goaway_sent: h.counter("goaway_sent"),
            header_overflow: h.counter("header_overflow"),
            headers_cb_no_stream: h.counter("headers_cb_no_stream"),
            rx_messaging_error: h.counter("rx_messaging_error"),
            trailers: h.counter("trailers"),
            streams_active: h.gauge("streams_active"),
            pending_send_bytes: h.gauge("pending_send_bytes"),
            header_count: h.histogram("header_count"),
            header_list_size: h.histogram("header_list_size"),
        }
    }
}

/// The `listener.<address>.` scope of a listener configured at `address`
/// (`0.0.0.0:80` gives `listener.0.0.0.0_80.`, tag `envoy_listener_address`).
pub fn listener_scope(store: &std::sync::Arc<crate::Store>, address: &str) -> Scope {
    let tag = address.replace(':', "_").replace(['[', ']'], "");
    store.scope(
        &format!("listener.{tag}."),
        "listener.",
        &[("envoy_listener_address", &tag)],
    )
}

/// The admin listener's scope: Envoy names it `listener.admin.` without a
/// tag.
pub fn admin_listener_scope(store: &std::sync::Arc<crate::Store>) -> Scope {
    store.scope("listener.admin.", "listener.admin.", &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{render_prometheus, Filter, Store};

    #[test]
    fn family_names() {
        let s = Store::new();
        let down = Http2Stats::new(&s.root());
        down.rx_reset.inc();
        let c = s.scope("cluster.b.", "cluster.", &[("envoy_cluster_name", "b")]);
        let _up = Http2Stats::new(&c);
        assert_eq!(s.value("http2.rx_reset"), Some(1));
        assert_eq!(s.value("http2.outbound_flood"), Some(0));
        assert_eq!(s.value("cluster.b.http2.tx_reset"), Some(0));
        let p = render_prometheus(&s, &Filter::default());
        assert!(p.contains("envoy_http2_outbound_flood{} 0\n"), "{p}");
        assert!(
            p.contains("envoy_cluster_http2_streams_active{envoy_cluster_name=\"b\"} 0\n"),
            "{p}"
        );
        let l = listener_scope(&s, "[::1]:80");
        l.counter("downstream_cx_total");
        assert_eq!(s.value("listener.__1_80.downstream_cx_total"), Some(0));
    }
}
