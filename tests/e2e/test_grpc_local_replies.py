"""A gRPC client learns why its call failed: local replies to gRPC
requests come in gRPC form (HTTP 200, grpc-status from Envoy's table,
the text as grpc-message), as real Envoy 1.40 sends them. Checked with
grpcio over HTTP/2 clusters (a sidecar's case) and HTTP/1.1 clusters."""

import socket
import threading

import grpc
import pytest

from conftest import Proxy, curl, free_port, proxy_config, static_cluster, write_config

CONNECT_FAIL = ("upstream connect error or disconnect/reset before headers. "
                "reset reason: remote connection failure")


def silent_server():
    """Accepts connections and never answers (an upstream too slow)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)

    def run():
        conns = []
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            conns.append(c)

    threading.Thread(target=run, daemon=True).start()
    return s


ROUTES = (
    '              - match: {prefix: "/down."}\n                route: {cluster: backend}\n'
    '              - match: {prefix: "/slow."}\n                route: {cluster: slow, timeout: 0.5s}\n'
)


def front(procs, tmp_path, h2, name):
    """nuncio routing /down.* to a closed port and /slow.* (0.5 s route
    timeout) to a server that never answers, over HTTP/2 or HTTP/1.1."""
    slow = silent_server()
    proto = "    http2_protocol_options: {}\n" if h2 else ""
    listen, admin = free_port(), free_port()
    cfg = proxy_config(listen, admin, proto + static_cluster(free_port()), routes=ROUTES).replace(
        "\nadmin:",
        f"\n  - name: slow\n    connect_timeout: 0.25s\n{proto}{static_cluster(slow.getsockname()[1])}admin:",
    )
    return Proxy(procs, write_config(tmp_path, cfg, name), listen_port=listen, admin_port=admin), slow


@pytest.mark.parametrize("h2", [True, False], ids=["http2-cluster", "http1-cluster"])
def test_grpc_calls_get_grpc_status_and_message(procs, tmp_path, h2):
    proxy, slow = front(procs, tmp_path, h2, f"grpc-{h2}.yaml")
    ch = grpc.insecure_channel(proxy.base, options=[("grpc.enable_http_proxy", 0)])
    cases = [
        ("/down.Svc/M", grpc.StatusCode.UNAVAILABLE, CONNECT_FAIL),
        ("/slow.Svc/M", grpc.StatusCode.UNAVAILABLE, "upstream request timeout"),
        ("/none.Svc/M", grpc.StatusCode.UNIMPLEMENTED, None),
    ]
    for method, code, details in cases:
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary(method)(b"x", timeout=10)
        assert e.value.code() == code, (method, e.value.code(), e.value.details())
        if details is not None:
            assert e.value.details() == details, (method, e.value.details())
    ch.close()
    slow.close()


def test_grpc_local_reply_on_the_wire(procs, tmp_path):
    """The exact form, with curl: HTTP/2 200, trailers-only, Envoy's fields."""
    proxy, slow = front(procs, tmp_path, True, "wire.yaml")
    for extra in (["--http2-prior-knowledge"], []):
        status, headers, body = curl(
            *extra, "-H", "content-type: application/grpc", "-H", "te: trailers",
            "--data-binary", "", f"http://{proxy.base}/down.Svc/M",
        )
        assert status == 200, (extra, status, headers, body)
        assert headers.get("content-type") == "application/grpc"
        assert headers.get("grpc-status") == "14"
        assert headers.get("grpc-message") == CONNECT_FAIL
        assert "date" in headers and body == ""
    # gRPC-Web is answered in plain HTTP, as Envoy does.
    status, headers, body = curl(
        "-H", "content-type: application/grpc-web", f"http://{proxy.base}/down.Svc/M",
    )
    assert (status, body) == (503, CONNECT_FAIL)
    slow.close()
