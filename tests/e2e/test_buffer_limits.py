"""A slow reader applies backpressure instead of growing the proxy's
memory, in both directions, and nothing is lost: the listener's
`per_connection_buffer_limit_bytes` caps what one read takes (nuncio holds
at most min(limit, 64 KiB) of body per direction; Envoy's default limit is
1 MiB)."""

import hashlib
import socket
import threading
import time

import pytest

from backends import RawBackend
from conftest import free_port, proxy_config, rss_kib, static_cluster, write_config, Proxy

SIZE = 48 * 1024 * 1024


def proxy_with_limit(procs, tmp_path, port, limit):
    listen, admin = free_port(), free_port()
    text = proxy_config(listen, admin, static_cluster(port))
    if limit:
        at = f"  - address: {{socket_address: {{address: 127.0.0.1, port_value: {listen}}}}}\n"
        assert at in text
        text = text.replace(at, at + f"    per_connection_buffer_limit_bytes: {limit}\n")
    return Proxy(procs, write_config(tmp_path, text), listen_port=listen, admin_port=admin)


def pattern(n):
    """Deterministic body bytes, so a loss or reordering shows."""
    block = hashlib.sha256(b"nuncio").digest() * 2048  # 64 KiB
    return (block * (n // len(block) + 1))[:n]


@pytest.mark.parametrize("limit", [None, 16384])
def test_slow_reader_of_a_large_response_holds_the_upstream_back(procs, tmp_path, limit):
    body = pattern(SIZE)
    written = [0]

    def stream(c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % SIZE)
        for i in range(0, SIZE, 65536):
            c.sendall(body[i:i + 65536])
            written[0] = i + 65536

    b = RawBackend(stream)
    p = proxy_with_limit(procs, tmp_path, b.port, limit)
    before = rss_kib(p.proc.pid)
    s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(2)  # read nothing: the proxy must stop reading the upstream
    stalled_at = written[0]
    grown = rss_kib(p.proc.pid) - before
    got = bytearray()
    deadline = time.time() + 30
    while time.time() < deadline and len(got) < SIZE:
        d = s.recv(1 << 20)
        if not d:
            break
        got += d
    while b"\r\n\r\n" in got and len(got.split(b"\r\n\r\n", 1)[1]) < SIZE and time.time() < deadline:
        d = s.recv(1 << 20)
        if not d:
            break
        got += d
    s.close()
    b.close()
    print(f"limit {limit}: upstream stalled after {stalled_at} bytes; proxy RSS grew {grown} KiB")
    # Kernel socket buffers on loopback hold a few MiB; the rest waited.
    assert stalled_at < SIZE // 2, stalled_at
    assert grown < 4096, f"proxy RSS grew by {grown} KiB"
    head, rest = bytes(got).split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200")
    assert len(rest) == SIZE and rest == body


def test_upstream_that_reads_slowly_holds_the_client_back(procs, tmp_path):
    """The other direction: an upload to an upstream that does not read."""
    release = threading.Event()
    received = []

    def slow_reader(c):
        release.wait(20)
        n = len(b.leftovers[-1])  # body bytes that came with the head
        while n < SIZE:
            d = c.recv(1 << 20)
            if not d:
                break
            n += len(d)
        received.append(n)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    b = RawBackend(slow_reader)
    p = proxy_with_limit(procs, tmp_path, b.port, 16384)
    before = rss_kib(p.proc.pid)
    s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=10)
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % SIZE)
    s.setblocking(False)
    body = pattern(SIZE)
    sent = 0
    deadline = time.time() + 2
    while time.time() < deadline and sent < SIZE:
        try:
            sent += s.send(body[sent:sent + 65536])
        except BlockingIOError:
            time.sleep(0.01)
    grown = rss_kib(p.proc.pid) - before
    stalled_at = sent
    release.set()
    s.setblocking(True)
    s.sendall(body[sent:])
    s.settimeout(20)
    out = b""
    while not out.endswith(b"ok"):
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    b.close()
    print(f"upload stalled after {stalled_at} bytes; proxy RSS grew {grown} KiB")
    assert stalled_at < SIZE // 2, stalled_at
    assert grown < 4096, f"proxy RSS grew by {grown} KiB"
    assert out.startswith(b"HTTP/1.1 200"), out
    assert received == [SIZE]
