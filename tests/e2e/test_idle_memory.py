"""An idle keep-alive connection holds no buffer and a small task: a guard
against the regression bench/RESULTS.md records (an HTTP/2 connection's
state inlined into every connection's task cost ~8 KB per idle
connection for two sessions before the benchmark caught it). Not a timing
test: it counts resident bytes per connection, with a wide margin (a
fresh process measures ~1.8 KB; the regression measured ~9 KB)."""

import resource
import socket

import pytest

from backends import RawBackend, answer, recv_until
from conftest import rss_kib, start_proxy, static_cluster

N = 2000



def idle_proxy(procs, tmp_path, n):
    """A one-worker proxy in front of an answering backend, with room for
    `n` client sockets in this process; returns it and its RSS now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 500), hard))
    b = RawBackend(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    p = start_proxy(procs, tmp_path, static_cluster(b.port), args=("--concurrency", "1"))
    p.quiet()
    return p, rss_kib(p.proc.pid)


def test_idle_keepalive_connections_cost_under_4_kib_each(procs, tmp_path):
    p, before = idle_proxy(procs, tmp_path, N)
    socks = []
    try:
        for _ in range(N):
            s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            out = recv_until(s, lambda d: d.endswith(b"\r\n\r\nok"))
            assert out is not None and out.startswith(b"HTTP/1.1 200"), out
            socks.append(s)
        assert p.stat("http.ingress_http.downstream_cx_active") == N
        per_conn = (rss_kib(p.proc.pid) - before) * 1024 / N
        assert per_conn < 4096, f"{per_conn:.0f} bytes per idle connection"
    finally:
        for s in socks:
            s.close()


H2_N = 1000


def test_idle_http2_connections_cost_under_8_kib_each(procs, tmp_path):
    """An h2c connection that served a request and went idle gives its
    read and write buffers back and keeps a small task: ~3.8 KB each
    (fresh process); 19 KB before the buffers were released and the
    handshake and hyper's branch were boxed out of the task."""
    from h2client import H2Client

    p, before = idle_proxy(procs, tmp_path, H2_N)
    clients = []
    try:
        for _ in range(H2_N):
            c = H2Client(p.listen_port)
            r = c.wait([c.request([])])[0]
            assert r["status"] == 200 and r["data"] == b"ok", r
            clients.append(c)
        assert p.stat("http.ingress_http.downstream_cx_active") == H2_N
        per_conn = (rss_kib(p.proc.pid) - before) * 1024 / H2_N
        print(f"{per_conn:.0f} bytes per idle HTTP/2 connection")
        assert per_conn < 8192, f"{per_conn:.0f} bytes per idle HTTP/2 connection"
    finally:
        for c in clients:
            c.close()
