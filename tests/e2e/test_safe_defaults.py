"""nuncio's defaults are safe where Envoy's are not (issue #5): a request
head must arrive within `request_headers_timeout` (10 s unless set; the
time runs from the first byte, so a trickle does not reset it), and HTTP/2
connections, downstream and upstream, use Envoy's edge values (100
streams, 64 KiB stream window, 1 MiB connection window)."""

import socket
import time

import pytest

from backends import H2Backend, RawBackend, answer, h2_ok, recv_until
from conftest import admin_json, curl, start_proxy, static_cluster
from h2client import H2Client

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def hcm_dump(p):
    dump = admin_json(p, "/config_dump")
    text = str(dump)
    return dump, text


def test_a_trickled_request_head_is_cut_at_request_headers_timeout(procs, tmp_path):
    b = RawBackend(answer(OK))
    p = start_proxy(procs, tmp_path, static_cluster(b.port), hcm_extra="          request_headers_timeout: 1s\n")
    s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\n")
    t0 = time.time()
    closed_at = None
    answer_bytes = b""
    # One header byte every 0.25 s: every gap is well inside the timeout,
    # the head as a whole is not (12 s if let run).
    for ch in b"X-Slow: " + b"a" * 40:
        try:
            s.sendall(bytes([ch]))
            s.setblocking(False)
            got = s.recv(4096)
            if got == b"" or got.startswith(b"HTTP/1.1 "):
                # Answered (Envoy's 408) or closed: either ends the head.
                closed_at = time.time() - t0
                answer_bytes = got
                break
        except BlockingIOError:
            pass
        except OSError:
            closed_at = time.time() - t0
            break
        finally:
            s.setblocking(True)
        time.sleep(0.25)
    s.setblocking(True)
    s.settimeout(2)
    while answer_bytes:
        d = s.recv(4096)
        if not d:
            break
        answer_bytes += d
    s.close()
    assert closed_at is not None and 0.9 < closed_at < 2.0, closed_at
    # As Envoy: a 408 that names the timer, then the close.
    assert answer_bytes.startswith(b"HTTP/1.1 408 "), answer_bytes
    assert answer_bytes.endswith(b"request header timeout"), answer_bytes
    assert b.requests == 0
    assert p.stat("http.ingress_http.downstream_rq_header_timeout") == 1
    # Other clients are served.
    assert curl(f"http://{p.base}/")[0] == 200


def test_an_idle_keepalive_connection_outlives_request_headers_timeout(procs, tmp_path):
    """The timer covers a head in progress, not the wait between requests
    (that is `idle_timeout`)."""
    b = RawBackend(answer(OK))
    p = start_proxy(procs, tmp_path, static_cluster(b.port), hcm_extra="          request_headers_timeout: 1s\n")
    s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=5)
    for _ in range(2):
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        out = recv_until(s, lambda d: d.endswith(b"ok"))
        assert out is not None and out.startswith(b"HTTP/1.1 200"), out
        time.sleep(1.6)
    s.close()


def test_request_headers_timeout_defaults_to_10s_and_0_turns_it_off(procs, tmp_path):
    b = RawBackend(answer(OK))
    p = start_proxy(procs, tmp_path, static_cluster(b.port))
    assert "'request_headers_timeout': '10s'" in hcm_dump(p)[1]
    q = start_proxy(procs, tmp_path, static_cluster(b.port), name="off.yaml",
                    hcm_extra="          request_headers_timeout: 0s\n")
    assert "request_headers_timeout" not in hcm_dump(q)[1]


def test_http2_downstream_defaults_are_the_edge_values(procs, tmp_path):
    b = RawBackend(answer(OK))
    p = start_proxy(procs, tmp_path, static_cluster(b.port))
    c = H2Client(p.listen_port)
    r = c.wait([c.request([])])[0]
    assert r["status"] == 200
    settings = c.conn.remote_settings
    assert settings.max_concurrent_streams == 100
    assert settings.initial_window_size == 65536
    # The connection window the proxy grants: 1 MiB (the 65,535 every
    # connection starts with, raised by a WINDOW_UPDATE).
    assert c.conn.outbound_flow_control_window == 1024 * 1024, c.conn.outbound_flow_control_window
    c.close()


def test_http2_cluster_defaults_are_the_edge_values(procs, tmp_path):
    seen = {}

    def record(n, conn, sock, sid):
        seen["window"] = conn.remote_settings.initial_window_size
        seen["conn_window"] = conn.outbound_flow_control_window
        return h2_ok(n, conn, sock, sid)

    u = H2Backend(record)
    p = start_proxy(procs, tmp_path, static_cluster(u.port) + "    http2_protocol_options: {}\n")
    assert curl(f"http://{p.base}/")[:1] == (200,)
    assert seen == {"window": 65536, "conn_window": 1024 * 1024}, seen


IDLE = "          common_http_protocol_options: {idle_timeout: 0.5s}\n"



def test_idle_timeout_closes_an_idle_http1_connection(procs, tmp_path):
    """Envoy's `idle_timeout`: a keep-alive connection with no request for
    that long is closed, and `downstream_cx_idle_timeout` counts it."""
    b = RawBackend(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    p = start_proxy(procs, tmp_path, static_cluster(b.port), hcm_extra=IDLE)
    s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert recv_until(s, lambda d: d.endswith(b"ok")).startswith(b"HTTP/1.1 200")
    t0 = time.time()
    s.settimeout(5)
    assert s.recv(100) == b""  # closed by the proxy
    assert 0.3 < time.time() - t0 < 3
    s.close()
    deadline = time.time() + 2
    while p.stat("http.ingress_http.downstream_cx_idle_timeout") != 1 and time.time() < deadline:
        time.sleep(0.05)
    assert p.stat("http.ingress_http.downstream_cx_idle_timeout") == 1
    b.close()


def test_idle_timeout_closes_an_idle_http2_connection_with_goaway(procs, tmp_path):
    b = RawBackend(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    p = start_proxy(procs, tmp_path, static_cluster(b.port), hcm_extra=IDLE)
    c = H2Client(p.listen_port)
    assert c.wait([c.request([])])[0]["status"] == 200
    t0 = time.time()
    c.wait([], timeout=5)
    assert c.goaway == 0 and c.closed, (c.goaway, c.closed)
    assert 0.3 < time.time() - t0 < 3
    assert p.stat("http.ingress_http.downstream_cx_idle_timeout") == 1
    b.close()


def test_idle_timeout_spares_a_connection_with_a_stream_in_flight(procs, tmp_path):
    """The timer runs only while a connection has no request: a slow
    response outlives it."""
    from backends import slow

    b = RawBackend(slow(1.5, b"ok"))
    p = start_proxy(procs, tmp_path, static_cluster(b.port), hcm_extra=IDLE)
    c = H2Client(p.listen_port)
    r = c.wait([c.request([])], timeout=5)[0]
    assert r["status"] == 200 and r["data"] == b"ok", r
    assert p.stat("http.ingress_http.downstream_cx_idle_timeout") == 0
    c.close()
    b.close()
