"""A small HTTP/2 client over the Python `h2` library, with header
validation switched off so tests can send what a hostile client would."""

import socket
import time

import h2.config
import h2.connection
import h2.events


class H2Client:
    def __init__(self, port, host="127.0.0.1", timeout=5.0, sock=None):
        """`sock`: a connected socket to use (e.g. TLS with ALPN h2)
        instead of connecting to `host`:`port` in clear text."""
        self.sock = sock if sock is not None else socket.create_connection((host, port), timeout=timeout)
        cfg = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
        )
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        self.flush()
        self.streams = {}
        self.goaway = None
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, headers, body=None, end=True, path="/", method="GET", authority="test"):
        """Sends HEADERS (pseudo-headers first, then `headers` as given) and
        an optional body; returns the stream id."""
        sid = self.conn.get_next_available_stream_id()
        hs = [(":method", method), (":scheme", "http"), (":authority", authority), (":path", path)]
        hs += list(headers)
        self.conn.send_headers(sid, [(k.encode() if isinstance(k, str) else k, v.encode() if isinstance(v, str) else v) for k, v in hs],
                               end_stream=end and body is None)
        self.streams[sid] = {"status": None, "headers": [], "data": b"", "trailers": [], "ended": False, "reset": None}
        self.flush()
        if body is not None:
            self.data(sid, body, end=end)
        return sid

    def data(self, sid, body, end=False, timeout=10.0):
        """Sends `body` as DATA frames within the peer's flow-control
        window, reading WINDOW_UPDATEs while it waits."""
        deadline = time.time() + timeout
        while True:
            room = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            n = min(room, len(body))
            if n > 0 or not body:
                self.conn.send_data(sid, body[:n], end_stream=end and n == len(body))
                body = body[n:]
                self.flush()
            if not body:
                return
            if n > 0:
                continue
            if time.time() > deadline:
                raise TimeoutError("no window from the peer")
            self.sock.settimeout(max(0.05, deadline - time.time()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed while sending")
            for ev in self.conn.receive_data(chunk):
                self._event(ev)
            self.flush()

    def reset(self, sid, code=8):
        self.conn.reset_stream(sid, error_code=code)
        self.flush()

    def wait(self, sids, timeout=5.0):
        """Reads until every stream in `sids` ended or was reset (or the
        connection closed); returns their records. With no `sids`, reads
        for `timeout` (or until the connection closes)."""
        deadline = time.time() + timeout
        def done():
            return bool(sids) and all(self.streams[s]["ended"] or self.streams[s]["reset"] is not None for s in sids)
        while not done() and not self.closed and time.time() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.time()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            except OSError:
                self.closed = True
                break
            if not chunk:
                self.closed = True
                break
            for ev in self.conn.receive_data(chunk):
                self._event(ev)
            self.flush()
        return [self.streams[s] for s in sids]

    def _event(self, ev):
        s = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.ResponseReceived):
            s["headers"] = [(k.decode(), v.decode()) for k, v in ev.headers]
            s["status"] = int(dict(s["headers"])[":status"])
        elif isinstance(ev, h2.events.TrailersReceived):
            s["trailers"] = [(k.decode(), v.decode()) for k, v in ev.headers]
        elif isinstance(ev, h2.events.DataReceived):
            s["data"] += ev.data
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            s["ended"] = True
        elif isinstance(ev, h2.events.StreamReset):
            if s is not None:
                s["reset"] = int(ev.error_code)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = int(ev.error_code)

    def close(self):
        try:
            self.conn.close_connection()
            self.flush()
        except Exception:
            pass
        self.sock.close()
