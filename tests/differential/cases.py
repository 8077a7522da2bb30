"""The battery: every case the differential suite sends to both proxies.

A case has a stable kebab-case `name`, the config `variant` it runs
against (configs.VARIANTS), and what to send:

- kind "h1": `steps`, raw bytes (and ("sleep", s) / ("await100", s)
  pauses) over one connection; `responses` answers are read;
- kind "h2": `requests`, h2c streams on one connection;
- kind "grpc": a unary grpcio call of `method`;
- kind "stats-names": no traffic; which of the compared stats exist.

`raw` names response/origin fields whose values are compared as they are
instead of normalised (see compare.py); `keep_case` compares header names
with their case.

To add a case: append it to the list of its section with a new name,
run `python tests/differential/run.py --case NAME`, and if the proxies
differ, either fix nuncio or add a row to the known-differences table at
the end of docs/envoy-differences.md.
"""

from dataclasses import dataclass, field

from clients import grpc_frame

HOST = "example.test"


@dataclass
class Case:
    name: str
    variant: str = "default"
    kind: str = "h1"
    steps: list = field(default_factory=list)
    responses: int = 1
    head: bool = False
    requests: list = field(default_factory=list)
    method: str = ""
    authority: str = ""
    pre: str = ""  # "idle-closed": the origin closes the pooled connection just before the case
    sequential: bool = False  # h2: one stream after the other (concurrent streams race for the pool)
    ignore: tuple = ()  # fields left out of the comparison, each with its reason in the case's doc
    timeout: float = 5.0
    raw: tuple = ()
    keep_case: bool = False
    doc: str = ""
    # TLS variants: the client certificate (None: the variant's; "": none;
    # else a name from scripts/make-certs.sh), the ALPN protocols offered,
    # `plain`: speak clear text to the TLS port, `tls_wait`: read for an
    # alert after the handshake before sending (clients.Tls.wait).
    cert: object = None
    alpn: tuple = ()
    plain: bool = False
    tls_wait: float = 0.0


def rq(method="GET", target="/", headers=(), body=b"", version="HTTP/1.1", host=HOST):
    """A request's bytes: request line, Host (unless None), `headers`, body.
    No Content-Length is added: cases say what they send."""
    hs = ([] if host is None else [("Host", host)]) + list(headers)
    head = f"{method} {target} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs) + "\r\n"
    return head.encode("latin-1") + body


def h1(name, data, variant="default", **kw):
    steps = data if isinstance(data, list) else [data]
    return Case(name, variant, "h1", steps=steps, **kw)


def get(name, target="/", headers=(), variant="default", host=HOST, version="HTTP/1.1", **kw):
    return h1(name, rq("GET", target, headers, host=host, version=version), variant, **kw)


def post(name, body, target="/echo", headers=(), variant="default", **kw):
    hs = [("Content-Length", str(len(body)))] + list(headers)
    return h1(name, rq("POST", target, hs, body), variant, **kw)


def chunked(name, chunks, target="/echo", headers=(), variant="default", **kw):
    """A chunked POST whose body is `chunks` (bytes written as they are)."""
    return h1(name, rq("POST", target, [("Transfer-Encoding", "chunked")] + list(headers), chunks), variant, **kw)


def h2req(path="/", method="GET", authority=HOST, headers=(), body=None, trailers=None, scheme="http"):
    hs = [(":method", method), (":scheme", scheme)]
    if authority is not None:
        hs.append((":authority", authority))
    if path is not None:
        hs.append((":path", path))
    return {"headers": hs + list(headers), "body": body, "trailers": trailers}


def h2(name, *requests, variant="default", **kw):
    return Case(name, variant, "h2", requests=list(requests), **kw)


def grpc(name, method, **kw):
    return Case(name, "grpc", "grpc", method=method, **kw)


GRPC_HEADERS = [("content-type", "application/grpc"), ("te", "trailers")]
BIG = "a" * 1024


def many_headers(n):
    """`n` header fields in all, Host included."""
    return [(f"X-H{i}", "v") for i in range(n - 1)]


def head_of_size(total_kib, target="/"):
    """A GET whose head (request line to the blank line) is `total_kib` KiB."""
    base = rq("GET", target, [("X-Pad", "")])
    pad = total_kib * 1024 - len(base)
    return rq("GET", target, [("X-Pad", "p" * pad)])


CASES = [
    # -- methods and bodies ------------------------------------------------
    get("get-basic"),
    get("get-query", "/q?a=1&b=%20x&c"),
    post("post-content-length", b"hello"),
    post("post-content-length-zero", b""),
    h1("post-no-length", rq("POST", "/echo")),
    h1("head-basic", rq("HEAD", "/"), head=True),
    h1("head-chunked-origin", rq("HEAD", "/chunked"), head=True),
    h1("options-path", rq("OPTIONS", "/x")),
    h1("options-asterisk", rq("OPTIONS", "*")),
    h1("put-body", rq("PUT", "/echo", [("Content-Length", "4")], b"put!")),
    h1("delete-basic", rq("DELETE", "/thing")),
    h1("patch-body", rq("PATCH", "/echo", [("Content-Length", "3")], b"abc")),
    h1("trace-method", rq("TRACE", "/")),
    h1("custom-method", rq("PURGE", "/cache")),
    h1("method-lowercase", rq("get", "/")),
    h1("method-bad-char", rq("G(T", "/")),
    h1("connect-authority", rq("CONNECT", "example.test:443", host="example.test:443")),
    h1("connect-origin-form", rq("CONNECT", "/")),
    chunked("chunked-upload", b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
    chunked("chunked-upload-extension", b"5;ext=1\r\nhello\r\n0\r\n\r\n"),
    chunked("chunked-upload-trailers", b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"),
    chunked("chunked-upload-empty", b"0\r\n\r\n"),
    h1("chunked-upload-split", [rq("POST", "/echo", [("Transfer-Encoding", "chunked")]), ("sleep", 0.05),
                                b"3\r\nabc\r\n", ("sleep", 0.05), b"0\r\n\r\n"]),
    chunked("chunk-size-bad-hex", b"zz\r\nhello\r\n0\r\n\r\n"),
    chunked("chunk-size-overflow", b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
    chunked("chunk-size-negative", b"-5\r\nhello\r\n0\r\n\r\n"),
    chunked("chunk-size-plus", b"+5\r\nhello\r\n0\r\n\r\n"),
    chunked("chunk-data-too-long", b"3\r\nhello\r\n0\r\n\r\n"),
    chunked("chunk-size-leading-space", b" 5\r\nhello\r\n0\r\n\r\n"),
    h1("expect-100-continue", [rq("POST", "/echo", [("Content-Length", "5"), ("Expect", "100-continue")]),
                               ("await100", 1.0), b"hello"]),
    h1("expect-100-continue-chunked", [rq("POST", "/echo", [("Transfer-Encoding", "chunked"), ("Expect", "100-continue")]),
                                       ("await100", 1.0), b"5\r\nhello\r\n0\r\n\r\n"]),
    h1("expect-100-continue-http10", [rq("POST", "/echo", [("Content-Length", "5"), ("Expect", "100-continue")],
                                         version="HTTP/1.0"), ("await100", 0.5), b"hello"]),
    post("expect-unknown", b"hello", headers=[("Expect", "something-else")]),
    post("post-large-body", b"b" * (200 * 1024)),
    h1("pipelined-two-gets", rq("GET", "/one") + rq("GET", "/two"), responses=2),
    h1("pipelined-post-then-get", rq("POST", "/echo", [("Content-Length", "3")], b"abc") + rq("GET", "/two"),
       responses=2),
    h1("pipelined-get-then-bad", rq("GET", "/one") + b"G(T /two HTTP/1.1\r\nHost: example.test\r\n\r\n",
                                   responses=2),
    get("origin-chunked", "/chunked"),
    get("origin-trailers", "/trailers", [("TE", "trailers")]),
    get("origin-no-length", "/no-cl"),
    get("origin-http10", "/http10"),
    get("origin-204", "/status/204"),
    get("origin-304", "/status/304"),
    get("origin-503", "/status/503"),
    get("origin-599", "/status/599"),
    get("origin-set-cookie", "/set-cookie"),
    get("origin-hop-by-hop", "/hop"),
    get("origin-server-header", "/server"),
    get("origin-date", "/with-date"),
    get("origin-no-date", "/no-date"),
    get("origin-early-hints", "/early-hints"),
    get("origin-unsolicited-100", "/continue"),
    get("origin-bad-header", "/bad-header"),
    get("origin-big-headers", "/big-headers"),
    get("origin-big-body", "/big-body"),
    get("server-header-name", raw=("server",), doc="the server value itself, not normalised"),
    get("via-header", raw=("via",), doc="Via to the origin and to the client, not normalised"),
    get("header-case-request", headers=[("X-Mixed-Case", "1")], keep_case=True),
    get("header-case-response", "/", keep_case=True),

    # -- head limits ---------------------------------------------------------
    h1("head-59k", head_of_size(59)),
    h1("head-61k", head_of_size(61)),
    get("headers-100", headers=many_headers(100)),
    get("headers-101", headers=many_headers(101)),
    get("request-line-8k", "/" + "u" * 8192),
    get("request-line-59k", "/" + "u" * (59 * 1024)),
    get("request-line-61k", "/" + "u" * (61 * 1024)),
    get("url-40k-header-30k", "/" + "u" * (40 * 1024), [("X-Big", "h" * (30 * 1024))]),
    get("header-value-59k", headers=[("X-Big", "h" * (59 * 1024 - 64))]),
    get("header-name-long", headers=[("X-" + "n" * 4096, "1")]),

    # -- paths ----------------------------------------------------------------
    get("path-dotdot", "/a/../b"),
    get("path-dot", "/a/./b"),
    get("path-double-slash", "//x"),
    get("path-encoded-slash", "/a%2Fb"),
    get("path-encoded-dotdot", "/a/%2e%2e/b"),
    get("path-backslash", "/a\\b"),
    get("path-dotdot-above-root", "/../x"),
    get("path-percent-lower", "/%7euser"),
    get("path-percent-invalid", "/%zz"),
    get("path-fragment", "/a#frag"),
    get("path-query-dotdot", "/a?x=/../y"),
    get("path-dotdot-off", "/a/../b", variant="norm-off"),
    get("path-double-slash-off", "//x", variant="norm-off"),
    get("path-encoded-slash-off", "/a%2Fb", variant="norm-off"),
    get("path-dotdot-on", "/a/../b", variant="norm-on"),
    get("path-double-slash-on", "//x//y", variant="norm-on"),
    get("path-encoded-slash-on", "/a%2Fb", variant="norm-on"),
    get("path-encoded-dotdot-on", "/a/%2e%2e/b", variant="norm-on"),
    get("path-backslash-on", "/a\\b", variant="norm-on"),
    get("path-dotdot-above-root-on", "/../x", variant="norm-on"),
    get("path-percent-lower-on", "/%7euser", variant="norm-on"),
    get("path-dotdot-route-on", "/x/../down/y", variant="norm-on", doc="normalisation picks the route"),
    get("target-nonascii-raw", "/caf\xc3\xa9"),
    get("target-space", "/a b"),
    get("target-not-origin-form", "abc"),
    get("target-asterisk-get", "*"),
    get("target-nul", "/a\x00b"),
    get("absolute-form", "http://named.test/only", host="other.test"),
    get("absolute-form-https", "https://example.test/abs"),
    get("absolute-form-no-path", "http://example.test"),
    get("absolute-form-host-mismatch", "http://example.test/abs", host="named.test"),

    # -- Host -------------------------------------------------------------------
    get("host-with-port", host="example.test:8080"),
    get("host-named", "/only", host="named.test"),
    get("host-named-with-port", "/only", host="named.test:8080"),
    get("host-trailing-dot", "/only", host="named.test."),
    get("host-uppercase", "/only", host="NAMED.TEST"),
    get("host-missing", host=None),
    h1("host-duplicate", rq("GET", "/", [("Host", "other.test")])),
    h1("host-duplicate-same", rq("GET", "/", [("Host", HOST)])),
    get("host-invalid-space", host="a b"),
    get("host-empty", host=""),
    get("host-userinfo", host="user@example.test"),
    get("host-ipv6", host="[::1]:80"),
    get("host-wildcard-suffix", host="x.wild.test"),
    get("host-wildcard-prefix", host="pre.anything"),
    get("no-route", "/other", host="named.test"),

    # -- HTTP versions ------------------------------------------------------------
    get("http10-host", version="HTTP/1.0"),
    get("http10-no-host", version="HTTP/1.0", host=None),
    get("http10-keep-alive", headers=[("Connection", "keep-alive")], version="HTTP/1.0"),
    get("http10-host-accepted", version="HTTP/1.0", variant="http10"),
    get("http10-no-host-accepted", "/only", version="HTTP/1.0", host=None, variant="http10"),
    get("http10-keep-alive-accepted", headers=[("Connection", "keep-alive")], version="HTTP/1.0", variant="http10"),
    get("http10-origin-chunked-accepted", "/chunked", version="HTTP/1.0", variant="http10",
        doc="a chunked origin answer to an HTTP/1.0 client must lose its chunking"),
    h1("http09", b"GET /\r\n", timeout=2.0),
    get("version-http2-over-h1", version="HTTP/2.0"),
    get("version-http12", version="HTTP/1.2"),
    get("version-garbage", version="HTTP/x.y"),
    h1("request-headers-timeout-default", b"GET / HTTP/1.1\r\nHost: example.test\r\n", timeout=11.5,
       doc="an unfinished head: nuncio's default request_headers_timeout (10 s) against Envoy's none"),
    h1("request-headers-timeout-1s", b"GET / HTTP/1.1\r\nHost: example.test\r\n", timeout=3.0,
       variant="headers-timeout", doc="an unfinished head against request_headers_timeout: 1s on both"),
    h1("request-line-bare-lf", b"GET / HTTP/1.1\nHost: example.test\n\n"),
    h1("request-leading-crlf", b"\r\n" + rq("GET", "/")),
    h1("request-line-double-space", b"GET  / HTTP/1.1\r\nHost: example.test\r\n\r\n"),

    # -- hop-by-hop and Connection -----------------------------------------------
    get("hop-connection-listed", headers=[("Connection", "X-Foo"), ("X-Foo", "1"), ("X-Bar", "2")]),
    get("hop-keep-alive", headers=[("Keep-Alive", "timeout=5")]),
    get("hop-proxy-connection", headers=[("Proxy-Connection", "keep-alive")]),
    get("hop-te-trailers", headers=[("TE", "trailers")]),
    get("hop-te-gzip", headers=[("TE", "gzip")]),
    get("hop-upgrade-without-connection", headers=[("Upgrade", "foo")]),
    get("hop-connection-close", headers=[("Connection", "close")]),
    get("hop-connection-keep-alive", headers=[("Connection", "keep-alive")]),
    h1("hop-transfer-encoding-on-get", rq("GET", "/", [("Transfer-Encoding", "chunked")], b"0\r\n\r\n")),

    # -- Upgrade and CONNECT -------------------------------------------------------
    get("upgrade-websocket-not-configured", "/ws", [("Connection", "Upgrade"), ("Upgrade", "websocket"),
                                                    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                                                    ("Sec-WebSocket-Version", "13")]),
    get("upgrade-websocket-allowed", "/ws", [("Connection", "Upgrade"), ("Upgrade", "websocket"),
                                             ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                                             ("Sec-WebSocket-Version", "13")], variant="upgrade"),
    get("upgrade-websocket-route-disabled", "/nows/ws", [("Connection", "Upgrade"), ("Upgrade", "websocket"),
                                                         ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                                                         ("Sec-WebSocket-Version", "13")], variant="upgrade"),
    get("upgrade-unknown-protocol", headers=[("Connection", "Upgrade"), ("Upgrade", "foo")], variant="upgrade"),
    get("upgrade-h2c", headers=[("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
                                ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")]),

    # -- malformed heads -----------------------------------------------------------
    get("obs-fold", headers=[("X-A", "a\r\n b")]),
    h1("cl-and-te", rq("POST", "/echo", [("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
                       b"0\r\n\r\n")),
    h1("te-and-cl", rq("POST", "/echo", [("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
                       b"0\r\n\r\n")),
    h1("cl-duplicate-same", rq("POST", "/echo", [("Content-Length", "5"), ("Content-Length", "5")], b"hello")),
    h1("cl-duplicate-different", rq("POST", "/echo", [("Content-Length", "5"), ("Content-Length", "6")], b"hello!")),
    h1("cl-list-same", rq("POST", "/echo", [("Content-Length", "5, 5")], b"hello")),
    h1("cl-list-different", rq("POST", "/echo", [("Content-Length", "5, 6")], b"hello!")),
    h1("cl-negative", rq("POST", "/echo", [("Content-Length", "-1")])),
    h1("cl-plus-sign", rq("POST", "/echo", [("Content-Length", "+5")], b"hello")),
    h1("cl-hex", rq("POST", "/echo", [("Content-Length", "0x5")], b"hello")),
    h1("cl-huge", rq("POST", "/echo", [("Content-Length", "99999999999999999999")])),
    h1("cl-on-get", rq("GET", "/echo", [("Content-Length", "5")], b"hello")),
    h1("te-identity", rq("POST", "/echo", [("Transfer-Encoding", "identity")], b"hello")),
    h1("te-gzip-chunked", rq("POST", "/echo", [("Transfer-Encoding", "gzip, chunked")], b"0\r\n\r\n")),
    h1("te-chunked-gzip", rq("POST", "/echo", [("Transfer-Encoding", "chunked, gzip")], b"0\r\n\r\n")),
    h1("te-chunked-twice", rq("POST", "/echo", [("Transfer-Encoding", "chunked, chunked")], b"0\r\n\r\n")),
    h1("te-uppercase", rq("POST", "/echo", [("Transfer-Encoding", "CHUNKED")], b"5\r\nhello\r\n0\r\n\r\n")),
    h1("te-http10", rq("POST", "/echo", [("Transfer-Encoding", "chunked")], b"0\r\n\r\n", version="HTTP/1.0")),
    h1("te-space-before-colon", b"POST /echo HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
    h1("header-space-before-colon", b"GET / HTTP/1.1\r\nHost: example.test\r\nX-A : b\r\n\r\n"),
    h1("header-no-colon", b"GET / HTTP/1.1\r\nHost: example.test\r\nnot a header\r\n\r\n"),
    h1("header-empty-name", b"GET / HTTP/1.1\r\nHost: example.test\r\n: x\r\n\r\n"),
    h1("header-name-bad-char", b"GET / HTTP/1.1\r\nHost: example.test\r\nX(A): 1\r\n\r\n"),
    get("header-nul-value", headers=[("X-A", "a\x00b")]),
    get("header-cr-in-value", headers=[("X-A", "a\rb")]),
    get("header-non-ascii-value", headers=[("X-A", "caf\xc3\xa9")]),
    get("header-tab-value", headers=[("X-A", "\tv\t")]),
    get("header-empty-value", headers=[("X-A", "")]),
    get("header-repeated", headers=[("X-A", "1"), ("X-A", "2"), ("x-a", "3")]),
    get("header-underscore", headers=[("X_Foo", "1")]),
    get("header-underscore-reject", headers=[("X_Foo", "1")], variant="underscore-reject"),
    get("header-underscore-drop", headers=[("X_Foo", "1"), ("X-Ok", "1")], variant="underscore-drop"),
    h1("garbage-request", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40, timeout=2.0),

    # -- forwarding headers ---------------------------------------------------------
    get("xff-absent"),
    get("xff-supplied", headers=[("X-Forwarded-For", "1.2.3.4")]),
    get("xff-absent-remote", variant="remote"),
    get("xff-supplied-remote", headers=[("X-Forwarded-For", "1.2.3.4")], variant="remote"),
    get("xff-two-remote", headers=[("X-Forwarded-For", "1.2.3.4, 5.6.7.8")], variant="remote"),
    get("xff-supplied-trusted-hop", headers=[("X-Forwarded-For", "1.2.3.4")], variant="remote-xff1"),
    get("xff-two-trusted-hop", headers=[("X-Forwarded-For", "1.2.3.4, 5.6.7.8")], variant="remote-xff1"),
    get("xff-absent-trusted-hop", variant="remote-xff1"),
    get("xfp-supplied", headers=[("X-Forwarded-Proto", "https")]),
    get("xfp-supplied-remote", headers=[("X-Forwarded-Proto", "https")], variant="remote"),
    get("xfh-supplied", headers=[("X-Forwarded-Host", "fwd.test")]),
    get("xrid-supplied", headers=[("X-Request-Id", "client-rid-1")]),
    get("xrid-absent"),
    get("xrid-supplied-remote", headers=[("X-Request-Id", "client-rid-1")], variant="remote"),
    get("xrid-supplied-trusted-hop", headers=[("X-Request-Id", "client-rid-1"), ("X-Forwarded-For", "1.2.3.4")],
        variant="remote-xff1"),
    h1("xenvoy-retry-on", rq("GET", "/status/503", [("X-Envoy-Retry-On", "5xx"), ("X-Envoy-Max-Retries", "2")])),
    h1("xenvoy-retry-on-remote", rq("GET", "/status/503", [("X-Envoy-Retry-On", "5xx"), ("X-Envoy-Max-Retries", "2")]),
       variant="remote"),
    h1("xenvoy-upstream-rq-timeout", rq("GET", "/slow", [("X-Envoy-Upstream-Rq-Timeout-Ms", "300")]),
       raw=("x-envoy-expected-rq-timeout-ms",)),
    h1("xenvoy-upstream-rq-timeout-remote", rq("GET", "/slow", [("X-Envoy-Upstream-Rq-Timeout-Ms", "300")]),
       variant="remote", raw=("x-envoy-expected-rq-timeout-ms",)),
    get("xenvoy-expected-rq-timeout", headers=[("X-Envoy-Expected-Rq-Timeout-Ms", "5")],
        raw=("x-envoy-expected-rq-timeout-ms",)),
    get("xenvoy-internal", headers=[("X-Envoy-Internal", "true")]),
    get("xenvoy-internal-remote", headers=[("X-Envoy-Internal", "true")], variant="remote"),
    get("xenvoy-force-trace", headers=[("X-Envoy-Force-Trace", "true")]),
    get("xenvoy-ip-tags", headers=[("X-Envoy-Ip-Tags", "internal")]),
    get("xenvoy-ip-tags-remote", headers=[("X-Envoy-Ip-Tags", "internal")], variant="remote"),
    get("xenvoy-original-path", headers=[("X-Envoy-Original-Path", "/orig")]),
    get("xenvoy-original-path-remote", headers=[("X-Envoy-Original-Path", "/orig")], variant="remote"),
    get("xenvoy-external-address", headers=[("X-Envoy-External-Address", "9.9.9.9")]),
    get("xenvoy-external-address-remote", headers=[("X-Envoy-External-Address", "9.9.9.9")], variant="remote"),
    get("xenvoy-decorator-operation-remote", headers=[("X-Envoy-Decorator-Operation", "op")], variant="remote"),
    get("xenvoy-downstream-cluster-remote", headers=[("X-Envoy-Downstream-Service-Cluster", "c")], variant="remote"),
    get("xenvoy-hedge-remote", headers=[("X-Envoy-Hedge-On-Per-Try-Timeout", "true")], variant="remote"),
    get("xenvoy-upstream-alt-stat-name", headers=[("X-Envoy-Upstream-Alt-Stat-Name", "alt")]),
    get("xenvoy-max-retries-alone", "/status/503", headers=[("X-Envoy-Max-Retries", "3")]),
    get("xenvoy-attempt-count-supplied", headers=[("X-Envoy-Attempt-Count", "7")]),

    # -- upstream behaviour -------------------------------------------------------
    get("upstream-down", "/down"),
    h1("upstream-down-post", rq("POST", "/down", [("Content-Length", "5")], b"hello")),
    get("upstream-timeout", "/t/slow", raw=("x-envoy-expected-rq-timeout-ms",)),
    get("upstream-garbage", "/garbage"),
    get("upstream-close-mid-body", "/close-mid-body"),
    get("upstream-close-before-response", "/reset"),
    get("upstream-idle-closed-get", pre="idle-closed"),
    post("upstream-idle-closed-post", b"hello", pre="idle-closed"),
    get("route-timeout-header", "/t/fast", raw=("x-envoy-expected-rq-timeout-ms",)),
    get("direct-response", "/direct"),
    h1("direct-response-head", rq("HEAD", "/direct"), head=True),
    h1("direct-response-post", rq("POST", "/direct", [("Content-Length", "5")], b"hello")),
    get("direct-response-remote", "/direct", variant="remote"),
    h1("no-route-post", rq("POST", "/other", [("Content-Length", "5")], b"hello", host="named.test")),
    Case("stats-names", kind="stats-names", doc="which compared stat names each proxy has"),

    # -- HTTP/2 (h2c) ---------------------------------------------------------------
    h2("h2-get", h2req("/")),
    h2("h2-post", h2req("/echo", "POST", headers=[("content-length", "5")], body=b"hello")),
    h2("h2-post-no-length", h2req("/echo", "POST", body=b"hello")),
    h2("h2-head", h2req("/", "HEAD")),
    h2("h2-post-200k", h2req("/echo", "POST", body=b"w" * (200 * 1024)), doc="flow control both ways"),
    h2("h2-origin-big-body", h2req("/big-body")),
    h2("h2-two-streams", h2req("/one"), h2req("/two"), sequential=True),
    h2("h2-authority-host-disagree", h2req("/only", authority="named.test", headers=[("host", "other.test")])),
    h2("h2-host-only", h2req("/only", authority=None, headers=[("host", "named.test")])),
    h2("h2-uppercase-header", h2req("/", headers=[("X-Upper", "1")])),
    h2("h2-two-cookies", h2req("/", headers=[("cookie", "a=1"), ("cookie", "b=2")])),
    h2("h2-request-trailers", h2req("/echo", "POST", body=b"hello", trailers=[("x-trailer", "t1")])),
    h2("h2-response-trailers", h2req("/trailers", headers=[("te", "trailers")])),
    h2("h2-connection-header", h2req("/", headers=[("connection", "keep-alive")])),
    h2("h2-te-trailers", h2req("/", headers=[("te", "trailers")])),
    h2("h2-te-gzip", h2req("/", headers=[("te", "gzip")])),
    h2("h2-pseudo-after-regular", {"headers": [(":method", "GET"), (":scheme", "http"), ("x-a", "1"),
                                               (":path", "/"), (":authority", HOST)]}),
    h2("h2-missing-path", h2req(None)),
    h2("h2-missing-method", {"headers": [(":scheme", "http"), (":path", "/"), (":authority", HOST)]}),
    h2("h2-unknown-pseudo", h2req("/", headers=[(":foo", "bar")])),
    h2("h2-connect", {"headers": [(":method", "CONNECT"), (":authority", "example.test:443")]}),
    h2("h2-underscore-header", h2req("/", headers=[("x_foo", "1")])),
    # Whether Envoy has already opened the upstream request when it finds the
    # body short of its content-length depends on timing (seen both ways):
    # the origin-side stats and the reset counter of this case are not compared.
    h2("h2-content-length-mismatch", h2req("/echo", "POST", headers=[("content-length", "10")], body=b"hello"),
       ignore=("stats.http.ingress.downstream_rq_rx_reset",
               "stats.cluster.origin.upstream_cx_destroy", "stats.cluster.origin.upstream_rq_total",
               "stats.cluster.origin.upstream_cx_total", "stats.cluster.origin.upstream_cx_http1_total")),
    h2("h2-path-dotdot", h2req("/a/../b")),
    h2("h2-path-not-slash", h2req("abc")),
    h2("h2-no-route", h2req("/other", authority="named.test")),
    h2("h2-upstream-down", h2req("/down")),
    h2("h2-upstream-timeout", h2req("/t/slow")),
    h2("h2-upstream-garbage", h2req("/garbage")),
    h2("h2-upstream-close-mid-body", h2req("/close-mid-body")),
    h2("h2-head-61k", h2req("/", headers=[("x-pad", "p" * (61 * 1024))])),
    h2("h2-headers-101", h2req("/", headers=[(f"x-h{i}", "v") for i in range(101)])),
    h2("h2-origin-chunked", h2req("/chunked")),
    h2("h2-origin-hop-by-hop", h2req("/hop")),
    h2("h2-xrid-supplied", h2req("/", headers=[("x-request-id", "client-rid-1")])),
    h2("h2-direct-response", h2req("/direct")),
    h2("h2-origin-204", h2req("/status/204")),
    h2("h2-upgrade-header", h2req("/", headers=[("upgrade", "websocket")])),

    # -- gRPC -------------------------------------------------------------------------
    grpc("grpc-ok", "/test.Svc/Echo"),
    grpc("grpc-error-status", "/test.Svc/Fail"),
    grpc("grpc-unimplemented", "/test.Svc/Nope"),
    grpc("grpc-upstream-down", "/down.Svc/Echo"),
    grpc("grpc-upstream-timeout", "/test.Svc/Slow"),
    grpc("grpc-no-route", "/other.Svc/Echo", authority="named.test"),
    h2("grpc-h2-ok", h2req("/test.Svc/Echo", "POST", headers=GRPC_HEADERS, body=grpc_frame(b"ping")),
       variant="grpc"),
    h2("grpc-h2-upstream-down", h2req("/down.Svc/Echo", "POST", headers=GRPC_HEADERS, body=grpc_frame(b"ping")),
       variant="grpc", ignore=("stats.http.ingress.downstream_rq_rx_reset",),
       doc="Envoy counts downstream_rq_rx_reset or not depending on whether the request's DATA frame "
           "arrived before its local reply (seen both ways): not compared"),
    h2("grpc-h2-upstream-timeout", h2req("/test.Svc/Slow", "POST", headers=GRPC_HEADERS,
                                         body=grpc_frame(b"ping")), variant="grpc"),
    h2("grpc-h2-no-route", h2req("/other.Svc/Echo", "POST", headers=GRPC_HEADERS, body=grpc_frame(b"ping"),
                                 authority="named.test"), variant="grpc"),
    h1("grpc-h1-to-h2-cluster", rq("POST", "/test.Svc/Echo", [("Content-Type", "application/grpc"),
                                                              ("Content-Length", "9")], grpc_frame(b"ping")),
       variant="grpc"),
    get("grpc-variant-get-origin", "/", variant="grpc", doc="an HTTP/1.1 route beside HTTP/2 clusters"),

    # -- HTTP filters and route header mutations (variant "filters") -----------------
    get("filters-get", headers=[("X-In", "IN"), ("X-Secret", "s")], variant="filters"),
    get("filters-levels", "/levels", headers=[("X-In", "L"), ("X-Drop", "1")], variant="filters"),
    get("filters-direct", "/direct", headers=[("X-In", "D")], variant="filters"),
    get("filters-no-route", "/other", host="named.test", variant="filters"),
    h1("filters-cors-preflight", rq("OPTIONS", "/", [("Origin", "http://ok.test"),
                                                     ("Access-Control-Request-Method", "POST")]),
       variant="filters"),
    h1("filters-cors-preflight-disallowed", rq("OPTIONS", "/", [("Origin", "http://evil.test"),
                                                                ("Access-Control-Request-Method", "POST")]),
       variant="filters"),
    get("filters-cors-simple", headers=[("Origin", "https://a.trusted.test")], variant="filters"),
    get("filters-cors-disallowed", headers=[("Origin", "http://evil.test")], variant="filters"),
    get("filters-fault-abort", headers=[("X-Envoy-Fault-Abort-Request", "503")], variant="filters"),
    get("filters-fault-abort-disabled-route", "/nofault", headers=[("X-Envoy-Fault-Abort-Request", "503")],
        variant="filters"),
    get("filters-fault-delay", headers=[("X-Envoy-Fault-Delay-Request", "200")], variant="filters"),
    h1("filters-ratelimit", [rq("GET", "/rl"), rq("GET", "/rl")], variant="filters", responses=2,
       doc="one token: the second request is limited"),
    post("filters-buffer-small", b"small", "/buffered", variant="filters"),
    chunked("filters-buffer-chunked", b"3\r\nabc\r\n0\r\n\r\n", "/buffered", variant="filters"),
    post("filters-buffer-too-large", b"x" * 20, "/buffered", variant="filters"),
    h2("filters-h2-get", h2req("/", headers=[("x-in", "H2")]), variant="filters"),
    h2("filters-h2-cors-preflight", h2req("/", "OPTIONS", headers=[("origin", "http://ok.test"),
                                                                  ("access-control-request-method", "GET")]),
       variant="filters"),
    h2("filters-h2-buffer-too-large", h2req("/buffered", "POST", body=b"y" * 20), variant="filters"),
    get("filters-health-check", "/healthz", variant="filters"),
    get("filters-health-check-query", "/healthz?full=1", variant="filters",
        doc="the exact :path match includes the query string: not a health check"),

    # -- TLS (variants "tls" and "tls-mtls"; clients verify the proxy against the test CA, SNI localhost) --
    get("tls-get", variant="tls", doc="HTTP/1.1 over TLS, no ALPN offered (Python's default)"),
    get("tls-get-alpn-http11", variant="tls", alpn=("http/1.1",)),
    get("tls-cipher", variant="tls", raw=("cipher",),
        doc="the TLS 1.3 suite each proxy picks from Python's offer (client view and ssl.ciphers.*)"),
    post("tls-post", b"hello over tls", variant="tls"),
    h1("tls-keep-alive", [rq("GET", "/one"), rq("GET", "/two")], variant="tls", responses=2),
    get("tls-connection-close", headers=[("Connection", "close")], variant="tls",
        doc="the proxy closes after its answer: with close_notify or not"),
    get("tls-no-route", "/other", variant="tls", host="named.test"),
    get("tls-direct", "/direct", variant="tls"),
    h2("tls-h2-get", h2req("/", scheme="https"), variant="tls", alpn=("h2", "http/1.1"),
       doc="HTTP/2 chosen by ALPN"),
    h2("tls-h2-post", h2req("/echo", "POST", headers=[("content-length", "5")], body=b"hello", scheme="https"),
       variant="tls", alpn=("h2", "http/1.1")),
    h1("tls-plain-http", rq("GET", "/"), variant="tls", plain=True,
       doc="clear-text HTTP/1.1 sent to the TLS port"),
    get("tls-upstream", "/up-tls/x", variant="tls", raw=("sigalgs",),
        doc="a cluster with an UpstreamTlsContext (SNI localhost, trusted_ca the test CA) to a TLS origin"),
    post("tls-upstream-post", b"to a tls origin", "/up-tls/echo", variant="tls"),
    h2("tls-h2-upstream", h2req("/up-tls/x", scheme="https"), variant="tls", alpn=("h2",)),
    get("tls-upstream-wrong-ca", "/up-wrongca/x", variant="tls",
        doc="the origin's certificate is not signed by the cluster's trusted_ca"),
    get("tls-upstream-bad-san", "/up-badsan/x", variant="tls",
        doc="the origin's certificate has no SAN the cluster's matcher accepts"),
    h1("tls-upstream-resumed", [rq("GET", "/up-resume/no-cl"), rq("GET", "/up-resume/x")], variant="tls",
       responses=2, raw=("sigalgs",), doc="the origin closes the first upstream connection (/no-cl), so the second request "
                        "opens another, which resumes the first one's TLS session"),
    Case("tls-stats-names", "tls", kind="stats-names",
         doc="which ssl.* stats each proxy has after the tls cases (last of its variant)"),
    get("mtls-right-cert", variant="tls-mtls", tls_wait=0.3, raw=("sigalgs",),
        doc="a client certificate from the test CA with the required SAN"),
    get("mtls-no-cert", variant="tls-mtls", cert="", tls_wait=0.3),
    get("mtls-wrong-san", variant="tls-mtls", cert="service1", tls_wait=0.3,
        doc="the test CA's certificate for service1: not the SAN the listener requires"),
    get("mtls-other-ca", variant="tls-mtls", cert="stranger", tls_wait=0.3,
        doc="a certificate from a CA the listener does not trust"),
    get("mtls-expired", variant="tls-mtls", cert="expired", tls_wait=0.3,
        doc="the test CA's certificate that expired 23 days ago"),
    Case("mtls-stats-names", "tls-mtls", kind="stats-names",
         doc="which ssl.* stats each proxy has after the mtls cases (last of its variant)"),
]

BY_NAME = {c.name: c for c in CASES}
assert len(BY_NAME) == len(CASES), "duplicate case names"
