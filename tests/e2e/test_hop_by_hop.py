"""Hop-by-hop headers (Connection and the names it lists, TE other than
`trailers`, Keep-Alive, Proxy-Connection, Upgrade without an upgrade) do not
cross the proxy, in either direction."""

from backends import RawBackend, answer
from conftest import raw_request, start_proxy, static_cluster


def names(head):
    return [l.split(":", 1)[0].strip().lower() for l in head.split("\r\n")[1:]]


def test_hop_by_hop_headers_are_stripped_both_ways(procs, tmp_path):
    backend = RawBackend(answer(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Resp-Hop\r\n"
        b"X-Resp-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"
        b"Upgrade: h2c\r\nX-Resp-Ok: 1\r\n\r\nok"
    ))
    proxy = start_proxy(procs, tmp_path, static_cluster(backend.port))
    out, _ = raw_request(
        proxy.listen_port,
        b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: X-Secret, keep-alive\r\nX-Secret: 1\r\n"
        b"TE: gzip\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"
        b"Upgrade: foo\r\nX-Ok: 1\r\n\r\n",
    )
    assert out.startswith(b"HTTP/1.1 200"), out
    sent = names(backend.heads[-1])
    for hop in ("x-secret", "te", "keep-alive", "proxy-connection", "upgrade"):
        assert hop not in sent, (hop, backend.heads[-1])
    assert "connection" not in sent or "x-secret" not in backend.heads[-1].lower()
    assert "x-ok" in sent
    got = names(out.split(b"\r\n\r\n")[0].decode("latin-1"))
    for hop in ("x-resp-hop", "keep-alive", "proxy-connection", "upgrade"):
        assert hop not in got, (hop, out)
    assert "x-resp-ok" in got
    # TE: trailers is end-to-end and passes.
    raw_request(proxy.listen_port, b"GET /y HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n")
    assert "te" in names(backend.heads[-1]), backend.heads[-1]
