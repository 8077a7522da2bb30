"""Misbehaving upstreams for fault tests: each listens on a loopback port
in a thread and does one bad thing. (The good upstream is `nuncio echo`.)"""

import socket
import threading
import time


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
            data = b""
            while b"\r\n\r\n" not in data:
                d = c.recv(65536)
                if not d:
                    return
                data += d
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
