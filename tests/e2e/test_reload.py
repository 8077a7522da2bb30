"""Config reload (SIGHUP, --watch-config): new listeners, routes and
clusters take over without dropping an established connection or an
in-flight request; an invalid new config is refused with its one-line
error and the old one keeps serving. The load test reloads several times
under steady traffic and counts failures: the goal, asserted, is zero."""

import http.client
import signal
import socket
import threading
import time

from conftest import Echo, Proxy, free_port, proxy_config, static_cluster, write_config


def config(listen, admin, echo_port, extra_listener=None):
    text = proxy_config(listen, admin, static_cluster(echo_port))
    if extra_listener:
        listener = text.split("  listeners:\n")[1].split("  clusters:\n")[0]
        text = text.replace("  clusters:\n", listener.replace(f"port_value: {listen}", f"port_value: {extra_listener}") + "  clusters:\n", 1)
    return text


def echo_name(port, path="/", timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    c.close()
    return r.status, r.getheader("x-echo-name")


def wait_for(pred, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_reloads_under_load_lose_nothing(procs, tmp_path):
    one = Echo(procs, "127.0.0.1", name="one")
    two = Echo(procs, "127.0.0.1", name="two")
    listen, admin = free_port(), free_port()
    path = write_config(tmp_path, config(listen, admin, one.port))
    proxy = Proxy(procs, path, listen_port=listen, admin_port=admin)
    assert echo_name(listen) == (200, "one")

    stop = time.time() + 8  # bound on the load loops
    results = []

    def keepalive_client():
        seen, ok, failed = set(), 0, []
        c = http.client.HTTPConnection("127.0.0.1", listen, timeout=5)
        while time.time() < stop and not done.is_set():
            try:
                c.request("GET", "/")
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    failed.append(r.status)
                else:
                    ok += 1
                    seen.add(r.getheader("x-echo-name"))
            except (OSError, http.client.HTTPException) as e:
                failed.append(repr(e))
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", listen, timeout=5)
        c.close()
        results.append((ok, failed, seen))

    def new_connection_client():
        seen, ok, failed = set(), 0, []
        while time.time() < stop and not done.is_set():
            try:
                status, name = echo_name(listen)
                if status == 200:
                    ok += 1
                    seen.add(name)
                else:
                    failed.append(status)
            except OSError as e:
                failed.append(repr(e))
        results.append((ok, failed, seen))

    done = threading.Event()
    threads = [threading.Thread(target=keepalive_client) for _ in range(4)]
    threads += [threading.Thread(target=new_connection_client) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    # Six good reloads, alternating the cluster's endpoint, and one bad one.
    for i in range(6):
        port = two.port if i % 2 == 0 else one.port
        path.write_text(config(listen, admin, port))
        proxy.proc.send_signal(signal.SIGHUP)
        time.sleep(0.4)
        if i == 2:
            path.write_text("static_resources:\n  listeners:\n  - address: {socket_address: {address: 127.0.0.1, port_value: nope}}\n")
            proxy.proc.send_signal(signal.SIGHUP)
            time.sleep(0.4)
    done.set()
    for t in threads:
        t.join(timeout=15)
    assert len(results) == 6
    failures = [f for r in results for f in r[1]]
    print(f"7 reloads under load: {sum(r[0] for r in results)} requests, {len(failures)} failed")
    assert failures == [], failures
    assert sum(r[0] for r in results) > 200, results
    # Both configs served, and the last one (cluster -> "one") is in force.
    assert set().union(*(r[2] for r in results)) == {"one", "two"}
    assert echo_name(listen) == (200, "one")
    assert proxy.stat("listener_manager.lds.update_success") == 6
    assert proxy.stat("listener_manager.lds.update_rejected") == 1
    log = proxy.log()
    assert "config reload rejected" in log
    assert "config.yaml:3:" in log and "port_value" in log, log[-2000:]


def test_in_flight_request_finishes_on_the_old_config(procs, tmp_path):
    """A slow upload in progress during a reload completes, through the
    cluster it started with."""
    one = Echo(procs, "127.0.0.1", name="one")
    two = Echo(procs, "127.0.0.1", name="two")
    listen, admin = free_port(), free_port()
    path = write_config(tmp_path, config(listen, admin, one.port))
    proxy = Proxy(procs, path, listen_port=listen, admin_port=admin)
    s = socket.create_connection(("127.0.0.1", listen), timeout=10)
    body = b"x" * 3000
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:1000])
    time.sleep(0.3)
    path.write_text(config(listen, admin, two.port))
    proxy.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: echo_name(listen)[1] == "two")
    s.sendall(body[1000:])
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < len(body):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"x-echo-name: one" in head.lower()
    assert rest == body
    # The old connection manager drains: this response closes the connection.
    assert b"connection: close" in head.lower()
    s.close()


def test_watch_config_adds_and_removes_listeners(procs, tmp_path):
    one = Echo(procs, "127.0.0.1", name="one")
    listen, admin, extra = free_port(), free_port(), free_port()
    path = write_config(tmp_path, config(listen, admin, one.port))
    proxy = Proxy(procs, path, ["--watch-config"], listen_port=listen, admin_port=admin)
    # A second listener appears when the file changes.
    path.write_text(config(listen, admin, one.port, extra_listener=extra))
    assert wait_for(lambda: proxy.stat("listener_manager.listener_added") == 1, timeout=5)
    assert echo_name(extra) == (200, "one")
    assert proxy.stat("listener_manager.listener_modified") == 0
    # ... and goes away again (the original listener is untouched).
    path.write_text(config(listen, admin, one.port))
    assert wait_for(lambda: proxy.stat("listener_manager.listener_removed") == 1, timeout=5)

    def refused():
        try:
            socket.create_connection(("127.0.0.1", extra), timeout=1).close()
            return False
        except ConnectionRefusedError:
            return True

    assert wait_for(refused)
    assert echo_name(listen) == (200, "one")
    # A bad file is refused and the proxy keeps serving.
    path.write_text("static_resources: [")
    assert wait_for(lambda: proxy.stat("listener_manager.lds.update_rejected") == 1, timeout=5)
    assert echo_name(listen) == (200, "one")
