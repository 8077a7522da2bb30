"""Envoy's HTTP/2 flood limits (CVE-2019-9511..9518), with raw frames:
empty frames, PRIORITY and WINDOW_UPDATE floods close the connection and
count `http2.*_flood`; a PING or SETTINGS flood from a client that never
reads costs the proxy no memory (the codec stops reading while its
unwritten output passes 64 KiB); real clients under load trip nothing; the
configured limits are the ones enforced."""

import socket
import subprocess
import time

from backends import ThreadedServer
from conftest import Echo, curl, rss_kib, start_proxy, static_cluster

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, SETTINGS, PING, WINDOW_UPDATE = 0, 1, 2, 4, 6, 8
END_STREAM, END_HEADERS = 0x1, 0x4
# HPACK: :method POST, :scheme http, :path /, :authority test.
POST = b"\x83\x86\x84\x41\x04test"
FLOODS = ("inbound_empty_frames_flood", "inbound_priority_frames_flood", "inbound_window_update_frames_flood")


def frame(kind, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def connect(proxy):
    s = socket.create_connection(("127.0.0.1", proxy.listen_port), timeout=5)
    s.sendall(PREFACE + frame(SETTINGS, 0, 0))
    return s


def closed_within(s, seconds):
    """Reads (discarding GOAWAY and the rest) until the proxy closes."""
    s.settimeout(0.2)
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if not s.recv(65536):
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


def send_all(s, frames):
    """Sends frames; stops quietly if the proxy has already closed."""
    try:
        s.sendall(b"".join(frames))
    except OSError:
        pass


def flood_stats(proxy):
    return {k: proxy.stat(f"http2.{k}") for k in FLOODS}


def proxy_with(procs, tmp_path, h2_options=""):
    e = Echo(procs, "127.0.0.1")
    extra = f"          http2_protocol_options: {{{h2_options}}}\n" if h2_options else ""
    return start_proxy(procs, tmp_path, static_cluster(e.port), hcm_extra=extra)


def still_serving(proxy):
    status, _, _ = curl("--http2-prior-knowledge", f"http://{proxy.base}/")
    return status == 200


def test_empty_data_frames_close_the_connection(procs, tmp_path):
    proxy = proxy_with(procs, tmp_path)
    s = connect(proxy)
    send_all(s, [frame(HEADERS, END_HEADERS, 1, POST)] + [frame(DATA, 0, 1)] * 1000)
    assert closed_within(s, 5)
    s.close()
    assert flood_stats(proxy) == {FLOODS[0]: 1, FLOODS[1]: 0, FLOODS[2]: 0}
    assert still_serving(proxy)


def test_priority_flood_closes_the_connection(procs, tmp_path):
    proxy = proxy_with(procs, tmp_path)
    s = connect(proxy)
    prio = frame(PRIORITY, 0, 3, b"\x00\x00\x00\x01\x10")  # depends on stream 1
    send_all(s, [prio] * 1000)
    assert closed_within(s, 5)
    s.close()
    assert proxy.stat("http2.inbound_priority_frames_flood") == 1
    assert still_serving(proxy)


def test_window_update_flood_closes_the_connection(procs, tmp_path):
    proxy = proxy_with(procs, tmp_path)
    s = connect(proxy)
    send_all(s, [frame(WINDOW_UPDATE, 0, 0, (1).to_bytes(4, "big"))] * 1000)
    assert closed_within(s, 5)
    s.close()
    assert proxy.stat("http2.inbound_window_update_frames_flood") == 1
    assert still_serving(proxy)


def test_configured_limits_are_the_ones_enforced(procs, tmp_path):
    """max_inbound_priority_frames_per_stream: 5 allows 5 PRIORITY frames
    before any stream, and the sixth closes the connection."""
    proxy = proxy_with(procs, tmp_path, "max_inbound_priority_frames_per_stream: 5")
    prio = frame(PRIORITY, 0, 3, b"\x00\x00\x00\x01\x10")
    s = connect(proxy)
    send_all(s, [prio] * 5)
    assert not closed_within(s, 0.5)
    send_all(s, [prio])
    assert closed_within(s, 5)
    s.close()
    assert proxy.stat("http2.inbound_priority_frames_flood") == 1


def test_ping_and_settings_floods_from_a_client_that_never_reads_cost_no_memory(procs, tmp_path):
    """Envoy counts unsent acknowledgements (max_outbound_control_frames);
    nuncio's codec stops reading a connection while more than 64 KiB of
    its output is unwritten. A client that floods and never reads fills
    the socket buffers and then stalls: the proxy's memory stays flat and
    others are served."""
    proxy = proxy_with(procs, tmp_path)
    assert still_serving(proxy)
    before = rss_kib(proxy.proc.pid)
    socks = []
    for kind in (PING, SETTINGS):
        s = connect(proxy)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        one = frame(kind, 0, 0, b"12345678" if kind == PING else b"")
        chunk = one * 4096
        sent = 0
        stalled_since = None
        deadline = time.time() + 15  # bounded; a proxy that keeps reading never stalls the client
        while time.time() < deadline:
            try:
                # From where the last partial send stopped: the frames stay
                # whole, so the proxy sees a real flood, not garbage.
                sent += s.send(chunk[sent % len(chunk):])
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.time()
                if time.time() - stalled_since > 1.0:
                    break
                time.sleep(0.01)
        socks.append((s, sent // len(one), stalled_since is not None))
        assert still_serving(proxy)
    grown = rss_kib(proxy.proc.pid) - before
    print(f"frames the kernel took before the client stalled: {[n for _, n, _ in socks]}, RSS grew {grown} KiB")
    # The client stalled: the proxy stopped reading (the socket buffers
    # stay full), and kept no per-frame state.
    assert all(stalled for _, _, stalled in socks), [(n, st) for _, n, st in socks]
    for s, _, _ in socks:
        s.close()
    assert grown < 8 * 1024, f"proxy RSS grew by {grown} KiB"
    assert still_serving(proxy)


def test_real_clients_under_load_trip_no_limit(procs, tmp_path):
    """h2load with request bodies (DATA in) and the echo's responses (DATA
    out, WINDOW_UPDATEs back), and curl moving a MiB each way."""
    proxy = proxy_with(procs, tmp_path)
    body = tmp_path / "body"
    body.write_bytes(b"x" * 100_000)
    out = subprocess.run(
        ["h2load", "-n", "400", "-c", "4", "-m", "10", "-d", str(body), f"http://{proxy.base}/echo"],
        capture_output=True, text=True, timeout=60,
    ).stdout
    assert "400 succeeded" in out, out
    big = tmp_path / "big"
    big.write_bytes(b"y" * (1 << 20))
    status, _, text = curl("--http2-prior-knowledge", "--data-binary", f"@{big}", f"http://{proxy.base}/echo")
    assert status == 200 and len(text) == 1 << 20
    assert flood_stats(proxy) == {k: 0 for k in FLOODS}


class FloodingServer(ThreadedServer):
    """An HTTP/2 upstream that answers the preface with SETTINGS and then
    `flood` (bytes of frames); it records whether the proxy hung up."""

    def __init__(self, flood):
        self.flood = flood
        self.hung_up = []
        super().__init__()

    def _serve(self, c):
        c.settimeout(5)
        try:
            c.recv(65536)  # preface, SETTINGS, maybe the request
            c.sendall(frame(SETTINGS, 0, 0) + frame(SETTINGS, 1, 0) + self.flood)
            self.hung_up.append(closed_within(c, 5))
        except OSError:
            self.hung_up.append(True)
        finally:
            c.close()


def test_an_upstream_server_flooding_frames_loses_its_connection(procs, tmp_path):
    """Envoy treats upstream servers as untrusted too: the same limits
    apply to an HTTP/2 cluster's connections, counted per cluster."""
    prio = frame(PRIORITY, 0, 3, b"\x00\x00\x00\x01\x10")
    u = FloodingServer(prio * 1000)
    cluster = static_cluster(u.port) + "    http2_protocol_options: {}\n"
    proxy = start_proxy(procs, tmp_path, cluster)
    status, _, _ = curl(f"http://{proxy.base}/")
    assert status == 503, status
    deadline = time.time() + 5
    while not u.hung_up and time.time() < deadline:
        time.sleep(0.05)
    assert u.hung_up and u.hung_up[0], u.hung_up
    assert proxy.stat("cluster.backend.http2.inbound_priority_frames_flood") == 1
    assert proxy.stat("http2.inbound_priority_frames_flood") == 0
    assert proxy.proc.poll() is None
    u.close()
