//! What the end of a downstream request counts, as Envoy counts it, for
//! both codecs (HTTP/1.1 and HTTP/2): the response
//! code and `downstream_rq_completed` only when a response was sent, the
//! request time, and aborts.

use std::time::Duration;

use crate::HcmStats;

/// A request ended; `status` is the response code sent (0: none, the
/// client left first).
pub(crate) fn finished(s: &HcmStats, status: u16, took: Duration) {
    if status == 0 {
        return;
    }
    s.rq_codes.record(status);
    s.rq_time.record(took);
}

/// A request ended early: `client_left` (an HTTP/1.1 client closed its
/// connection mid-request: `downstream_rq_rx_reset` and the connection's
/// `downstream_cx_destroy_remote_active_rq`), or the response was aborted
/// after its head (`downstream_rq_tx_reset`; Envoy's codec then reports
/// the reset back, so `downstream_rq_rx_reset` too).
pub(crate) fn aborted(s: &HcmStats, client_left: bool, head_sent: bool) {
    if client_left {
        s.rq_rx_reset.inc();
        s.cx_destroy_active_rq.inc();
        s.cx_destroy_remote_active_rq.inc();
    } else if head_sent {
        s.rq_tx_reset.inc();
        s.rq_rx_reset.inc();
    }
}

/// A request head nuncio's parser refused: a codec error in Envoy's terms
/// (`downstream_cx_protocol_error`, `downstream_rq_rx_reset`), except
/// what Envoy's connection manager refuses after parsing (a missing Host,
/// a `#fragment`: plain 400s).
pub(crate) fn head_refused(s: &HcmStats, e: nuncio_h1::H1Error) {
    if matches!(e, nuncio_h1::H1Error::NoHost | nuncio_h1::H1Error::Fragment) {
        s.rq_rejected.inc_not_codec();
    } else {
        s.rq_rejected.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuncio_stats::Store;

    #[test]
    fn codes_only_for_responses_sent() {
        let s = Store::new();
        let l = nuncio_stats::listener_scope(&s, "127.0.0.1:80");
        let h = HcmStats::new(&s, "ingress_http", &l);
        finished(&h, 0, Duration::from_millis(3));
        assert_eq!(
            s.value("http.ingress_http.downstream_rq_completed"),
            Some(0)
        );
        finished(&h, 404, Duration::from_millis(3));
        assert_eq!(
            s.value("http.ingress_http.downstream_rq_completed"),
            Some(1)
        );
        assert_eq!(s.value("http.ingress_http.downstream_rq_4xx"), Some(1));
        assert_eq!(
            s.value("listener.127.0.0.1_80.http.ingress_http.downstream_rq_4xx"),
            Some(1)
        );
        assert_eq!(
            s.value("listener.127.0.0.1_80.http.ingress_http.downstream_rq_completed"),
            Some(1)
        );
        aborted(&h, true, false);
        assert_eq!(s.value("http.ingress_http.downstream_rq_rx_reset"), Some(1));
        assert_eq!(
            s.value("http.ingress_http.downstream_cx_destroy_remote_active_rq"),
            Some(1)
        );
        aborted(&h, false, true);
        assert_eq!(s.value("http.ingress_http.downstream_rq_tx_reset"), Some(1));
        assert_eq!(s.value("http.ingress_http.downstream_rq_rx_reset"), Some(2));
        head_refused(&h, nuncio_h1::H1Error::NoHost);
        assert_eq!(
            s.value("http.ingress_http.downstream_cx_protocol_error"),
            Some(0)
        );
        head_refused(&h, nuncio_h1::H1Error::TooLarge);
        assert_eq!(
            s.value("http.ingress_http.downstream_cx_protocol_error"),
            Some(1)
        );
        assert_eq!(s.value("http.ingress_http.downstream_rq_rejected"), Some(2));
    }
}
