"""Upstreams that fail part-way (issue #5, "failing upstreams"): an HTTP/2
cluster whose server resets the stream or sends GOAWAY before or during the
response, and an HTTP/1.1 upstream that closes mid-body. Each gets Envoy's
local reply when no response head was sent yet, or an aborted response
(never a short body passed off as complete) when one was; the failed
connection is not reused and the next request succeeds."""

import socket
import subprocess
import time

import pytest

from backends import H2Backend, RawBackend, answer, goaway_frame, h2_partial, h2_then_ok, recv_until
from conftest import curl, start_proxy, static_cluster
from h2client import H2Client

RESET_BEFORE = "upstream connect error or disconnect/reset before headers. reset reason: "
INTERNAL_ERROR = 2
REFUSED_STREAM = 7
# One worker, so connection counts are one pool's.
ONE_WORKER = ("--concurrency", "1")


def h2_cluster(port):
    return static_cluster(port) + "    http2_protocol_options: {}\n"


def curl_exit(*args):
    """curl's exit code and body (18: the body ended short of its length)."""
    out = subprocess.run(["curl", "-s", "--max-time", "10", *args], capture_output=True, timeout=15)
    return out.returncode, out.stdout


@pytest.mark.parametrize("code,reason", [(INTERNAL_ERROR, "remote reset"), (REFUSED_STREAM, "remote refused stream reset")])
def test_h2_upstream_reset_before_headers_is_503(procs, tmp_path, code, reason):
    def reset(n, conn, sock, sid):
        conn.reset_stream(sid, error_code=code)
        return False

    u = H2Backend(h2_then_ok(reset))
    p = start_proxy(procs, tmp_path, h2_cluster(u.port), args=ONE_WORKER)
    status, _, body = curl(f"http://{p.base}/")
    assert (status, body) == (503, RESET_BEFORE + reason)
    status, _, body = curl(f"http://{p.base}/")
    assert (status, body) == (200, "ok")
    assert p.stat("cluster.backend.upstream_rq_rx_reset") == 1
    assert p.stat("cluster.backend.upstream_rq_503") == 1
    # A stream reset leaves the connection usable: still one connection.
    assert u.connections == 1


def test_h2_upstream_goaway_before_headers_is_503_and_the_connection_is_dropped(procs, tmp_path):
    def goaway(n, conn, sock, sid):
        # The request is not processed (last_stream_id 0), and the server
        # hangs up.
        conn.close_connection(error_code=0, last_stream_id=0)
        return True

    u = H2Backend(h2_then_ok(goaway))
    p = start_proxy(procs, tmp_path, h2_cluster(u.port), args=ONE_WORKER)
    status, _, body = curl(f"http://{p.base}/")
    assert status == 503 and body.startswith(RESET_BEFORE), (status, body)
    status, _, body = curl(f"http://{p.base}/")
    assert (status, body) == (200, "ok")
    assert u.connections == 2
    assert p.stat("cluster.backend.upstream_cx_http2_total") == 2


def reset_mid_body(n, conn, sock, sid):
    h2_partial(conn, sock, sid)
    conn.reset_stream(sid, error_code=INTERNAL_ERROR)
    return False


def assert_aborted_then_served(p):
    """An HTTP/1.1 client whose response head (content-length 100) went
    out is cut short of it: curl reports a partial file (18). The next
    request is served."""
    rc, body = curl_exit(f"http://{p.base}/")
    assert rc == 18 and body == b"partial", (rc, body)
    status, _, body = curl(f"http://{p.base}/")
    assert (status, body) == (200, "ok")
    assert p.proc.poll() is None


def test_h2_upstream_reset_mid_body_aborts_the_response(procs, tmp_path):
    u = H2Backend(h2_then_ok(reset_mid_body))
    p = start_proxy(procs, tmp_path, h2_cluster(u.port), args=ONE_WORKER)
    assert_aborted_then_served(p)


def test_h2_upstream_reset_mid_body_resets_an_http2_client_stream(procs, tmp_path):
    u = H2Backend(h2_then_ok(reset_mid_body))
    p = start_proxy(procs, tmp_path, h2_cluster(u.port), args=ONE_WORKER)
    c = H2Client(p.listen_port)
    r = c.wait([c.request([])])[0]
    assert r["status"] == 200 and not r["ended"] and r["reset"] is not None, r
    assert r["data"] == b"partial"
    # The same client connection carries the next stream.
    r = c.wait([c.request([])])[0]
    assert r["status"] == 200 and r["ended"] and r["data"] == b"ok", r
    c.close()


def test_h2_upstream_graceful_goaway_mid_body_finishes_the_response(procs, tmp_path):
    """GOAWAY naming the stream as processed (last_stream_id = it): the
    response completes, and the next request opens a new connection."""
    def goaway_mid_body(n, conn, sock, sid):
        conn.send_headers(sid, [(":status", "200"), ("content-length", "9")])
        conn.send_data(sid, b"first")
        sock.sendall(conn.data_to_send() + goaway_frame(sid))
        time.sleep(0.1)
        conn.send_data(sid, b" end", end_stream=True)
        sock.sendall(conn.data_to_send())
        time.sleep(0.2)
        return True

    u = H2Backend(h2_then_ok(goaway_mid_body))
    p = start_proxy(procs, tmp_path, h2_cluster(u.port), args=ONE_WORKER)
    rc, body = curl_exit(f"http://{p.base}/")
    assert (rc, body) == (0, b"first end")
    status, _, body = curl(f"http://{p.base}/")
    assert (status, body) == (200, "ok")
    assert u.connections == 2


def test_h2_upstream_goaway_and_close_mid_body_aborts_the_response(procs, tmp_path):
    def goaway_close(n, conn, sock, sid):
        h2_partial(conn, sock, sid)
        conn.close_connection(error_code=INTERNAL_ERROR, last_stream_id=sid)
        return True

    u = H2Backend(h2_then_ok(goaway_close))
    p = start_proxy(procs, tmp_path, h2_cluster(u.port), args=ONE_WORKER)
    assert_aborted_then_served(p)
    assert u.connections == 2


def http1_pair(p):
    """Two requests on one keep-alive connection, read to EOF or 3 s."""
    s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=3)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return out, True
            out += d
    except socket.timeout:
        return out, False
    finally:
        s.close()


def test_http1_upstream_closing_mid_body_closes_the_client_connection(procs, tmp_path):
    """Content-Length 100, 7 bytes, then close: the client gets the head and
    the 7 bytes, then the connection closes (no keep-alive after a short
    body); the next request reaches a fresh upstream connection."""
    b = RawBackend(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"))
    p = start_proxy(procs, tmp_path, static_cluster(b.port), args=ONE_WORKER)
    out, closed = http1_pair(p)
    assert closed, out
    assert out.startswith(b"HTTP/1.1 200") and b"content-length: 100" in out.lower(), out
    assert out.endswith(b"\r\n\r\npartial"), out
    rc, body = curl_exit(f"http://{p.base}/")
    assert rc == 18 and body == b"partial"
    b.behave = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    status, _, body = curl(f"http://{p.base}/")
    assert (status, body) == (200, "ok")
    assert b.requests == 3


def test_http1_upstream_closing_a_chunked_body_never_sends_the_last_chunk(procs, tmp_path):
    b = RawBackend(answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n"))
    p = start_proxy(procs, tmp_path, static_cluster(b.port), args=ONE_WORKER)
    out, closed = http1_pair(p)
    assert closed, out
    assert b"partial" in out and not out.endswith(b"0\r\n\r\n"), out
    rc, body = curl_exit(f"http://{p.base}/")
    assert rc == 18 and body == b"partial", (rc, body)
    b.behave = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    status, _, body = curl(f"http://{p.base}/")
    assert (status, body) == (200, "ok")


def watch_upstream_close():
    """A backend that never answers and records how long after the request
    the proxy closed its connection (it returns b"" on close)."""
    closed_after = []

    def behave(conn):
        t0 = time.time()
        conn.settimeout(5)
        try:
            conn.recv(1)
        except OSError:
            pass
        closed_after.append(time.time() - t0)

    return RawBackend(behave), closed_after


def wait_for(cond, seconds=3):
    deadline = time.time() + seconds
    while not cond() and time.time() < deadline:
        time.sleep(0.02)
    return cond()


def test_http1_client_leaving_cancels_the_upstream_request(procs, tmp_path):
    """Envoy resets the upstream request when the downstream goes away:
    the upstream connection is closed at once, not left until the
    upstream answers, and the proxy serves the next client."""
    b, closed_after = watch_upstream_close()
    p = start_proxy(procs, tmp_path, static_cluster(b.port), args=ONE_WORKER)
    s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=3)
    s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    assert wait_for(lambda: b.requests == 1)
    s.close()
    assert wait_for(lambda: closed_after), "upstream connection left open"
    assert closed_after[0] < 1.0, closed_after
    # Envoy's counts (1.40, HTTP/1.1 upstream): the connection is closed
    # with its request in flight; no upstream stream reset is counted.
    assert wait_for(lambda: p.stat("cluster.backend.upstream_cx_destroy_local_with_active_rq") == 1)
    assert p.stat("cluster.backend.upstream_cx_destroy_with_active_rq") == 1
    assert p.stat("cluster.backend.upstream_rq_tx_reset") == 0
    assert p.stat("cluster.backend.upstream_rq_completed") == 0
    assert p.stat("http.ingress_http.downstream_rq_rx_reset") == 1
    b.behave = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert curl(f"http://{p.base}/")[:1] == (200,)


def test_http1_client_leaving_mid_upload_cancels_the_upstream_request(procs, tmp_path):
    b, closed_after = watch_upstream_close()
    p = start_proxy(procs, tmp_path, static_cluster(b.port), args=ONE_WORKER)
    s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=3)
    s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
    assert wait_for(lambda: b.requests == 1)
    s.close()
    assert wait_for(lambda: closed_after), "upstream connection left open"
    assert closed_after[0] < 1.0, closed_after


def test_a_pipelined_request_while_waiting_is_kept(procs, tmp_path):
    """The watch for a leaving client reads what the client pipelines
    meanwhile; that request is served next, in order."""
    def behave(conn):
        time.sleep(0.3)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
        if recv_until(conn, lambda d: b"\r\n\r\n" in d) is None:
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")
        time.sleep(0.5)

    b = RawBackend(behave)
    p = start_proxy(procs, tmp_path, static_cluster(b.port), args=ONE_WORKER)
    s = socket.create_connection(("127.0.0.1", p.listen_port), timeout=5)
    s.sendall(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.1)
    s.sendall(b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
    out = recv_until(s, lambda d: d.endswith(b"second"))
    s.close()
    assert out is not None
    assert out.count(b"HTTP/1.1 200") == 2 and out.index(b"first") < out.index(b"second"), out
