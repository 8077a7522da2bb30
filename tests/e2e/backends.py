"""Misbehaving upstreams for fault tests: each listens on a loopback port
in a thread and does one bad thing. (The good upstream is `nuncio echo`.)"""

import socket
import threading
import time


def recv_until(sock, done):
    """Reads from `sock` until `done(data)` holds; returns the data, or None
    if the peer closed first."""
    data = b""
    while not done(data):
        d = sock.recv(65536)
        if not d:
            return None
        data += d
    return data


class RawBackend:
    """Accepts connections and runs `behave(conn)` on each."""

    def __init__(self, behave, host="127.0.0.1"):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.behave = behave
        self.requests = 0
        self.heads = []  # request heads as received, decoded latin-1
        self.leftovers = []  # bytes that came after each head (body starts)
        self.stop = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            c.settimeout(10)
            data = recv_until(c, lambda d: b"\r\n\r\n" in d)
            if data is None:
                return
            self.requests += 1
            head, rest = data.split(b"\r\n\r\n", 1)
            self.heads.append(head.decode("latin-1"))
            self.leftovers.append(rest)
            self.behave(c)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.sock.close()


def slow(seconds, body=b"late"):
    def behave(c):
        time.sleep(seconds)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return behave


def close_before_headers(c):
    pass  # returning closes the connection


def garbage(c):
    c.sendall(b"this is not http\r\n\r\n")


def answer(response):
    """Replies with the fixed bytes `response`."""
    def behave(c):
        c.sendall(response)
    return behave


class ThreadedServer:
    """Listens on a free loopback port and runs `self._serve(conn)` in a
    thread per accepted connection (subclasses define `_serve`);
    `connections` counts them."""

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def close(self):
        self.sock.close()


class H2Backend(ThreadedServer):
    """An HTTP/2 (h2c, prior knowledge) upstream on the Python `h2` library.
    For each request it calls `behave(n, conn, sock, stream_id)`, where `n`
    counts requests from 1 across all connections; `behave` drives `conn`
    and returns True to close the connection. The default answer is 200 "ok"."""

    def __init__(self, behave=None, host="127.0.0.1"):
        self.behave = behave or h2_ok
        self.requests = 0
        self.lock = threading.Lock()
        super().__init__(host)

    def _serve(self, c):
        import h2.config
        import h2.connection
        import h2.events

        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        c.settimeout(10)
        try:
            c.sendall(conn.data_to_send())
            while True:
                data = c.recv(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.StreamEnded):
                        with self.lock:
                            self.requests += 1
                            n = self.requests
                        if self.behave(n, conn, c, ev.stream_id):
                            c.sendall(conn.data_to_send())
                            return
                out = conn.data_to_send()
                if out:
                    c.sendall(out)
        except Exception:
            pass
        finally:
            c.close()


def h2_ok(n, conn, sock, sid):
    conn.send_headers(sid, [(":status", "200"), ("content-length", "2")])
    conn.send_data(sid, b"ok", end_stream=True)
    return False


def h2_then_ok(first):
    """`first` answers request 1; every later request gets 200 "ok"."""
    def behave(n, conn, sock, sid):
        return first(n, conn, sock, sid) if n == 1 else h2_ok(n, conn, sock, sid)
    return behave


def goaway_frame(last_stream_id, code=0):
    """A raw GOAWAY frame. (The `h2` library closes its connection state
    when it sends GOAWAY, so a server that goes on answering the streams
    GOAWAY let through writes the frame itself.)"""
    payload = last_stream_id.to_bytes(4, "big") + code.to_bytes(4, "big")
    return len(payload).to_bytes(3, "big") + b"\x07\x00" + (0).to_bytes(4, "big") + payload


def h2_partial(conn, sock, sid, length=100):
    """Response headers (content-length `length`) and 7 bytes, flushed."""
    conn.send_headers(sid, [(":status", "200"), ("content-length", str(length))])
    conn.send_data(sid, b"partial")
    sock.sendall(conn.data_to_send())
    time.sleep(0.1)
