"""HTTP/2: h2c downstream beside HTTP/1.1 (codec auto), forced codecs,
h2c upstream with multiplexing and the peer's stream limit, requests kept
intact across versions, gRPC through the proxy."""

import re
import subprocess
import time
from concurrent import futures

import grpc
import pytest

from backends import RawBackend, slow
from conftest import H2_CLUSTER_OPTIONS, Echo, Proxy, blog_proxy, curl, free_port, proxy_config, raw_request, static_cluster, write_config


def h2load(url, n, c, m, timeout=60):
    out = subprocess.run(["h2load", "-n", str(n), "-c", str(c), "-m", str(m), url], capture_output=True, text=True, timeout=timeout).stdout
    done = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    assert done and codes, out
    return {"done": int(done.group(2)), "ok": int(done.group(3)), "failed": int(done.group(4)), "2xx": int(codes.group(1))}


def test_h2c_and_http11_on_the_same_port(procs, tmp_path):
    proxy, _ = blog_proxy(procs, tmp_path)
    out = subprocess.run(
        ["curl", "-s", "--http2-prior-knowledge", "-w", "\n%{http_version}", f"http://{proxy.base}/hello", "-H", "X-Custom: h2"],
        capture_output=True, text=True, timeout=10,
    ).stdout
    body, version = out.rsplit("\n", 1)
    assert version == "2"
    assert "X-Custom:[h2]" in body and "Via:[2.0 nuncio-" in body
    status, _, body = curl(f"http://{proxy.base}/hello")
    assert status == 200 and "Via:[1.1 nuncio-" in body
    data = tmp_path / "b.bin"
    data.write_bytes(bytes(range(256)) * 8192)
    out_file = tmp_path / "o.bin"
    subprocess.run(["curl", "-s", "--http2-prior-knowledge", "--data-binary", f"@{data}", "-o", str(out_file), f"http://{proxy.base}/echo"], check=True, timeout=20)
    assert out_file.read_bytes() == data.read_bytes()
    assert proxy.stat("http.ingress_http.downstream_cx_http2_total") >= 2
    assert proxy.stat("http.ingress_http.downstream_rq_http2_total") == 2
    assert proxy.stat("http.ingress_http.downstream_rq_http1_total") == 1


def test_h2load_many_streams(procs, tmp_path):
    proxy, _ = blog_proxy(procs, tmp_path)
    r = h2load(f"http://{proxy.base}/hello", n=2000, c=4, m=10)
    assert r == {"done": 2000, "ok": 2000, "failed": 0, "2xx": 2000}
    assert proxy.stat("cluster.myservice.upstream_rq_2xx") == 2000


def test_forced_codecs(procs, tmp_path):
    e = Echo(procs, "127.0.0.1")
    cluster = static_cluster(e.port)
    for codec, h1_ok, h2_ok in (("http1", True, False), ("http2", False, True)):
        listen, admin = free_port(), free_port()
        text = proxy_config(listen, admin, cluster).replace("stat_prefix: ingress_http", f"stat_prefix: ingress_http\n          codec_type: {codec}")
        p = Proxy(procs, write_config(tmp_path, text, name=f"{codec}.yaml"), listen_port=listen, admin_port=admin)
        assert (curl(f"http://{p.base}/hello", timeout=3)[0] == 200) == h1_ok, codec
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3", "--http2-prior-knowledge", f"http://{p.base}/hello"], capture_output=True, text=True)
        assert (r.stdout == "200") == h2_ok, (codec, r.stdout)


def h2_sidecar(procs, tmp_path, backend_port, max_streams=None):
    """A nuncio speaking h2c downstream (codec auto) in front of `backend_port`."""
    listen, admin = free_port(), free_port()
    text = proxy_config(listen, admin, static_cluster(backend_port))
    if max_streams:
        text = text.replace("stat_prefix: ingress_http", f"stat_prefix: ingress_http\n          http2_protocol_options: {{max_concurrent_streams: {max_streams}}}")
    return Proxy(procs, write_config(tmp_path, text, name="sidecar.yaml"), listen_port=listen, admin_port=admin)


def h2_front(procs, tmp_path, upstream_port, v3=False):
    listen, admin = free_port(), free_port()
    if v3:
        proto = H2_CLUSTER_OPTIONS
    else:
        proto = "    http2_protocol_options: {}\n"
    cluster = f"    type: static\n{proto}    hosts: [{{socket_address: {{address: 127.0.0.1, port_value: {upstream_port}}}}}]\n"
    routes = '              - match: {prefix: "/"}\n                route: {cluster: backend, use_websocket: true}\n'
    return Proxy(procs, write_config(tmp_path, proxy_config(listen, admin, cluster, routes=routes), name="front.yaml"), listen_port=listen, admin_port=admin)


@pytest.mark.parametrize("v3", [False, True])
def test_h2c_upstream_multiplexes(procs, tmp_path, v3):
    e = Echo(procs, "127.0.0.1")
    side = h2_sidecar(procs, tmp_path, e.port)
    front = h2_front(procs, tmp_path, side.listen_port, v3=v3)
    r = h2load(f"http://{front.base}/hello", n=500, c=2, m=20)
    assert r["ok"] == 500
    # Many requests, few connections: all HTTP/2.
    assert front.stat("cluster.backend.upstream_cx_http2_total") >= 1
    assert front.stat("cluster.backend.upstream_cx_http1_total") == 0
    assert front.stat("cluster.backend.upstream_cx_total") <= 4
    assert side.stat("http.ingress_http.downstream_rq_http2_total") == 500


def test_peer_stream_limit_opens_more_connections(procs, tmp_path):
    b = RawBackend(slow(0.5, b"slow"))
    side = h2_sidecar(procs, tmp_path, b.port, max_streams=2)
    front = h2_front(procs, tmp_path, side.listen_port)
    t0 = time.time()
    r = h2load(f"http://{front.base}/", n=10, c=1, m=10)
    took = time.time() - t0
    assert r["ok"] == 10
    # 10 concurrent requests, at most 2 streams per upstream connection.
    assert front.stat("cluster.backend.upstream_cx_http2_total") >= 5
    assert took < 3, took  # they ran in parallel, not 10 x 0.5s
    b.close()


def test_trailers_cross_http1_http2_http1(procs, tmp_path):
    e = Echo(procs, "127.0.0.1")
    side = h2_sidecar(procs, tmp_path, e.port)
    front = h2_front(procs, tmp_path, side.listen_port)
    req = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nTrailer: X-Checksum\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc123\r\n\r\n"
    )
    out, _ = raw_request(front.listen_port, req, timeout=5)
    assert out.startswith(b"HTTP/1.1 200"), out
    assert b"hello" in out and b" world" in out
    assert re.search(rb"\r\n0\r\nx-checksum: abc123\r\n\r\n$", out, re.I), out


def test_websocket_refused_beyond_an_h2_hop_is_relayed(procs, tmp_path):
    """The front proxy allows /ws but the sidecar's route does not: the
    sidecar's 403 comes back through the HTTP/2 hop. (The accepted case is
    test_mesh.py::test_mesh_websocket_over_the_h2_hop.)"""
    import asyncio
    import websockets
    import websockets.exceptions
    e = Echo(procs, "127.0.0.1")
    side = h2_sidecar(procs, tmp_path, e.port)
    front = h2_front(procs, tmp_path, side.listen_port)

    async def go():
        async with websockets.connect(f"ws://{front.base}/ws", max_size=None) as ws:
            await ws.send("over h2")
            return await ws.recv()

    with pytest.raises(websockets.exceptions.InvalidStatus) as err:
        asyncio.run(asyncio.wait_for(go(), 10))
    assert err.value.response.status_code == 403
    assert side.stat("http.ingress_http.downstream_rq_ws_on_non_ws_route") == 1


# --- gRPC -----------------------------------------------------------------

SERVICE = "test.Echo"


def grpc_server():
    def unary(req, ctx):
        return b"echo:" + req

    def server_stream(req, ctx):
        for i in range(int(req)):
            yield b"item-%d" % i

    def bidi(it, ctx):
        for m in it:
            yield m.upper()

    def fail_after_two(req, ctx):
        yield b"one"
        yield b"two"
        ctx.abort(grpc.StatusCode.DATA_LOSS, "lost it")

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.unary_stream_rpc_method_handler(server_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Fail": grpc.unary_stream_rpc_method_handler(fail_after_two),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def test_grpc_unary_and_streaming(procs, tmp_path):
    server, port = grpc_server()
    try:
        front = h2_front(procs, tmp_path, port)
        ch = grpc.insecure_channel(front.base, options=[("grpc.enable_http_proxy", 0)])
        assert ch.unary_unary(f"/{SERVICE}/Unary")(b"hi", timeout=10) == b"echo:hi"
        assert list(ch.unary_stream(f"/{SERVICE}/Stream")(b"5", timeout=10)) == [b"item-%d" % i for i in range(5)]
        assert list(ch.stream_stream(f"/{SERVICE}/Bidi")(iter([b"a", b"b", b"c"]), timeout=10)) == [b"A", b"B", b"C"]
        got = []
        with pytest.raises(grpc.RpcError) as e:
            for m in ch.unary_stream(f"/{SERVICE}/Fail")(b"", timeout=10):
                got.append(m)
        assert got == [b"one", b"two"]
        assert e.value.code() == grpc.StatusCode.DATA_LOSS  # grpc-status came in the trailers
        assert e.value.details() == "lost it"
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary(f"/{SERVICE}/Nope")(b"", timeout=10)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
        ch.close()
        assert front.stat("cluster.backend.upstream_cx_http2_total") >= 1
    finally:
        server.stop(0)
