"""Scenario 1 of the blog, end to end: the unchanged v2-era config, the
same setup in v3, round robin, admin counters and endpoints."""

import re
import time

from conftest import (
    ROOT, Echo, Proxy, admin_get, admin_json, blog_proxy, curl, free_port, write_config,
)


def test_blog_get_and_post_through_the_proxy(procs, tmp_path):
    proxy, _ = blog_proxy(procs, tmp_path)
    status, headers, body = curl(f"http://{proxy.base}/", "-H", "X-Custom: a")
    assert status == 200
    lines = body.strip().split("\n")
    # The echo lists the request headers as Go prints them; the proxy added its own.
    assert "X-Custom:[a]" in lines
    assert any(l.startswith("X-Request-Id:[") for l in lines), body
    assert "X-Forwarded-Proto:[http]" in lines
    assert "X-Envoy-Expected-Rq-Timeout-Ms:[15000]" in lines
    assert headers["server"] == "nuncio"
    assert headers["x-envoy-upstream-service-time"].isdigit()

    status, headers, body = curl(
        "-X", "POST", f"http://{proxy.base}/echo",
        "-H", "Content-Type: application/json", "-d", '{"name": "zcong"}',
    )
    assert status == 200
    assert body == '{"name": "zcong"}'
    assert headers["content-type"] == "application/json"


def test_round_robin_alternates_between_the_two_services(procs, tmp_path):
    proxy, _ = blog_proxy(procs, tmp_path)
    seen = [curl(f"http://{proxy.base}/hello")[1]["x-echo-name"] for _ in range(6)]
    assert seen in (["service1", "service2"] * 3, ["service2", "service1"] * 3), seen


def test_large_post_body_streams_through(procs, tmp_path):
    proxy, _ = blog_proxy(procs, tmp_path)
    body = tmp_path / "big.bin"
    data = bytes(range(256)) * 4096 * 4  # 4 MiB
    body.write_bytes(data)
    out = tmp_path / "out.bin"
    status, _, _ = curl("-X", "POST", f"http://{proxy.base}/echo", "--data-binary", f"@{body}", "-o", str(out))
    assert status == 200
    assert out.read_bytes() == data


def test_request_id_is_kept_when_given(procs, tmp_path):
    proxy, _ = blog_proxy(procs, tmp_path)
    _, _, body = curl(f"http://{proxy.base}/", "-H", "x-request-id: my-id-1")
    assert "X-Request-Id:[my-id-1]" in body.split("\n")


def test_admin_counters_move_like_envoys(procs, tmp_path):
    proxy, _ = blog_proxy(procs, tmp_path)
    before = proxy.stat("cluster.myservice.upstream_rq_total")
    assert before == 0
    proxy.quiet()
    cx_before = proxy.stat("http.ingress_http.downstream_cx_total")  # the harness's readiness probe
    for _ in range(4):
        assert curl(f"http://{proxy.base}/")[0] == 200
    curl(f"http://{proxy.base}/nope")  # the echo answers 404
    time.sleep(0.2)
    assert proxy.stat("cluster.myservice.upstream_rq_total") == 5
    assert proxy.stat("cluster.myservice.upstream_rq_2xx") == 4
    assert proxy.stat("cluster.myservice.upstream_rq_200") == 4
    assert proxy.stat("cluster.myservice.upstream_rq_4xx") == 1
    assert proxy.stat("cluster.myservice.upstream_rq_404") == 1
    assert proxy.stat("cluster.myservice.upstream_rq_active") == 0
    assert proxy.stat("http.ingress_http.downstream_rq_total") == 5
    assert proxy.stat("http.ingress_http.downstream_rq_2xx") == 4
    assert proxy.stat("http.ingress_http.downstream_cx_total") - cx_before == 5
    assert proxy.stat("cluster.myservice.membership_total") == 2
    assert proxy.stat("cluster.myservice.membership_healthy") == 2
    assert proxy.stat("server.live") == 1
    # Upstream connections are pooled: far fewer than requests.
    assert 1 <= proxy.stat("cluster.myservice.upstream_cx_total") <= 4
    assert proxy.stat("cluster.myservice.upstream_cx_active") >= 1
    text = admin_get(proxy, "/stats")
    assert re.search(r"^cluster\.myservice\.upstream_rq_total: 5$", text, re.M), text
    assert re.search(r"^http\.ingress_http\.downstream_rq_time: P0\(", text, re.M), text
    # As in Envoy, the filter also matches external.upstream_rq_2xx.
    filtered = admin_get(proxy, "/stats?filter=upstream_rq_2xx")
    assert filtered.strip().splitlines() == [
        "cluster.myservice.external.upstream_rq_2xx: 4",
        "cluster.myservice.upstream_rq_2xx: 4",
    ]


def test_keep_alive_reuses_the_downstream_connection(procs, tmp_path):
    proxy, _ = blog_proxy(procs, tmp_path)
    url = f"http://{proxy.base}/"
    proxy.quiet()
    cx_before = proxy.stat("http.ingress_http.downstream_cx_total")
    assert curl(url, url, url)[0] == 200
    time.sleep(0.2)
    assert proxy.stat("http.ingress_http.downstream_cx_total") - cx_before == 1
    assert proxy.stat("http.ingress_http.downstream_rq_total") == 3


def test_prometheus_names_and_tags(procs, tmp_path):
    proxy, _ = blog_proxy(procs, tmp_path)
    curl(f"http://{proxy.base}/")
    time.sleep(0.2)
    prom = admin_get(proxy, "/stats/prometheus")
    assert "# TYPE envoy_cluster_upstream_rq_total counter" in prom
    assert 'envoy_cluster_upstream_rq_total{envoy_cluster_name="myservice"} 1' in prom
    # Envoy's label order: the stat's own tag, then the cluster's.
    assert 'envoy_cluster_upstream_rq_xx{envoy_response_code_class="2",envoy_cluster_name="myservice"} 1' in prom
    assert 'envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="myservice"} 1' in prom
    assert 'envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="ingress_http"} 1' in prom
    assert re.search(r'envoy_http_downstream_rq_time_bucket\{envoy_http_conn_manager_prefix="ingress_http",le="\+Inf"\} 1', prom)
    # Read again, the admin's own stats and server gauges have moved.
    again = admin_get(proxy, "/stats?format=prometheus")
    assert [l for l in again.splitlines() if "cluster" in l] == [l for l in prom.splitlines() if "cluster" in l]


def test_clusters_lists_hosts_with_counts(procs, tmp_path):
    proxy, echos = blog_proxy(procs, tmp_path)
    for _ in range(4):
        curl(f"http://{proxy.base}/")
    time.sleep(0.2)
    text = admin_get(proxy, "/clusters")
    for e in echos:
        assert f"myservice::{e.addr}::rq_total::2" in text, text
        assert f"myservice::{e.addr}::rq_success::2" in text
        assert f"myservice::{e.addr}::health_flags::healthy" in text
    assert "myservice::127.0.0.2:" in text and "::hostname::service1" in text
    j = admin_json(proxy, "/clusters?format=json")
    hosts = j["cluster_statuses"][0]["host_statuses"]
    assert sorted(h["address"]["socket_address"]["address"] for h in hosts) == ["127.0.0.2", "127.0.0.3"]


def test_other_admin_endpoints(procs, tmp_path):
    proxy, _ = blog_proxy(procs, tmp_path, extra_args=["--service-cluster", "front-proxy"])
    assert admin_get(proxy, "/ready") == "LIVE\n"
    info = admin_json(proxy, "/server_info")
    assert info["state"] == "LIVE"
    assert info["command_line_options"]["service_cluster"] == "front-proxy"
    dump = admin_json(proxy, "/config_dump")
    boot = dump["configs"][0]["bootstrap"]
    # The v2-era input comes out as v3.
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    assert hcm["name"] == "envoy.filters.network.http_connection_manager"
    assert hcm["typed_config"]["@type"].endswith("http_connection_manager.v3.HttpConnectionManager")
    cl = boot["static_resources"]["clusters"][0]
    assert cl["type"] == "STRICT_DNS" and cl["lb_policy"] == "ROUND_ROBIN"
    assert cl["load_assignment"]["endpoints"][0]["lb_endpoints"][1]["endpoint"]["address"]["socket_address"]["address"] == "service2"
    assert f"::127.0.0.1:{proxy.listen_port}" in admin_get(proxy, "/listeners")
    assert "admin commands are" in admin_get(proxy, "/help")
    # Mutating endpoints want POST.
    import urllib.error, urllib.request
    try:
        urllib.request.urlopen(f"http://{proxy.admin}/quitquitquit", timeout=5)
        raise AssertionError("GET /quitquitquit must be refused")
    except urllib.error.HTTPError as e:
        assert e.code == 400
    assert proxy.proc.poll() is None
    curl(f"http://{proxy.base}/")
    assert proxy.stat("http.ingress_http.downstream_rq_total") == 1
    assert curl("-X", "POST", f"http://{proxy.admin}/reset_counters")[0] == 200
    assert proxy.stat("http.ingress_http.downstream_rq_total") == 0
    assert curl("-X", "POST", f"http://{proxy.admin}/quitquitquit")[0] == 200
    assert proxy.proc.wait(timeout=5) == 0


def test_v3_config_behaves_the_same(procs, tmp_path):
    """examples/front-proxy/front-proxy-v3.yaml on its own ports."""
    e1 = Echo(procs, "127.0.0.2", name="service1")
    e2 = Echo(procs, "127.0.0.3", name="service2")
    listen, admin = free_port(), free_port()
    results = {}
    for form in ("v2", "v3"):
        args = [
            "--hosts", str(ROOT / "examples" / "hosts"),
            "--remap", f"127.0.0.1:10000=127.0.0.1:{listen}",
            "--remap", f"127.0.0.1:9901=127.0.0.1:{admin}",
            "--remap", f"127.0.0.2:8080={e1.addr}",
            "--remap", f"127.0.0.3:8080={e2.addr}",
        ]
        p = Proxy(procs, ROOT / "examples" / "front-proxy" / f"front-proxy-{form}.yaml", args, listen_port=listen, admin_port=admin)
        names = [curl(f"http://{p.base}/")[1].get("x-echo-name") for _ in range(4)]
        post = curl("-X", "POST", f"http://{p.base}/echo", "-d", "x=1")[2]
        dump = admin_json(p, "/config_dump")["configs"][0]["bootstrap"]
        results[form] = (sorted(names), post, dump)
        curl("-X", "POST", f"http://{p.admin}/quitquitquit")
        p.proc.wait(timeout=5)
    assert results["v2"] == results["v3"]
    assert results["v3"][0] == ["service1", "service1", "service2", "service2"]


def test_pipelined_requests_are_answered_in_order(procs, tmp_path):
    from conftest import raw_request
    proxy, _ = blog_proxy(procs, tmp_path)
    reqs = b"".join(
        f"GET /hello HTTP/1.1\r\nHost: x\r\nX-N: {i}\r\n\r\n".encode() for i in range(3)
    ) + b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nlast"
    out, closed = raw_request(proxy.listen_port, reqs, timeout=5)
    assert closed
    assert out.count(b"HTTP/1.1 200 OK") == 4
    for i in range(3):
        assert f"X-N:[{i}]".encode() in out
    assert out.index(b"X-N:[0]") < out.index(b"X-N:[1]") < out.index(b"X-N:[2]") < out.index(b"last")


def test_access_log_in_envoy_default_format(procs, tmp_path):
    e = Echo(procs, "127.0.0.2")
    listen = free_port()
    log = tmp_path / "access.log"
    cfg = write_config(tmp_path, f"""
static_resources:
  listeners:
  - address: {{socket_address: {{address: 127.0.0.1, port_value: {listen}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {log}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster: echo}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters:
  - name: echo
    type: STATIC
    load_assignment:
      cluster_name: echo
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.2, port_value: {e.port}}}}}}}}}]}}]
""")
    proxy = Proxy(procs, cfg, listen_port=listen)
    curl(f"http://{proxy.base}/hello?x=1", "-A", "test-agent", "-H", "x-request-id: rid-7")
    deadline = time.time() + 5
    while time.time() < deadline and not log.exists() or not log.read_text():
        time.sleep(0.05)
    line = log.read_text().strip().split("\n")[-1]
    assert re.match(
        rf'^\[\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\] "GET /hello\?x=1 HTTP/1.1" 200 - 0 \d+ \d+ \d+ "-" "test-agent" "rid-7" "127.0.0.1:{listen}" "127.0.0.2:{e.port}"$',
        line,
    ), line
