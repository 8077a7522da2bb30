"""Black-box test harness: starts the real `nuncio` binary (and its echo
service) on loopback ports and talks to it with real clients (curl, raw
sockets). Every process a test starts is stopped when the test ends."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("NUNCIO_BIN", str(ROOT / "target" / "debug" / "nuncio"))
BLOG = ROOT / "examples" / "blog"
HOSTS = ROOT / "examples" / "hosts"


def openssl(*args, cwd):
    """Runs the openssl CLI in `cwd` (test certificates; no key is committed)."""
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d, name="nuncio test CA"):
    """An ECDSA P-256 CA in d/ca.pem, d/ca.key."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", f"/CN={name}", cwd=d)


def make_leaf(d, name, ext, newkey=("ec", "-pkeyopt", "ec_paramgen_curve:P-256")):
    """d/name.pem and d/name.key signed by d's CA, with the x509 extensions
    `ext` (e.g. "subjectAltName=DNS:localhost\n")."""
    (d / f"{name}.cnf").write_text(ext)
    openssl("req", "-newkey", *newkey, "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={name}", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.cnf", cwd=d)


# A cluster's v3 HTTP/2 setting (indented for a cluster entry).
H2_CLUSTER_OPTIONS = (
    "    typed_extension_protocol_options:\n"
    "      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n"
    '        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n'
    "        explicit_http_config: {http2_protocol_options: {}}\n"
)

_handed_out = set()


def free_port(host="127.0.0.1"):
    """A free port, never one this session already handed out: two calls
    in a row could otherwise get the same port from the kernel (a proxy's
    listener and admin once collided that way)."""
    while True:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def wait_port(host, port, proc=None, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited early ({proc.returncode}): {read_log(proc)}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not open")


def read_log(proc):
    path = getattr(proc, "log_path", None)
    return Path(path).read_text(errors="replace") if path else ""


class Procs:
    """Starts processes and stops them all at the end of a test."""

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.procs = []

    def start(self, args, name="proc"):
        log = self.tmp / f"{name}-{len(self.procs)}.log"
        f = open(log, "wb")
        p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        p.log_path = str(log)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)


@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path)
    yield p
    p.stop_all()


class Echo:
    def __init__(self, procs, host, name=None, port=None):
        self.host = host
        self.port = port or free_port(host)
        args = [BIN, "echo", "--listen", f"{host}:{self.port}"]
        if name:
            args += ["--name", name]
        self.proc = procs.start(args, name=f"echo-{name or host}")
        wait_port(host, self.port, self.proc)

    @property
    def addr(self):
        return f"{self.host}:{self.port}"


class Proxy:
    """A running nuncio. `admin` and `base` are host:port strings."""

    def __init__(self, procs, config_path, args=(), listen_port=None, admin_port=None):
        self.listen_port = listen_port
        self.admin_port = admin_port
        self.proc = procs.start([BIN, "-c", str(config_path), "-l", "debug", *args], name="nuncio")
        if admin_port:
            wait_port("127.0.0.1", admin_port, self.proc)
        if listen_port:
            wait_port("127.0.0.1", listen_port, self.proc)

    @property
    def base(self):
        return f"127.0.0.1:{self.listen_port}"

    @property
    def admin(self):
        return f"127.0.0.1:{self.admin_port}"

    def log(self):
        return read_log(self.proc)

    def quiet(self, prefix="http.ingress_http"):
        """Waits until no downstream connection is active (the readiness
        probe's connection has been accepted and closed), so counters read
        next are a clean baseline."""
        deadline = time.time() + 5
        while time.time() < deadline:
            if self.stat(f"{prefix}.downstream_cx_total") and self.stat(f"{prefix}.downstream_cx_active") == 0:
                return
            time.sleep(0.02)

    def stat(self, name):
        """The value of one counter or gauge from /stats?format=json."""
        for s in admin_json(self, "/stats?format=json")["stats"]:
            if s.get("name") == name:
                return s["value"]
        return None


def admin_get(proxy, path):
    with urllib.request.urlopen(f"http://{proxy.admin}{path}", timeout=5) as r:
        return r.read().decode()


def admin_json(proxy, path):
    return json.loads(admin_get(proxy, path))


def curl(*args, timeout=20):
    """Runs curl; returns (status, headers dict (lowercase), body)."""
    out = subprocess.run(
        ["curl", "-s", "-S", "-D", "-", "--max-time", str(timeout), *args],
        capture_output=True,
        timeout=timeout + 5,
    )
    raw = out.stdout
    # Skip interim 1xx blocks.
    while True:
        head, _, body = raw.partition(b"\r\n\r\n")
        if head.startswith(b"HTTP/") and b" 100 " in head.split(b"\r\n")[0]:
            raw = body
            continue
        break
    lines = head.decode(errors="replace").split("\r\n")
    if not lines[0].startswith("HTTP/"):
        return None, {}, out.stderr.decode()
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers, body.decode(errors="replace")


def raw_request(port, data, timeout=3.0, host="127.0.0.1"):
    """Sends raw bytes; returns everything read until the peer closes or
    `timeout` passes. The second value is True when the peer closed."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        closed = False
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            if not d:
                closed = True
                break
            out += d
        return out, closed
    finally:
        s.close()


def rss_kib(pid):
    """Resident memory of process `pid`, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def write_config(tmp_path, text, name="config.yaml"):
    p = Path(tmp_path) / name
    p.write_text(text)
    return p


def blog_proxy(procs, tmp_path, config="simple-proxy.yaml", extra_args=(), echo_names=("service1", "service2")):
    """The blog's config, unchanged, on free ports: echo services on
    127.0.0.2/127.0.0.3 (service1/service2 through examples/hosts), the
    proxy's :80 and :8001 remapped to free loopback ports."""
    echos = [Echo(procs, f"127.0.0.{2 + i}", name=n) for i, n in enumerate(echo_names)]
    listen, admin = free_port(), free_port()
    args = [
        "--hosts", str(HOSTS), "--concurrency", "2",
        "--remap", f"0.0.0.0:80=127.0.0.1:{listen}",
        "--remap", f"0.0.0.0:8001=127.0.0.1:{admin}",
    ]
    for e in echos:
        args += ["--remap", f"{e.host}:8080={e.host}:{e.port}"]
    proxy = Proxy(procs, BLOG / config, [*args, *extra_args], listen_port=listen, admin_port=admin)
    return proxy, echos


def proxy_config(listen, admin, cluster, routes=None, domains='["*"]', hcm_extra=""):
    """A v2-era front-proxy config: one listener routing to cluster `backend`,
    whose body (type, hosts, ...) is `cluster`. `hcm_extra`: more connection
    manager fields, as lines indented by 10 spaces."""
    routes = routes or '              - match: {prefix: "/"}\n                route: {cluster: backend}\n'
    return f"""
static_resources:
  listeners:
  - address: {{socket_address: {{address: 127.0.0.1, port_value: {listen}}}}}
    filter_chains:
    - filters:
      - name: envoy.http_connection_manager
        config:
          stat_prefix: ingress_http
{hcm_extra}          route_config:
            virtual_hosts:
            - name: backend
              domains: {domains}
              routes:
{routes}          http_filters:
          - name: envoy.router
  clusters:
  - name: backend
    connect_timeout: 0.25s
{cluster}
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
"""


class BlogRun:
    """./run-blog.sh SCENARIO on free ports; stopped with SIGTERM at the end."""

    def __init__(self, tmp_path, scenario="simple"):
        self.ports = {
            "PROXY_PORT": free_port(),
            "ADMIN_PORT": free_port(),
            "ECHO_PORT": free_port("127.0.0.2"),
            "SIDECAR_PORT": free_port("127.0.0.2"),
            "SIDECAR_ADMIN_PORT": free_port("127.0.0.2"),
            "PROXY_TLS_PORT": free_port(),
        }
        env = dict(os.environ, NUNCIO_BIN=BIN, **{k: str(v) for k, v in self.ports.items()})
        self.log_path = Path(tmp_path) / f"run-blog-{scenario}.log"
        self.proc = subprocess.Popen(
            [str(ROOT / "run-blog.sh"), scenario], env=env,
            stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.proc.log_path = str(self.log_path)
        wait_port("127.0.0.1", self.ports["ADMIN_PORT"], self.proc)
        wait_port("127.0.0.1", self.ports["PROXY_PORT"], self.proc)
        if scenario.startswith("mesh"):
            for ip in ("127.0.0.2", "127.0.0.3"):
                wait_port(ip, self.ports["SIDECAR_ADMIN_PORT"], self.proc)
        self.base = f"127.0.0.1:{self.ports['PROXY_PORT']}"
        self.admin = f"127.0.0.1:{self.ports['ADMIN_PORT']}"
        self.listen_port = self.ports["PROXY_PORT"]

    def sidecar_admin(self, ip):
        return f"{ip}:{self.ports['SIDECAR_ADMIN_PORT']}"

    def stat(self, name, admin=None):
        import urllib.request
        with urllib.request.urlopen(f"http://{admin or self.admin}/stats?format=json", timeout=5) as r:
            for s in json.loads(r.read())["stats"]:
                if s.get("name") == name:
                    return s["value"]
        return None

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def log(self):
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def blog_run(tmp_path):
    runs = []

    def start(scenario="simple"):
        r = BlogRun(tmp_path, scenario)
        runs.append(r)
        return r

    yield start
    for r in runs:
        r.stop()


def static_cluster(port, host="127.0.0.1"):
    """The body of a STATIC cluster with one endpoint (for proxy_config)."""
    return f"    type: static\n    hosts: [{{socket_address: {{address: {host}, port_value: {port}}}}}]\n"


def start_proxy(procs, tmp_path, cluster, name="config.yaml", args=(), **kw):
    """nuncio with proxy_config(...) on free ports; `args`: more flags."""
    listen, admin = free_port(), free_port()
    cfg = write_config(tmp_path, proxy_config(listen, admin, cluster, **kw), name=name)
    return Proxy(procs, cfg, args=args, listen_port=listen, admin_port=admin)

