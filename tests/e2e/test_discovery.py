"""STRICT_DNS clusters: every address a name resolves to is a host, and
names are re-resolved every dns_refresh_rate."""

import time

from conftest import Echo, Proxy, admin_get, curl, free_port, proxy_config, write_config


def cfg(listen, admin, hosts_name="svc", port=0, refresh="0.2s", kind="strict_dns"):
    cluster = (
        f"    type: {kind}\n    dns_refresh_rate: {refresh}\n"
        f"    hosts: [{{socket_address: {{address: {hosts_name}, port_value: {port}}}}}]\n"
    )
    return proxy_config(listen, admin, cluster)


def test_every_address_is_a_host_and_changes_are_picked_up(procs, tmp_path):
    port = free_port("127.0.0.2")
    Echo(procs, "127.0.0.2", name="a", port=port)
    Echo(procs, "127.0.0.3", name="b", port=port)
    Echo(procs, "127.0.0.4", name="c", port=port)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.2 svc\n127.0.0.3 svc\n")
    listen, admin = free_port(), free_port()
    p = Proxy(procs, write_config(tmp_path, cfg(listen, admin, port=port)), ["--hosts", str(hosts)], listen_port=listen, admin_port=admin)
    names = sorted(curl(f"http://{p.base}/")[1]["x-echo-name"] for _ in range(4))
    assert names == ["a", "a", "b", "b"]
    assert p.stat("cluster.backend.membership_total") == 2
    # The name now resolves elsewhere; within a few refresh periods the
    # cluster follows.
    hosts.write_text("127.0.0.4 svc\n")
    deadline = time.time() + 5
    while time.time() < deadline and p.stat("cluster.backend.membership_total") != 1:
        time.sleep(0.1)
    assert p.stat("cluster.backend.membership_total") == 1
    assert {curl(f"http://{p.base}/")[1]["x-echo-name"] for _ in range(3)} == {"c"}
    assert f"backend::127.0.0.4:{port}::hostname::svc" in admin_get(p, "/clusters")
    assert p.stat("cluster.backend.update_success") >= 2


def test_logical_dns_uses_one_address(procs, tmp_path):
    port = free_port("127.0.0.2")
    Echo(procs, "127.0.0.2", name="a", port=port)
    Echo(procs, "127.0.0.3", name="b", port=port)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.2 svc\n127.0.0.3 svc\n")
    listen, admin = free_port(), free_port()
    p = Proxy(procs, write_config(tmp_path, cfg(listen, admin, port=port, kind="logical_dns")), ["--hosts", str(hosts)], listen_port=listen, admin_port=admin)
    assert {curl(f"http://{p.base}/")[1]["x-echo-name"] for _ in range(4)} == {"a"}
    assert p.stat("cluster.backend.membership_total") == 1


def test_localhost_resolves_through_the_system_resolver(procs, tmp_path):
    e = Echo(procs, "127.0.0.1", name="local")
    listen, admin = free_port(), free_port()
    text = cfg(listen, admin, hosts_name="localhost", port=e.port).replace("    type: strict_dns\n", "    type: strict_dns\n    dns_lookup_family: V4_ONLY\n")
    p = Proxy(procs, write_config(tmp_path, text), listen_port=listen, admin_port=admin)
    assert curl(f"http://{p.base}/")[1]["x-echo-name"] == "local"
