"""Path normalisation before routing (normalize_path, merge_slashes,
path_with_escaped_slashes_action) and Host trimming: a route that guards
/admin cannot be bypassed with dot segments, encoded dots or doubled
slashes, over HTTP/1.1 or HTTP/2, and the upstream sees the normal form."""

import pytest

from backends import RawBackend, answer
from conftest import raw_request, start_proxy, static_cluster
from h2client import H2Client

GUARDED = (
    '              - match: {prefix: "/admin"}\n'
    '                direct_response: {status: 403, body: {inline_string: blocked}}\n'
    '              - match: {prefix: "/"}\n'
    '                route: {cluster: backend}\n'
)
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def proxy_with(procs, tmp_path, backend_port, hcm_extra="", domains='["*"]'):
    return start_proxy(procs, tmp_path, static_cluster(backend_port), routes=GUARDED, domains=domains,
                       hcm_extra=hcm_extra)


def get(port, target, host=b"a"):
    out, _ = raw_request(port, b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
    status = int(out.split(b" ", 2)[1]) if out.startswith(b"HTTP/1.1 ") else None
    return status, out


BYPASSES = [b"/a/../admin", b"/%2e%2e/admin", b"/x/%2E%2E/admin/", b"//admin", b"/./admin", b"/a/..%2f/admin".replace(b"%2f", b"/"), b"/a\\..\\admin"]


@pytest.mark.parametrize("target", BYPASSES, ids=[t.decode() for t in BYPASSES])
def test_dot_segments_and_doubled_slashes_route_as_their_normal_form(procs, tmp_path, target):
    b = RawBackend(answer(OK))
    proxy = proxy_with(procs, tmp_path, b.port)
    status, out = get(proxy.listen_port, target)
    assert status == 403 and out.endswith(b"blocked"), out
    assert b.requests == 0
    b.close()


def test_upstream_sees_the_normalised_path_and_the_query_is_kept(procs, tmp_path):
    b = RawBackend(answer(OK))
    proxy = proxy_with(procs, tmp_path, b.port)
    status, _ = get(proxy.listen_port, b"/x//y/./z/../%7Eme?q=/../a//b")
    assert status == 200
    assert b.heads[-1].split("\r\n")[0] == "GET /x/y/~me?q=/../a//b HTTP/1.1"
    b.close()


def test_http2_paths_are_normalised_too(procs, tmp_path):
    b = RawBackend(answer(OK))
    proxy = proxy_with(procs, tmp_path, b.port)
    c = H2Client(proxy.listen_port)
    r = c.wait([c.request([], path="/a/../admin")])[0]
    assert r["status"] == 403 and r["data"] == b"blocked", r
    r = c.wait([c.request([], path="//x/./y")])[0]
    assert r["status"] == 200
    assert b.heads[-1].split("\r\n")[0] == "GET /x/y HTTP/1.1"
    c.close()
    b.close()


def test_normalisation_can_be_switched_off(procs, tmp_path):
    """Envoy's defaults (both off) are available; then the guard is
    bypassable, which is why nuncio's defaults are on."""
    b = RawBackend(answer(OK))
    proxy = proxy_with(procs, tmp_path, b.port, "          normalize_path: false\n          merge_slashes: false\n")
    status, _ = get(proxy.listen_port, b"/a/../admin")
    assert status == 200
    assert b.heads[-1].split("\r\n")[0] == "GET /a/../admin HTTP/1.1"
    b.close()


@pytest.mark.parametrize("action,status,upstream_path,location", [
    ("KEEP_UNCHANGED", 200, "/a%2Fb", None),
    ("REJECT_REQUEST", 400, None, None),
    ("UNESCAPE_AND_REDIRECT", 307, None, b"/a/b?x=1"),
    ("UNESCAPE_AND_FORWARD", 200, "/a/b", None),
])
def test_escaped_slashes(procs, tmp_path, action, status, upstream_path, location):
    b = RawBackend(answer(OK))
    proxy = proxy_with(procs, tmp_path, b.port, f"          path_with_escaped_slashes_action: {action}\n")
    got, out = get(proxy.listen_port, b"/a%2fb?x=1")
    assert got == status, out
    if upstream_path:
        assert b.heads[-1].split("\r\n")[0] == f"GET {upstream_path}?x=1 HTTP/1.1"
    else:
        assert b.requests == 0
    if location:
        assert b"\r\nlocation: " + location + b"\r\n" in out.lower()
    counter = {"REJECT_REQUEST": "downstream_rq_failed_path_normalization",
               "UNESCAPE_AND_REDIRECT": "downstream_rq_redirected_with_normalized_path"}.get(action)
    if counter:
        assert proxy.stat(f"http.ingress_http.{counter}") == 1
    b.close()


def test_trailing_whitespace_in_host_is_trimmed_before_route_matching(procs, tmp_path):
    b = RawBackend(answer(OK))
    proxy = proxy_with(procs, tmp_path, b.port, domains='["example.com"]')
    assert get(proxy.listen_port, b"/", host=b"example.com \t")[0] == 200
    assert get(proxy.listen_port, b"/", host=b"example.com")[0] == 200
    assert get(proxy.listen_port, b"/", host=b"other.com")[0] == 404
    assert b.requests == 2
    b.close()
