"""Opens N keep-alive connections to 127.0.0.1:PORT, makes one GET on each,
then holds them idle. Prints `ready` when all are open, and closes them
when a line arrives on stdin (or after 120 s).

    idle_conns.py PORT N [tls]

With `tls`, each connection is TLS (Python's ssl, TLS 1.2 or 1.3, no ALPN
so HTTP/1.1, the server's certificate not checked: this is a load
generator), and the GET is made after the handshake; any session tickets
the server sends arrive before the response and are read with it."""

import select
import socket
import ssl
import sys

port, n = int(sys.argv[1]), int(sys.argv[2])
tls = len(sys.argv) > 3 and sys.argv[3] == "tls"
ctx = None
if tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
socks = []
req = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if ctx is not None:
        # The GET follows the client's Finished: without TCP_NODELAY it
        # waits for the server's (delayed) ACK, ~10 ms a connection.
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s = ctx.wrap_socket(s, server_hostname="localhost")
    s.sendall(req)
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit(f"connection {i}: closed before a response")
        got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        body += s.recv(65536)
    socks.append(s)
print("ready", flush=True)
select.select([sys.stdin], [], [], 120)
for s in socks:
    s.close()
