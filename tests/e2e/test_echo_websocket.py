"""The echo service's WebSocket (`nuncio echo`, GET /ws) keeps RFC 6455's
rules, checked with raw frames over a socket: invalid UTF-8 closes 1007,
broken framing closes 1002, fragmented messages come back whole, close
codes are checked and echoed; and permessage-deflate (RFC 7692) is
negotiated with a real client. scripts/autobahn.sh runs the whole
Autobahn suite; these are a few of its rules, kept in the test run."""

import asyncio
import os
import socket
import struct

import websockets

from conftest import Echo

MASK = b"\x37\xfa\x21\x3d"


def connect(echo, extensions=None):
    """A raw socket after a WebSocket handshake with the echo."""
    s = socket.create_connection((echo.host, echo.port), timeout=5)
    req = (
        "GET /ws HTTP/1.1\r\nHost: echo\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    )
    if extensions:
        req += f"Sec-WebSocket-Extensions: {extensions}\r\n"
    s.sendall((req + "\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(1)
        assert d, f"closed during the handshake: {head!r}"
        head += d
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    return s, head.decode().lower()


def frame(first, payload):
    """A masked client frame; `first` is the byte with FIN, RSV, opcode."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, n)
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return head + MASK + masked


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d:
            raise EOFError(f"closed after {len(out)} of {n} bytes")
        out += d
    return out


def read_frame(s):
    """(first byte, payload) of the next server frame."""
    b0, b1 = recv_exact(s, 2)
    assert b1 & 0x80 == 0, "a server never masks"
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", recv_exact(s, 2))
    elif n == 127:
        (n,) = struct.unpack("!Q", recv_exact(s, 8))
    return b0, recv_exact(s, n)


def expect_close(s, code):
    """The next frame is a close with `code`, then the server closes the
    TCP connection."""
    first, payload = read_frame(s)
    assert first == 0x88, f"expected a close frame, got {first:#x} {payload[:40]!r}"
    assert len(payload) >= 2
    assert struct.unpack("!H", payload[:2])[0] == code, payload
    s.settimeout(5)
    assert s.recv(1) == b"", "the server closes after its close frame"


def test_invalid_utf8_text_closes_1007(procs):
    e = Echo(procs, "127.0.0.1")
    s, _ = connect(e)
    # A UTF-16 surrogate (ED A0 80) is not UTF-8.
    s.sendall(frame(0x81, b"valid \xce\xba then \xed\xa0\x80"))
    expect_close(s, 1007)


def test_invalid_utf8_fails_fast_across_fragments(procs):
    e = Echo(procs, "127.0.0.1")
    s, _ = connect(e)
    # U+110000's first bytes: the second fragment already makes it invalid,
    # and the message is never finished.
    s.sendall(frame(0x01, b"\xce\xba\xf4") + frame(0x00, b"\x90"))
    expect_close(s, 1007)


def test_rsv1_without_extension_closes_1002(procs):
    e = Echo(procs, "127.0.0.1")
    s, _ = connect(e)
    s.sendall(frame(0xC1, b"rsv1"))
    expect_close(s, 1002)


def test_fragmented_ping_closes_1002(procs):
    e = Echo(procs, "127.0.0.1")
    s, _ = connect(e)
    s.sendall(frame(0x09, b"no FIN"))
    expect_close(s, 1002)


def test_ping_over_125_bytes_closes_1002(procs):
    e = Echo(procs, "127.0.0.1")
    s, _ = connect(e)
    s.sendall(frame(0x89, b"p" * 125))
    assert read_frame(s) == (0x8A, b"p" * 125)
    s.sendall(frame(0x89, b"p" * 126))
    expect_close(s, 1002)


def test_fragmented_text_is_echoed_whole(procs):
    e = Echo(procs, "127.0.0.1")
    s, _ = connect(e)
    text = "κόσμε, fragmented".encode()
    # Split inside a code point, with a ping and an unsolicited pong between.
    s.sendall(frame(0x01, text[:1]) + frame(0x89, b"between") + frame(0x00, text[1:7])
              + frame(0x8A, b"ignored") + frame(0x80, text[7:]))
    assert read_frame(s) == (0x8A, b"between")
    assert read_frame(s) == (0x81, text), "one final text frame with the whole message"
    s.sendall(frame(0x88, struct.pack("!H", 1000)))
    expect_close(s, 1000)


def test_close_1000_is_echoed_and_an_unfinished_message_is_not(procs):
    e = Echo(procs, "127.0.0.1")
    s, _ = connect(e)
    s.sendall(frame(0x01, b"never finished") + frame(0x88, struct.pack("!H", 1000) + b"bye"))
    expect_close(s, 1000)


def test_invalid_close_codes_close_1002(procs):
    e = Echo(procs, "127.0.0.1")
    for code in (1005, 999, 1006, 2000):
        s, _ = connect(e)
        s.sendall(frame(0x88, struct.pack("!H", code)))
        expect_close(s, 1002)
        s.close()


def test_permessage_deflate_is_negotiated_and_echoes(procs):
    e = Echo(procs, "127.0.0.1")
    s, head = connect(e, "permessage-deflate; client_max_window_bits")
    s.close()
    assert "sec-websocket-extensions: permessage-deflate" in head

    async def go():
        # websockets offers permessage-deflate by default.
        async with websockets.connect(f"ws://{e.addr}/ws", max_size=None) as ws:
            assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")
            for n in (0, 10, 70_000, 1 << 20):
                text = ("echo é " * (n // 8 + 1))[:n]
                await ws.send(text)
                assert await ws.recv() == text
                data = os.urandom(n)
                await ws.send(data)
                assert await ws.recv() == data

    asyncio.run(asyncio.wait_for(go(), timeout=60))
