"""Scenario 2 of the blog, through ./run-blog.sh as a user runs it:
HTTP/1.1 → front proxy → HTTP/2 → sidecar → HTTP/1.1 → echo, WebSocket
included; and the blog's sidecar config as printed, which loops."""

import asyncio
import os
import time

import websockets

from conftest import curl


def test_mesh_get_post_and_http2_between_proxies(blog_run):
    m = blog_run("mesh")
    status, headers, body = curl(f"http://{m.base}/")
    assert status == 200
    lines = body.split("\n")
    via = next(l for l in lines if l.startswith("Via:["))
    # The sidecar received the request over HTTP/2 from the front proxy.
    assert via.startswith("Via:[1.1 nuncio-") and ", 2.0 nuncio-" in via, via
    status, _, body = curl("-X", "POST", f"http://{m.base}/echo", "-H", "Content-Type: application/json", "-d", '{"name": "zcong"}')
    assert (status, body) == (200, '{"name": "zcong"}')
    names = {curl(f"http://{m.base}/hello")[1]["x-echo-name"] for _ in range(4)}
    assert names == {"service1", "service2"}
    assert m.stat("cluster.myservice.upstream_cx_http2_total") == 2  # one per sidecar
    assert m.stat("cluster.myservice.upstream_cx_http1_total") == 0
    total_h2 = 0
    for ip in ("127.0.0.2", "127.0.0.3"):
        side = m.sidecar_admin(ip)
        total_h2 += m.stat("http.ingress_http.downstream_rq_http2_total", admin=side)
        assert m.stat("http.ingress_http.downstream_rq_http1_total", admin=side) == 0
        assert m.stat("cluster.local_service.upstream_cx_http1_total", admin=side) >= 1
    assert total_h2 == 6


def test_mesh_websocket_over_the_h2_hop(blog_run):
    m = blog_run("mesh")

    async def go():
        async with websockets.connect(f"ws://{m.base}/ws", max_size=None) as ws:
            for n in (1, 1000, 1 << 20):
                data = os.urandom(n)
                await ws.send(data)
                assert await ws.recv() == data
                await ws.send("t" * n)
                assert await ws.recv() == "t" * n
            await ws.close(code=4002)
            return ws.close_code

    assert asyncio.run(asyncio.wait_for(go(), 30)) == 4002
    assert m.stat("http.ingress_http.downstream_cx_upgrades_total") == 1
    ups = sum(m.stat("http.ingress_http.downstream_cx_upgrades_total", admin=m.sidecar_admin(ip)) for ip in ("127.0.0.2", "127.0.0.3"))
    assert ups == 1


def test_blog_sidecar_as_printed_is_a_loop_answered_508(blog_run):
    m = blog_run("mesh-as-printed")
    t0 = time.time()
    status, _, body = curl(f"http://{m.base}/")
    assert time.time() - t0 < 2
    assert (status, body) == (508, "request loop detected")
    time.sleep(0.3)
    # One connection per hop, not a storm.
    assert m.stat("cluster.myservice.upstream_cx_total") <= 2
    detected = sum(m.stat("http.ingress_http.rq_loop_detected", admin=m.sidecar_admin(ip)) for ip in ("127.0.0.2", "127.0.0.3"))
    assert detected == 1
    log = m.log()
    assert "request loop" in log and "service-envoy.fixed.yaml" in log, log[-2000:]
    assert m.proc.poll() is None


def test_mesh_over_mutual_tls(blog_run):
    """./run-blog.sh mesh-mtls: HTTPS to the front proxy, HTTP/2 over mutual
    TLS to the sidecars, certificates made at start by the script."""
    import re
    import socket

    m = blog_run("mesh-mtls")
    deadline = time.time() + 10
    while time.time() < deadline and "Over TLS:" not in m.log():
        time.sleep(0.1)
    certs = re.search(r"certificates  (\S+)", m.log()).group(1)
    ca = f"{certs}/ca.pem"
    https = f"https://localhost:{m.ports['PROXY_TLS_PORT']}"
    # The README's commands.
    status, _, body = curl("--cacert", ca, f"{https}/")
    assert status == 200 and "User-Agent:[curl/" in body, body
    status, _, body = curl("--cacert", ca, "--http2", f"{https}/echo", "-H", "Content-Type: application/json",
                           "-d", '{"name": "zcong"}')
    assert (status, body) == (200, '{"name": "zcong"}')
    names = {curl("--cacert", ca, f"{https}/hello")[1]["x-echo-name"] for _ in range(4)}
    assert names == {"service1", "service2"}
    # The blog's plain port works too, over the same mTLS hops.
    assert curl(f"http://{m.base}/")[0] == 200
    # One HTTP/2-over-TLS connection per sidecar, each with a handshake.
    assert m.stat("cluster.myservice.ssl.handshake") == 2
    assert m.stat("cluster.myservice.upstream_cx_http2_total") == 2
    assert m.stat("listener.0.0.0.0_443.ssl.handshake") >= 1
    side = m.sidecar_admin("127.0.0.2")
    assert m.stat("listener.0.0.0.0_80.ssl.handshake", admin=side) == 1
    assert m.stat("listener.0.0.0.0_80.ssl.no_certificate", admin=side) == 0
    # The sidecars take no plain HTTP and no client without the front
    # proxy's certificate.
    sidecar = f"127.0.0.2:{m.ports['SIDECAR_PORT']}"
    assert curl(f"http://{sidecar}/")[0] is None
    assert curl("--cacert", ca, "--resolve", f"service1:{m.ports['SIDECAR_PORT']}:127.0.0.2",
                f"https://service1:{m.ports['SIDECAR_PORT']}/")[0] is None
    deadline = time.time() + 5
    while time.time() < deadline and m.stat("listener.0.0.0.0_80.ssl.fail_verify_no_cert", admin=side) != 1:
        time.sleep(0.05)
    assert m.stat("listener.0.0.0.0_80.ssl.fail_verify_no_cert", admin=side) == 1
    # No private key is left behind once it stops.
    m.stop()
    assert not os.path.exists(certs)
