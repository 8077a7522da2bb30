"""The v3 configs both proxies run: one template, a few variants.

Every variant has one listener (HCM stat_prefix `ingress`) and these
routes, first match wins:

- virtual host `named` (domains `named.test`): `/only` answers
  `direct_response` 200 "named" (so a Host that matches it is visible in
  the body); anything else there has no route (404).
- virtual hosts `*.wild.test` and `pre.*`: direct 200 "wild" / "pre".
- virtual host `main` (`*`): `/down` -> cluster `down` (a port nobody
  listens on); `/t/` -> `origin` with a 1 s route timeout; `/direct` ->
  direct 200 "direct"; `/nows` -> `origin` with WebSocket upgrades
  disabled on the route (only meaningful where the HCM enables them);
  `/` -> cluster `origin` (the recording origin).

Clusters: `origin` (HTTP/1.1), `down`. The grpc variant adds `grpc` and
`grpc_down`, both HTTP/2 (h2c), behind routes `/test.Svc/` (1 s timeout)
and `/down.Svc/`.

The TLS variants (`tls`, `tls-mtls`) put a DownstreamTlsContext on the
listener's filter chain (certificate `front-proxy`, ECDSA P-256, ALPN h2
and http/1.1); `tls-mtls` also requires a client certificate from the
test CA whose DNS SAN is `front-proxy`. `tls` adds clusters with an
UpstreamTlsContext to a TLS origin (`tls_up`: SNI localhost, trusted_ca
the test CA; `tls_wrongca`: trusted_ca another CA; `tls_badsan`: the test
CA and a SAN matcher the origin's certificate does not satisfy;
`tls_resume`: as `tls_up`, with session resumption; the others resume no
session) behind routes `/up-tls/`, `/up-wrongca/`, `/up-badsan/`,
`/up-resume/`.

`$listen`, `$admin`, `$origin`, `$down`, `$grpc`, `$tls_origin` are the
ports and `$certs` the certificate directory (scripts/make-certs.sh, made
per run), filled in per proxy by Variant.render.
"""

from dataclasses import dataclass
from string import Template

TEMPLATE = """\
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: $listen}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
$hcm_extra          route_config:
            name: local
$rc_extra            virtual_hosts:
            - name: named
              domains: ["named.test"]
              routes:
              - match: {prefix: "/only"}
                direct_response: {status: 200, body: {inline_string: "named\\n"}}
            - name: wild
              domains: ["*.wild.test"]
              routes:
              - match: {prefix: "/"}
                direct_response: {status: 200, body: {inline_string: "wild\\n"}}
            - name: pre
              domains: ["pre.*"]
              routes:
              - match: {prefix: "/"}
                direct_response: {status: 200, body: {inline_string: "pre\\n"}}
            - name: main
              domains: ["*"]
$main_extra              routes:
$routes_extra              - match: {prefix: "/down"}
                route: {cluster: down}
              - match: {prefix: "/t/"}
                route: {cluster: origin, timeout: 1s}
              - match: {prefix: "/direct"}
                direct_response: {status: 200, body: {inline_string: "direct\\n"}}
              - match: {prefix: "/nows"}
                route:
                  cluster: origin
                  upgrade_configs: [{upgrade_type: websocket, enabled: false}]
              - match: {prefix: "/"}
                route: {cluster: origin}
          http_filters:
$filters_extra          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
$chain_extra  clusters:
  - name: origin
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: origin
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $origin}}}}]}]
  - name: down
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: down
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $down}}}}]}]
$clusters_extra
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: $admin}}
"""

H2_OPTIONS = """\
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
"""

GRPC_CLUSTERS = f"""\
  - name: grpc
    connect_timeout: 1s
    type: STATIC
{H2_OPTIONS}    load_assignment:
      cluster_name: grpc
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: $grpc}}}}}}}}]}}]
  - name: grpc_down
    connect_timeout: 1s
    type: STATIC
{H2_OPTIONS}    load_assignment:
      cluster_name: grpc_down
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: $down}}}}}}}}]}}]
"""

GRPC_ROUTES = """\
              - match: {prefix: "/test.Svc/"}
                route: {cluster: grpc, timeout: 1s}
              - match: {prefix: "/down.Svc/"}
                route: {cluster: grpc_down}
"""


# The "filters" variant. Route configuration: a request header with
# Envoy's formatters, a response header reading the request and the code.
FILTER_RC = """\
            request_headers_to_add:
            - header: {key: x-rc, value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%|%PROTOCOL%"}
            response_headers_to_add:
            - header: {key: x-rc-code, value: "%REQ(x-in)%-%RESPONSE_CODE%"}
            response_headers_to_remove: [x-origin-drop]
"""
# Virtual host `main`: a CORS policy, header levels with OVERWRITE.
FILTER_MAIN = """\
              request_headers_to_add:
              - header: {key: x-level, value: vhost}
                append_action: OVERWRITE_IF_EXISTS_OR_ADD
              typed_per_filter_config:
                envoy.filters.http.cors:
                  "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy
                  allow_origin_string_match: [{exact: "http://ok.test"}, {suffix: ".trusted.test"}]
                  allow_methods: "GET, POST"
                  allow_headers: "x-custom"
                  expose_headers: "x-expose"
                  max_age: "600"
"""
# Routes: a rate-limited route (one token), a buffered route, a route
# that disables the fault filter, a route with its own mutations.
FILTER_ROUTES = """\
              - match: {prefix: "/rl"}
                route: {cluster: origin}
                typed_per_filter_config:
                  envoy.filters.http.local_ratelimit:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                    stat_prefix: rl_route
                    token_bucket: {max_tokens: 1, tokens_per_fill: 1, fill_interval: 3600s}
                    filter_enabled: {default_value: {numerator: 100, denominator: HUNDRED}}
                    filter_enforced: {default_value: {numerator: 100, denominator: HUNDRED}}
                    enable_x_ratelimit_headers: DRAFT_VERSION_03
              - match: {prefix: "/buffered"}
                route: {cluster: origin, prefix_rewrite: "/echo"}
                typed_per_filter_config:
                  envoy.filters.http.buffer:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute
                    buffer: {max_request_bytes: 8}
              - match: {prefix: "/nofault"}
                route: {cluster: origin}
                typed_per_filter_config:
                  envoy.filters.http.fault:
                    "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
                    disabled: true
              - match: {prefix: "/levels"}
                route: {cluster: origin}
                request_headers_to_add:
                - header: {key: x-level, value: route}
                  append_action: OVERWRITE_IF_EXISTS_OR_ADD
                - header: {key: x-empty, value: ""}
                - header: {key: x-kept, value: ""}
                  keep_empty_value: true
                request_headers_to_remove: [x-drop]
                response_headers_to_add:
                - header: {key: x-route-resp, value: "r"}
"""
# The chain: cors, fault (header controlled), the rate limiter (enabled
# per route only), buffer (per route only: disabled by default), health
# checks on /healthz, a header mutation filter.
FILTER_CHAIN = """\
          - name: envoy.filters.http.cors
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
          - name: envoy.filters.http.fault
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
              abort: {header_abort: {}, percentage: {numerator: 100}}
              delay: {header_delay: {}, percentage: {numerator: 100}}
          - name: envoy.filters.http.local_ratelimit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
              stat_prefix: rl_filter
          - name: envoy.filters.http.buffer
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer
              max_request_bytes: 1048576
            disabled: true
          - name: envoy.filters.http.health_check
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck
              pass_through_mode: false
              headers: [{name: ":path", string_match: {exact: "/healthz"}}]
          - name: envoy.filters.http.header_mutation
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation
              mutations:
                request_mutations:
                - remove: x-secret
                - append: {header: {key: x-hm, value: "hm-%REQ(x-in)%"}}
                response_mutations:
                - append: {header: {key: x-hm-resp, value: "%REQ(x-in)%"}}
"""


DOWN_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UP_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"


def listener_tls(client_san=None):
    """The filter chain's transport socket: TLS with the front-proxy
    certificate; with `client_san`, a client certificate from the test CA
    with that DNS SAN is required."""
    require = "          require_client_certificate: true\n" if client_san else ""
    validation = (
        "            validation_context:\n"
        "              trusted_ca: {filename: $certs/ca.pem}\n"
        "              match_typed_subject_alt_names:\n"
        f"              - {{san_type: DNS, matcher: {{exact: {client_san}}}}}\n"
    ) if client_san else ""
    return (
        "      transport_socket:\n"
        "        name: envoy.transport_sockets.tls\n"
        "        typed_config:\n"
        f"          \"@type\": {DOWN_TLS}\n"
        f"{require}"
        "          common_tls_context:\n"
        "            alpn_protocols: [h2, http/1.1]\n"
        "            tls_certificates:\n"
        "            - certificate_chain: {filename: $certs/front-proxy.pem}\n"
        "              private_key: {filename: $certs/front-proxy.key}\n"
        f"{validation}"
    )


def tls_cluster(name, ca, san=None, resume=False):
    """A cluster to the TLS origin with an UpstreamTlsContext (SNI
    localhost, trusted_ca `ca`, optionally a DNS SAN matcher). Session
    resumption is off (`max_session_keys: 0`: every case's handshake is a
    full one, whatever ran before) unless `resume`."""
    matcher = (
        "            match_typed_subject_alt_names:\n"
        f"            - {{san_type: DNS, matcher: {{exact: {san}}}}}\n"
    ) if san else ""
    return (
        f"  - name: {name}\n"
        "    connect_timeout: 1s\n"
        "    type: STATIC\n"
        "    transport_socket:\n"
        "      name: envoy.transport_sockets.tls\n"
        "      typed_config:\n"
        f"        \"@type\": {UP_TLS}\n"
        "        sni: localhost\n"
        + ("" if resume else "        max_session_keys: 0\n") +
        "        common_tls_context:\n"
        "          validation_context:\n"
        f"            trusted_ca: {{filename: $certs/{ca}}}\n"
        f"{matcher}"
        "    load_assignment:\n"
        f"      cluster_name: {name}\n"
        "      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: "
        "{address: 127.0.0.1, port_value: $tls_origin}}}}]}]\n"
    )


TLS_CLUSTERS = (tls_cluster("tls_up", "ca.pem") + tls_cluster("tls_wrongca", "wrong-ca.pem")
                + tls_cluster("tls_badsan", "ca.pem", san="not-the-origin")
                + tls_cluster("tls_resume", "ca.pem", resume=True))
TLS_ROUTES = """\
              - match: {prefix: "/up-tls/"}
                route: {cluster: tls_up}
              - match: {prefix: "/up-wrongca/"}
                route: {cluster: tls_wrongca}
              - match: {prefix: "/up-badsan/"}
                route: {cluster: tls_badsan}
              - match: {prefix: "/up-resume/"}
                route: {cluster: tls_resume}
"""


def hcm(*lines):
    """HCM fields, one per argument, indented for the template."""
    return "".join(f"          {line}\n" for line in lines)


@dataclass
class Variant:
    """One config: a name, what it sets, and which clusters it has."""

    name: str
    doc: str
    hcm_extra: str = ""
    routes_extra: str = ""
    clusters_extra: str = ""
    grpc: bool = False
    rc_extra: str = ""
    main_extra: str = ""
    filters_extra: str = ""
    chain_extra: str = ""  # more fields of the filter chain (its transport_socket)
    tls: bool = False  # the listener speaks TLS: clients connect with TLS unless a case says `plain`
    tls_clusters: tuple = ()  # clusters to the TLS origin
    client_cert: str = ""  # the certificate the warm-up (and a case by default) presents

    @property
    def clusters(self):
        return ["origin", "down"] + (["grpc", "grpc_down"] if self.grpc else []) + list(self.tls_clusters)

    def render(self, **ports):
        text = Template(TEMPLATE).safe_substitute(
            hcm_extra=self.hcm_extra, routes_extra=self.routes_extra, clusters_extra=self.clusters_extra,
            rc_extra=self.rc_extra, main_extra=self.main_extra, filters_extra=self.filters_extra,
            chain_extra=self.chain_extra)
        return Template(text).substitute(**{k: str(v) for k, v in ports.items()})


VARIANTS = {v.name: v for v in [
    Variant("default", "the HCM with no optional field set: each proxy's own defaults"),
    Variant("norm-off", "normalize_path and merge_slashes set false (Envoy's defaults)",
            hcm("normalize_path: false", "merge_slashes: false")),
    Variant("norm-on", "normalize_path and merge_slashes set true (nuncio's defaults)",
            hcm("normalize_path: true", "merge_slashes: true")),
    Variant("remote", "use_remote_address: true",
            hcm("use_remote_address: true")),
    Variant("remote-xff1", "use_remote_address: true, xff_num_trusted_hops: 1",
            hcm("use_remote_address: true", "xff_num_trusted_hops: 1")),
    Variant("upgrade", "HCM allows WebSocket upgrades (upgrade_configs); /nows disables them per route",
            hcm("upgrade_configs: [{upgrade_type: websocket}]")),
    Variant("http10", "accept_http_10 with default_host_for_http_10 named.test",
            hcm("http_protocol_options: {accept_http_10: true, default_host_for_http_10: named.test}")),
    Variant("underscore-reject", "headers_with_underscores_action: REJECT_REQUEST",
            hcm("common_http_protocol_options: {headers_with_underscores_action: REJECT_REQUEST}")),
    Variant("underscore-drop", "headers_with_underscores_action: DROP_HEADER",
            hcm("common_http_protocol_options: {headers_with_underscores_action: DROP_HEADER}")),
    Variant("headers-timeout", "request_headers_timeout: 1s",
            hcm("request_headers_timeout: 1s")),
    Variant("grpc", "HTTP/2 (h2c) clusters to a grpcio server and to a down port",
            routes_extra=GRPC_ROUTES, clusters_extra=GRPC_CLUSTERS, grpc=True),
    Variant("filters", "HTTP filters (cors, fault, local_ratelimit, buffer, header_mutation) and route "
            "header mutations; see FILTER_* below",
            rc_extra=FILTER_RC, main_extra=FILTER_MAIN, routes_extra=FILTER_ROUTES,
            filters_extra=FILTER_CHAIN),
    Variant("tls", "an HTTPS listener (ECDSA certificate, ALPN h2 and http/1.1) and clusters with an "
            "UpstreamTlsContext to a TLS origin",
            chain_extra=listener_tls(), routes_extra=TLS_ROUTES, clusters_extra=TLS_CLUSTERS, tls=True,
            tls_clusters=("tls_up", "tls_wrongca", "tls_badsan", "tls_resume")),
    Variant("tls-mtls", "an HTTPS listener that requires a client certificate from the test CA with the "
            "DNS SAN front-proxy", chain_extra=listener_tls(client_san="front-proxy"), tls=True,
            client_cert="front-proxy"),
]}
