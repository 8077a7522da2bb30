"""Hostile and malformed requests get the right status, never reach the
upstream, and the proxy keeps serving everyone else."""

import threading

import pytest

from conftest import blog_proxy, curl, raw_request


def upstream_requests(proxy):
    return proxy.stat("cluster.myservice.upstream_rq_total")


def status_of(resp):
    return int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/1.1 ") else None


def test_refusals(procs, tmp_path):
    proxy, _ = blog_proxy(procs, tmp_path)
    port = proxy.listen_port
    stop = threading.Event()
    good = {"ok": 0, "bad": 0}

    def steady_client():
        # Other clients keep being served while the bad ones are refused.
        while not stop.is_set():
            if curl(f"http://{proxy.base}/hello", timeout=5)[0] == 200:
                good["ok"] += 1
            else:
                good["bad"] += 1

    # Read before the steady client starts: read after, it could already
    # hold that client's first request (a flake: 3 counted for 4 served).
    before = upstream_requests(proxy)
    t = threading.Thread(target=steady_client)
    t.start()
    cases = [
        ("malformed request line", b"GET\x01 / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("not http", b"GARBAGE\r\n\r\n", 400),
        ("bad version", b"GET / HTTP/1.32\r\nHost: a\r\n\r\n", 400),
        ("bad header name", b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400),
        ("NUL in header value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400),
        ("headers over 60 KiB", b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * (61 * 1024) + b"\r\n\r\n", 431),
        ("headers far over 60 KiB", b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * (200 * 1024) + b"\r\n\r\n", 431),
        ("101 headers", b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(100)) + b"\r\n", 431),
        (
            "CL + TE",
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
            400,
        ),
        (
            "TE + CL",
            b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\n",
            400,
        ),
        ("differing Content-Lengths", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
        ("TE not chunked", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        ("Content-Length +5", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 400),
        ("Content-Length -1", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        ("Content-Length 0x10", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400),
        ("Content-Length list that differs", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\nab", 400),
        ("Content-Length over u64", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
        ("TE identity", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501),
        ("TE chunked then gzip", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 501),
        ("TE gzip then chunked", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
        ("TE in HTTP/1.0", b"POST /echo HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n folded\r\n\r\n", 400),
        ("bare LF line end", b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400),
        ("bare CR in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400),
        ("bare CR in request line", b"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("space before colon", b"GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", 400),
        ("bad method", b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("fragment in target", b"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("missing Host", b"GET / HTTP/1.1\r\n\r\n", 400),
        ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ]
    try:
        for name, data, want in cases:
            out, closed = raw_request(port, data)
            assert status_of(out) == want, (name, out[:200])
            assert out.count(b"HTTP/1.1") == 1, (name, out[:300])  # nothing smuggled after it
            assert closed, name
    finally:
        stop.set()
        t.join()
    # None of them reached the upstream: the upstream count moved only by
    # the steady client's requests.
    assert upstream_requests(proxy) - before == good["ok"]
    assert good["ok"] > 0 and good["bad"] == 0
    assert proxy.proc.poll() is None


def test_limits_are_exact(procs, tmp_path):
    proxy, _ = blog_proxy(procs, tmp_path)
    port = proxy.listen_port
    # 100 headers (Host included) pass; 60 KiB of header bytes pass.
    ok100 = b"GET /hello HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(98)) + b"Connection: close\r\n\r\n"
    out, _ = raw_request(port, ok100)
    assert status_of(out) == 200, out[:200]
    value = b"a" * (60 * 1024 - 100)
    ok60 = b"GET /hello HTTP/1.1\r\nHost: a\r\nX-Big: " + value + b"\r\nConnection: close\r\n\r\n"
    out, _ = raw_request(port, ok60)
    assert status_of(out) == 200, out[:200]
    assert b"X-Big:[" + value[:100] in out


def test_http10_is_served(procs, tmp_path):
    """nuncio accepts HTTP/1.0 by default (Envoy answers 426 unless
    accept_http_10; see docs/envoy-differences.md). Without Host it gets
    Envoy's 426 (test_envoy_request_rules.py)."""
    proxy, _ = blog_proxy(procs, tmp_path)
    out, closed = raw_request(proxy.listen_port, b"GET /hello HTTP/1.0\r\nHost: a\r\n\r\n")
    assert out.startswith(b"HTTP/1.0 200") or out.startswith(b"HTTP/1.1 200"), out[:100]
    assert closed


BAD_CHUNKS = [
    ("size not hex", b"zz\r\nhello\r\n0\r\n\r\n"),
    ("data longer than its size", b"2\r\nhello\r\n0\r\n\r\n"),
    ("bare LF after size", b"5\nhello\r\n0\r\n\r\n"),
    ("size over 15 hex digits", b"1000000000000000\r\n"),
    ("smuggled request after a bad chunk", b"0x5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"),
]


@pytest.mark.parametrize("name,body", BAD_CHUNKS, ids=[c[0] for c in BAD_CHUNKS])
def test_bad_chunk_framing_is_refused_before_the_upstream_sees_the_head(procs, tmp_path, name, body):
    proxy, _ = blog_proxy(procs, tmp_path)
    before = upstream_requests(proxy)
    req = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    out, closed = raw_request(proxy.listen_port, req)
    assert status_of(out) == 400, (name, out[:200])
    assert out.count(b"HTTP/1.1") == 1 and closed, name
    assert upstream_requests(proxy) == before, name
