"""`headers_with_underscores_action` (common_http_protocol_options): some
backends treat `x_user` and `x-user` as one header, so a client could slip
a value past whoever checked `x-user`. REJECT_REQUEST refuses the request
(400 on HTTP/1.1; a stream reset on HTTP/2, as Envoy does) before any
upstream sees it; DROP_HEADER removes the field; ALLOW (Envoy's default)
forwards it. Envoy's counters `http1.*` / `http2.*` count each case."""


import pytest

from backends import RawBackend, answer
from conftest import curl, raw_request, start_proxy, static_cluster
from h2client import H2Client

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def proxy_with(procs, tmp_path, port, action):
    extra = f"          common_http_protocol_options: {{headers_with_underscores_action: {action}}}\n"
    return start_proxy(procs, tmp_path, static_cluster(port), hcm_extra=extra if action else "")


def get(port, extra=b""):
    out, _ = raw_request(port, b"GET / HTTP/1.1\r\nHost: a\r\n" + extra + b"Connection: close\r\n\r\n")
    return out


def test_reject_request_over_http1_is_a_400_that_reaches_no_upstream(procs, tmp_path):
    b = RawBackend(answer(OK))
    proxy = proxy_with(procs, tmp_path, b.port, "REJECT_REQUEST")
    out = get(proxy.listen_port, b"x_user: admin\r\n")
    assert out.startswith(b"HTTP/1.1 400 "), out
    assert b.requests == 0, b.heads
    assert proxy.stat("http1.requests_rejected_with_underscores_in_headers") == 1
    # Names with dashes only are untouched, and the proxy keeps serving.
    assert get(proxy.listen_port, b"x-user: admin\r\n").startswith(b"HTTP/1.1 200 ")
    assert b.requests == 1 and "x-user: admin" in b.heads[0].lower()
    b.close()


def test_reject_request_over_http2_resets_the_stream(procs, tmp_path):
    b = RawBackend(answer(OK))
    proxy = proxy_with(procs, tmp_path, b.port, "REJECT_REQUEST")
    c = H2Client(proxy.listen_port)
    bad, good = c.request([("x_user", "admin")]), c.request([("x-user", "admin")])
    r_bad, r_good = c.wait([bad, good])
    # Envoy resets the stream.
    assert r_bad["status"] is None and r_bad["reset"] is not None, r_bad
    assert r_good["status"] == 200 and r_good["data"] == b"ok"
    c.close()
    assert b.requests == 1 and "x_user" not in b.heads[0]
    assert proxy.stat("http2.requests_rejected_with_underscores_in_headers") == 1
    b.close()


def test_drop_header_removes_only_the_underscored_fields(procs, tmp_path):
    b = RawBackend(answer(OK))
    proxy = proxy_with(procs, tmp_path, b.port, "DROP_HEADER")
    out = get(proxy.listen_port, b"x_user: admin\r\nx-user: alice\r\nmy_other: 1\r\n")
    assert out.startswith(b"HTTP/1.1 200 "), out
    head = b.heads[0].lower()
    assert "x-user: alice" in head
    assert "x_user" not in head and "my_other" not in head, head
    assert proxy.stat("http1.dropped_headers_with_underscores") == 2
    # Over HTTP/2 (curl, prior knowledge) too.
    status, _, _ = curl("--http2-prior-knowledge", "-H", "x_user: admin", f"http://{proxy.base}/")
    assert status == 200
    assert "x_user" not in b.heads[1].lower(), b.heads[1]
    assert proxy.stat("http2.dropped_headers_with_underscores") == 1
    b.close()


@pytest.mark.parametrize("action", ["", "ALLOW"])
def test_allow_forwards_them_as_envoy_does_by_default(procs, tmp_path, action):
    b = RawBackend(answer(OK))
    proxy = proxy_with(procs, tmp_path, b.port, action)
    assert get(proxy.listen_port, b"x_user: admin\r\n").startswith(b"HTTP/1.1 200 ")
    assert "x_user: admin" in b.heads[0]
    assert proxy.stat("http1.dropped_headers_with_underscores") == 0
    b.close()
