"""Envoy's HTTP filters and the route's header rules (issue #13), end to
end with curl: header mutations at every route level with Envoy's
formatters, header_mutation, cors, local_ratelimit, fault, buffer and
health_check, per-route settings (typed_per_filter_config, disabled), over
HTTP/1.1 and HTTP/2 clients and HTTP/1.1 and HTTP/2 clusters. Each
expectation was read off Envoy 1.40 first (tests/differential has the
same configs side by side)."""

import time

import pytest

from backends import RawBackend, answer
from conftest import H2_CLUSTER_OPTIONS, Echo, Proxy, curl, free_port, write_config

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = '          - name: envoy.filters.http.router\n            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n'


def config(listen, admin, port, filters="", route_config="", vhost="", routes=None, h2=False, hcm_extra=""):
    """A v3 config: one listener, one virtual host `vh`, cluster `o`."""
    routes = routes or '              - match: {prefix: "/"}\n                route: {cluster: o}\n'
    proto = H2_CLUSTER_OPTIONS if h2 else ""
    return f"""
static_resources:
  listeners:
  - name: l
    address: {{socket_address: {{address: 127.0.0.1, port_value: {listen}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": {HCM}
          stat_prefix: ingress
{hcm_extra}          route_config:
{route_config}            virtual_hosts:
            - name: vh
              domains: ["*"]
{vhost}              routes:
{routes}          http_filters:
{filters}{ROUTER}  clusters:
  - name: o
    connect_timeout: 1s
{proto}    load_assignment:
      cluster_name: o
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}}}}}]}}]
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
"""


def start(procs, tmp_path, port, name="config.yaml", **kw):
    listen, admin = free_port(), free_port()
    path = write_config(tmp_path, config(listen, admin, port, **kw), name=name)
    return Proxy(procs, path, args=("--concurrency", "1"), listen_port=listen, admin_port=admin)


def echoed(body):
    """The echo service's `Name:[v1 v2]` lines as a dict of lowercase names."""
    out = {}
    for line in body.splitlines():
        name, _, rest = line.partition(":[")
        if rest:
            out[name.lower()] = rest.rstrip("]")
    return out


MUTATIONS = dict(
    route_config=(
        '            request_headers_to_add:\n'
        '            - header: {key: x-level, value: route-config}\n'
        '              append_action: OVERWRITE_IF_EXISTS_OR_ADD\n'
        '            response_headers_to_add:\n'
        '            - header: {key: x-code, value: "%REQ(x-in)%-%RESPONSE_CODE%"}\n'
    ),
    vhost=(
        '              request_headers_to_add:\n'
        '              - header: {key: x-client, value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"}\n'
        '              - header: {key: x-proto, value: "%PROTOCOL%"}\n'
        '              - header: {key: x-level, value: vhost}\n'
        '                append_action: OVERWRITE_IF_EXISTS_OR_ADD\n'
    ),
    routes=(
        '              - match: {prefix: "/direct"}\n'
        '                direct_response: {status: 200, body: {inline_string: "hi"}}\n'
        '              - match: {prefix: "/"}\n'
        '                route: {cluster: o}\n'
        '                request_headers_to_add:\n'
        '                - header: {key: x-level, value: route}\n'
        '                  append_action: OVERWRITE_IF_EXISTS_OR_ADD\n'
        '                - header: {key: x-empty, value: ""}\n'
        '                - header: {key: x-kept-empty, value: ""}\n'
        '                  keep_empty_value: true\n'
        '                request_headers_to_remove: [x-drop]\n'
        '                response_headers_to_remove: [content-type]\n'
    ),
)


@pytest.mark.parametrize("h2_client", [False, True], ids=["http1", "http2"])
@pytest.mark.parametrize("h2_cluster", [False, True], ids=["to-h1", "to-h2"])
def test_route_header_mutations(procs, tmp_path, h2_client, h2_cluster):
    e = Echo(procs, "127.0.0.1")
    p = start(procs, tmp_path, e.port, h2=h2_cluster, **MUTATIONS)
    extra = ["--http2-prior-knowledge"] if h2_client else []
    status, headers, body = curl(*extra, f"http://{p.base}/", "-H", "x-in: IN", "-H", "x-drop: 1")
    assert status == 200, body
    up = echoed(body)
    # Route first, then virtual host, then route configuration: with
    # OVERWRITE the least specific level's value stands (Envoy's default).
    assert up["x-level"] == "route-config", up
    assert up["x-client"] == "127.0.0.1"
    assert up["x-proto"] == ("HTTP/2" if h2_client else "HTTP/1.1")
    assert "x-drop" not in up and "x-empty" not in up
    assert up["x-kept-empty"] == ""
    assert headers["x-code"] == "IN-200"
    assert "content-type" not in headers
    # The route's response headers reach a direct response too, with
    # Envoy's %RESPONSE_CODE% of 0 for a local reply.
    status, headers, body = curl(*extra, f"http://{p.base}/direct", "-H", "x-in: D")
    assert (status, body, headers["x-code"]) == (200, "hi", "D-0")


def test_most_specific_header_mutations_wins(procs, tmp_path):
    e = Echo(procs, "127.0.0.1")
    kw = dict(MUTATIONS)
    kw["route_config"] = '            most_specific_header_mutations_wins: true\n' + kw["route_config"]
    p = start(procs, tmp_path, e.port, **kw)
    status, _, body = curl(f"http://{p.base}/")
    assert status == 200 and echoed(body)["x-level"] == "route"


HEADER_MUTATION = (
    '          - name: envoy.filters.http.header_mutation\n'
    '            typed_config:\n'
    '              "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation\n'
    '              mutations:\n'
    '                request_mutations:\n'
    '                - remove: x-secret\n'
    '                - append: {header: {key: x-filter, value: "f-%REQ(x-in)%"}}\n'
    '                response_mutations:\n'
    '                - append: {header: {key: x-echo-in, value: "%REQ(x-in)%"}}\n'
)


def test_header_mutation_filter_and_its_per_route_config(procs, tmp_path):
    e = Echo(procs, "127.0.0.1")
    routes = (
        '              - match: {prefix: "/more"}\n'
        '                route: {cluster: o, prefix_rewrite: "/"}\n'
        '                typed_per_filter_config:\n'
        '                  envoy.filters.http.header_mutation:\n'
        '                    "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute\n'
        '                    mutations:\n'
        '                      request_mutations:\n'
        '                      - append: {header: {key: x-route, value: yes}}\n'
        '              - match: {prefix: "/"}\n'
        '                route: {cluster: o}\n'
    )
    p = start(procs, tmp_path, e.port, filters=HEADER_MUTATION, routes=routes)
    status, headers, body = curl(f"http://{p.base}/", "-H", "x-in: A", "-H", "x-secret: s")
    up = echoed(body)
    assert status == 200 and up["x-filter"] == "f-A" and "x-secret" not in up and "x-route" not in up
    assert headers["x-echo-in"] == "A"
    status, _, body = curl(f"http://{p.base}/more", "-H", "x-in: B")
    assert echoed(body)["x-route"] == "yes"


CORS_FILTER = (
    '          - name: envoy.filters.http.cors\n'
    '            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}\n'
)
CORS_VHOST = (
    '              typed_per_filter_config:\n'
    '                envoy.filters.http.cors:\n'
    '                  "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy\n'
    '                  allow_origin_string_match: [{exact: "http://ok.example"}, {suffix: ".trusted.example"}]\n'
    '                  allow_methods: "GET, POST"\n'
    '                  allow_headers: "x-custom"\n'
    '                  expose_headers: "x-expose"\n'
    '                  max_age: "600"\n'
    '                  allow_credentials: true\n'
)


@pytest.mark.parametrize("h2_client", [False, True], ids=["http1", "http2"])
def test_cors_preflight_and_simple_requests(procs, tmp_path, h2_client):
    e = Echo(procs, "127.0.0.1")
    p = start(procs, tmp_path, e.port, filters=CORS_FILTER, vhost=CORS_VHOST)
    extra = ["--http2-prior-knowledge"] if h2_client else []
    # A preflight from an allowed origin is answered here.
    status, h, body = curl(*extra, "-X", "OPTIONS", f"http://{p.base}/",
                           "-H", "origin: http://ok.example", "-H", "access-control-request-method: POST")
    assert status == 200 and body == ""
    assert h["access-control-allow-origin"] == "http://ok.example"
    assert h["access-control-allow-methods"] == "GET, POST"
    assert h["access-control-allow-headers"] == "x-custom"
    assert h["access-control-max-age"] == "600"
    assert h["access-control-allow-credentials"] == "true"
    # A simple request from an allowed origin goes upstream; its response
    # gets the CORS headers.
    status, h, _ = curl(*extra, f"http://{p.base}/", "-H", "origin: https://a.trusted.example")
    assert status == 200
    assert h["access-control-allow-origin"] == "https://a.trusted.example"
    assert h["access-control-expose-headers"] == "x-expose"
    # A disallowed origin gets none.
    # (The echo service itself answers `access-control-allow-origin: *`.)
    status, h, _ = curl(*extra, f"http://{p.base}/", "-H", "origin: http://evil.example")
    assert status == 200 and h.get("access-control-allow-origin") != "http://evil.example"
    assert p.stat("http.ingress.cors.origin_valid") == 2
    assert p.stat("http.ingress.cors.origin_invalid") == 1


RATE_LIMIT = (
    '          - name: envoy.filters.http.local_ratelimit\n'
    '            typed_config:\n'
    '              "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit\n'
    '              stat_prefix: rl\n'
    '              token_bucket: {max_tokens: 2, tokens_per_fill: 1, fill_interval: 3600s}\n'
    '              filter_enabled: {default_value: {numerator: 100, denominator: HUNDRED}}\n'
    '              filter_enforced: {default_value: {numerator: 100, denominator: HUNDRED}}\n'
    '              enable_x_ratelimit_headers: DRAFT_VERSION_03\n'
    '              response_headers_to_add:\n'
    '              - header: {key: x-limited, value: "yes"}\n'
)


def test_local_ratelimit_bucket_headers_and_stats(procs, tmp_path):
    e = Echo(procs, "127.0.0.1")
    routes = (
        '              - match: {prefix: "/free"}\n'
        '                route: {cluster: o, prefix_rewrite: "/"}\n'
        '                typed_per_filter_config:\n'
        '                  envoy.filters.http.local_ratelimit:\n'
        '                    "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit\n'
        '                    stat_prefix: free\n'
        '                    token_bucket: {max_tokens: 100, tokens_per_fill: 100, fill_interval: 1s}\n'
        '                    filter_enabled: {default_value: {numerator: 100, denominator: HUNDRED}}\n'
        '                    filter_enforced: {default_value: {numerator: 100, denominator: HUNDRED}}\n'
        '              - match: {prefix: "/"}\n'
        '                route: {cluster: o}\n'
    )
    p = start(procs, tmp_path, e.port, filters=CORS_FILTER + RATE_LIMIT, vhost=CORS_VHOST, routes=routes)
    got = [curl(f"http://{p.base}/", "-H", "origin: http://ok.example") for _ in range(3)]
    assert [g[0] for g in got] == [200, 200, 429]
    assert [g[1]["x-ratelimit-remaining"] for g in got] == ["1", "0", "0"]
    assert got[0][1]["x-ratelimit-limit"] == "2"
    status, h, body = got[2]
    assert body == "local_rate_limited" and h["x-limited"] == "yes"
    # The 429 passed back through the CORS filter, which comes first.
    assert h["access-control-allow-origin"] == "http://ok.example"
    # A route with its own bucket is not limited by the filter's.
    assert curl(f"http://{p.base}/free")[0] == 200
    assert p.stat("rl.http_local_rate_limit.enabled") == 3
    assert p.stat("rl.http_local_rate_limit.ok") == 2
    assert p.stat("rl.http_local_rate_limit.rate_limited") == 1
    assert p.stat("rl.http_local_rate_limit.enforced") == 1
    assert p.stat("free.http_local_rate_limit.ok") == 1
    assert p.stat("http.ingress.downstream_rq_4xx") == 1


FAULT = (
    '          - name: envoy.filters.http.fault\n'
    '            typed_config:\n'
    '              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault\n'
    '              abort: {header_abort: {}, percentage: {numerator: 100}}\n'
    '              delay: {header_delay: {}, percentage: {numerator: 100}}\n'
)


@pytest.mark.parametrize("h2_client", [False, True], ids=["http1", "http2"])
def test_fault_abort_and_delay_by_header(procs, tmp_path, h2_client):
    e = Echo(procs, "127.0.0.1")
    routes = (
        '              - match: {prefix: "/nofault"}\n'
        '                route: {cluster: o, prefix_rewrite: "/"}\n'
        '                typed_per_filter_config:\n'
        '                  envoy.filters.http.fault:\n'
        '                    "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig\n'
        '                    disabled: true\n'
        '              - match: {prefix: "/"}\n'
        '                route: {cluster: o}\n'
    )
    p = start(procs, tmp_path, e.port, filters=FAULT, routes=routes)
    extra = ["--http2-prior-knowledge"] if h2_client else []
    status, _, body = curl(*extra, f"http://{p.base}/", "-H", "x-envoy-fault-abort-request: 503")
    assert (status, body) == (503, "fault filter abort")
    t0 = time.monotonic()
    status, _, _ = curl(*extra, f"http://{p.base}/", "-H", "x-envoy-fault-delay-request: 400")
    assert status == 200 and time.monotonic() - t0 >= 0.4
    # The route that disables the filter is untouched by the headers.
    status, _, _ = curl(*extra, f"http://{p.base}/nofault", "-H", "x-envoy-fault-abort-request: 503")
    assert status == 200
    assert p.stat("http.ingress.fault.aborts_injected") == 1
    assert p.stat("http.ingress.fault.delays_injected") == 1
    assert p.stat("http.ingress.fault.active_faults") == 0


def test_fault_grpc_abort_is_a_grpc_status(procs, tmp_path):
    e = Echo(procs, "127.0.0.1")
    p = start(procs, tmp_path, e.port, filters=FAULT)
    status, h, _ = curl("--http2-prior-knowledge", f"http://{p.base}/svc/M",
                        "-H", "content-type: application/grpc", "-H", "x-envoy-fault-abort-grpc-request: 14")
    assert status == 200 and h["grpc-status"] == "14", h


BUFFER = (
    '          - name: envoy.filters.http.buffer\n'
    '            typed_config:\n'
    '              "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer\n'
    '              max_request_bytes: 16\n'
)


@pytest.mark.parametrize("h2_client", [False, True], ids=["http1", "http2"])
def test_buffer_limits_and_gives_a_length(procs, tmp_path, h2_client):
    e = Echo(procs, "127.0.0.1")
    p = start(procs, tmp_path, e.port, filters=BUFFER)
    extra = ["--http2-prior-knowledge"] if h2_client else []
    status, _, body = curl(*extra, f"http://{p.base}/echo", "--data-binary", "small")
    assert (status, body) == (200, "small")
    status, h, body = curl(*extra, f"http://{p.base}/echo", "--data-binary", "x" * 17)
    assert (status, body) == (413, "Payload Too Large")
    # The buffered body goes upstream with its length (an HTTP/1.1
    # chunked upload too).
    b = RawBackend(answer(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"))
    p2 = start(procs, tmp_path, b.port, name="raw.yaml", filters=BUFFER)
    te = [] if h2_client else ["-H", "transfer-encoding: chunked"]
    status, _, body = curl(*extra, f"http://{p2.base}/", *te, "--data-binary", "abc")
    assert (status, body) == (200, "ok")
    head = b.heads[-1].lower()
    assert "content-length: 3" in head and "transfer-encoding" not in head, head
    assert b.leftovers[-1] == b"abc"
    assert p.stat("http.ingress.downstream_rq_too_large") == 1


def test_health_check_answers_and_follows_admin_fail(procs, tmp_path):
    e = Echo(procs, "127.0.0.1")
    hc = (
        '          - name: envoy.filters.http.health_check\n'
        '            typed_config:\n'
        '              "@type": type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck\n'
        '              pass_through_mode: false\n'
        '              headers: [{name: ":path", string_match: {exact: "/healthz"}}]\n'
        '              cluster_min_healthy_percentages: {o: {value: 100}}\n'
    )
    p = start(procs, tmp_path, e.port, filters=hc)
    status, h, body = curl(f"http://{p.base}/healthz")
    assert (status, body) == (200, "") and "x-envoy-upstream-healthchecked-cluster" in h
    assert curl(f"http://{p.base}/")[0] == 200
    curl("-X", "POST", f"http://{p.admin}/healthcheck/fail")
    assert curl(f"http://{p.base}/healthz")[0] == 503
    curl("-X", "POST", f"http://{p.admin}/healthcheck/ok")
    assert curl(f"http://{p.base}/healthz")[0] == 200
    assert p.stat("http.ingress.health_check.request") == 3
    assert p.stat("http.ingress.health_check.failed") == 1


@pytest.mark.parametrize("h2_client", [False, True], ids=["http1", "http2"])
@pytest.mark.parametrize("h2_cluster", [False, True], ids=["to-h1", "to-h2"])
def test_access_log_route_name_and_response_headers(procs, tmp_path, h2_client, h2_cluster):
    """%ROUTE_NAME% and %RESP(...)% come from the one request path, for
    every client and cluster protocol (they were empty on two of the
    three engines before issue 13)."""
    e = Echo(procs, "127.0.0.1")
    log = tmp_path / "access.log"
    hcm_extra = (
        '          access_log:\n'
        '          - name: envoy.access_loggers.file\n'
        '            typed_config:\n'
        '              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n'
        f'              path: {log}\n'
        '              log_format: {text_format_source: {inline_string: '
        '"%ROUTE_NAME%|%RESP(content-type)%|%RESPONSE_CODE%|%BYTES_RECEIVED%\\n"}}\n'
    )
    routes = '              - name: r1\n                match: {prefix: "/"}\n                route: {cluster: o}\n'
    p = start(procs, tmp_path, e.port, routes=routes, h2=h2_cluster, hcm_extra=hcm_extra)
    extra = ["--http2-prior-knowledge"] if h2_client else []
    status, h, _ = curl(*extra, f"http://{p.base}/echo", "--data-binary", "hello")
    assert status == 200
    for _ in range(50):
        if log.exists() and log.read_text():
            break
        time.sleep(0.05)
    assert log.read_text().strip() == f"r1|{h['content-type']}|200|5", log.read_text()


def test_access_log_response_flags_of_filters(procs, tmp_path):
    """Envoy's %RESPONSE_FLAGS%: FI for a fault's abort, DI for its delay,
    RL for a rate limiter's 429, NR for no route (checked on Envoy 1.40)."""
    e = Echo(procs, "127.0.0.1")
    log = tmp_path / "access.log"
    hcm_extra = (
        '          access_log:\n'
        '          - name: envoy.access_loggers.file\n'
        '            typed_config:\n'
        '              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n'
        f'              path: {log}\n'
        '              log_format: {text_format_source: {inline_string: "%RESPONSE_CODE% %RESPONSE_FLAGS%\\n"}}\n'
    )
    rl = RATE_LIMIT.replace("max_tokens: 2", "max_tokens: 3")
    p = start(procs, tmp_path, e.port, filters=FAULT + rl, hcm_extra=hcm_extra,
              routes='              - match: {prefix: "/"}\n                route: {cluster: o}\n')
    curl(f"http://{p.base}/", "-H", "x-envoy-fault-abort-request: 418")
    curl(f"http://{p.base}/", "-H", "x-envoy-fault-delay-request: 10")
    curl(f"http://{p.base}/")
    curl(f"http://{p.base}/")
    curl(f"http://{p.base}/")
    for _ in range(50):
        if log.exists() and len(log.read_text().splitlines()) >= 5:
            break
        time.sleep(0.05)
    assert log.read_text().splitlines() == ["418 FI", "200 DI", "200 -", "200 -", "429 RL"], log.read_text()
