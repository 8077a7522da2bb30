"""TLS on listeners (issue 14), end to end with clients nobody here wrote:
curl (HTTP/1.1 and HTTP/2 by ALPN), `openssl s_client`, Python's `ssl`,
h2load over TLS. And the bad cases: plain HTTP to the TLS port, a
ClientHello that never finishes, garbage, a key that does not match its
certificate. Certificates are made per test session with the openssl CLI
(no key is committed). Expectations were read off Envoy 1.40 with the
same config (ssl.* stats, x-forwarded-proto, ALPN)."""

import os
import socket
import ssl
import subprocess
import time

import pytest

from conftest import BIN, H2_CLUSTER_OPTIONS, Echo, Proxy, curl, free_port, make_ca, make_leaf, openssl, write_config

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, an ECDSA and an RSA server certificate for localhost and
    127.0.0.1, and a key that belongs to neither."""
    d = tmp_path_factory.mktemp("certs")
    make_ca(d)
    ext = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    make_leaf(d, "ec", ext)
    make_leaf(d, "rsa", ext, newkey=("rsa:2048",))
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "other.key", cwd=d)
    # An X.509 v1 certificate (no extensions), as Envoy's own examples use.
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "v1.key",
            "-out", "v1.csr", "-subj", "/CN=localhost", cwd=d)
    openssl("x509", "-req", "-in", "v1.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "v1.pem", "-days", "2", cwd=d)
    return d


def tls_config(listen, admin, upstream, certs, key="ec.key", cert="ec.pem", alpn="[h2, http/1.1]", extra="",
               client_ca=None, client_san=None):
    """A TLS listener (certificate `certs/cert`) in front of `upstream`;
    with `client_ca`, it requires a client certificate from that CA whose
    DNS SAN is `client_san`."""
    require = "          require_client_certificate: true\n" if client_ca else ""
    validation = (
        "            validation_context:\n"
        f"              trusted_ca: {{filename: {client_ca}}}\n"
        "              match_typed_subject_alt_names:\n"
        f"              - {{san_type: DNS, matcher: {{exact: {client_san}}}}}\n"
    ) if client_ca else ""
    return f"""
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:
  - name: https
    address: {{socket_address: {{address: 127.0.0.1, port_value: {listen}}}}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": {TLS}
{require}          common_tls_context:
            alpn_protocols: {alpn}
            tls_certificates:
            - certificate_chain: {{filename: {certs / cert}}}
              private_key: {{filename: {certs / key}}}
{validation}{extra}      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": {HCM}
          stat_prefix: ingress_https
          route_config:
            virtual_hosts:
            - name: local
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
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {upstream}}}}}}}
"""


@pytest.fixture
def tls_proxy(procs, tmp_path, certs):
    def start(**kw):
        echo = Echo(procs, "127.0.0.1")
        listen, admin = free_port(), free_port()
        cfg = write_config(tmp_path, tls_config(listen, admin, echo.port, certs, **kw))
        return Proxy(procs, cfg, listen_port=listen, admin_port=admin)

    return start


def ssl_stat(p, name):
    return p.stat(f"listener.127.0.0.1_{p.listen_port}.ssl.{name}")


def test_curl_gets_http11_and_http2_by_alpn(tls_proxy, certs):
    p = tls_proxy()
    url = f"https://localhost:{p.listen_port}/hello"
    for flag, version in (("--http1.1", "1.1"), ("--http2", "2")):
        out = subprocess.run(
            ["curl", "-s", "-S", "--cacert", str(certs / "ca.pem"), flag, "-w", "\\n%{http_version}", url],
            capture_output=True, text=True, timeout=20,
        )
        body, _, got = out.stdout.rpartition("\n")
        assert got == version, out.stderr
        # The echo service shows what reached it: Envoy's x-forwarded-proto
        # for a TLS client is https.
        assert "x-forwarded-proto:[https]" in body.lower(), body
    assert ssl_stat(p, "handshake") == 2
    assert ssl_stat(p, "versions.TLSv1.3") == 2
    # As Envoy counts it: the client sent no certificate.
    assert ssl_stat(p, "no_certificate") == 2
    assert p.stat("http.ingress_https.downstream_cx_http2_total") == 1
    # The connection manager's TLS connections, as Envoy counts them.
    assert p.stat("http.ingress_https.downstream_cx_ssl_total") == 2
    assert p.stat("http.ingress_https.downstream_cx_ssl_active") == 0


def test_curl_refuses_a_certificate_it_cannot_verify(tls_proxy):
    p = tls_proxy()
    status, _, err = curl(f"https://localhost:{p.listen_port}/")
    assert status is None and "certificate" in err.lower()
    # The client gave up in the handshake: a connection error, no crash.
    deadline = time.time() + 5
    while ssl_stat(p, "connection_error") != 1 and time.time() < deadline:
        time.sleep(0.05)
    assert ssl_stat(p, "connection_error") == 1


def test_openssl_s_client_alpn_and_sni(tls_proxy, certs):
    p = tls_proxy()
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{p.listen_port}", "-servername", "localhost",
         "-alpn", "h2", "-CAfile", str(certs / "ca.pem"), "-verify_return_error"],
        input=b"", capture_output=True, timeout=20,
    )
    text = out.stdout.decode(errors="replace")
    assert "ALPN protocol: h2" in text, text
    assert "Verify return code: 0 (ok)" in text, text
    # TLS 1.2 is offered too (rustls' minimum; Envoy's default minimum).
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{p.listen_port}", "-tls1_2",
         "-CAfile", str(certs / "ca.pem")],
        input=b"", capture_output=True, timeout=20,
    )
    assert "Protocol  : TLSv1.2" in out.stdout.decode(errors="replace")
    assert ssl_stat(p, "versions.TLSv1.2") == 1


def test_python_ssl_keep_alive_requests(tls_proxy, certs):
    p = tls_proxy(cert="rsa.pem", key="rsa.key")
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    ctx.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", p.listen_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() == "http/1.1"
            for i in range(3):
                s.sendall(f"GET /hello?r={i} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
                got = b""
                while b"\r\n\r\n" not in got:
                    got += s.recv(65536)
                head, _, body = got.partition(b"\r\n\r\n")
                n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
                while len(body) < n:
                    body += s.recv(65536)
                assert head.startswith(b"HTTP/1.1 200"), head
                assert b"X-Forwarded-Proto:[https]" in body
    assert ssl_stat(p, "handshake") == 1
    # The RSA certificate and one of BoringSSL's suite names.
    assert ssl_stat(p, "ciphers.TLS_AES_256_GCM_SHA384") or ssl_stat(p, "ciphers.TLS_AES_128_GCM_SHA256")


def test_h2load_over_tls(tls_proxy):
    p = tls_proxy()
    out = subprocess.run(
        ["h2load", "-n", "200", "-c", "4", "-m", "10", f"https://127.0.0.1:{p.listen_port}/"],
        capture_output=True, text=True, timeout=60,
    )
    assert "200 succeeded, 0 failed, 0 errored" in out.stdout, out.stdout + out.stderr
    assert "TLS Protocol: TLSv1.3" in out.stdout
    assert ssl_stat(p, "handshake") == 4


def test_plain_http_to_the_tls_port_is_refused_and_others_are_served(tls_proxy, certs):
    p = tls_proxy()
    with socket.create_connection(("127.0.0.1", p.listen_port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        back = b""
        try:
            while chunk := s.recv(4096):
                back += chunk
        except ConnectionResetError:
            pass
    # A TLS alert, never an HTTP response.
    assert not back.startswith(b"HTTP/")
    assert ssl_stat(p, "connection_error") == 1
    status, _, _ = curl("--cacert", str(certs / "ca.pem"), f"https://localhost:{p.listen_port}/")
    assert status == 200


def test_a_client_hello_that_never_finishes_times_out(tls_proxy, certs):
    extra = "      transport_socket_connect_timeout: 1s\n"
    p = tls_proxy(extra=extra)
    stuck = socket.create_connection(("127.0.0.1", p.listen_port), timeout=5)
    # A handshake record header promising 512 bytes, and 3 of them.
    stuck.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01]))
    t0 = time.time()
    # Meanwhile another client is served.
    status, _, _ = curl("--cacert", str(certs / "ca.pem"), f"https://localhost:{p.listen_port}/")
    assert status == 200
    stuck.settimeout(5)
    assert stuck.recv(100) == b""  # closed by nuncio
    waited = time.time() - t0
    assert 0.8 < waited < 4, waited
    stuck.close()
    # Envoy's listener stat for it; not a TLS error.
    assert p.stat(f"listener.127.0.0.1_{p.listen_port}.downstream_cx_transport_socket_connect_timeout") == 1
    assert ssl_stat(p, "connection_error") == 0


def test_garbage_closes_the_connection_and_the_process_stays_up(tls_proxy, certs):
    p = tls_proxy()
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", p.listen_port), timeout=5) as s:
            try:
                s.sendall(os.urandom(1 << 20))
            except (BrokenPipeError, ConnectionResetError):
                pass
    assert p.proc.poll() is None
    status, _, _ = curl("--cacert", str(certs / "ca.pem"), f"https://localhost:{p.listen_port}/")
    assert status == 200
    assert ssl_stat(p, "connection_error") == 3


def test_a_key_that_does_not_match_its_certificate_is_a_config_error(tmp_path, certs):
    cfg = write_config(tmp_path, tls_config(free_port(), free_port(), 1, certs, key="other.key"))
    out = subprocess.run([BIN, "--mode", "validate", "-c", str(cfg)], capture_output=True, text=True, timeout=20)
    assert out.returncode != 0
    lines = [l for l in out.stderr.strip().splitlines() if l.strip()]
    # One line: file:line:col, then Envoy's words.
    assert len(lines) == 1, out.stderr
    assert f"{cfg}:" in lines[0] and "Failed to load private key" in lines[0], out.stderr


def test_a_missing_certificate_file_is_a_config_error(tmp_path, certs):
    cfg = write_config(tmp_path, tls_config(free_port(), free_port(), 1, certs, cert="nope.pem"))
    out = subprocess.run([BIN, "--mode", "validate", "-c", str(cfg)], capture_output=True, text=True, timeout=20)
    assert out.returncode != 0
    assert f"{cfg}:" in out.stderr and "nope.pem" in out.stderr, out.stderr


def test_an_x509_v1_certificate_is_served_as_envoy_serves_it(tls_proxy, certs):
    text = subprocess.run(["openssl", "x509", "-in", str(certs / "v1.pem"), "-noout", "-text"],
                          capture_output=True, text=True).stdout
    assert "Version: 1 (0x0)" in text
    p = tls_proxy(cert="v1.pem", key="v1.key")
    # curl -k: a v1 leaf has no SAN to verify the name against.
    status, _, _ = curl("-k", f"https://localhost:{p.listen_port}/")
    assert status == 200
    assert "X.509 v1 certificate" in p.log()


UP_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"


def front_config(listen, admin, upstream, tls_ctx, h2=False):
    """A plain listener routing to cluster `up` over TLS (`tls_ctx`: the
    UpstreamTlsContext's YAML body)."""
    proto = H2_CLUSTER_OPTIONS if h2 else ""
    return f"""
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:
  - name: front
    address: {{socket_address: {{address: 127.0.0.1, port_value: {listen}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": {HCM}
          stat_prefix: front
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster: up}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters:
  - name: up
    type: STATIC
    connect_timeout: 2s
{proto}    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": {UP_TLS}
{tls_ctx}    load_assignment:
      cluster_name: up
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {upstream}}}}}}}
"""


@pytest.fixture
def tls_chain(procs, tmp_path, tls_proxy):
    """A TLS upstream (nuncio terminating TLS in front of echo) and a
    front nuncio that originates TLS to it."""

    def start(tls_ctx, h2=False):
        back = tls_proxy()
        listen, admin = free_port(), free_port()
        cfg = write_config(tmp_path, front_config(listen, admin, back.listen_port, tls_ctx, h2), name="front.yaml")
        # One worker: upstream pools are per worker, as in Envoy.
        front = Proxy(procs, cfg, args=("--concurrency", "1"), listen_port=listen, admin_port=admin)
        return front, back

    return start


def test_upstream_tls_verified_with_sni_over_http11(tls_chain, certs):
    ctx = f"        sni: localhost\n        common_tls_context:\n          validation_context:\n            trusted_ca: {{filename: {certs / 'ca.pem'}}}\n"
    front, back = tls_chain(ctx)
    status, _, body = curl(f"http://{front.base}/hello")
    assert status == 200, body
    # The front's client was plain, and the TLS upstream (not the edge)
    # keeps the front's x-forwarded-proto, as Envoy does.
    assert "X-Forwarded-Proto:[http]" in body
    assert front.stat("cluster.up.ssl.handshake") == 1
    # TLS 1.2: a client's default maximum in Envoy (no tls_params here).
    assert front.stat("cluster.up.ssl.versions.TLSv1.2") == 1
    assert ssl_stat(back, "handshake") == 1
    assert back.stat("http.ingress_https.downstream_cx_http2_total") == 0


def test_upstream_tls_http2_cluster_negotiates_h2(tls_chain, certs):
    ctx = f"        sni: localhost\n        common_tls_context:\n          validation_context:\n            trusted_ca: {{filename: {certs / 'ca.pem'}}}\n"
    front, back = tls_chain(ctx, h2=True)
    for _ in range(3):
        status, _, body = curl(f"http://{front.base}/hello")
        assert status == 200, body
    # One TLS connection, HTTP/2 by ALPN, three streams on it.
    assert front.stat("cluster.up.ssl.handshake") == 1
    assert front.stat("cluster.up.upstream_cx_http2_total") == 1
    assert back.stat("http.ingress_https.downstream_cx_http2_total") == 1
    assert back.stat("http.ingress_https.downstream_rq_total") == 3


def test_upstream_tls_without_validation_is_not_verified_as_in_envoy(tls_chain):
    # No validation_context: Envoy does not verify the upstream's certificate.
    front, _ = tls_chain("        common_tls_context: {}\n")
    status, _, body = curl(f"http://{front.base}/hello")
    assert status == 200, body


def test_upstream_tls_with_the_wrong_ca_is_refused(tls_chain, certs):
    # The CA of another world: the upstream's certificate is not trusted.
    d = certs / "other-ca"
    d.mkdir(exist_ok=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=stranger", cwd=d)
    ctx = f"        sni: localhost\n        common_tls_context:\n          validation_context:\n            trusted_ca: {{filename: {d / 'ca.pem'}}}\n"
    front, back = tls_chain(ctx)
    status, _, body = curl(f"http://{front.base}/hello")
    assert status == 503
    assert body.startswith("upstream connect error or disconnect/reset before headers. reset reason: remote connection failure"), body
    assert front.stat("cluster.up.ssl.fail_verify_error") == 1
    assert front.stat("cluster.up.upstream_cx_connect_fail") == 1
    assert front.proc.poll() is None


# Mutual TLS, with the blog's PKI (scripts/make-certs.sh).

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    subprocess.run(["bash", os.path.join(ROOT_DIR, "scripts", "make-certs.sh"), str(d)], check=True)
    return d


def mtls_config(listen, admin, upstream, pki, cert="service1", san="front-proxy"):
    """A TLS listener serving `cert`, requiring a client certificate from
    the test CA whose SAN is `san`."""
    return tls_config(listen, admin, upstream, pki, key=f"{cert}.key", cert=f"{cert}.pem",
                      client_ca=pki / "ca.pem", client_san=san)


@pytest.fixture
def sidecar(procs, tmp_path, pki):
    def start(cert="service1", san="front-proxy"):
        echo = Echo(procs, "127.0.0.1")
        listen, admin = free_port(), free_port()
        cfg = write_config(tmp_path, mtls_config(listen, admin, echo.port, pki, cert, san), name="sidecar.yaml")
        return Proxy(procs, cfg, listen_port=listen, admin_port=admin)

    return start


def wait_stat(p, name, want, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ssl_stat(p, name) == want:
            return True
        time.sleep(0.05)
    return False


def test_mtls_client_certificates_are_checked_as_envoy_checks_them(sidecar, pki):
    p = sidecar()
    ca = ["--cacert", str(pki / "ca.pem"), "--resolve", f"service1:{p.listen_port}:127.0.0.1"]
    url = f"https://service1:{p.listen_port}/hello"
    # The right client certificate.
    status, _, body = curl(*ca, "--cert", str(pki / "front-proxy.pem"), "--key", str(pki / "front-proxy.key"), url)
    assert status == 200, body
    assert ssl_stat(p, "handshake") == 1 and ssl_stat(p, "no_certificate") == 0
    # No certificate at all.
    status, _, _ = curl(*ca, url)
    assert status is None
    assert wait_stat(p, "fail_verify_no_cert", 1)
    # One from another CA.
    status, _, _ = curl(*ca, "--cert", str(pki / "stranger.pem"), "--key", str(pki / "stranger.key"), url)
    assert status is None
    assert wait_stat(p, "fail_verify_error", 1)
    # The test CA's, with the wrong SAN.
    status, _, _ = curl(*ca, "--cert", str(pki / "service2.pem"), "--key", str(pki / "service2.key"), url)
    assert status is None
    assert wait_stat(p, "fail_verify_san", 1)
    assert ssl_stat(p, "handshake") == 1
    assert p.proc.poll() is None


def test_mtls_between_two_nuncios_over_http2(procs, tmp_path, sidecar, pki):
    """The blog's mesh hop over mutual TLS: the front presents front-proxy
    and checks that the sidecar is service1."""
    side = sidecar()

    def front(san):
        ctx = (
            "        sni: service1\n"
            "        common_tls_context:\n"
            "          tls_certificates:\n"
            f"          - certificate_chain: {{filename: {pki / 'front-proxy.pem'}}}\n"
            f"            private_key: {{filename: {pki / 'front-proxy.key'}}}\n"
            "          validation_context:\n"
            f"            trusted_ca: {{filename: {pki / 'ca.pem'}}}\n"
            "            match_typed_subject_alt_names:\n"
            f"            - {{san_type: URI, matcher: {{exact: '{san}'}}}}\n"
        )
        listen, admin = free_port(), free_port()
        cfg = write_config(tmp_path, front_config(listen, admin, side.listen_port, ctx, h2=True), name=f"front-{len(san)}.yaml")
        return Proxy(procs, cfg, args=("--concurrency", "1"), listen_port=listen, admin_port=admin)

    good = front("spiffe://blog/service1")
    for _ in range(2):
        status, _, body = curl(f"http://{good.base}/hello")
        assert status == 200, body
    assert good.stat("cluster.up.ssl.handshake") == 1
    assert side.stat("http.ingress_https.downstream_cx_http2_total") == 1
    # A front that expects another service refuses the sidecar.
    wrong = front("spiffe://blog/service2-x")
    status, _, body = curl(f"http://{wrong.base}/hello")
    assert status == 503, body
    assert wrong.stat("cluster.up.ssl.fail_verify_san") == 1


def test_certificates_from_static_secrets(procs, tmp_path, certs):
    """`static_resources.secrets`, referenced by name
    (`tls_certificate_sds_secret_configs` without a config source)."""
    echo = Echo(procs, "127.0.0.1")
    listen, admin = free_port(), free_port()
    text = tls_config(listen, admin, echo.port, certs).replace(
        f"""            tls_certificates:
            - certificate_chain: {{filename: {certs / 'ec.pem'}}}
              private_key: {{filename: {certs / 'ec.key'}}}
""",
        "            tls_certificate_sds_secret_configs: [{name: server_cert}]\n",
    )
    text = text.replace("static_resources:\n", f"""static_resources:
  secrets:
  - name: server_cert
    tls_certificate:
      certificate_chain: {{filename: {certs / 'rsa.pem'}}}
      private_key: {{filename: {certs / 'rsa.key'}}}
""", 1)
    assert "tls_certificate_sds_secret_configs" in text
    p = Proxy(procs, write_config(tmp_path, text), listen_port=listen, admin_port=admin)
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{listen}", "-CAfile", str(certs / "ca.pem")],
        input=b"", capture_output=True, timeout=20,
    ).stdout.decode(errors="replace")
    # The secret's (RSA) certificate is the one served.
    assert "Verify return code: 0 (ok)" in out and ("RSA" in out or "rsaEncryption" in out), out
    status, _, _ = curl("--cacert", str(certs / "ca.pem"), f"https://localhost:{listen}/")
    assert status == 200
    # An unknown secret name is a config error at load.
    bad = text.replace("[{name: server_cert}]", "[{name: nope}]")
    out = subprocess.run([BIN, "--mode", "validate", "-c", str(write_config(tmp_path, bad, name="bad.yaml"))],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode != 0 and "nope" in out.stderr, out.stderr


def s_client_resume(port, certs, tmp_path, version):
    """Two openssl s_client connections, the second offering the first's
    session; returns ('New'|'Reused') for each."""
    sess = tmp_path / f"sess{version}.pem"
    out = []
    for flag in ("-sess_out", "-sess_in"):
        p = subprocess.Popen(
            ["openssl", "s_client", *([version] if version else []), "-connect", f"127.0.0.1:{port}",
             "-CAfile", str(certs / "ca.pem"), flag, str(sess)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        # A request after the handshake, so TLS 1.3 tickets arrive before EOF.
        time.sleep(0.3)
        text, _ = p.communicate(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", timeout=20)
        line = [l for l in text.decode(errors="replace").splitlines() if l.startswith(("New,", "Reused,"))]
        out.append(line[0].split(",")[0] if line else None)
    return out


def test_session_resumption_tls13_and_tls12(tls_proxy, certs, tmp_path):
    p = tls_proxy()
    assert s_client_resume(p.listen_port, certs, tmp_path, "") == ["New", "Reused"]
    assert s_client_resume(p.listen_port, certs, tmp_path, "-tls1_2") == ["New", "Reused"]
    assert ssl_stat(p, "session_reused") == 2


def test_session_resumption_can_be_turned_off(procs, tmp_path, certs):
    echo = Echo(procs, "127.0.0.1")
    listen, admin = free_port(), free_port()
    text = tls_config(listen, admin, echo.port, certs).replace(
        "          common_tls_context:\n",
        "          disable_stateless_session_resumption: true\n"
        "          disable_stateful_session_resumption: true\n"
        "          common_tls_context:\n", 1)
    p = Proxy(procs, write_config(tmp_path, text), listen_port=listen, admin_port=admin)
    # No ticket and no cache: nothing to resume (TLS 1.3 leaves s_client
    # no session to save at all).
    for version in ("", "-tls1_2"):
        first, second = s_client_resume(listen, certs, tmp_path, version)
        assert first == "New" and second != "Reused", (version, second)
    assert ssl_stat(p, "session_reused") == 0


def test_admin_certs_lists_what_the_contexts_load(sidecar, pki):
    """Admin /certs as Envoy shows it: per TLS context, the CA and chain
    certificates with serial number, SANs and validity."""
    import json
    import urllib.request

    p = sidecar()
    with urllib.request.urlopen(f"http://{p.admin}/certs", timeout=5) as r:
        doc = json.loads(r.read())
    (ctx,) = doc["certificates"]
    (leaf,) = ctx["cert_chain"]
    (ca,) = ctx["ca_cert"]
    serial = subprocess.run(["openssl", "x509", "-in", str(pki / "service1.pem"), "-noout", "-serial"],
                            capture_output=True, text=True).stdout.strip().split("=")[1].lower()
    assert leaf["serial_number"] == serial
    assert leaf["path"] == str(pki / "service1.pem")
    assert {"dns": "service1"} in leaf["subject_alt_names"]
    assert {"uri": "spiffe://blog/service1"} in leaf["subject_alt_names"]
    # make-certs.sh issues 7-day certificates.
    assert leaf["days_until_expiration"] in ("6", "7")
    assert leaf["valid_from"].endswith("Z") and leaf["expiration_time"] > leaf["valid_from"]
    assert ca["path"] == str(pki / "ca.pem")


def s_client(port, certs, *args):
    """openssl s_client's report of one handshake (empty stdin)."""
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(certs / "ca.pem"), *args],
        input=b"", capture_output=True, timeout=20,
    )
    return out.stdout.decode(errors="replace")


def test_tls_params_versions_ciphers_and_curves(tls_proxy, certs):
    params = (
        "            tls_params:\n"
        "              tls_maximum_protocol_version: TLSv1_2\n"
        "              cipher_suites: [ECDHE-ECDSA-CHACHA20-POLY1305]\n"
        "              ecdh_curves: [P-256]\n"
    )
    p = tls_proxy(alpn=f"[http/1.1]\n{params.rstrip()}")
    text = s_client(p.listen_port, certs)
    # TLS 1.3 is off: the client falls back to 1.2, with the one suite.
    assert "Protocol  : TLSv1.2" in text, text
    assert "Cipher    : ECDHE-ECDSA-CHACHA20-POLY1305" in text, text
    # A client that offers only X25519 shares no curve with it.
    assert "Cipher is (NONE)" in s_client(p.listen_port, certs, "-curves", "X25519")
    assert "Cipher    : ECDHE-ECDSA-CHACHA20-POLY1305" in s_client(p.listen_port, certs, "-curves", "P-256")
    # Nor a suite: a client offering only AES-GCM.
    assert "Cipher is (NONE)" in s_client(p.listen_port, certs, "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert ssl_stat(p, "ciphers.ECDHE-ECDSA-CHACHA20-POLY1305") == 2
    assert ssl_stat(p, "curves.P-256") == 2
    assert ssl_stat(p, "connection_error") == 2


def test_a_tls13_minimum_refuses_tls12_clients(tls_proxy, certs):
    p = tls_proxy(alpn="[http/1.1]\n            tls_params: {tls_minimum_protocol_version: TLSv1_3}")
    assert "Cipher is (NONE)" in s_client(p.listen_port, certs, "-tls1_2")
    assert "New, TLSv1.3," in s_client(p.listen_port, certs)
