"""Drain: SIGTERM and POST /drain_listeners stop accepting, finish what was
accepted (Connection: close / GOAWAY), close idle keep-alive connections
after drain_timeout, and (SIGTERM) exit 0. Under load nothing accepted is
lost."""

import signal
import socket
import subprocess
import threading
import time
import urllib.request

from backends import RawBackend, slow
from conftest import (Echo, Proxy, free_port, proxy_config, static_cluster,
                      write_config)


def drain_proxy(procs, tmp_path, cluster, drain_time_s=10, drain_timeout="0.5s"):
    listen, admin = free_port(), free_port()
    text = proxy_config(listen, admin, cluster).replace(
        "          stat_prefix: ingress_http\n",
        f"          stat_prefix: ingress_http\n          drain_timeout: {drain_timeout}\n",
    )
    cfg = write_config(tmp_path, text)
    return Proxy(procs, cfg, ["--drain-time-s", str(drain_time_s), "--concurrency", "2"],
                 listen_port=listen, admin_port=admin)


def read_response(sock, timeout=10.0):
    """One HTTP/1.1 response with Content-Length: (status, headers, body)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        d = sock.recv(65536)
        if not d:
            raise ConnectionError(f"closed before a response: {data!r}")
        data += d
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, v = l.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        d = sock.recv(65536)
        if not d:
            raise ConnectionError("closed mid-body")
        rest += d
    return status, headers, rest[:n]


def closed_by_peer(sock, within=3.0):
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def refuses(port, within=2.0):
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return True
        time.sleep(0.05)
    return False


def get(sock, path="/"):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())


def kept_alive(proxy):
    """A connection that has carried one request and stays open."""
    s = socket.create_connection(("127.0.0.1", proxy.listen_port))
    get(s)
    assert read_response(s)[0] == 200
    return s


def test_sigterm_finishes_in_flight_requests_then_exits_0(procs, tmp_path):
    backend = RawBackend(slow(1.0, b"late"))
    proxy = drain_proxy(procs, tmp_path, static_cluster(backend.port))
    socks = [socket.create_connection(("127.0.0.1", proxy.listen_port)) for _ in range(6)]
    for s in socks:
        get(s)
    time.sleep(0.4)  # all six are waiting on the slow backend
    t0 = time.time()
    proxy.proc.send_signal(signal.SIGTERM)
    assert refuses(proxy.listen_port), "listener still accepting after SIGTERM"
    for s in socks:
        status, headers, body = read_response(s)
        assert (status, body) == (200, b"late")
        assert headers.get("connection") == "close", headers
        assert closed_by_peer(s)
    assert proxy.proc.wait(timeout=5) == 0
    assert time.time() - t0 < 4
    assert "draining" in proxy.log()
    backend.close()


def test_sigterm_closes_idle_keepalive_connections_after_drain_timeout(procs, tmp_path):
    echo = Echo(procs, "127.0.0.1")
    proxy = drain_proxy(procs, tmp_path, static_cluster(echo.port), drain_timeout="0.5s")
    idle = kept_alive(proxy)
    late = kept_alive(proxy)
    t0 = time.time()
    proxy.proc.send_signal(signal.SIGTERM)
    # A request sent during the grace is still served, with close.
    time.sleep(0.1)
    get(late)
    status, headers, _ = read_response(late)
    assert status == 200 and headers.get("connection") == "close"
    # The idle one is closed after drain_timeout (not at once, not never).
    assert closed_by_peer(idle, within=3.0)
    took = time.time() - t0
    assert 0.4 <= took < 2.0, took
    assert proxy.proc.wait(timeout=5) == 0


def test_drain_under_load_loses_no_request(procs, tmp_path):
    echo = Echo(procs, "127.0.0.1")
    proxy = drain_proxy(procs, tmp_path, static_cluster(echo.port))
    results = []
    stop = time.time() + 10  # bound on the load loop

    def client():
        ok = lost = 0
        closed_by_drain = False
        s = socket.create_connection(("127.0.0.1", proxy.listen_port))
        while time.time() < stop:
            try:
                get(s, "/")
                status, headers, _ = read_response(s, timeout=5)
            except (ConnectionError, OSError):
                lost += 1  # sent on an open connection, no answer
                break
            assert status == 200
            ok += 1
            if headers.get("connection") == "close":
                closed_by_drain = closed_by_peer(s)
                break
        s.close()
        results.append((ok, lost, closed_by_drain))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    proxy.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=15)
    assert len(results) == 8
    assert sum(r[1] for r in results) == 0, results
    assert all(r[2] for r in results), f"every client saw Connection: close, then EOF: {results}"
    assert sum(r[0] for r in results) > 100, results
    assert proxy.proc.wait(timeout=5) == 0


def post_admin(proxy, path):
    req = urllib.request.Request(f"http://{proxy.admin}{path}", method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read().decode()


def test_drain_listeners_closes_listener_and_keeps_running(procs, tmp_path):
    echo = Echo(procs, "127.0.0.1")
    proxy = drain_proxy(procs, tmp_path, static_cluster(echo.port), drain_timeout="0.3s")
    idle = kept_alive(proxy)
    assert post_admin(proxy, "/drain_listeners") == "OK\n"
    assert refuses(proxy.listen_port)
    assert closed_by_peer(idle, within=2.0)
    # The process and its admin stay up; the state says draining.
    time.sleep(0.3)
    assert proxy.proc.poll() is None
    assert proxy.stat("server.state") == 1
    assert proxy.stat("http.ingress_http.downstream_cx_drain_close") >= 1


def test_graceful_drain_listeners_keeps_accepting_for_the_drain_time(procs, tmp_path):
    echo = Echo(procs, "127.0.0.1")
    proxy = drain_proxy(procs, tmp_path, static_cluster(echo.port), drain_time_s=2)
    assert post_admin(proxy, "/drain_listeners?graceful") == "OK\n"
    # Still accepting, but every response closes its connection.
    s = socket.create_connection(("127.0.0.1", proxy.listen_port))
    get(s)
    status, headers, _ = read_response(s)
    assert status == 200 and headers.get("connection") == "close"
    assert closed_by_peer(s)
    # After --drain-time-s the listener closes.
    assert refuses(proxy.listen_port, within=4.0)


def test_sigterm_lets_an_h2_stream_in_flight_finish(procs, tmp_path):
    backend = RawBackend(slow(1.0, b"late"))
    proxy = drain_proxy(procs, tmp_path, static_cluster(backend.port))
    curl = subprocess.Popen(
        ["curl", "-sS", "--http2-prior-knowledge", "-m", "10", "-w", "\n%{http_code}",
         f"http://{proxy.base}/"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.4)
    proxy.proc.send_signal(signal.SIGTERM)
    out, err = curl.communicate(timeout=10)
    assert curl.returncode == 0, err
    assert out.decode().split("\n") == ["late", "200"]
    assert proxy.proc.wait(timeout=5) == 0
    backend.close()
