"""Turning what each proxy did into comparable fields, and comparing.

`flatten` makes one flat dict per proxy and case: field name -> value.
Fields (a field's *group*, which the known-differences table names, is the part
before the first `.` or `[`, except for response headers: `headers.<name>`):

- `status`, `interim`, `headers.<name>`, `body`, `trailers`, `truncated`
  for the (first) response; `r2.status`, ... for a second pipelined one;
  `responses` (how many came), `closed` (the proxy closed the connection
  after its last answer), `extra` (bytes after the answers), `error`;
- h2: the same per stream (`s2.` for a second stream), plus `reset` (the
  stream's RST_STREAM code), `goaway` (the connection's GOAWAY code);
- gRPC: `grpc.code`, `grpc.details`, `grpc.reply`;
- `origin.count`, `origin[i].line` (method target version),
  `origin[i].headers.<name>`, `origin[i].body`, `origin[i].trailers`:
  what the origin received;
- `stats.<name>`: the change of a compared counter (absent = 0);
- `start`: the proxy did not start (its log's last lines).

TLS variants add `tls.<what>` (the client's handshake: ok or how it
failed, version, ALPN, suite, the server's CN, how the connection ended),
`bytes.rx`/`bytes.tx` (the connection manager's byte counters minus the
plaintext the client sent/received), `origin[i].tls` (SNI, ALPN, version
the TLS origin agreed), and every listener and cluster `ssl.*` stat, the
listener's address written `<addr>`. The TLS 1.3 suite is `<suite>`
(client view and `ssl.ciphers.*`: each proxy's preference) and
`ssl.sigalgs.*` is left out, unless a case lists `cipher`/`sigalgs` in
`raw`: those cases carry the difference.

Normalised, because it must differ between two proxies or two runs:
the *value* of `date` (kept when it is the origin's own), `x-request-id`
(kept when the client sent it, else `<uuid>`/`<other>`), `server` (kept
when it is the origin's), `x-envoy-upstream-service-time`,
`x-envoy-expected-rq-timeout-ms` (unless a case lists it in `raw`), the
client port in `x-forwarded-for`, gRPC's `grpc-timeout`; `via` is
dropped (unless in `raw`); header names are lowercased (unless the case
sets `keep_case`). Header order across names is not compared; the order
of one name's values is.
"""

import re

from origin import ORIGIN_DATE, ORIGIN_SERVER

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CLIENT_RID = "client-rid-1"

# The stats compared (deltas), per HCM and per cluster. Chosen from what
# Envoy has and nuncio has or should have.
HCM_STATS = [
    "downstream_rq_total", "downstream_rq_1xx", "downstream_rq_2xx", "downstream_rq_3xx",
    "downstream_rq_4xx", "downstream_rq_5xx", "downstream_rq_http1_total", "downstream_rq_http2_total",
    "downstream_cx_total", "downstream_cx_http1_total", "downstream_cx_http2_total",
    "downstream_cx_protocol_error", "downstream_rq_rx_reset", "downstream_rq_tx_reset",
    "downstream_cx_upgrades_total", "downstream_rq_ws_on_non_ws_route",
    "downstream_rq_failed_path_normalization", "downstream_rq_timeout", "no_route", "no_cluster",
    "rq_direct_response", "downstream_rq_header_timeout", "downstream_cx_idle_timeout",
]
CLUSTER_STATS = [
    "upstream_rq_total", "upstream_rq_1xx", "upstream_rq_2xx", "upstream_rq_3xx", "upstream_rq_4xx",
    "upstream_rq_5xx", "upstream_cx_total", "upstream_cx_http1_total", "upstream_cx_http2_total",
    "upstream_cx_connect_fail", "upstream_cx_destroy", "upstream_cx_protocol_error",
    "upstream_rq_timeout", "upstream_rq_retry", "upstream_rq_rx_reset", "upstream_rq_tx_reset",
    "upstream_cx_none_healthy",
]


# More names Envoy has that nuncio should have, checked for presence only
# (case `stats-names`), not compared per case.
HCM_NAMES_ONLY = ["downstream_rq_completed", "downstream_cx_destroy_local", "downstream_cx_destroy_remote",
                  "downstream_cx_active", "downstream_rq_active"]
CLUSTER_NAMES_ONLY = ["upstream_rq_completed", "upstream_cx_destroy_local", "upstream_cx_destroy_remote",
                      "upstream_rq_pending_total", "upstream_cx_connect_timeout", "upstream_cx_active",
                      "upstream_rq_active"]


# TLS variants: the connection manager's byte counters, compared with the
# plaintext the client sent and received (fields `bytes.rx`, `bytes.tx`).
BYTE_STATS = ["downstream_cx_rx_bytes_total", "downstream_cx_tx_bytes_total"]


# TLS variants, presence only (cases `tls-stats-names`, `mtls-stats-names`).
TLS_HCM_NAMES_ONLY = ["downstream_cx_ssl_total", "downstream_cx_ssl_active"]


def stat_names(prefix, clusters, tls=False):
    """The stats compared per case (TLS variants also compare every
    listener and cluster `ssl.*` stat: runner.tls_stats)."""
    return [f"http.{prefix}.{s}" for s in HCM_STATS + (BYTE_STATS if tls else [])] + [
        f"cluster.{c}.{s}" for c in clusters for s in CLUSTER_STATS]


def presence_names(prefix, clusters, tls=False):
    """The stats whose presence case `stats-names` compares (TLS variants:
    also every `ssl.*` stat Envoy has, runner.tls_stats)."""
    return stat_names(prefix, clusters, tls) + [
        f"http.{prefix}.{s}" for s in HCM_NAMES_ONLY + (TLS_HCM_NAMES_ONLY if tls else [])] + [
        f"cluster.{c}.{s}" for c in clusters for s in CLUSTER_NAMES_ONLY]


def show(v, limit=160):
    """A short printable form of a field value."""
    if isinstance(v, (bytes, bytearray)):
        s = repr(bytes(v[:limit]))
        return s + (f"... ({len(v)} bytes)" if len(v) > limit else "")
    s = repr(v) if not isinstance(v, str) else v
    return s if len(s) <= limit else s[:limit] + f"... ({len(s)} chars)"


def norm_header(name, value, case):
    """The compared value of one header field, or None to drop it."""
    n = name.lower()
    if n == "via":
        return re.sub(r"nuncio-[0-9a-f]+", "nuncio-<id>", value) if "via" in case.raw else None
    if n == "date":
        return value if value == ORIGIN_DATE else "<date>"
    if n == "x-request-id":
        return value if value == CLIENT_RID else ("<uuid>" if UUID.match(value) else "<other>")
    if n == "server" and "server" not in case.raw:
        return value if value == ORIGIN_SERVER else "<server>"
    if n == "x-envoy-upstream-service-time" and value.isdigit():
        return "<ms>"
    if n == "x-envoy-expected-rq-timeout-ms" and n not in case.raw and value.isdigit():
        return "<ms>"
    if n == "x-forwarded-for":
        return re.sub(r"(\d+\.\d+\.\d+\.\d+):\d+", r"\1:<port>", value)
    if n == "grpc-timeout":
        return "<t>"
    return value


def headers_fields(prefix, headers, case, skip=()):
    """`prefix.headers.<name>`: the value, or the list of values in order."""
    out = {}
    for k, v in headers:
        if k.lower() in skip:
            continue
        nv = norm_header(k, v, case)
        if nv is None:
            continue
        key = f"{prefix}headers.{k if case.keep_case else k.lower()}"
        out.setdefault(key, []).append(nv)
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


CIPHER = re.compile(r"^(stats\.(?:listener\.<addr>|cluster\.[^.]+)\.ssl\.ciphers)\.(.+)$")


def tls_fields(c, case):
    """`tls.<what>`: the client's TLS handshake (ok or how it failed,
    version, ALPN, suite, the server certificate's CN), what it read right
    after it, and how the connection ended (close_notify, an alert, a bare
    EOF). The suite's name is `<suite>` unless the case lists `cipher` in
    `raw` (TLS 1.3 suite preference is each proxy's own)."""
    out = {}
    for k, v in (c.get("tls") or {}).items():
        if k == "cipher" and "cipher" not in case.raw:
            v = "<suite>"
        out[f"tls.{k}"] = v
    return out


def byte_fields(c, stats, prefix="http.ingress."):
    """`bytes.rx`/`bytes.tx`: the proxy's downstream byte counters minus
    the plaintext the client sent/received (0: the proxy counts plaintext,
    as Envoy does)."""
    if "bytes" not in c:
        return {}
    rx = stats.get(prefix + "downstream_cx_rx_bytes_total", 0)
    tx = stats.get(prefix + "downstream_cx_tx_bytes_total", 0)
    return {"bytes.rx": rx - c["bytes"]["sent"], "bytes.tx": tx - c["bytes"]["received"]}


def flatten(case, obs):
    """The comparable fields of one proxy's observation of `case`."""
    if "start" in obs:
        return {"start": obs["start"]}
    f = {}
    if "error" in obs and obs["error"]:
        f["error"] = obs["error"]
    c = obs.get("client") or {}
    if case.kind == "h1" and c:
        f["responses"] = len(c["responses"])
        for i, r in enumerate(c["responses"]):
            p = "" if i == 0 else f"r{i + 1}."
            f[p + "status"] = r["status"]
            if r["interim"]:
                f[p + "interim"] = r["interim"]
            f.update(headers_fields(p, r["headers"], case))
            f[p + "body"] = r["body"]
            if r["trailers"]:
                f[p + "trailers"] = [(k.lower(), v) for k, v in r["trailers"]]
            if r["truncated"]:
                f[p + "truncated"] = True
        f["closed"] = c["closed"]
        if c["extra"]:
            f["extra"] = c["extra"]
        if c["error"]:
            f["error"] = c["error"]
    elif case.kind == "h2" and c:
        for i, s in enumerate(c["streams"]):
            p = "" if i == 0 else f"s{i + 1}."
            f[p + "status"] = s["status"]
            f.update(headers_fields(p, s["headers"], case, skip=(":status",)))
            f[p + "body"] = s["data"]
            if s["trailers"]:
                f[p + "trailers"] = s["trailers"]
            if s["reset"] is not None:
                f[p + "reset"] = s["reset"]
        if c["goaway"] is not None:
            f["goaway"] = c["goaway"]
        f["closed"] = c["closed"]
        if c["error"]:
            f["error"] = c["error"]
    elif case.kind == "grpc" and c:
        f["grpc.code"] = c["code"]
        f["grpc.details"] = c["details"]
        f["grpc.reply"] = c["reply"]
    if case.kind in ("h1", "h2") and c:
        f.update(tls_fields(c, case))
        f.update(byte_fields(c, obs.get("stats", {})))
    if case.kind == "stats-names":
        for name, present in obs.get("names", {}).items():
            f[f"stats-names.{name}"] = "present" if present else "absent"
    if case.kind != "stats-names":
        recs = obs.get("origin", [])
        f["origin.count"] = len(recs)
        for i, r in enumerate(recs):
            p = f"origin[{i}]."
            f[p + "line"] = f"{r.method} {r.target} {r.version}"
            if r.error:
                f[p + "error"] = r.error
            if getattr(r, "tls", ""):
                f[p + "tls"] = r.tls
            f.update(headers_fields(p, r.headers, case))
            f[p + "body"] = r.body
            if r.trailers:
                f[p + "trailers"] = [(k.lower(), v) for k, v in r.trailers]
        for name, delta in sorted(obs.get("stats", {}).items()):
            if not delta or name.endswith(tuple(BYTE_STATS)):
                continue  # byte counters: compared as `bytes.*` against what the client saw
            if ".ssl.sigalgs." in name and "sigalgs" not in case.raw:
                continue  # compared where a case lists `sigalgs` in `raw` (nuncio counts none yet)
            key = f"stats.{name}"
            m = CIPHER.match(key)
            if m and "cipher" not in case.raw:
                key = m.group(1) + ".<suite>"
                delta += f.get(key, 0)
            f[key] = delta
    for k in case.ignore:
        f.pop(k, None)
    return f


def group(field):
    """The group of a field name: response headers by name
    (`r2.headers.date` -> headers.date), the rest by their first part
    (`origin[0].body` -> origin, `stats.cluster.x.y` -> stats)."""
    field = re.sub(r"^[rs]\d+\.", "", field)
    if field.startswith("headers."):
        return field.lower()
    return re.split(r"[.\[]", field, 1)[0]


def diff(envoy, nuncio):
    """[(field, envoy value, nuncio value)] for every field that differs."""
    out = []
    for k in sorted(set(envoy) | set(nuncio)):
        e, n = envoy.get(k, "<absent>"), nuncio.get(k, "<absent>")
        if k.startswith("stats."):
            e, n = envoy.get(k, 0), nuncio.get(k, 0)
        if e != n:
            out.append((k, e, n))
    return out
