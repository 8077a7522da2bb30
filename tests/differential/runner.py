"""Runs cases through both proxies and judges the results.

Per config variant: one origin (and gRPC origin) per proxy, Envoy and
nuncio started once, then every case of that variant sent to Envoy, then
to nuncio. Before each case the origins close their idle connections and
the runner waits until the proxy has let go of its pooled ones, so every
case starts from the same state and upstream connection counts compare.
"""

import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import clients
import compare
import known
from cases import CASES
from configs import VARIANTS
from grpcsrv import GrpcOrigin
from harness import ROOT, Procs, Side, free_port
from origin import Origin

PREFIX = "ingress"
POOLED = ["origin"]  # clusters whose idle connections the origin closes before each case


@dataclass
class Result:
    """One case's outcome: both proxies' fields, their differences, and
    what the known-differences table says."""

    case: object
    envoy: dict
    nuncio: dict
    diffs: list
    known: object = None  # known.Known or None
    seconds: float = 0.0
    groups: frozenset = field(default_factory=frozenset)

    def __post_init__(self):
        self.groups = frozenset(compare.group(f) for f, _, _ in self.diffs)

    @property
    def name(self):
        return self.case.name

    @property
    def verdict(self):
        """same | listed (differs as the table says) | unlisted | stale |
        changed (differs, but in other field groups than the table says)."""
        if not self.diffs:
            return "stale" if self.known else "same"
        if not self.known:
            return "unlisted"
        return "listed" if self.groups == self.known.groups else "changed"

    @property
    def ok(self):
        return self.verdict in ("same", "listed")

    def report(self):
        """The failure text: what is wrong and the per-field diff."""
        v = self.verdict
        lines = []
        if v == "unlisted":
            lines.append(f"{self.name} [{self.case.variant}]: Envoy and nuncio differ, and the case is not in "
                         f"the known-differences table ({known.HEADING!r} in docs/envoy-differences.md)")
        elif v == "stale":
            lines.append(f"{self.name} [{self.case.variant}]: listed as a known difference "
                         f"(docs/envoy-differences.md line {self.known.line}) but Envoy and nuncio now agree: "
                         f"remove the row")
        elif v == "changed":
            lines.append(f"{self.name} [{self.case.variant}]: differs in {sorted(self.groups)}, the table "
                         f"(line {self.known.line}) lists {sorted(self.known.groups)}: update the row")
        lines += diff_lines(self.diffs)
        return "\n".join(lines)


def diff_lines(diffs):
    out = []
    for f, e, n in diffs:
        out.append(f"  {f}\n      envoy:  {compare.show(e)}\n      nuncio: {compare.show(n)}")
    return out


WARMUP = b"GET /__warmup HTTP/1.1\r\nHost: example.test\r\n\r\n"


def make_certs(tmp):
    """The TLS variants' PKI (scripts/make-certs.sh), made per run in `tmp`."""
    d = Path(tmp) / "certs"
    subprocess.run(["bash", str(ROOT / "scripts" / "make-certs.sh"), str(d)], check=True, timeout=60)
    return d


def tls_origin_context(certs):
    """The TLS origin's server context: the RSA certificate (SAN
    localhost), HTTP/1.1 by ALPN."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(certs / "rsa-server.pem"), str(certs / "rsa-server.key"))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def client_tls(side, case, variant):
    """How the case's client speaks to the proxy: a clients.Tls, or None
    for clear text."""
    if not variant.tls or case.plain:
        return None
    cert = variant.client_cert if case.cert is None else case.cert
    return clients.Tls(side.certs, cert, tuple(case.alpn), wait=case.tls_wait)


def pooled(variant):
    return POOLED + list(variant.tls_clusters)


def fresh_pool(side, variant):
    """Leaves the proxy with exactly one new idle connection to the origin:
    the origin closes its idle ones, the proxy lets go of them (if it
    notices idle closes; learnt once per proxy), then one request opens a
    new one (sent again if it met a stale connection)."""
    st = side.stats()
    clusters = pooled(variant)
    busy = any(st.get(f"cluster.{c}.upstream_cx_active", 0) for c in clusters)
    side.origin.close_idle()
    if side.tls_origin:
        side.tls_origin.close_idle()
    if busy and side.notices_idle_close is None:
        side.notices_idle_close = side.pool_empty(clusters, timeout=1.0)
    elif busy and side.notices_idle_close:
        side.pool_empty(clusters, timeout=1.0)
    warm_tls = clients.Tls(side.certs, variant.client_cert) if variant.tls else None
    for _ in range(3):
        r = clients.h1(side.listen, [WARMUP], timeout=3.0, close_wait=0, tls=warm_tls)
        if r["responses"] and " 200 " in (r["responses"][0]["status"] or "") + " ":
            break
    side.settle(PREFIX, variant.clusters, compare.stat_names(PREFIX, variant.clusters, variant.tls))


def observe(side, case, variant):
    """What one proxy did with `case`: client view, origin view, stat
    deltas. A proxy that did not start, has exited, or whose admin stopped
    answering shows as a `start` field."""
    if side.error:
        return {"start": side.error}
    if side.proc.poll() is not None:
        return {"start": f"{side.kind} exited ({side.proc.returncode}): " + side.log_tail()}
    try:
        return _observe(side, case, variant)
    except OSError as e:  # the admin port (urllib) or the proxy went away
        state = "exited" if side.proc.poll() is not None else "running"
        return {"start": f"{side.kind} {state}, admin failed ({type(e).__name__}: {e}): " + side.log_tail()}


def tls_stats(st, side, variant):
    """The `ssl.*` stats of the listener and the clusters, the listener's
    address (its port differs per proxy) written `<addr>` and the
    certificate directory `<certs>`."""
    if not variant.tls:
        return {}
    lis = f"listener.127.0.0.1_{side.listen}.ssl."
    clus = tuple(f"cluster.{c}.ssl." for c in variant.clusters)
    out = {}
    for name, v in st.items():
        if name.startswith(lis):
            name = "listener.<addr>.ssl." + name[len(lis):]
        elif not name.startswith(clus):
            continue
        out[name.replace(str(side.certs), "<certs>")] = v
    return out


def _observe(side, case, variant):
    watched = compare.stat_names(PREFIX, variant.clusters, variant.tls)
    if case.kind == "stats-names":
        st = side.stats()
        names = {n: n in st for n in compare.presence_names(PREFIX, variant.clusters, variant.tls)}
        names.update({n: True for n in tls_stats(st, side, variant)})
        return {"names": names}
    fresh_pool(side, variant)
    if case.pre == "idle-closed":
        side.origin.close_idle()
        time.sleep(0.3)
    before = side.stats()
    mark = side.origin.mark()
    gmark = side.grpc.mark() if side.grpc else 0
    tmark = side.tls_origin.mark() if side.tls_origin else 0
    tls = client_tls(side, case, variant)
    obs = {"error": ""}
    try:
        if case.kind == "h1":
            obs["client"] = clients.h1(side.listen, case.steps, case.responses, case.head, case.timeout, tls=tls)
        elif case.kind == "h2":
            obs["client"] = clients.h2(side.listen, case.requests, case.timeout, case.sequential, tls=tls)
        elif case.kind == "grpc":
            obs["client"] = clients.grpc_call(side.listen, case.method, authority=case.authority,
                                              timeout=case.timeout)
    except Exception as e:  # a client failure is an observation too
        obs["error"] = f"client: {type(e).__name__}: {e}"
    after = side.settle(PREFIX, variant.clusters, watched)
    obs["stats"] = {n: after.get(n, 0) - before.get(n, 0) for n in watched}
    tb, ta = tls_stats(before, side, variant), tls_stats(after, side, variant)
    obs["stats"].update({n: v - tb.get(n, 0) for n, v in ta.items()})
    obs["origin"] = (side.origin.since(mark) + (side.grpc.since(gmark) if side.grpc else [])
                     + (side.tls_origin.since(tmark) if side.tls_origin else []))
    return obs


def run(selected=None, log=None):
    """Runs the cases named in `selected` (all when None); returns
    [Result] in battery order. `log(str)` reports progress."""
    table = known.load()
    cases = [c for c in CASES if selected is None or c.name in selected]
    results = {}
    for vname, variant in VARIANTS.items():
        vcases = [c for c in cases if c.variant == vname]
        if not vcases:
            continue
        t0 = time.time()
        with tempfile.TemporaryDirectory(prefix=f"nuncio-diff-{vname}-") as tmp:
            procs = Procs(tmp)
            down = free_port()
            certs = make_certs(tmp) if variant.tls else None
            sides = []
            try:
                for kind in ("envoy", "nuncio"):
                    tls_origin = Origin(tls=tls_origin_context(certs)) if variant.tls_clusters else None
                    sides.append(Side(kind, procs, tmp, variant, Origin(),
                                      GrpcOrigin() if variant.grpc else None, down, tls_origin, certs))
                if sides[0].error:
                    raise RuntimeError(f"Envoy did not run the {vname} config: {sides[0].error}")
                for case in vcases:
                    c0 = time.time()
                    envoy_obs = observe(sides[0], case, variant)
                    nuncio_obs = observe(sides[1], case, variant)
                    if case.kind == "stats-names" and "names" in envoy_obs and "names" in nuncio_obs:
                        # Only names Envoy has: it creates some counters lazily.
                        has = {n for n, present in envoy_obs["names"].items() if present}
                        nuncio_obs["names"] = {n: nuncio_obs["names"].get(n, False) for n in has}
                        envoy_obs["names"] = {n: True for n in has}
                    ef, nf = compare.flatten(case, envoy_obs), compare.flatten(case, nuncio_obs)
                    results[case.name] = Result(case, ef, nf, compare.diff(ef, nf), table.get(case.name),
                                                time.time() - c0)
            finally:
                procs.stop_all()
                for s in sides:
                    s.origin.stop()
                    if s.grpc:
                        s.grpc.stop()
                    if s.tls_origin:
                        s.tls_origin.stop()
        if log:
            log(f"variant {vname}: {len(vcases)} cases in {time.time() - t0:.1f}s")
    return [results[c.name] for c in cases if c.name in results]


def as_json(r):
    """A result as plain JSON data (values shown as compare.show prints them)."""
    return {"case": r.name, "variant": r.case.variant, "verdict": r.verdict, "groups": sorted(r.groups),
            "diffs": [[f, compare.show(e, 400), compare.show(n, 400)] for f, e, n in r.diffs],
            "envoy": {k: compare.show(v, 400) for k, v in r.envoy.items()},
            "nuncio": {k: compare.show(v, 400) for k, v in r.nuncio.items()}}


def summary(results):
    same = sum(1 for r in results if not r.diffs)
    different = len(results) - same
    listed = sum(1 for r in results if r.diffs and r.known)
    return f"differential: {len(results)} cases, {same} same, {different} different ({listed} listed)"
