"""HTTP/2 clients (h2c) in front of HTTP/1.1 upstreams, driven by the
Python `h2` library with validation off: malformed requests are stream or
connection errors and reach no upstream; failing upstreams get Envoy's
local replies or an aborted stream, never a truncated "complete" one; a
client reset cancels the upstream request; bodies of unknown length and
trailers cross the hop."""

import socket
import time

import pytest

from backends import RawBackend, answer, close_before_headers, garbage, slow
from conftest import Echo, curl, free_port, start_proxy, static_cluster
from h2client import H2Client

PROTOCOL_ERROR = 1


MALFORMED = [
    ("uppercase name", [("X-Upper", "1")]),
    ("connection", [("connection", "keep-alive")]),
    ("keep-alive", [("keep-alive", "timeout=5")]),
    ("proxy-connection", [("proxy-connection", "keep-alive")]),
    ("upgrade", [("upgrade", "h2c")]),
    ("transfer-encoding", [("transfer-encoding", "chunked")]),
    ("te other than trailers", [("te", "gzip")]),
]


@pytest.mark.parametrize("name,headers", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_requests_are_refused_and_reach_no_upstream(procs, tmp_path, name, headers):
    b = RawBackend(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    proxy = start_proxy(procs, tmp_path, static_cluster(b.port))
    c = H2Client(proxy.listen_port)
    bad = c.request(headers)
    r = c.wait([bad])[0]
    # A stream error (RST_STREAM) or, as Envoy does by default for a
    # malformed header block, a connection error (GOAWAY): never a response.
    assert r["status"] is None, r
    assert r["reset"] == PROTOCOL_ERROR or c.goaway == PROTOCOL_ERROR, (r, c.goaway)
    c.close()
    # The proxy keeps serving, and the upstream saw only the good request.
    c = H2Client(proxy.listen_port)
    ok = c.wait([c.request([])])[0]
    assert ok["status"] == 200 and ok["ended"] and ok["data"] == b"ok"
    c.close()
    assert b.requests == 1, b.heads
    b.close()


BAD_TARGETS = [
    ("space in :path", {"path": "/a b"}),
    ("path not in origin form", {"path": "a"}),
    ("space in :authority", {"authority": "a b"}),
    ("slash in :authority", {"authority": "a/b"}),
]


@pytest.mark.parametrize("name,kw", BAD_TARGETS, ids=[t[0] for t in BAD_TARGETS])
def test_targets_that_would_break_the_http1_request_line_are_refused(procs, tmp_path, name, kw):
    """:path and :authority become the upstream's request line and Host:
    a space there would let one HTTP/2 request be read as something else
    by an HTTP/1.1 upstream."""
    b = RawBackend(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    proxy = start_proxy(procs, tmp_path, static_cluster(b.port))
    c = H2Client(proxy.listen_port)
    r = c.wait([c.request([], **kw)])[0]
    assert r["status"] in (None, 400), r
    ok = c.wait([c.request([])])[0]
    assert ok["status"] == 200 and ok["data"] == b"ok", ok
    c.close()
    assert b.requests == 1, b.heads
    b.close()


class BodyCounter:
    """An upstream that reads each request's head and then its whole
    Content-Length body, counting the requests it received completely."""

    def __init__(self):
        self.complete = 0
        self.b = RawBackend(self._behave)
        self.port = self.b.port

    def _behave(self, c):
        head = self.b.heads[-1].lower()
        length = int(head.split("content-length:")[1].split("\r\n")[0]) if "content-length:" in head else 0
        got = self.b.leftovers[-1]
        c.settimeout(3)
        try:
            while len(got) < length:
                d = c.recv(65536)
                if not d:
                    return
                got += d
        except OSError:
            return
        self.complete += 1
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


@pytest.mark.parametrize("declared,sent", [("10", b"abc"), ("3", b"abcdefghij")], ids=["short", "long"])
def test_content_length_disagreeing_with_data_is_a_stream_error(procs, tmp_path, declared, sent):
    up = BodyCounter()
    proxy = start_proxy(procs, tmp_path, static_cluster(up.port))
    c = H2Client(proxy.listen_port)
    r = c.wait([c.request([("content-length", declared)], body=sent, method="POST", path="/echo")])[0]
    assert r["status"] is None and r["reset"] == PROTOCOL_ERROR, r
    time.sleep(0.3)
    assert up.complete == 0
    # A well-formed request on a new connection is served.
    c = H2Client(proxy.listen_port)
    r = c.wait([c.request([("content-length", "3")], body=b"abc", method="POST")])[0]
    assert r["status"] == 200 and r["ended"], r
    assert up.complete == 1
    up.b.close()


def test_body_of_unknown_length_and_trailers_cross_to_http1(procs, tmp_path):
    e = Echo(procs, "127.0.0.1")
    proxy = start_proxy(procs, tmp_path, static_cluster(e.port))
    c = H2Client(proxy.listen_port)
    sid = c.request([("te", "trailers")], method="POST", path="/echo", body=b"first,", end=False)
    for part in (b"second,", b"third" * 5000):
        c.data(sid, part)
    c.conn.send_headers(sid, [(b"x-checksum", b"abc123")], end_stream=True)
    c.flush()
    r = c.wait([sid], 10)[0]
    assert r["status"] == 200 and r["ended"], r
    assert r["data"] == b"first,second," + b"third" * 5000
    assert ("x-checksum", "abc123") in r["trailers"], r
    c.close()


def test_large_response_respects_the_client_window(procs, tmp_path):
    """A 2 MiB response to a client that opens its window slowly arrives
    whole: the proxy waits for WINDOW_UPDATE instead of failing."""
    e = Echo(procs, "127.0.0.1")
    proxy = start_proxy(procs, tmp_path, static_cluster(e.port))
    body = bytes(range(256)) * 8192
    c = H2Client(proxy.listen_port)
    r = c.wait([c.request([("content-length", str(len(body)))], body=body, method="POST", path="/echo")], 20)[0]
    assert r["status"] == 200 and r["ended"] and r["data"] == body
    c.close()


FAILURES = [
    ("connection refused", None, 503, b"connection failure"),
    ("closes before headers", close_before_headers, 503, b"connection termination"),
    ("garbage", garbage, 502, b"protocol error"),
]


@pytest.mark.parametrize("name,behave,status,text", FAILURES, ids=[f[0] for f in FAILURES])
def test_failing_upstream_gets_envoys_local_reply(procs, tmp_path, name, behave, status, text):
    if behave is None:
        port, b = free_port(), None
    else:
        b = RawBackend(behave)
        port = b.port
    proxy = start_proxy(procs, tmp_path, static_cluster(port))
    c = H2Client(proxy.listen_port)
    for _ in range(2):  # the failed connection is not reused; the next request fails the same way
        r = c.wait([c.request([])])[0]
        assert r["status"] == status and r["ended"], r
        assert text in r["data"], r
    c.close()
    if b:
        b.close()


def test_upstream_closing_mid_body_aborts_the_stream(procs, tmp_path):
    b = RawBackend(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"))
    proxy = start_proxy(procs, tmp_path, static_cluster(b.port))
    c = H2Client(proxy.listen_port)
    r = c.wait([c.request([])])[0]
    # RST_STREAM (after the headers, if they were flushed first): never
    # END_STREAM on a short body.
    assert r["status"] in (None, 200) and not r["ended"] and r["reset"] is not None, r
    assert len(r["data"]) < 100
    # The connection and the proxy go on.
    r = c.wait([c.request([])])[0]
    assert not r["ended"] and r["reset"] is not None
    c.close()
    b.close()


def test_route_timeout_is_504(procs, tmp_path):
    b = RawBackend(slow(3))
    routes = '              - match: {prefix: "/"}\n                route: {cluster: backend, timeout: 0.5s}\n'
    proxy = start_proxy(procs, tmp_path, static_cluster(b.port), routes=routes)
    c = H2Client(proxy.listen_port)
    t0 = time.time()
    r = c.wait([c.request([])])[0]
    assert r["status"] == 504 and r["data"] == b"upstream request timeout", r
    assert time.time() - t0 < 2
    assert proxy.stat("cluster.backend.upstream_rq_timeout") == 1
    c.close()
    b.close()


def test_client_reset_cancels_the_upstream_request(procs, tmp_path):
    closed_after = []

    def behave(conn):
        t0 = time.time()
        conn.settimeout(5)
        try:
            conn.recv(1)  # returns b"" when the proxy drops the request
        except OSError:
            pass
        closed_after.append(time.time() - t0)

    b = RawBackend(behave)
    proxy = start_proxy(procs, tmp_path, static_cluster(b.port))
    c = H2Client(proxy.listen_port)
    sid = c.request([])
    deadline = time.time() + 3
    while b.requests == 0 and time.time() < deadline:
        time.sleep(0.02)
    assert b.requests == 1
    c.reset(sid)
    deadline = time.time() + 3
    while not closed_after and time.time() < deadline:
        time.sleep(0.02)
    assert closed_after and closed_after[0] < 1.5, closed_after
    assert proxy.stat("http.ingress_http.downstream_rq_rx_reset") == 1
    # The connection still carries new streams.
    b.behave = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    r = c.wait([c.request([])])[0]
    assert r["status"] == 200 and r["data"] == b"ok"
    c.close()
    b.close()


def test_rapid_reset_of_unaccepted_streams_closes_the_connection(procs, tmp_path):
    """CVE-2023-44487, streams reset as soon as they are opened: the h2
    codec's limit on reset streams waiting to be accepted sends GOAWAY
    ENHANCE_YOUR_CALM (or the premature-reset guard closes the connection);
    few of the streams ever reach the upstream."""
    b = RawBackend(slow(0.5, b"ok"))
    proxy = start_proxy(procs, tmp_path, static_cluster(b.port))
    c = H2Client(proxy.listen_port)
    sent = 0
    try:
        for _ in range(5000):
            c.reset(c.request([]))
            sent += 1
            if sent % 50 == 0:
                c.wait([], timeout=0.02)
                if c.closed or c.goaway is not None:
                    break
    except OSError:
        pass  # the proxy closed the connection under us
    c.wait([], timeout=1)
    assert c.closed or c.goaway is not None, sent
    assert sent < 5000
    assert b.requests < 600, b.requests
    c2 = H2Client(proxy.listen_port)
    r = c2.wait([c2.request([], path="/")], timeout=3)[0]
    assert r["status"] == 200
    c2.close()
    b.close()


def test_premature_resets_after_the_upstream_request_started_close_the_connection(procs, tmp_path):
    """The rapid-reset shape the codec cannot see: each stream is reset
    only after the proxy has started its upstream request. Envoy's rule
    (premature resets reaching 250) closes the connection."""
    b = RawBackend(slow(5, b"ok"))
    proxy = start_proxy(procs, tmp_path, static_cluster(b.port))
    c = H2Client(proxy.listen_port)
    resets = 0
    deadline = time.time() + 20  # bound on the loop
    try:
        while time.time() < deadline and not (c.closed or c.goaway is not None):
            before = b.requests
            sids = [c.request([]) for _ in range(10)]
            while b.requests < before + 10 and time.time() < deadline:
                c.wait([], timeout=0.01)
            for sid in sids:
                c.reset(sid)
                resets += 1
            c.wait([], timeout=0.01)
    except OSError:
        pass
    c.wait([], timeout=1)
    assert c.closed or c.goaway is not None, resets
    assert 250 <= resets <= 300, resets
    assert proxy.stat("http.ingress_http.downstream_rq_too_many_premature_resets") == 1
    assert proxy.stat("http.ingress_http.downstream_rq_rx_reset") >= 250
    b.close()


def test_continuation_flood_is_bounded(procs, tmp_path):
    """CVE-2024-30255: a header block that never ends, sent as endless
    CONTINUATION frames. The proxy stops reading it once the header list
    limit is passed and closes the connection; other clients are served."""
    e = Echo(procs, "127.0.0.1")
    proxy = start_proxy(procs, tmp_path, static_cluster(e.port))
    s = socket.create_connection(("127.0.0.1", proxy.listen_port), timeout=5)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))

    def hpack_literal(i):
        name, value = b"x-flood-%d" % i, b"v" * 100
        return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value

    # HEADERS without END_HEADERS, then CONTINUATION frames forever.
    first = b"\x82\x86\x84\x41\x04test"  # :method GET, :scheme http, :path /, :authority test
    sent = 0
    closed = False
    try:
        s.sendall(frame(1, 0x1, 1, first))  # END_STREAM, no END_HEADERS
        for i in range(20000):  # 20,000 x ~112 bytes = ~2 MiB, far over 60 KiB
            s.sendall(frame(9, 0, 1, hpack_literal(i)))
            sent += 1
    except OSError:
        closed = True
    if not closed:
        s.settimeout(5)
        try:
            while s.recv(65536):
                pass
            closed = True
        except OSError:
            closed = True
    s.close()
    assert closed
    assert sent < 20000 or closed
    status, _, _ = curl(f"http://{proxy.base}/")
    assert status == 200


def frame(kind, flags, stream, payload):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def test_a_client_earning_endless_stream_errors_loses_its_connection(procs, tmp_path):
    """Each malformed request costs the proxy a decode and an RST_STREAM;
    past 1,024 of them on one connection (the `h2` crate's
    max_local_error_reset_streams) the connection gets GOAWAY
    ENHANCE_YOUR_CALM. None reaches the upstream."""
    b = RawBackend(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    proxy = start_proxy(procs, tmp_path, static_cluster(b.port))
    c = H2Client(proxy.listen_port)
    sent = 0
    try:
        while sent < 1500 and c.goaway is None and not c.closed:
            for _ in range(50):
                c.request([("X-Upper", "1")])
                sent += 1
            c.wait([], timeout=0.05)
    except OSError:
        pass
    c.wait([], timeout=1)
    assert c.goaway == 11, (c.goaway, sent)  # ENHANCE_YOUR_CALM
    assert 1024 < sent <= 1500, sent
    assert b.requests == 0
    c2 = H2Client(proxy.listen_port)
    r = c2.wait([c2.request([])])[0]
    assert r["status"] == 200
    c2.close()
    b.close()


def test_an_hpack_bomb_closes_the_connection(procs, tmp_path):
    """One 16 KB HEADERS frame: a 3,000-byte value put in the dynamic
    table, then 13,000 one-byte references to it (39 MB once decoded).
    The decoder stops at twice the header list limit and the connection
    gets GOAWAY; other clients are served."""
    e = Echo(procs, "127.0.0.1")
    proxy = start_proxy(procs, tmp_path, static_cluster(e.port))
    s = socket.create_connection(("127.0.0.1", proxy.listen_port), timeout=5)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
    n, value_len = 3000, bytearray()
    rest = n - 127
    while rest >= 128:
        value_len.append((rest & 0x7F) | 0x80)
        rest >>= 7
    value_len.append(rest)
    block = b"\x82\x86\x84\x41\x04test" + b"\x40\x01x\x7f" + bytes(value_len) + b"v" * n + b"\xbe" * 13000
    assert len(block) <= 16384
    s.sendall(frame(1, 0x5, 1, block))
    s.settimeout(5)
    got = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except OSError:
        pass
    s.close()
    # GOAWAY (type 7) with ENHANCE_YOUR_CALM (0xb) among what came back.
    i = 0
    codes = []
    while i + 9 <= len(got):
        length, kind = int.from_bytes(got[i:i + 3], "big"), got[i + 3]
        if kind == 7:
            codes.append(int.from_bytes(got[i + 13:i + 17], "big"))
        i += 9 + length
    assert 0xB in codes, (codes, got[:64])
    status, _, _ = curl(f"http://{proxy.base}/")
    assert status == 200
