"""Envoy's local replies, each produced by the fault it names: no route,
no healthy upstream, connection failure, upstream timeout, an upstream
that closes or speaks garbage."""

import os
import signal
import socket
import time

from backends import RawBackend, close_before_headers, garbage, slow
from conftest import Echo, Proxy, curl, free_port, proxy_config as config, raw_request, static_cluster, write_config
from conftest import start_proxy as start
from h2client import H2Client

CONNECT_FAIL = "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure"
CONNECT_TIMEOUT = "upstream connect error or disconnect/reset before headers. reset reason: connection timeout"


def test_connection_failure_is_503(procs, tmp_path):
    dead = free_port()  # nothing listens here
    p = start(procs, tmp_path, static_cluster(dead))
    status, headers, body = curl(f"http://{p.base}/")
    assert status == 503
    assert body == CONNECT_FAIL
    assert headers["content-type"] == "text/plain"
    assert p.stat("cluster.backend.upstream_cx_connect_fail") == 1
    assert p.stat("cluster.backend.upstream_rq_503") == 1
    assert p.stat("http.ingress_http.downstream_rq_5xx") == 1


def test_unknown_host_is_no_healthy_upstream(procs, tmp_path):
    cluster = "    type: strict_dns\n    hosts: [{socket_address: {address: no-such-host.invalid, port_value: 80}}]\n"
    p = start(procs, tmp_path, cluster)
    status, _, body = curl(f"http://{p.base}/")
    assert (status, body) == (503, "no healthy upstream")
    assert p.stat("cluster.backend.upstream_cx_none_healthy") == 1
    assert p.stat("cluster.backend.membership_total") == 0


def test_slow_backend_gets_504_after_the_route_timeout(procs, tmp_path):
    b = RawBackend(slow(5))
    routes = '              - match: {prefix: "/"}\n                route: {cluster: backend, timeout: 0.5s}\n'
    p = start(procs, tmp_path, static_cluster(b.port), routes=routes)
    t0 = time.time()
    status, _, body = curl(f"http://{p.base}/")
    took = time.time() - t0
    assert (status, body) == (504, "upstream request timeout")
    assert 0.4 < took < 3, took
    assert p.stat("cluster.backend.upstream_rq_timeout") == 1
    assert p.stat("cluster.backend.upstream_rq_504") == 1
    b.close()


def test_route_timeout_is_announced_upstream(procs, tmp_path):
    e = Echo(procs, "127.0.0.1")
    routes = '              - match: {prefix: "/"}\n                route: {cluster: backend, timeout: 2.5s}\n'
    p = start(procs, tmp_path, static_cluster(e.port), routes=routes)
    _, _, body = curl(f"http://{p.base}/")
    assert "X-Envoy-Expected-Rq-Timeout-Ms:[2500]" in body.split("\n")


def test_no_route_is_404(procs, tmp_path):
    e = Echo(procs, "127.0.0.1")
    routes = '              - match: {prefix: "/api"}\n                route: {cluster: backend}\n'
    p = start(procs, tmp_path, static_cluster(e.port), routes=routes, domains='["example.com"]')
    assert curl(f"http://{p.base}/api", "-H", "Host: other.org")[0] == 404
    status, _, body = curl(f"http://{p.base}/other", "-H", "Host: example.com")
    assert (status, body) == (404, "")
    # Routed (host matched case-insensitively): the echo's own 404.
    status, headers, body = curl(f"http://{p.base}/api/x", "-H", "Host: EXAMPLE.com")
    assert (status, body) == (404, "404 page not found")
    assert "x-envoy-upstream-service-time" in headers
    # The port is part of the Host Envoy matches: no virtual host takes it.
    assert curl(f"http://{p.base}/api/x", "-H", "Host: example.com:8080")[0] == 404
    assert p.stat("http.ingress_http.no_route") == 3
    assert p.stat("cluster.backend.upstream_rq_total") == 1


def test_direct_response(procs, tmp_path):
    routes = '              - match: {path: "/health"}\n                direct_response: {status: 200, body: {inline_string: "ok"}}\n'
    p = start(procs, tmp_path, static_cluster(free_port()), routes=routes)
    assert curl(f"http://{p.base}/health")[0::2] == (200, "ok")
    assert p.stat("http.ingress_http.rq_direct_response") == 1


def test_backend_killed_then_next_request_is_503(procs, tmp_path):
    e = Echo(procs, "127.0.0.1")
    p = start(procs, tmp_path, static_cluster(e.port))
    assert curl(f"http://{p.base}/")[0] == 200  # leaves a pooled connection
    os.killpg(e.proc.pid, signal.SIGKILL)
    e.proc.wait()
    time.sleep(0.2)
    status, _, body = curl(f"http://{p.base}/")
    assert (status, body) == (503, CONNECT_FAIL)
    assert p.proc.poll() is None


def test_upstream_closing_before_headers_is_503(procs, tmp_path):
    b = RawBackend(close_before_headers)
    p = start(procs, tmp_path, static_cluster(b.port))
    status, _, body = curl(f"http://{p.base}/")
    assert status == 503, (status, body, p.log()[-3000:])
    assert body.endswith("reset reason: connection termination"), (body, p.log()[-3000:])
    b.close()


def test_upstream_garbage_is_502(procs, tmp_path):
    b = RawBackend(garbage)
    p = start(procs, tmp_path, static_cluster(b.port))
    status, _, body = curl(f"http://{p.base}/")
    assert status == 502
    assert body.endswith("reset reason: protocol error"), body
    b.close()


def test_connect_timeout_is_enforced(procs, tmp_path):
    """A listener whose accept queue is full never completes a connect:
    the cluster's connect_timeout (0.25s) must end the attempt."""
    import socket
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    filler = socket.create_connection(full.getsockname())  # fills the queue
    p = start(procs, tmp_path, static_cluster(full.getsockname()[1]))
    t0 = time.time()
    status, _, body = curl(f"http://{p.base}/")
    took = time.time() - t0
    assert (status, body) == (503, CONNECT_TIMEOUT)
    assert took < 2, took
    assert p.stat("cluster.backend.upstream_cx_connect_timeout") == 1
    filler.close()
    full.close()


def test_admin_access_log(procs, tmp_path):
    log = tmp_path / "admin.log"
    listen, admin = free_port(), free_port()
    text = config(listen, admin, static_cluster(free_port())).replace(
        "admin:\n", f"admin:\n  access_log_path: {log}\n"
    )
    p = Proxy(procs, write_config(tmp_path, text), listen_port=listen, admin_port=admin)
    curl(f"http://{p.admin}/stats?usedonly", "-A", "probe")
    deadline = time.time() + 5
    while time.time() < deadline and (not log.exists() or "/stats?usedonly" not in log.read_text()):
        time.sleep(0.05)
    line = log.read_text().strip().split("\n")[-1]
    assert '"GET /stats?usedonly HTTP/1.1" 200' in line and '"probe"' in line, line


def test_upstream_closing_idle_keepalive_sockets_is_invisible(procs, tmp_path):
    """The upstream answers without `Connection: close` and then closes the
    socket anyway (an idle-timeout race). nuncio pools the socket, finds it
    dead on the next request, and resends on a fresh connection: the client
    never sees a 503 (Envoy's 503 UC, envoy#14981)."""
    def one_then_close(c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    b = RawBackend(one_then_close)
    p = start(procs, tmp_path, static_cluster(b.port))
    statuses = []
    for _ in range(20):
        statuses.append(curl(f"http://{p.base}/")[0])
        time.sleep(0.02)  # let the close reach the proxy's pooled socket
    assert statuses == [200] * 20, statuses
    assert b.requests == 20
    b.close()


def test_route_timeout_starts_when_the_request_is_complete(procs, tmp_path):
    """Envoy's route timeout counts from the end of the request: a steady
    upload longer than the timeout still gets its answer."""
    e = Echo(procs, "127.0.0.1")
    routes = '              - match: {prefix: "/"}\n                route: {cluster: backend, timeout: 1s}\n'
    p = start(procs, tmp_path, static_cluster(e.port), routes=routes)
    import socket as _s
    s = _s.create_connection(("127.0.0.1", p.listen_port), timeout=10)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nConnection: close\r\n\r\n")
    for part in (b"abc", b"def", b"ghi"):
        time.sleep(0.6)
        s.sendall(part)
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    assert out.startswith(b"HTTP/1.1 200"), out
    assert out.endswith(b"abcdefghi"), out


def idle_proxy(procs, tmp_path, port):
    listen, admin = free_port(), free_port()
    text = config(listen, admin, static_cluster(port)).replace(
        "          stat_prefix: ingress_http\n", "          stat_prefix: ingress_http\n          stream_idle_timeout: 0.5s\n"
    )
    return Proxy(procs, write_config(tmp_path, text), listen_port=listen, admin_port=admin)


def test_stalled_upload_gets_408(procs, tmp_path):
    e = Echo(procs, "127.0.0.1")
    p = idle_proxy(procs, tmp_path, e.port)
    t0 = time.time()
    out, closed = raw_request(p.listen_port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab", timeout=5)
    assert out.startswith(b"HTTP/1.1 408"), out
    assert b"stream timeout" in out
    assert closed and time.time() - t0 < 3
    assert p.stat("http.ingress_http.downstream_rq_idle_timeout") == 1
    assert p.proc.poll() is None


def test_upstream_stalling_mid_body_aborts_the_response(procs, tmp_path):
    """stream_idle_timeout after the response started: the client sees the
    connection close short of Content-Length, never a complete response."""
    def stall(c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        time.sleep(4)
    b = RawBackend(stall)
    p = idle_proxy(procs, tmp_path, b.port)
    t0 = time.time()
    out, closed = raw_request(p.listen_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    assert out.startswith(b"HTTP/1.1 200"), out
    assert out.endswith(b"0123456789")
    assert closed and time.time() - t0 < 3
    assert p.stat("http.ingress_http.downstream_rq_idle_timeout") == 1
    b.close()


def test_request_timeout_bounds_the_whole_upload(procs, tmp_path):
    """request_timeout: a client that keeps sending (so the stream is never
    idle) but too slowly gets Envoy's 408 `request timeout`; a prompt
    request on the same listener is unaffected."""
    e = Echo(procs, "127.0.0.1")
    p = start(procs, tmp_path, static_cluster(e.port), hcm_extra="          request_timeout: 1s\n")
    status, _, text = curl("--data-binary", "quick", f"http://{p.base}/echo")
    assert (status, text) == (200, "quick")
    s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=10)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n")
    t0 = time.time()
    out = b""
    try:
        for _ in range(20):  # one byte every 0.2 s: 4 s in all
            s.sendall(b"x")
            time.sleep(0.2)
            s.setblocking(False)
            try:
                out += s.recv(65536)
            except BlockingIOError:
                pass
            s.setblocking(True)
            if out:
                break
    except OSError:
        pass
    s.settimeout(5)
    try:
        while not out.endswith(b"request timeout"):
            d = s.recv(65536)
            if not d:
                break
            out += d
    except OSError:
        pass
    s.close()
    assert out.startswith(b"HTTP/1.1 408"), out
    assert out.endswith(b"request timeout"), out
    assert time.time() - t0 < 2.5
    assert p.stat("http.ingress_http.downstream_rq_timeout") == 1
    assert p.stat("http.ingress_http.downstream_rq_idle_timeout") == 0


def test_request_timeout_over_http2(procs, tmp_path):
    e = Echo(procs, "127.0.0.1")
    p = start(procs, tmp_path, static_cluster(e.port), hcm_extra="          request_timeout: 1s\n")
    c = H2Client(p.listen_port)
    sid = c.request([("content-length", "20")], end=False, method="POST", path="/echo")
    t0 = time.time()
    r = None
    for _ in range(20):
        c.conn.send_data(sid, b"x")
        c.flush()
        r = c.wait([sid], timeout=0.2)[0]
        if r["ended"] or r["reset"] is not None:
            break
    c.close()
    assert r["status"] == 408 and r["data"] == b"request timeout", r
    assert time.time() - t0 < 2.5
    assert p.stat("http.ingress_http.downstream_rq_timeout") == 1
