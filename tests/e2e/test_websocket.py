"""WebSocket through nuncio with the Python `websockets` client: the
blog's use_websocket route, v3 upgrade_configs, 403 where not allowed,
only a 101 opens a tunnel, half-close and close codes pass through."""

import asyncio
import os
import signal
import socket
import time

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from backends import RawBackend
from conftest import Echo, Proxy, blog_proxy, free_port, proxy_config, rss_kib, start_proxy, static_cluster, write_config


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=60))


async def exchange(url, sizes=(1, 125, 126, 65535, 65536, 1 << 20)):
    async with websockets.connect(url, max_size=None) as ws:
        for n in sizes:
            text = "é" * (n // 2) or "x"
            await ws.send(text)
            assert await ws.recv() == text
            data = os.urandom(n)
            await ws.send(data)
            got = await ws.recv()
            assert isinstance(got, bytes) and got == data
        for i in range(200):
            await ws.send(f"m{i}")
        for i in range(200):
            assert await ws.recv() == f"m{i}"


def test_blog_ws_route_echoes_text_and_binary(procs, tmp_path):
    proxy, _ = blog_proxy(procs, tmp_path, config="simple-proxy-ws.yaml")
    run(exchange(f"ws://{proxy.base}/ws"))
    assert proxy.stat("http.ingress_http.downstream_cx_upgrades_total") == 1


def test_many_concurrent_sockets(procs, tmp_path):
    proxy, _ = blog_proxy(procs, tmp_path, config="simple-proxy-ws.yaml")

    async def one(i):
        async with websockets.connect(f"ws://{proxy.base}/ws") as ws:
            for j in range(20):
                await ws.send(f"{i}-{j}")
                assert await ws.recv() == f"{i}-{j}"

    async def all_():
        await asyncio.gather(*(one(i) for i in range(50)))

    run(all_())
    assert proxy.stat("http.ingress_http.downstream_cx_upgrades_total") == 50


def test_close_code_passes_through(procs, tmp_path):
    proxy, _ = blog_proxy(procs, tmp_path, config="simple-proxy-ws.yaml")

    async def go():
        ws = await websockets.connect(f"ws://{proxy.base}/ws")
        await ws.close(code=4001, reason="bye")
        return ws.close_code

    assert run(go()) == 4001


def test_upgrade_on_a_route_without_websocket_is_403(procs, tmp_path):
    proxy, _ = blog_proxy(procs, tmp_path)  # simple-proxy.yaml: no use_websocket

    async def go():
        await websockets.connect(f"ws://{proxy.base}/ws")

    with pytest.raises(InvalidStatus) as e:
        run(go())
    assert e.value.response.status_code == 403
    assert proxy.stat("http.ingress_http.downstream_rq_ws_on_non_ws_route") == 1


def test_v3_upgrade_configs_and_per_route_disable(procs, tmp_path):
    e = Echo(procs, "127.0.0.1")
    listen, admin = free_port(), free_port()
    routes = (
        '              - match: {prefix: "/ws-off"}\n'
        '                route: {cluster: backend, upgrade_configs: [{upgrade_type: websocket, enabled: false}]}\n'
        '              - match: {prefix: "/"}\n'
        '                route: {cluster: backend}\n'
    )
    text = proxy_config(listen, admin, static_cluster(e.port), routes=routes)
    text = text.replace("          stat_prefix: ingress_http\n", "          stat_prefix: ingress_http\n          upgrade_configs: [{upgrade_type: websocket}]\n")
    p = Proxy(procs, write_config(tmp_path, text), listen_port=listen, admin_port=admin)
    run(exchange(f"ws://{p.base}/ws", sizes=(10,)))
    with pytest.raises(InvalidStatus) as err:
        run(websockets.connect(f"ws://{p.base}/ws-off"))
    assert err.value.response.status_code == 403


def upgrade_request(path="/ws"):
    return (
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def ws_backend(behave):
    return RawBackend(behave)


def test_only_101_opens_a_tunnel(procs, tmp_path):
    def refuse(c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno")
        time.sleep(0.5)
        c.sendall(b"tunnel bytes that must not reach the client")

    b = RawBackend(refuse)
    routes = '              - match: {prefix: "/"}\n                route: {cluster: backend, use_websocket: true}\n'
    p = start_proxy(procs, tmp_path, static_cluster(b.port), routes=routes)
    s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=3)
    s.sendall(upgrade_request())
    out = b""
    while True:
        try:
            d = s.recv(4096)
        except socket.timeout:
            break
        if not d:
            break
        out += d
    assert out.startswith(b"HTTP/1.1 200 OK"), out
    assert out.endswith(b"no"), out
    assert b"connection: close" in out.lower()
    assert b"tunnel bytes" not in out
    assert p.stat("http.ingress_http.downstream_cx_upgrades_total") == 0
    b.close()


def test_half_close_and_route_timeout(procs, tmp_path):
    """After the 101, the client half-closes; the backend sees EOF, answers,
    and the answer still reaches the client. The route timeout (0.3s) does
    not cut the established tunnel."""
    seen = {}

    def backend(c):
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
        got = b""
        while True:
            d = c.recv(4096)
            if not d:
                break
            got += d
        seen["eof_at"] = time.time()
        c.sendall(b"got:" + got)

    b = RawBackend(backend)
    routes = '              - match: {prefix: "/"}\n                route: {cluster: backend, use_websocket: true, timeout: 0.3s}\n'
    p = start_proxy(procs, tmp_path, static_cluster(b.port), routes=routes)
    s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=5)
    s.sendall(upgrade_request())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    import re
    assert re.search(rb"(?i:sec-websocket-accept): s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=", head), head
    time.sleep(1.0)  # longer than the route timeout
    s.sendall(b"hello")
    sent_eof = time.time()
    s.shutdown(socket.SHUT_WR)
    rest = head.split(b"\r\n\r\n", 1)[1]
    while True:
        d = s.recv(4096)
        if not d:
            break
        rest += d
    assert rest == b"got:hello"
    assert seen["eof_at"] - sent_eof < 1.0
    b.close()


def test_backend_killed_mid_session_closes_the_client(procs, tmp_path):
    proxy, echos = blog_proxy(procs, tmp_path, config="simple-proxy-ws.yaml")

    async def go():
        async with websockets.connect(f"ws://{proxy.base}/ws") as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            for e in echos:
                os.killpg(e.proc.pid, signal.SIGKILL)
            t0 = time.time()
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), timeout=5)
            return time.time() - t0

    assert run(go()) < 1.0
    assert proxy.proc.poll() is None


def test_slow_reader_applies_backpressure(procs, tmp_path):
    """The upstream accepts the WebSocket and then never reads. The client
    keeps writing: the proxy must stop reading too (TCP backpressure), not
    buffer the stream in memory."""
    import threading
    stop = threading.Event()

    def never_reads(c):
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
        stop.wait(30)

    b = RawBackend(never_reads)
    routes = '              - match: {prefix: "/"}\n                route: {cluster: backend, use_websocket: true}\n'
    p = start_proxy(procs, tmp_path, static_cluster(b.port), routes=routes)
    before = rss_kib(p.proc.pid)
    s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=5)
    s.sendall(upgrade_request())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 101")
    s.settimeout(0.5)
    chunk = b"x" * 65536
    sent = 0
    deadline = time.time() + 10
    try:
        while sent < 256 * 1024 * 1024 and time.time() < deadline:
            sent += s.send(chunk)
    except socket.timeout:
        pass
    grown = rss_kib(p.proc.pid) - before
    stop.set()
    s.close()
    b.close()
    # Writes stall after socket buffers fill (a few MiB on loopback), and the
    # proxy holds only its fixed copy buffers.
    assert sent < 64 * 1024 * 1024, sent
    assert grown < 16 * 1024, grown
