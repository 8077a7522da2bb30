"""Request rules where nuncio was found to differ from Envoy 1.40 (issue
12), several of them security bugs: what reaches the upstream is checked
at the upstream itself (a recording backend), on both HTTP/1 engines and
over HTTP/2. tests/differential compares the same cases with real Envoy."""


import pytest

from backends import RawBackend, answer
from conftest import raw_request, start_proxy, static_cluster
from h2client import H2Client

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def status_of(resp):
    parts = resp.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and resp.startswith(b"HTTP/1.") else None


def fields(head):
    """The header lines of a recorded head as (lowercase name, value)."""
    out = []
    for line in head.split("\r\n")[1:]:
        n, _, v = line.partition(":")
        out.append((n.strip().lower(), v.strip()))
    return out


def values(head, name):
    return [v for n, v in fields(head) if n == name]


@pytest.fixture
def origin():
    b = RawBackend(answer(OK))
    yield b
    b.close()


REFUSED = [
    ("content-length list", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", 400),
    ("content-length twice", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400),
    ("host with a space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("raw non-ascii target", b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("target not origin-form", b"GET abc HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("unknown method", b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("request line counts toward the limit",
     b"GET /" + b"a" * 40 * 1024 + b" HTTP/1.1\r\nHost: a\r\nX: " + b"b" * 30 * 1024 + b"\r\n\r\n", 431),
    ("http/1.0 without host", b"GET / HTTP/1.0\r\n\r\n", 426),
]


@pytest.mark.parametrize("name,req,status", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_as_envoy_refuses_and_never_forwarded(procs, tmp_path, origin, name, req, status):
    proxy = start_proxy(procs, tmp_path, static_cluster(origin.port))
    out, closed = raw_request(proxy.listen_port, req)
    assert status_of(out) == status, (name, out[:300])
    assert closed, name
    assert b"\r\ndate: " in out.lower(), out[:300]
    # Envoy's codec answers with the reason phrase as the body.
    reason = out.split(b"\r\n", 1)[0].split(b" ", 2)[2]
    assert out.endswith(b"\r\n\r\n" + reason), out[:300]
    assert origin.requests == 0, origin.heads
    # The proxy still serves.
    out, _ = raw_request(proxy.listen_port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(out) == 200, out[:200]


def test_http10_takes_its_host_or_the_default(procs, tmp_path, origin):
    proxy = start_proxy(procs, tmp_path, static_cluster(origin.port))
    out, _ = raw_request(proxy.listen_port, b"GET /a HTTP/1.0\r\nHost: h\r\n\r\n")
    assert status_of(out) == 200, out[:200]
    assert values(origin.heads[-1], "host") == ["h"]
    extra = "          http_protocol_options: {default_host_for_http_10: dflt.example}\n"
    proxy = start_proxy(procs, tmp_path, static_cluster(origin.port), name="d.yaml", hcm_extra=extra)
    out, _ = raw_request(proxy.listen_port, b"GET /b HTTP/1.0\r\n\r\n")
    assert status_of(out) == 200, out[:200]
    head = origin.heads[-1]
    assert head.startswith("GET /b HTTP/1.1\r\n"), head
    assert values(head, "host") == ["dflt.example"], head


def test_absolute_form_is_routed_by_its_authority(procs, tmp_path, origin):
    routes = '              - match: {prefix: "/"}\n                route: {cluster: backend}\n'
    proxy = start_proxy(procs, tmp_path, static_cluster(origin.port), routes=routes, domains='["abs.example"]')
    out, _ = raw_request(proxy.listen_port, b"GET http://abs.example/x?q=1 HTTP/1.1\r\nHost: other\r\n\r\n")
    assert status_of(out) == 200, out[:200]
    head = origin.heads[-1]
    assert head.startswith("GET /x?q=1 HTTP/1.1\r\n"), head
    assert values(head, "host") == ["abs.example"], head
    # The Host header alone does not match that virtual host.
    out, _ = raw_request(proxy.listen_port, b"GET /x HTTP/1.1\r\nHost: other\r\n\r\n")
    assert status_of(out) == 404, out[:200]


CONTROL = ["x-envoy-retry-on", "x-envoy-max-retries", "x-envoy-upstream-rq-timeout-ms",
           "x-envoy-internal", "x-envoy-force-trace", "x-envoy-ip-tags",
           "x-envoy-retriable-status-codes", "x-envoy-hedge-on-per-try-timeout"]
EDGE = ["x-envoy-original-path", "x-envoy-decorator-operation",
        "x-envoy-downstream-service-cluster", "x-envoy-external-address"]


def envoy_headers_request():
    lines = b"".join(f"{n}: 1\r\n".encode() for n in CONTROL + EDGE)
    return (b"GET / HTTP/1.1\r\nHost: a\r\n" + lines + b"x-envoy-other: kept\r\n"
            b"x-forwarded-for: 1.2.3.4\r\nx-request-id: from-client\r\n\r\n")


def test_client_envoy_control_headers_never_reach_the_upstream(procs, tmp_path, origin):
    proxy = start_proxy(procs, tmp_path, static_cluster(origin.port))
    out, _ = raw_request(proxy.listen_port, envoy_headers_request())
    assert status_of(out) == 200, out[:200]
    names = [n for n, _ in fields(origin.heads[-1])]
    for n in CONTROL:
        assert n not in names, (n, origin.heads[-1])
    for n in EDGE + ["x-envoy-other"]:
        assert n in names, (n, origin.heads[-1])
    head = origin.heads[-1]
    assert values(head, "x-request-id") == ["from-client"]
    assert values(head, "x-forwarded-for") == ["1.2.3.4"]
    assert values(head, "x-envoy-expected-rq-timeout-ms") == ["15000"]


def test_at_the_edge_the_proxy_names_the_client_itself(procs, tmp_path, origin):
    extra = "          use_remote_address: true\n"
    proxy = start_proxy(procs, tmp_path, static_cluster(origin.port), hcm_extra=extra)
    out, _ = raw_request(proxy.listen_port, envoy_headers_request())
    assert status_of(out) == 200, out[:200]
    head = origin.heads[-1]
    names = [n for n, _ in fields(head)]
    for n in CONTROL + EDGE[:-1]:
        assert n not in names, (n, head)
    assert "x-envoy-other" in names
    assert values(head, "x-envoy-external-address") == ["127.0.0.1"], head
    # Envoy joins with a bare comma; for a loopback peer it appends the
    # host's own address.
    xff = values(head, "x-forwarded-for")
    assert len(xff) == 1 and xff[0].startswith("1.2.3.4,") and " " not in xff[0], head
    rid = values(head, "x-request-id")
    assert len(rid) == 1 and rid[0] != "from-client" and len(rid[0]) == 36, head
    # xff_num_trusted_hops: 1 trusts the last x-forwarded-for entry as the client.
    extra += "          xff_num_trusted_hops: 1\n"
    proxy = start_proxy(procs, tmp_path, static_cluster(origin.port), name="hops.yaml", hcm_extra=extra)
    raw_request(proxy.listen_port, envoy_headers_request())
    assert values(origin.heads[-1], "x-envoy-external-address") == ["1.2.3.4"], origin.heads[-1]


def test_connect_without_a_connect_route_is_404(procs, tmp_path, origin):
    proxy = start_proxy(procs, tmp_path, static_cluster(origin.port))
    out, closed = raw_request(proxy.listen_port, b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n")
    assert status_of(out) == 404, out[:200]
    assert origin.requests == 0


def test_h2_routes_and_forwards_on_authority_not_host(procs, tmp_path, origin):
    routes = '              - match: {prefix: "/"}\n                route: {cluster: backend}\n'
    proxy = start_proxy(procs, tmp_path, static_cluster(origin.port), routes=routes, domains='["good.example"]')
    c = H2Client(proxy.listen_port)
    r = c.wait([c.request([("host", "evil.example")], authority="good.example")])[0]
    assert r["status"] == 200, r
    head = origin.heads[-1]
    assert values(head, "host") == ["good.example"], head
    # Routed by :authority: a matching host field does not pick the vhost.
    r = c.wait([c.request([("host", "good.example")], authority="evil.example")])[0]
    assert r["status"] == 404, r
    assert origin.requests == 1
    c.close()


def test_h2_cookie_fields_become_one_http1_cookie(procs, tmp_path, origin):
    proxy = start_proxy(procs, tmp_path, static_cluster(origin.port))
    c = H2Client(proxy.listen_port)
    r = c.wait([c.request([("cookie", "a=1"), ("x-mid", "m"), ("cookie", "b=2")])])[0]
    assert r["status"] == 200, r
    assert values(origin.heads[-1], "cookie") == ["a=1; b=2"], origin.heads[-1]
    c.close()


def test_framing_details_as_envoy(procs, tmp_path, origin):
    proxy = start_proxy(procs, tmp_path, static_cluster(origin.port))
    port = proxy.listen_port
    # A bodyless POST goes upstream with content-length: 0; a GET without.
    raw_request(port, b"POST / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert values(origin.heads[-1], "content-length") == ["0"], origin.heads[-1]
    raw_request(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert values(origin.heads[-1], "content-length") == [], origin.heads[-1]
    # An expectation other than 100-continue is the origin's business.
    raw_request(port, b"GET / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\n\r\n")
    assert values(origin.heads[-1], "expect") == ["something-else"], origin.heads[-1]
    # An empty Host is valid and routed by the `*` virtual host.
    out, _ = raw_request(port, b"GET / HTTP/1.1\r\nHost:\r\n\r\n")
    assert status_of(out) == 200, out[:200]
    # The client's HTTP/1.0 gets an HTTP/1.0 status line, with Envoy's phrase.
    out, _ = raw_request(port, b"GET / HTTP/1.0\r\nHost: a\r\n\r\n")
    assert out.startswith(b"HTTP/1.0 200 OK\r\n"), out[:200]
    # (A new proxy: the origin closes after each answer, and a POST is
    # not resent on a pooled connection the origin closed.)
    proxy = start_proxy(procs, tmp_path, static_cluster(origin.port), name="te.yaml")
    raw_request(proxy.listen_port,
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n1\r\nx\r\n0\r\n\r\n")
    assert values(origin.heads[-1], "transfer-encoding") == ["chunked"], origin.heads[-1]


def test_refusals_envoy_answers_differently(procs, tmp_path, origin):
    proxy = start_proxy(procs, tmp_path, static_cluster(origin.port))
    port = proxy.listen_port
    before = proxy.stat("http.ingress_http.no_route")
    out, _ = raw_request(port, b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status_of(out) == 404, out[:200]
    assert proxy.stat("http.ingress_http.no_route") == before
    out, _ = raw_request(port, b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status_of(out) == 400, out[:200]
    out, _ = raw_request(port, b"GET / HTTP/1.2\r\nHost: a\r\n\r\n")
    assert status_of(out) == 426, out[:200]
    out, _ = raw_request(port, b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status_of(out) == 400 and out.endswith(b"\r\n\r\n"), out[:300]
    assert proxy.stat("http.ingress_http.downstream_rq_failed_path_normalization") == 1
    assert origin.requests == 0


def test_heads_that_cannot_become_requests_are_answered_at_once(procs, tmp_path, origin):
    proxy = start_proxy(procs, tmp_path, static_cluster(origin.port))
    for data, status in [(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400), (b"GET /\r\n", 426)]:
        out, closed = raw_request(proxy.listen_port, data, timeout=2.0)
        assert status_of(out) == status and closed, (data, out[:200])
    # An upgrade the route does not allow is refused, as Envoy does.
    out, _ = raw_request(proxy.listen_port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: foo\r\n\r\n")
    assert status_of(out) == 403, out[:200]
    assert origin.requests == 0


def test_head_to_a_direct_response_has_no_body(procs, tmp_path, origin):
    routes = ('              - match: {prefix: "/direct"}\n'
              '                direct_response: {status: 200, body: {inline_string: "hello"}}\n'
              '              - match: {prefix: "/"}\n                route: {cluster: backend}\n')
    proxy = start_proxy(procs, tmp_path, static_cluster(origin.port), routes=routes)
    out, closed = raw_request(proxy.listen_port,
                              b"HEAD /direct HTTP/1.1\r\nHost: a\r\n\r\nGET /direct HTTP/1.1\r\nHost: a\r\n\r\n")
    first, _, rest = out.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200") and b"content-length: 5" in first.lower(), out[:300]
    # The next response follows the head directly: no body was written.
    assert rest.startswith(b"HTTP/1.1 200"), out[:300]
    assert rest.endswith(b"hello"), out[-100:]
    # An accepted HTTP/1.0 request's local reply is HTTP/1.0 too.
    out, _ = raw_request(proxy.listen_port, b"GET /direct HTTP/1.0\r\nHost: a\r\n\r\n")
    assert out.startswith(b"HTTP/1.0 200 OK\r\n") and out.endswith(b"hello"), out[:200]


def test_the_connection_survives_an_upstream_failure(procs, tmp_path):
    from conftest import free_port
    proxy = start_proxy(procs, tmp_path, static_cluster(free_port()))
    out, closed = raw_request(proxy.listen_port,
                              b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert out.count(b"HTTP/1.1 503 ") == 2, out[:600]
    assert b"connection: close" not in out.lower(), out[:600]


def test_generated_request_id_is_logged_and_rewrites_keep_the_original_path(procs, tmp_path, origin):
    import time
    log = tmp_path / "access.log"
    routes = ('              - match: {prefix: "/old/"}\n'
              '                route: {cluster: backend, prefix_rewrite: "/new/", host_rewrite_literal: new.example}\n'
              '              - match: {prefix: "/"}\n                route: {cluster: backend}\n')
    extra = ("          access_log:\n          - name: envoy.file_access_log\n"
             f"            config: {{path: {log}, format: \"id=%REQ(X-REQUEST-ID)%\\n\"}}\n")
    proxy = start_proxy(procs, tmp_path, static_cluster(origin.port), routes=routes, hcm_extra=extra)
    out, _ = raw_request(proxy.listen_port, b"GET /old/x HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status_of(out) == 200, out[:200]
    head = origin.heads[-1]
    assert head.startswith("GET /new/x HTTP/1.1\r\n"), head
    assert values(head, "x-envoy-original-path") == ["/old/x"], head
    assert values(head, "host") == ["new.example"], head
    assert values(head, "x-envoy-original-host") == ["a"], head
    sent = values(head, "x-request-id")
    assert len(sent) == 1 and len(sent[0]) == 36, head
    deadline = time.time() + 5
    while time.time() < deadline and (not log.exists() or "id=" not in log.read_text()):
        time.sleep(0.05)
    assert log.read_text().strip().split("\n")[-1] == f"id={sent[0]}"
    # No rewrite, no x-envoy-original-path.
    raw_request(proxy.listen_port, b"GET /other HTTP/1.1\r\nHost: a\r\n\r\n")
    assert values(origin.heads[-1], "x-envoy-original-path") == []
    assert values(origin.heads[-1], "x-envoy-original-host") == []
