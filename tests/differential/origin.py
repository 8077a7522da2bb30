"""The recording origin: a raw-socket, threaded HTTP/1.1 server that keeps
every request it receives exactly as it arrived and answers by path.

Each proxy under test gets its own Origin, so the two recordings never mix.
A request is recorded (method, target, version, headers as an ordered list
of (name, value) with the name's case kept, body, trailers) before it is
answered. Answers, chosen by the last path segment (the query is ignored):

==================  =========================================================
``/slow``           sleeps ``SLOW_SECONDS`` (past the 1 s route timeout), then 200
``/garbage``        writes bytes that are not HTTP, then closes
``/close-mid-body`` announces Content-Length 100, sends 10 bytes, closes
``/reset``          closes without answering
``/echo``           200 with the request body as the body
``/chunked``        a chunked 200
``/trailers``       a chunked 200 with a trailer ``X-Trailer: t1``
``/no-cl``          200 without framing, delimited by the close
``/http10``         an ``HTTP/1.0`` answer, then closes
``/status/NNN``     status NNN
``/with-date``      200 with ``Date: Mon, 01 Jan 2024 00:00:00 GMT``
``/no-date``        the normal 200 (which sets no Date)
``/server``         200 with ``Server: origin-server``
``/set-cookie``     200 with two Set-Cookie fields
``/hop``            200 with hop-by-hop fields (Connection-listed, Keep-Alive, ...)
``/early-hints``    103 Early Hints, then 200
``/continue``       an unsolicited 100 Continue, then 200
``/bad-header``     200 with a field name that holds a space
``/big-headers``    200 with 70 KiB of header fields
``/big-body``       200 with a 100 KiB body
``/ws``             101 Switching Protocols when asked to upgrade, then echoes
anything else       200 ``ok\\n`` with Content-Type, Content-Length, X-Origin
==================  =========================================================

The normal answer sets no Date and no Server, so a proxy that adds them
shows up in the comparison. Header names are sent in mixed case.

`Origin(tls=ssl_context)` speaks TLS (the TLS variant's origin behind
clusters with an UpstreamTlsContext): each request also records what the
handshake agreed (`tls`: SNI, ALPN, version), and a handshake that fails
is recorded as a `<tls-handshake>` entry with the error the origin saw
(the alert the proxy sent).
"""

import base64
import hashlib
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

SLOW_SECONDS = 1.6
ORIGIN_DATE = "Mon, 01 Jan 2024 00:00:00 GMT"
ORIGIN_SERVER = "origin-server"
IDLE_SECONDS = 30.0


@dataclass
class Recorded:
    """One request as the origin received it."""

    method: str
    target: str
    version: str
    headers: list  # [(name, value)] in order, names as sent
    body: bytes = b""
    trailers: list = field(default_factory=list)
    conn: int = 0  # which upstream connection (0, 1, ...) carried it
    error: str = ""  # set when the origin could not parse what it got
    tls: str = ""  # a TLS origin: what the connection's handshake agreed

    def header(self, name):
        """Values of every field called `name` (case-insensitive), in order."""
        return [v for k, v in self.headers if k.lower() == name.lower()]


class BadRequest(Exception):
    """What the origin read was not a request it could parse."""


class Conn:
    """A buffered reader over one accepted socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError
        self.buf += d

    def until(self, sep, limit=1 << 20):
        while sep not in self.buf:
            if len(self.buf) > limit:
                raise BadRequest("too long")
            self.fill()
        out, self.buf = self.buf.split(sep, 1)
        return out

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def parse_head(head):
    """(method, target, version, headers) from a request head's bytes."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest(f"request line {lines[0]!r}")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(f"header line {line!r}")
        headers.append((name, value.strip(" \t")))
    return parts[0], parts[1], parts[2], headers


def read_chunked(conn):
    """The body and trailers of a chunked message."""
    body = b""
    while True:
        line = conn.until(b"\r\n").decode("latin-1")
        size = int(line.split(";", 1)[0].strip(), 16)
        if size == 0:
            break
        body += conn.exact(size)
        if conn.exact(2) != b"\r\n":
            raise BadRequest("chunk not followed by CRLF")
    trailers = []
    while True:
        line = conn.until(b"\r\n").decode("latin-1")
        if not line:
            return body, trailers
        name, _, value = line.partition(":")
        trailers.append((name, value.strip()))


def response(status=200, reason="OK", headers=(), body=b"ok\n", length=True):
    """An HTTP/1.1 response's bytes; Content-Length added unless `length`
    is False."""
    head = [f"HTTP/1.1 {status} {reason}"]
    head += [f"{k}: {v}" for k, v in headers]
    if length:
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


REASONS = {200: "OK", 204: "No Content", 301: "Moved Permanently", 304: "Not Modified",
           404: "Not Found", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 599: "Custom"}
PLAIN = [("Content-Type", "text/plain"), ("X-Origin", "yes")]


class Origin:
    """A recording HTTP/1.1 origin on a free loopback port."""

    def __init__(self, host="127.0.0.1", tls=None):
        self.tls = tls  # an ssl.SSLContext (server side) or None
        self.sni = threading.local()  # the server name of the handshake this thread runs
        if tls is not None:
            tls.sni_callback = self._sni
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.records = []
        self.lock = threading.Lock()
        self.conns = {}  # id -> (socket, idle flag)
        self.next_conn = 0
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    # -- what tests use -------------------------------------------------

    def mark(self):
        """A position in the recording; `since(mark)` is what came after."""
        with self.lock:
            return len(self.records)

    def since(self, mark):
        with self.lock:
            return list(self.records[mark:])

    def connections(self):
        """How many connections the origin has accepted."""
        with self.lock:
            return self.next_conn

    def close_idle(self):
        """Closes every connection that waits for its next request, so each
        case starts with no pooled upstream connection."""
        with self.lock:
            idle = [s for s, is_idle in self.conns.values() if is_idle]
        for s in idle:
            try:
                # The plain socket's shutdown, also under TLS (SSLSocket's
                # would drop its TLS state under the serving thread).
                socket.socket.shutdown(s, socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.stopped = True
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            socks = [s for s, _ in self.conns.values()]
        for s in socks:
            try:
                socket.socket.shutdown(s, socket.SHUT_RDWR)
            except OSError:
                pass

    # -- the server ------------------------------------------------------

    def _accept(self):
        while not self.stopped:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                cid = self.next_conn
                self.next_conn += 1
                self.conns[cid] = (s, True)
            threading.Thread(target=self._serve, args=(s, cid), daemon=True).start()

    def _idle(self, cid, s, flag):
        with self.lock:
            if cid in self.conns:
                self.conns[cid] = (s, flag)

    def _sni(self, _sock, name, _ctx):
        self.sni.name = name  # the handshake runs in the serving thread

    def _handshake(self, s, cid):
        """The TLS handshake on an accepted socket: the wrapped socket and
        what it agreed, or None (recorded) when it failed."""
        s.settimeout(5.0)
        self.sni.name = None
        try:
            t = self.tls.wrap_socket(s, server_side=True)
        except (ssl.SSLError, OSError) as e:
            reason = getattr(e, "reason", None) or type(e).__name__
            self._record(Recorded("<tls-handshake>", "", "", [], error=str(reason), conn=cid))
            with self.lock:
                self.conns.pop(cid, None)
            s.close()
            return None, ""
        with self.lock:
            if cid in self.conns:
                self.conns[cid] = (t, True)
        return t, f"sni={self.sni.name} alpn={t.selected_alpn_protocol()} version={t.version()}"

    def _serve(self, s, cid):
        agreed = ""
        if self.tls is not None:
            s, agreed = self._handshake(s, cid)
            if s is None:
                return
        s.settimeout(IDLE_SECONDS)
        conn = Conn(s)
        try:
            while True:
                self._idle(cid, s, True)
                try:
                    head = conn.until(b"\r\n\r\n", limit=256 * 1024)
                except (EOFError, OSError):
                    return
                self._idle(cid, s, False)
                try:
                    rec = self._read_request(conn, head, cid)
                except BadRequest as e:
                    self._record(Recorded("<unparsed>", "", "", [], head, error=str(e), conn=cid))
                    return
                except (EOFError, OSError):
                    return
                rec.tls = agreed
                self._record(rec)
                if not self._answer(s, rec):
                    return
        finally:
            with self.lock:
                self.conns.pop(cid, None)
            try:
                s.close()
            except OSError:
                pass

    def _record(self, rec):
        with self.lock:
            self.records.append(rec)

    def _read_request(self, conn, head, cid):
        method, target, version, headers = parse_head(head)
        rec = Recorded(method, target, version, headers, conn=cid)
        te = ",".join(rec.header("transfer-encoding")).lower()
        cl = rec.header("content-length")
        if rec.header("expect") and rec.header("expect")[0].lower() == "100-continue" and (te or (cl and cl[0] != "0")):
            conn.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in te:
            rec.body, rec.trailers = read_chunked(conn)
        elif cl:
            try:
                n = int(cl[0].split(",")[0].strip())
            except ValueError as e:
                raise BadRequest(f"content-length {cl!r}") from e
            rec.body = conn.exact(n)
        return rec

    def _answer(self, s, rec):
        """Writes the answer for `rec`; False when the connection must close."""
        path = rec.target.split("?", 1)[0]
        last = "/" + path.rstrip("/").rsplit("/", 1)[-1] if path.startswith("/") else path
        keep = rec.version == "HTTP/1.1"
        conn_tokens = ",".join(rec.header("connection")).lower()
        if "close" in conn_tokens:
            keep = False
        elif rec.version == "HTTP/1.0" and "keep-alive" in conn_tokens:
            keep = True
        head_only = rec.method == "HEAD"
        extra = [] if keep or rec.version != "HTTP/1.1" else [("Connection", "close")]

        def send(data):
            if head_only and b"\r\n\r\n" in data:
                data = data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            s.sendall(data)

        if last == "/slow":
            time.sleep(SLOW_SECONDS)
            send(response(headers=PLAIN + extra, body=b"slow\n"))
            return keep
        if last == "/garbage":
            s.sendall(b"this is not http\r\n\r\n")
            return False
        if last == "/close-mid-body":
            s.sendall(response(headers=PLAIN + [("Content-Length", "100")], body=b"0123456789", length=False))
            return False
        if last == "/reset":
            return False
        if last == "/echo":
            send(response(headers=[("Content-Type", "application/octet-stream")] + extra, body=rec.body))
            return keep
        if last in ("/chunked", "/trailers"):
            body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n"
            body += b"X-Trailer: t1\r\n\r\n" if last == "/trailers" else b"\r\n"
            hs = PLAIN + [("Transfer-Encoding", "chunked")] + extra
            if last == "/trailers":
                hs.append(("Trailer", "X-Trailer"))
            send(response(headers=hs, body=body, length=False))
            return keep
        if last == "/no-cl":
            send(response(headers=PLAIN, body=b"until close\n", length=False))
            return False
        if last == "/http10":
            s.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhttp/1.0 answer\n")
            return False
        if path.startswith("/status/") or "/status/" in path:
            code = int(path.rsplit("/", 1)[-1] or 200)
            body = b"" if code in (204, 304) or code < 200 else f"status {code}\n".encode()
            send(response(code, REASONS.get(code, "Other"), PLAIN + extra, body, length=code not in (204, 304)))
            return keep
        if last == "/with-date":
            send(response(headers=PLAIN + [("Date", ORIGIN_DATE)] + extra))
            return keep
        if last == "/server":
            send(response(headers=PLAIN + [("Server", ORIGIN_SERVER)] + extra))
            return keep
        if last == "/set-cookie":
            send(response(headers=PLAIN + [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/")] + extra))
            return keep
        if last == "/hop":
            hs = PLAIN + [("Connection", "X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "timeout=5"),
                          ("Proxy-Connection", "keep-alive"), ("Upgrade", "foo")]
            send(response(headers=hs))
            return keep
        if last == "/early-hints":
            s.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n")
            send(response(headers=PLAIN + extra))
            return keep
        if last == "/continue":
            s.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            send(response(headers=PLAIN + extra))
            return keep
        if last == "/bad-header":
            send(response(headers=PLAIN + [("X Bad", "1")] + extra))
            return keep
        if last == "/big-headers":
            hs = PLAIN + [(f"X-Big-{i}", "v" * 1000) for i in range(70)] + extra
            send(response(headers=hs))
            return keep
        if last == "/big-body":
            send(response(headers=PLAIN + extra, body=b"x" * (100 * 1024)))
            return keep
        if last == "/ws" and rec.header("upgrade"):
            key = (rec.header("sec-websocket-key") or [""])[0]
            accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            s.sendall(response(101, "Switching Protocols", [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                                            ("Sec-WebSocket-Accept", accept)], b"", length=False))
            try:
                while True:
                    d = s.recv(65536)
                    if not d:
                        return False
                    s.sendall(d)
            except OSError:
                return False
        send(response(headers=PLAIN + extra))
        return keep
