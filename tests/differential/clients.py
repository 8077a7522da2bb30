"""The clients that send a case to a proxy and record what came back.

- `h1`: raw bytes over a socket (so a bad request is exactly what the case
  says), then parses the answers itself: interim 1xx heads, framing by
  Content-Length, chunked (with trailers) or the close, and whether the
  proxy closed the connection afterwards.
- `h2`: h2c with prior knowledge, through the e2e suite's H2Client (the
  `h2` library with validation off, so malformed requests go out as
  written).
- `grpc`: a grpcio channel; records the status code and message the grpcio
  client sees.

With `tls` (a `Tls`: the certificate directory, the client certificate
to present, ALPN, SNI), `h1` and `h2` speak TLS with Python's `ssl`
(verifying the proxy against the test CA) and also record what the
handshake agreed or how it failed, how the TLS connection ended
(close_notify, a bare EOF, an alert), and the plaintext bytes sent and
received (to compare with the proxy's byte counters).

Each returns a plain dict that compare.flatten turns into fields.
"""

import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import harness  # noqa: F401  (puts tests/e2e on sys.path for h2client)
from h2client import H2Client

CLOSE_WAIT = 0.1  # how long to wait for the proxy's close after the last answer


@dataclass
class Tls:
    """How a client speaks TLS to the proxy: `certs` holds ca.pem and the
    NAME.pem/NAME.key pairs of scripts/make-certs.sh; `cert` is the client
    certificate to present ("" for none); `alpn` the protocols offered (none
    by default, as Python's ssl); `wait`: after the handshake, read this
    long for an alert first (TLS 1.3 clients finish their handshake before
    the server has checked their certificate)."""

    certs: Path
    cert: str = ""
    alpn: tuple = ()
    sni: str = "localhost"
    wait: float = 0.0


class Counting:
    """A socket that counts the (plaintext) bytes sent and received."""

    def __init__(self, sock):
        self.sock = sock
        self.sent = 0
        self.received = 0

    def sendall(self, data):
        self.sock.sendall(data)
        self.sent += len(data)

    def recv(self, n):
        d = self.sock.recv(n)
        self.received += len(d)
        return d

    def settimeout(self, t):
        self.sock.settimeout(t)

    def shutdown(self, how):
        # The TCP half-close, also under TLS (SSLSocket.shutdown would drop
        # the TLS state and go on reading ciphertext).
        socket.socket.shutdown(self.sock, how)

    def close(self):
        self.sock.close()


def tls_reason(e):
    """A short, comparable name for a TLS or socket error."""
    if isinstance(e, ssl.SSLError):
        return e.reason or type(e).__name__
    return type(e).__name__


def tls_connect(port, tls, timeout):
    """A TLS connection to the proxy: (Counting socket, handshake record).
    The socket is None when the handshake failed (the record says why)."""
    ctx = ssl.create_default_context(cafile=str(tls.certs / "ca.pem"))
    if tls.cert:
        ctx.load_cert_chain(str(tls.certs / f"{tls.cert}.pem"), str(tls.certs / f"{tls.cert}.key"))
    if tls.alpn:
        ctx.set_alpn_protocols(list(tls.alpn))
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s = ctx.wrap_socket(raw, server_hostname=tls.sni, suppress_ragged_eofs=False)
    except (ssl.SSLError, OSError) as e:
        raw.close()
        return None, {"handshake": "failed: " + tls_reason(e)}
    info = {"handshake": "ok", "version": s.version(), "alpn": s.selected_alpn_protocol(),
            "cipher": s.cipher()[0], "peer": dict(x[0] for x in s.getpeercert()["subject"]).get("commonName")}
    if tls.wait:
        # A TLS 1.3 server refuses a client certificate after the client's
        # handshake is over: read its alert before writing anything.
        s.settimeout(tls.wait)
        try:
            d = s.recv(65536)
            info["after-handshake"] = "close_notify" if not d else f"data {d[:40]!r}"
        except socket.timeout:
            pass
        except (ssl.SSLError, OSError) as e:
            info["after-handshake"] = tls_reason(e)
        s.settimeout(timeout)
    return Counting(s), info


class Reader:
    """Buffered reads from a socket, bounded by one deadline."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.buf = b""
        self.eof = False
        self.reset = False
        self.tls_end = None  # TLS: how the connection ended (close_notify, an alert, a bare EOF)

    def fill(self):
        if self.eof:
            raise EOFError
        left = self.deadline - time.time()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            d = self.sock.recv(65536)
        except socket.timeout as e:
            raise TimeoutError from e
        except ConnectionResetError as e:
            self.eof = self.reset = True
            raise EOFError from e
        except ssl.SSLError as e:  # under TLS: an alert, or an EOF without close_notify
            self.eof = True
            self.tls_end = tls_reason(e)
            raise EOFError from e
        if not d:
            self.eof = True
            if isinstance(self.sock, Counting):
                self.tls_end = "close_notify"
            raise EOFError
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        out, self.buf = self.buf.split(b"\r\n", 1)
        return out

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def rest(self):
        try:
            while True:
                self.fill()
        except EOFError:
            pass
        out, self.buf = self.buf, b""
        return out


def read_head(r):
    """(status line, [(name, value)]) of one response head."""
    status = r.line().decode("latin-1")
    headers = []
    while True:
        line = r.line().decode("latin-1")
        if not line:
            return status, headers
        name, _, value = line.partition(":")
        headers.append((name, value.strip(" \t")))


def read_response(r, head_request):
    """One final response (after any interim 1xx heads) as a dict."""
    out = {"interim": [], "status": None, "headers": [], "body": b"", "trailers": [], "truncated": False}
    while True:
        status, headers = read_head(r)
        parts = status.split(" ", 2)
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        if code is not None and 100 <= code < 200 and code != 101:
            out["interim"].append(status)
            continue
        out["status"], out["headers"] = status, headers
        break
    names = {k.lower(): v for k, v in headers}
    te = names.get("transfer-encoding", "").lower()
    try:
        if head_request or code in (204, 304) or code == 101 or (code is not None and code < 200):
            pass
        elif "chunked" in te:
            while True:
                size = int(r.line().split(b";")[0].strip(), 16)
                if size == 0:
                    break
                out["body"] += r.exact(size)
                r.exact(2)
            while True:
                line = r.line().decode("latin-1")
                if not line:
                    break
                k, _, v = line.partition(":")
                out["trailers"].append((k, v.strip()))
        elif "content-length" in names:
            n = int(names["content-length"].split(",")[0])
            while len(r.buf) < n:
                try:
                    r.fill()
                except EOFError:
                    out["truncated"] = True
                    break
            out["body"], r.buf = r.buf[:n], r.buf[n:]
        else:
            out["body"] = r.rest()
    except (EOFError, TimeoutError, ValueError):
        out["truncated"] = True
    return out


def announced(responses):
    """The last answer says `Connection: close`."""
    if not responses:
        return False
    return any(k.lower() == "connection" and "close" in v.lower() for k, v in responses[-1]["headers"])


def wait_close(r, sock, wait, announced_close):
    """Whether the proxy closes the connection: within `wait`, or, when it
    announced `Connection: close`, once the client has finished sending
    (Envoy waits up to delayed_close_timeout, 1 s, for the client to close
    first; a half-close ends that wait, so both proxies look the same)."""
    r.deadline = time.time() + wait
    try:
        while True:
            r.fill()
    except EOFError:
        return True
    except TimeoutError:
        pass
    if not announced_close:
        return False
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        return True
    r.deadline = time.time() + 1.5
    try:
        while True:
            r.fill()
    except EOFError:
        return True
    except TimeoutError:
        return False


def h1(port, steps, responses=1, head=False, timeout=5.0, close_wait=CLOSE_WAIT, tls=None):
    """Sends `steps` (bytes to send; ("sleep", s); ("await100", s): read until
    an interim 100 head arrives or s passes) and reads `responses` answers.
    `head`: the requests are HEAD (no body follows the answers);
    `close_wait`: how long to wait for a close after the last answer;
    `tls`: a Tls, to speak TLS."""
    deadline = time.time() + timeout
    out = {"responses": [], "closed": False, "reset": False, "extra": b"", "error": ""}
    if tls is not None:
        sock, out["tls"] = tls_connect(port, tls, timeout)
        if sock is None:
            out["closed"] = True
            return out
    else:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    r = Reader(sock, deadline)
    interim_early = []
    try:
        for step in steps:
            if isinstance(step, (bytes, bytearray)):
                try:
                    sock.sendall(step)
                except OSError as e:
                    out["error"] = f"send failed: {type(e).__name__}"
                    break
            elif step[0] == "sleep":
                time.sleep(step[1])
            elif step[0] == "await100":
                r.deadline = min(deadline, time.time() + step[1])
                try:
                    while b"\r\n\r\n" not in r.buf:
                        r.fill()
                    if r.buf.split(b"\r\n", 1)[0].split(b" ")[1:2] == [b"100"]:
                        interim_early.append(read_head(r)[0])
                except (TimeoutError, EOFError):
                    pass
                r.deadline = deadline
        for i in range(responses):
            try:
                resp = read_response(r, head)
            except TimeoutError:
                out["error"] = "timeout waiting for a response"
                break
            except EOFError:
                out["error"] = "closed before a response" if not r.buf else f"closed mid-head: {r.buf[:80]!r}"
                break
            if i == 0 and interim_early:
                resp["interim"] = interim_early + resp["interim"]
            out["responses"].append(resp)
            if resp["truncated"]:
                break
        # Did the proxy close after its last answer?
        if r.eof:
            out["closed"] = True
        elif close_wait:
            out["closed"] = wait_close(r, sock, close_wait, announced(out["responses"]))
            out["extra"] = r.buf
        out["reset"] = r.reset
        if tls is not None:
            out["tls"]["end"] = r.tls_end
    finally:
        sock.close()
    if tls is not None:
        out["bytes"] = {"sent": sock.sent, "received": sock.received}
    return out


# -- HTTP/2 -------------------------------------------------------------


def h2(port, requests, timeout=5.0, sequential=False, tls=None):
    """h2c prior knowledge, or with `tls` (a Tls offering ALPN h2) HTTP/2
    over TLS. `requests`: dicts with `headers` (the full
    list, pseudo-headers included, sent as given), optional `body`,
    `trailers`; `sequential`: each stream ends before the next starts
    (else all are sent at once). Returns the streams' records, GOAWAY code,
    and whether the connection closed."""
    out = {"streams": [], "goaway": None, "closed": False, "error": ""}
    sock = None
    if tls is not None:
        sock, out["tls"] = tls_connect(port, tls, timeout)
        if sock is None:
            out["closed"] = True
            return out
    try:
        c = H2Client(port, timeout=timeout, sock=sock)
    except OSError as e:
        out["error"] = f"connect: {e}"
        return out
    try:
        sids = []
        for req in requests:
            sid = c.conn.get_next_available_stream_id()
            body, trailers = req.get("body"), req.get("trailers")
            c.streams[sid] = {"status": None, "headers": [], "data": b"", "trailers": [], "ended": False, "reset": None}
            enc = [(k.encode(), v.encode()) for k, v in req["headers"]]
            try:
                c.conn.send_headers(sid, enc, end_stream=body is None and not trailers)
                if body is None:
                    # With a body, HEADERS and DATA go out in one write
                    # (c.data flushes), so the proxy sees the whole request
                    # at once (two writes made some cases racy).
                    c.flush()
                if body is not None:
                    c.data(sid, body, end=not trailers)
                if trailers:
                    c.conn.send_headers(sid, [(k.encode(), v.encode()) for k, v in trailers], end_stream=True)
                    c.flush()
            except Exception as e:  # the peer may already have closed or reset
                out["error"] = f"send: {type(e).__name__}"
            sids.append(sid)
            if sequential:
                c.wait([sid], timeout=timeout)
        try:
            c.wait(sids, timeout=timeout)
        except Exception as e:
            out["error"] = f"read: {type(e).__name__}: {e}"
        # A GOAWAY or close that follows the last stream's end.
        if not c.closed:
            try:
                c.wait([], timeout=CLOSE_WAIT)
            except Exception:
                pass
        out["streams"] = [c.streams[s] for s in sids]
        out["goaway"] = c.goaway
        out["closed"] = c.closed
    finally:
        c.close()
    if sock is not None:
        out["bytes"] = {"sent": sock.sent, "received": sock.received}
    return out


def grpc_frame(payload):
    """A gRPC length-prefixed message."""
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


# -- gRPC ---------------------------------------------------------------


def grpc_call(port, method, payload=b"ping", authority="", timeout=5.0):
    """One unary call through grpcio; the code and details it sees."""
    import grpc

    out = {"code": None, "details": "", "reply": b"", "trailing": []}
    options = [("grpc.enable_http_proxy", 0), ("grpc.enable_retries", 0)]
    if authority:
        options.append(("grpc.default_authority", authority))
    ch = grpc.insecure_channel(f"127.0.0.1:{port}", options=options)
    try:
        call = ch.unary_unary(method)
        try:
            reply, info = call.with_call(payload, timeout=timeout)
            out["code"] = info.code().name
            out["details"] = info.details() or ""
            out["reply"] = reply
            out["trailing"] = list(info.trailing_metadata() or [])
        except grpc.RpcError as e:
            out["code"] = e.code().name
            out["details"] = e.details() or ""
            out["trailing"] = list(e.trailing_metadata() or [])
    finally:
        ch.close()
    return out
