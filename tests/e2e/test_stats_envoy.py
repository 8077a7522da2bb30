"""Stats counted as Envoy counts them. Every expected figure here was first
read off real Envoy 1.40 given the same config and the same requests
(docs/stats.md)."""

import json
import re
import socket
import threading
import time

import pytest

from backends import RawBackend, answer
from conftest import Echo, admin_get, admin_json, curl, free_port, start_proxy, static_cluster
from h2client import H2Client

ONE_WORKER = ("--concurrency", "1")
B = "cluster.backend."
H = "http.ingress_http."


def wait_for(cond, seconds=3.0):
    deadline = time.time() + seconds
    while not cond() and time.time() < deadline:
        time.sleep(0.02)
    return cond()


def test_connect_failure_counts_the_connection_not_the_request(procs, tmp_path):
    p = start_proxy(procs, tmp_path, static_cluster(free_port()), args=ONE_WORKER)
    p.quiet()
    assert curl(f"http://{p.base}/")[0] == 503
    assert wait_for(lambda: p.stat(B + "upstream_cx_destroy") == 1)
    expected = {
        "upstream_cx_total": 1,
        "upstream_cx_http1_total": 1,
        "upstream_cx_connect_fail": 1,
        "upstream_cx_destroy_remote": 1,
        "upstream_cx_active": 0,
        "upstream_rq_total": 0,
        "upstream_rq_pending_total": 1,
        "upstream_rq_pending_failure_eject": 1,
        "upstream_rq_pending_active": 0,
        "upstream_rq_503": 1,
        "upstream_rq_5xx": 1,
        "upstream_rq_completed": 1,
        "external.upstream_rq_503": 1,
        "external.upstream_rq_completed": 1,
    }
    assert {k: p.stat(B + k) for k in expected} == expected
    assert p.stat(H + "downstream_rq_5xx") == 1
    assert p.stat(H + "downstream_rq_completed") == 1


def test_upstream_closing_an_idle_pooled_connection_is_counted_at_once(procs, tmp_path):
    """The upstream answers with keep-alive, then closes the idle
    connection 0.3 s later: with no traffic, upstream_cx_active goes back
    to 0 and upstream_cx_destroy_remote counts it within a second."""
    def behave(c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        time.sleep(0.3)  # then RawBackend closes the connection

    b = RawBackend(behave)
    p = start_proxy(procs, tmp_path, static_cluster(b.port), args=ONE_WORKER)
    assert curl(f"http://{p.base}/")[0] == 200
    assert p.stat(B + "upstream_cx_active") == 1
    t0 = time.time()
    assert wait_for(lambda: p.stat(B + "upstream_cx_active") == 0, 2.0)
    took = time.time() - t0
    assert took < 1.0, took
    assert p.stat(B + "upstream_cx_destroy_remote") == 1
    assert p.stat(B + "upstream_cx_destroy_local") == 0
    assert p.stat(B + "upstream_cx_destroy") == 1
    assert p.stat(B + "upstream_rq_total") == 1
    # The next request opens a new connection, no 503.
    assert curl(f"http://{p.base}/")[0] == 200
    assert p.stat(B + "upstream_cx_total") == 2
    b.close()


class CountingBackend:
    """Counts the bytes it receives and sends; answers each request (by
    Content-Length) with a fixed response and keeps the connection."""

    RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Pad: abcdef\r\n\r\nhello"

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self.sent = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        with c:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    self.received += len(d)
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                n = int(m.group(1)) if m else 0
                while len(buf) < n:
                    d = c.recv(65536)
                    if not d:
                        return
                    self.received += len(d)
                    buf += d
                buf = buf[n:]
                c.sendall(self.RESPONSE)
                self.sent += len(self.RESPONSE)


def test_byte_totals_equal_what_was_sent(procs, tmp_path):
    b = CountingBackend()
    p = start_proxy(procs, tmp_path, static_cluster(b.port), args=ONE_WORKER)
    p.quiet()
    keys = ("downstream_cx_rx_bytes_total", "downstream_cx_tx_bytes_total", "downstream_cx_destroy",
            "downstream_cx_destroy_local", "downstream_cx_destroy_remote")
    base = {k: p.stat(H + k) for k in keys}
    request = (b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world"
               b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=5)
    s.sendall(request)
    got = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
    s.close()
    assert got.count(b"HTTP/1.1 200") == 2
    assert wait_for(lambda: p.stat(H + "downstream_cx_destroy") == base["downstream_cx_destroy"] + 1)
    d = {k: p.stat(H + k) - base[k] for k in keys}
    assert d["downstream_cx_rx_bytes_total"] == len(request)
    assert d["downstream_cx_tx_bytes_total"] == len(got)
    assert wait_for(lambda: p.stat(B + "upstream_cx_tx_bytes_total") == b.received)
    assert p.stat(B + "upstream_cx_rx_bytes_total") == b.sent == 2 * len(CountingBackend.RESPONSE)
    # The proxy closed the connection (the request asked it to).
    assert (d["downstream_cx_destroy_local"], d["downstream_cx_destroy_remote"]) == (1, 0)


def test_codes_completed_and_listener_stats(procs, tmp_path):
    e = Echo(procs, "127.0.0.1")
    routes = ('              - match: {prefix: "/"}\n'
              '                route: {cluster: backend}\n')
    p = start_proxy(procs, tmp_path, static_cluster(e.port), routes=routes, args=ONE_WORKER)
    p.quiet()
    assert curl(f"http://{p.base}/")[0] == 200
    assert curl(f"http://{p.base}/missing")[0] == 404
    assert curl("--http2-prior-knowledge", f"http://{p.base}/")[0] == 200
    addr = f"127.0.0.1_{p.listen_port}"
    lh = f"listener.{addr}.http.ingress_http."
    assert p.stat(H + "downstream_rq_completed") == 3
    assert p.stat(H + "downstream_rq_2xx") == 2
    assert p.stat(H + "downstream_rq_4xx") == 1
    assert p.stat(lh + "downstream_rq_2xx") == 2
    assert p.stat(lh + "downstream_rq_4xx") == 1
    assert p.stat(lh + "downstream_rq_completed") == 3
    # Envoy has no per-code downstream counters.
    assert p.stat(H + "downstream_rq_200") is None
    assert p.stat(B + "upstream_rq_completed") == 3
    assert p.stat(B + "external.upstream_rq_404") == 1
    assert p.stat(B + "upstream_rq_pending_total") >= 1
    prom = admin_get(p, "/stats/prometheus")
    assert (f'envoy_listener_http_downstream_rq_xx{{envoy_response_code_class="2",'
            f'envoy_http_conn_manager_prefix="ingress_http",envoy_listener_address="{addr}"}} 2') in prom
    assert 'envoy_cluster_external_upstream_rq{envoy_response_code="404",envoy_cluster_name="backend"} 1' in prom


def test_histograms_in_envoys_json_and_prometheus_shapes(procs, tmp_path):
    e = Echo(procs, "127.0.0.1")
    p = start_proxy(procs, tmp_path, static_cluster(e.port), args=ONE_WORKER)
    for _ in range(3):
        assert curl(f"http://{p.base}/")[0] == 200
    assert wait_for(lambda: p.stat(B + "upstream_cx_active") == 1)
    j = admin_json(p, "/stats?format=json")
    hist = [s["histograms"] for s in j["stats"] if "histograms" in s]
    assert len(hist) == 1
    assert hist[0]["supported_quantiles"] == [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100]
    by_name = {h["name"]: h["values"] for h in hist[0]["computed_quantiles"]}
    for name in (B + "upstream_rq_time", B + "external.upstream_rq_time", B + "upstream_cx_connect_ms",
                 H + "downstream_rq_time", "server.initialization_time_ms"):
        values = by_name[name]
        assert len(values) == 10
        assert all(set(v) == {"cumulative", "interval"} for v in values), values
        assert values[-1]["cumulative"] is not None, name
    assert all(v["cumulative"] is None for v in by_name[B + "upstream_cx_length_ms"])
    text = admin_get(p, "/stats")
    assert re.search(r"^cluster\.backend\.upstream_cx_length_ms: No recorded values$", text, re.M)
    assert re.search(r"^cluster\.backend\.upstream_rq_time: P0\([^,]+,[0-9.]+\) P25\(", text, re.M), text
    prom = admin_get(p, "/stats/prometheus")
    assert "# TYPE envoy_cluster_upstream_rq_time histogram" in prom
    for le in ("0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000",
               "10000", "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf"):
        assert f'envoy_cluster_upstream_rq_time_bucket{{envoy_cluster_name="backend",le="{le}"}} ' in prom
    assert re.search(r'^envoy_cluster_upstream_rq_time_count\{envoy_cluster_name="backend"\} 3$', prom, re.M)
    assert re.search(r'^envoy_cluster_upstream_rq_time_sum\{envoy_cluster_name="backend"\} \d', prom, re.M)
    assert "envoy_server_live{} 1\n" in prom
    # Counters, then gauges, then histograms, as Envoy prints them.
    kinds = [l.split()[-1] for l in prom.splitlines() if l.startswith("# TYPE")]
    assert kinds == sorted(kinds, key=["counter", "gauge", "histogram"].index)


def test_server_and_admin_stats(procs, tmp_path):
    p = start_proxy(procs, tmp_path, static_cluster(free_port()), args=ONE_WORKER)
    admin_get(p, "/ready")
    assert p.stat("server.live") == 1
    assert p.stat("server.state") == 0
    assert p.stat("server.concurrency") == 1
    assert p.stat("server.hot_restart_epoch") == 0
    assert p.stat("server.memory_allocated") > 0
    assert p.stat("server.memory_heap_size") > 0
    assert p.stat("server.uptime") >= 0
    assert isinstance(p.stat("server.version"), int)
    assert p.stat("listener.admin.downstream_cx_total") >= 2
    assert p.stat("http.admin.downstream_rq_2xx") >= 1
    assert p.stat("listener.admin.http.admin.downstream_rq_completed") >= 1
    assert p.stat("http.admin.downstream_cx_rx_bytes_total") > 0
    # The admin has no router: Envoy shows no http.admin.rq_total.
    assert p.stat("http.admin.rq_total") is None
    text = admin_get(p, "/stats")
    assert re.search(r"^server\.initialization_time_ms: P0\(", text, re.M), text


def test_malformed_request_is_a_protocol_error(procs, tmp_path):
    p = start_proxy(procs, tmp_path, static_cluster(free_port()), args=ONE_WORKER)
    p.quiet()
    local, destroyed = p.stat(H + "downstream_cx_destroy_local"), p.stat(H + "downstream_cx_destroy")
    s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=3)
    s.sendall(b"GARBAGE\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 400")
    s.close()
    assert wait_for(lambda: p.stat(H + "downstream_cx_destroy") == destroyed + 1)
    assert p.stat(H + "downstream_cx_protocol_error") == 1
    assert p.stat(H + "downstream_cx_destroy_local") == local + 1
    assert p.stat(H + "downstream_rq_rx_reset") == 1
    assert p.stat(H + "downstream_rq_4xx") == 1
    assert p.stat(H + "downstream_rq_completed") == 1


def test_upstream_cut_short_mid_body_resets_the_response(procs, tmp_path):
    b = RawBackend(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"))
    p = start_proxy(procs, tmp_path, static_cluster(b.port), args=ONE_WORKER)
    p.quiet()
    s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=3)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    s.settimeout(3)
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
    s.close()
    assert got.startswith(b"HTTP/1.1 200")
    assert wait_for(lambda: p.stat(H + "downstream_rq_tx_reset") == 1)
    assert p.stat(H + "downstream_rq_2xx") == 1
    assert p.stat(B + "upstream_rq_200") == 1
    assert wait_for(lambda: p.stat(B + "upstream_cx_destroy_remote") == 1)
    assert p.stat(B + "upstream_cx_protocol_error") == 1
    assert p.stat(B + "upstream_cx_destroy_remote_with_active_rq") == 1
    b.close()


def test_http2_codec_counts_resets(procs, tmp_path):
    b = RawBackend(lambda c: time.sleep(2))
    p = start_proxy(procs, tmp_path, static_cluster(b.port), args=ONE_WORKER)
    c = H2Client(p.listen_port)
    sid = c.request([])
    assert wait_for(lambda: b.requests == 1)
    assert wait_for(lambda: p.stat("http2.streams_active") == 1)
    c.reset(sid)
    assert wait_for(lambda: p.stat("http2.rx_reset") == 1)
    assert wait_for(lambda: p.stat(H + "downstream_rq_rx_reset") == 1)
    assert wait_for(lambda: p.stat("http2.streams_active") == 0)
    # No response was sent: no code, not completed.
    assert p.stat(H + "downstream_rq_completed") == 0
    sid = c.request([("Upper", "x")])
    c.wait([sid])
    assert wait_for(lambda: p.stat("http2.rx_messaging_error") == 1)
    assert p.stat("http2.tx_reset") >= 1
    c.sock.close()
    b.close()
