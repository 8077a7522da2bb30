"""Opens N keep-alive connections to 127.0.0.1:PORT, makes one GET on each,
then holds them idle. Prints `ready` when all are open, and closes them
when a line arrives on stdin (or after 120 s)."""

import select
import socket
import sys

port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
req = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(req)
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(65536)
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
