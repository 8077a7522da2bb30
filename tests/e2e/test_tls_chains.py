"""Several filter chains on one listener, chosen as Envoy chooses them
(issue 14): the TLS inspector's SNI and ALPN, `filter_chain_match`
(`server_names` exact over `*.suffix`, `transport_protocol`), the
`default_filter_chain` for what matches nothing, `no_filter_chain_match`
otherwise. With curl and Python's ssl; certificates made per session."""

import socket
import ssl

import pytest

from conftest import Proxy, curl, free_port, make_ca, make_leaf, write_config

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
INSPECTOR = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("sni")
    make_ca(d, "sni test CA")
    for name, san in (("a", "DNS:a.example.com"), ("wild", "DNS:*.example.com")):
        make_leaf(d, name, f"subjectAltName={san}\n")
    return d


def hcm(prefix, body):
    return f"""      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": {HCM}
          stat_prefix: {prefix}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                direct_response: {{status: 200, body: {{inline_string: "{body}"}}}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
"""


def tls(certs, name):
    return f"""      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": {TLS}
          common_tls_context:
            alpn_protocols: [h2, http/1.1]
            tls_certificates:
            - certificate_chain: {{filename: {certs / (name + '.pem')}}}
              private_key: {{filename: {certs / (name + '.key')}}}
"""


def sni_config(listen, admin, certs, default=True, inspector=True):
    filters = f"""    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config: {{"@type": {INSPECTOR}}}
""" if inspector else ""
    default_chain = f"    default_filter_chain:\n{hcm('plain', 'default chain')}" if default else ""
    return f"""
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:
  - name: sni
    address: {{socket_address: {{address: 127.0.0.1, port_value: {listen}}}}}
{filters}    filter_chains:
    - filter_chain_match: {{server_names: ["a.example.com"]}}
{tls(certs, 'a')}{hcm('chain_a', 'chain a')}    - filter_chain_match: {{server_names: ["*.example.com"]}}
{tls(certs, 'wild')}{hcm('chain_wild', 'chain wild')}{default_chain}"""


@pytest.fixture
def sni_proxy(procs, tmp_path, certs):
    def start(**kw):
        listen, admin = free_port(), free_port()
        cfg = write_config(tmp_path, sni_config(listen, admin, certs, **kw))
        return Proxy(procs, cfg, listen_port=listen, admin_port=admin)

    return start


def https(p, certs, host, *extra):
    return curl("--cacert", str(certs / "ca.pem"), "--resolve", f"{host}:{p.listen_port}:127.0.0.1",
                *extra, f"https://{host}:{p.listen_port}/")


def test_sni_picks_the_chain_and_its_certificate(sni_proxy, certs):
    p = sni_proxy()
    # The exact name wins over the wildcard; each chain serves its own
    # certificate (curl verifies it against the name).
    assert https(p, certs, "a.example.com")[::2] == (200, "chain a")
    assert https(p, certs, "b.example.com")[::2] == (200, "chain wild")
    assert https(p, certs, "b.example.com", "--http2")[::2] == (200, "chain wild")
    # Plain HTTP is no ClientHello: the default chain takes it.
    assert curl(f"http://{p.base}/")[::2] == (200, "default chain")
    assert p.stat("tls_inspector.tls_found") == 3
    assert p.stat("tls_inspector.sni_found") == 3
    assert p.stat("tls_inspector.alpn_found") == 3
    assert p.stat("tls_inspector.tls_not_found") >= 1
    assert p.stat("http.chain_a.downstream_rq_total") == 1
    assert p.stat("http.chain_wild.downstream_rq_total") == 2


def test_no_match_and_no_default_closes_the_connection(sni_proxy, certs):
    p = sni_proxy(default=False)
    # Another domain: no chain, no default chain.
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    with socket.create_connection(("127.0.0.1", p.listen_port), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
            with ctx.wrap_socket(raw, server_hostname="other.test") as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                s.recv(100)
    # A TLS client without SNI does not match the name-only chains either.
    with socket.create_connection(("127.0.0.1", p.listen_port), timeout=5) as raw:
        nosni = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        nosni.check_hostname = False
        with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
            with nosni.wrap_socket(raw) as s:
                s.recv(100)
    assert p.stat("listener.127.0.0.1_%d.no_filter_chain_match" % p.listen_port) == 2
    # The named chains still work.
    assert https(p, certs, "a.example.com")[::2] == (200, "chain a")
    assert p.proc.poll() is None


def test_server_names_without_a_listed_inspector_still_inspect(sni_proxy, certs):
    # Envoy adds the TLS inspector itself when a chain matches on what only
    # a ClientHello tells.
    p = sni_proxy(inspector=False)
    assert https(p, certs, "a.example.com")[::2] == (200, "chain a")
    assert https(p, certs, "c.example.com")[::2] == (200, "chain wild")


def test_a_client_hello_that_never_finishes_times_out_in_the_inspector(procs, tmp_path, certs):
    listen, admin = free_port(), free_port()
    text = sni_config(listen, admin, certs).replace(
        "    listener_filters:\n", "    listener_filters_timeout: 1s\n    listener_filters:\n", 1)
    p = Proxy(procs, write_config(tmp_path, text), listen_port=listen, admin_port=admin)
    s = socket.create_connection(("127.0.0.1", listen), timeout=5)
    s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01]))
    assert https(p, certs, "a.example.com")[::2] == (200, "chain a")
    # Closed with the peeked bytes unread: an end of stream or a reset.
    try:
        assert s.recv(100) == b""
    except ConnectionResetError:
        pass
    s.close()
    assert p.stat(f"listener.127.0.0.1_{listen}.downstream_pre_cx_timeout") == 1
