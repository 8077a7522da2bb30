"""Envoy's command line as launchers pass it (Istio's pilot-agent, Envoy
Gateway), and Envoy's log lines: nuncio is started with the same flag lists
and must start and serve; its log lines must have the shape real Envoy's
have for the same --log-format (compared with the installed `envoy` when
there is one)."""

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, Echo, admin_json, curl, free_port, proxy_config, static_cluster, wait_port, write_config

ENVOY = shutil.which("envoy")
needs_envoy = pytest.mark.skipif(ENVOY is None, reason="no envoy binary to compare with")

ISTIO_TEXT_FORMAT = "%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t"
ISTIO_JSON_FORMAT = '{"level":"%l","time":"%Y-%m-%dT%T.%fZ","scope":"envoy %n","msg":"%j","caller":"%g:%#","thread":%t}'
LEVEL = r"(trace|debug|info|warning|error|critical)"
# Envoy's default line: [2026-12-07 20:52:22.561][4982][info][config] [file:line] message
DEFAULT_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\]\[\d+\]\[" + LEVEL + r"\]\[[a-z0-9_]+\] \[[^\]\s]+:\d+\] .*$")
ISTIO_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\t" + LEVEL + r"\tenvoy [a-z0-9_]+ \S+:\d+\t.*\tthread=\d+$")

# A v3 config both nuncio and Envoy run: a direct response, the admin on a
# port the kernel picks (read back through --admin-address-path).
V3 = """
static_resources:
  listeners:
  - name: l
    address: {{socket_address: {{address: 127.0.0.1, port_value: {listen}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            virtual_hosts:
            - name: b
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                direct_response: {{status: 200, body: {{inline_string: hi}}}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
"""


def run(args, timeout=20):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def start(procs, tmp_path, args, name="nuncio"):
    """Starts `BIN args` (stderr captured to a file); returns (proc, log path)."""
    return procs.start([BIN, *args], name=name)


def wait_file(path, proc, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited early ({proc.returncode}): {Path(proc.log_path).read_text()}")
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise TimeoutError(f"{path} not written")


def v3_run(procs, tmp_path, binary_args, name="nuncio"):
    """nuncio (or Envoy) on the V3 config with --admin-address-path; returns
    (proc, admin address, listen port)."""
    listen = free_port()
    cfg = write_config(tmp_path, V3.format(listen=listen), name=f"{name}.yaml")
    aap = tmp_path / f"{name}.admin"
    p = procs.start([*binary_args, "-c", str(cfg), "--admin-address-path", str(aap)], name=name)
    admin = wait_file(aap, p)
    wait_port("127.0.0.1", listen, p)
    return p, admin, listen


def stop(p):
    """SIGTERM, wait, return the combined output."""
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
        p.wait(timeout=15)
    return Path(p.log_path).read_text(errors="replace")


def backend_config(procs, tmp_path):
    echo = Echo(procs, "127.0.0.1", name="be")
    listen, admin = free_port(), free_port()
    text = proxy_config(listen, admin, static_cluster(echo.port))
    return write_config(tmp_path, text), text, listen, admin


def test_istio_pilot_agent_flags_start_and_serve(procs, tmp_path):
    """pilot-agent's Envoy command lines (current Istio, and 1.19's with
    --log-format), as pilot-agent logs them."""
    cfg, _, listen, admin = backend_config(procs, tmp_path)
    common = [
        "-c", str(cfg), "--drain-time-s", "45", "--drain-strategy", "immediate",
        "--local-address-ip-version", "v4", "--file-flush-interval-msec", "1000",
        "--disable-hot-restart", "--allow-unknown-static-fields",
    ]
    for extra in (
        ["-l", "warning", "--component-log-level", "misc:error", "--skip-deprecated-logs", "--concurrency", "2"],
        ["--log-format", ISTIO_TEXT_FORMAT, "-l", "info", "--component-log-level", "misc:error", "--concurrency", "2"],
        ["--enable-core-dump", "-l", "warning", "--component-log-level", "misc:error",
         "--config-yaml", '{"node": {"id": "sidecar~10.0.0.1~a.b~b.svc.cluster.local"}}'],
    ):
        p = start(procs, tmp_path, [*common, *extra])
        wait_port("127.0.0.1", listen, p)
        status, _, _ = curl(f"http://127.0.0.1:{listen}/")
        assert status == 200
        info = json.loads(curl(f"http://127.0.0.1:{admin}/server_info")[2])
        out = stop(p)
        assert p.returncode == 0, out
        if "--log-format" in extra:
            lines = [l for l in out.splitlines() if l]
            assert lines and all(ISTIO_LINE.match(l) for l in lines), out
        if "--config-yaml" in extra:
            assert info["node"]["id"] == "sidecar~10.0.0.1~a.b~b.svc.cluster.local"


def test_envoy_gateway_flags_start_and_serve(procs, tmp_path):
    """Envoy Gateway passes each flag WITH its value as one container arg,
    the whole bootstrap through --config-yaml."""
    _, text, listen, admin = backend_config(procs, tmp_path)
    p = start(procs, tmp_path, [
        "--service-cluster default", "--service-node envoy-default-1234",
        f"--config-yaml {text}", "--log-level warn", "--cpuset-threads",
        "--drain-strategy immediate", "--component-log-level upstream:debug,connection:trace",
        "--drain-time-s 60",
    ])
    wait_port("127.0.0.1", listen, p)
    assert curl(f"http://127.0.0.1:{listen}/")[0] == 200
    info = json.loads(curl(f"http://127.0.0.1:{admin}/server_info")[2])
    assert info["node"] == {"id": "envoy-default-1234", "cluster": "default"}
    out = stop(p)
    # Envoy 1.40's own warning, under the same component.
    assert "[warning][config]" in out and "--cpuset-threads is now the default behavior and no longer required." in out, out
    assert "[info][main]" not in out, out


def test_default_log_line_is_envoys(procs, tmp_path):
    p, _, _ = v3_run(procs, tmp_path, [BIN])
    lines = [l for l in stop(p).splitlines() if l]
    assert len(lines) > 3
    bad = [l for l in lines if not DEFAULT_LINE.match(l)]
    assert bad == [], bad
    assert any("[info][main] [crates/nuncio/src/" in l for l in lines), lines


@needs_envoy
def test_default_log_line_has_envoys_shape(procs, tmp_path):
    p, _, _ = v3_run(procs, tmp_path, [ENVOY, "--disable-hot-restart", "--concurrency", "1"], name="envoy")
    lines = [l for l in stop(p).splitlines() if l.startswith("[")]
    assert lines and all(DEFAULT_LINE.match(l) for l in lines), [l for l in lines if not DEFAULT_LINE.match(l)]


def log_lines(binary_args, procs, tmp_path, name, fmt, keep=lambda l: True):
    p, _, _ = v3_run(procs, tmp_path, [*binary_args, "--log-format", fmt], name=name)
    return [l for l in stop(p).splitlines() if l and keep(l)]


def test_json_log_format_gives_json_lines(procs, tmp_path):
    lines = log_lines([BIN], procs, tmp_path, "nuncio", ISTIO_JSON_FORMAT)
    assert len(lines) > 3
    for l in lines:
        j = json.loads(l)
        assert set(j) == {"level", "time", "scope", "msg", "caller", "thread"}, l
        assert re.match(LEVEL, j["level"]) and j["scope"].startswith("envoy ") and isinstance(j["thread"], int)
    # A message with quotes and a newline stays one valid JSON line.
    listen = free_port()
    bad = write_config(tmp_path, V3.format(listen=listen).replace("stat_prefix: ingress_http", 'stat_prefix: ingress_http\n          bogus: "a\\"b"'), name="bad.yaml")
    r = run([BIN, "-c", str(bad), "--allow-unknown-static-fields", "--mode", "validate", "--log-format", ISTIO_JSON_FORMAT])
    assert r.returncode == 0, r.stderr
    warn = [json.loads(l) for l in r.stderr.splitlines()]
    assert warn[0]["level"] == "warning" and warn[0]["scope"] == "envoy config", warn
    assert "Unknown field: " in warn[0]["msg"] and "'bogus'" in warn[0]["msg"], warn


@needs_envoy
def test_log_formats_have_envoys_shape(procs, tmp_path):
    """The same --log-format on Envoy and nuncio: the same JSON keys and
    value types, the same text line shape."""
    envoy = [ENVOY, "--disable-hot-restart", "--concurrency", "1"]
    ours = log_lines([BIN], procs, tmp_path, "nuncio", ISTIO_JSON_FORMAT)
    theirs = log_lines(envoy, procs, tmp_path, "envoy", ISTIO_JSON_FORMAT, keep=lambda l: l.startswith("{"))
    shape = lambda l: {k: type(v).__name__ for k, v in json.loads(l).items()}
    assert {json.dumps(shape(l)) for l in ours} == {json.dumps(shape(l)) for l in theirs}
    for lines in (log_lines([BIN], procs, tmp_path, "nuncio2", ISTIO_TEXT_FORMAT),
                  log_lines(envoy, procs, tmp_path, "envoy2", ISTIO_TEXT_FORMAT, keep=lambda l: l[:1].isdigit())):
        assert lines and all(ISTIO_LINE.match(l) for l in lines), lines


def test_log_format_escaped(tmp_path):
    listen = free_port()
    bad = write_config(tmp_path, V3.format(listen=listen).replace("stat_prefix: ingress_http", "stat_prefix: ingress_http\n          bogus: 1"), name="bad.yaml")
    r = run([BIN, "-c", str(bad), "--allow-unknown-static-fields", "--mode", "validate", "--log-format", "%l|%v", "--log-format-escaped"])
    assert r.returncode == 0
    assert r.stderr.startswith("warning|Unknown field: "), r.stderr
    assert "unknown field \\'bogus\\'" in r.stderr, r.stderr


def test_log_path_writes_there_and_reopens_on_sigusr1(procs, tmp_path):
    log = tmp_path / "nuncio.log"
    p, admin, _ = v3_run(procs, tmp_path, [BIN, "--log-path", str(log), "--file-flush-interval-msec", "100"])
    deadline = time.time() + 5
    while "admin listening" not in (log.read_text() if log.exists() else "") and time.time() < deadline:
        time.sleep(0.05)
    text = log.read_text()
    assert "admin listening" in text and all(DEFAULT_LINE.match(l) for l in text.splitlines()), text
    assert Path(p.log_path).read_text() == ""  # nothing on stderr
    # Rotation: move the file away, SIGUSR1, a new file.
    log.rename(tmp_path / "nuncio.log.1")
    os.kill(p.pid, signal.SIGUSR1)
    deadline = time.time() + 5
    while not (log.exists() and "log file reopened" in log.read_text()) and time.time() < deadline:
        time.sleep(0.05)
    assert "log file reopened" in log.read_text()
    stop(p)
    # Lines buffered at exit are written.
    assert "drained; exiting" in log.read_text()


def test_log_path_buffers_for_the_flush_interval(procs, tmp_path):
    log = tmp_path / "slow.log"
    p, _, _ = v3_run(procs, tmp_path, [BIN, "--log-path", str(log), "--file-flush-interval-msec", "60000"])
    time.sleep(0.5)
    assert log.read_text() == ""
    stop(p)
    assert "admin listening" in log.read_text()


def test_admin_address_path_has_the_bound_address(procs, tmp_path):
    p, admin, _ = v3_run(procs, tmp_path, [BIN])
    assert re.fullmatch(r"127\.0\.0\.1:\d+", admin), repr(admin)  # no newline, as Envoy
    assert curl(f"http://{admin}/ready")[0] == 200
    stop(p)


@needs_envoy
def test_admin_address_path_content_matches_envoy(procs, tmp_path):
    p, admin, _ = v3_run(procs, tmp_path, [ENVOY, "--disable-hot-restart"], name="envoy")
    assert re.fullmatch(r"127\.0\.0\.1:\d+", admin), repr(admin)
    stop(p)


def test_unknown_flag_fails_clearly():
    r = run([BIN, "--bogus-flag", "-c", "x.yaml"])
    assert r.returncode == 1
    assert "unexpected argument '--bogus-flag'" in r.stderr, r.stderr
    # Envoy's syntax errors: a switch with a value, = is clap's extra.
    assert run([BIN, "--cpuset-threads x"]).returncode == 1


def test_envoys_flag_checks_and_messages():
    for args, msg in [
        (["--use-dynamic-base-id", "--restart-epoch", "1"], "error: cannot use --restart-epoch=1 with --use-dynamic-base-id"),
        (["--component-log-level", "nope:debug"], "error: invalid component specified 'nope'"),
        (["--component-log-level", "upstream"], "error: component log level not correctly specified 'upstream'"),
        (["--stats-tag", "a_b:c"], "error: misformatted stats-tag 'a_b:c' contains invalid char in 'a_b'"),
        (["--socket-path", "/tmp/x.sock", "--socket-mode", "999"], "error: invalid socket-mode '999'"),
    ]:
        r = run([BIN, *args])
        assert r.returncode == 1 and r.stderr.strip() == msg, (args, r.stderr)
    for args in (["--drain-strategy", "slow"], ["--local-address-ip-version", "v5"], ["--mode", "bogus"]):
        r = run([BIN, *args])
        assert r.returncode == 1 and "invalid value" in r.stderr, (args, r.stderr)


def test_hot_restart_version_prints_disabled():
    r = run([BIN, "--hot-restart-version"])
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "disabled")


@needs_envoy
def test_hot_restart_version_as_envoy_with_hot_restart_off():
    r = run([ENVOY, "--hot-restart-version", "--disable-hot-restart"])
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "disabled")


def test_allow_unknown_static_fields(procs, tmp_path):
    listen = free_port()
    text = V3.format(listen=listen).replace("stat_prefix: ingress_http", "stat_prefix: ingress_http\n          bogus_field: 1")
    cfg = write_config(tmp_path, text, name="unknown.yaml")
    r = run([BIN, "-c", str(cfg), "--mode", "validate"])
    assert r.returncode == 1 and "unknown field 'bogus_field'" in r.stderr
    aap = tmp_path / "a"
    p = procs.start([BIN, "-c", str(cfg), "--allow-unknown-static-fields", "--admin-address-path", str(aap)], name="n")
    admin = wait_file(aap, p)
    wait_port("127.0.0.1", listen, p)
    assert curl(f"http://127.0.0.1:{listen}/")[0] == 200
    stats = json.loads(curl(f"http://{admin}/stats?format=json")[2])["stats"]
    assert {"name": "server.static_unknown_fields", "value": 1} in stats
    out = stop(p)
    warn = [l for l in out.splitlines() if "Unknown field" in l]
    assert len(warn) == 1 and "[warning][config]" in warn[0] and "unknown.yaml:" in warn[0] and "bogus_field" in warn[0], out


def test_component_log_level(procs, tmp_path):
    p, _, _ = v3_run(procs, tmp_path, [BIN, "-l", "info", "--component-log-level", "main:warning,config:debug"])
    out = stop(p)
    assert "[info][config]" in out and "[info][main]" not in out, out
    p, _, _ = v3_run(procs, tmp_path, [BIN, "-l", "off", "--component-log-level", "admin:info"], name="n2")
    lines = [l for l in stop(p).splitlines() if l]
    assert lines == [], lines  # admin logs nothing at info when all is well


def test_parent_shutdown_time_bounds_the_sigterm_drain(procs, tmp_path):
    """A keep-alive connection would hold the drain for the connection
    manager's drain_timeout (5 s); --parent-shutdown-time-s 1 ends it."""
    import socket
    for extra, lo, hi in ((["--parent-shutdown-time-s", "1"], 0.8, 3.0), ([], 3.5, 12.0)):
        p, _, listen = v3_run(procs, tmp_path, [BIN, "--drain-time-s", "600", *extra], name=f"n{len(extra)}")
        s = socket.create_connection(("127.0.0.1", listen))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200" in s.recv(4096)
        t0 = time.time()
        os.kill(p.pid, signal.SIGTERM)
        p.wait(timeout=15)
        took = time.time() - t0
        s.close()
        assert lo <= took <= hi, (extra, took)


@pytest.mark.skipif(shutil.which("taskset") is None, reason="no taskset")
def test_concurrency_follows_the_cpu_set(procs, tmp_path):
    p, admin, _ = v3_run(procs, tmp_path, ["taskset", "-c", "0", BIN, "--cpuset-threads"])
    info = json.loads(curl(f"http://{admin}/server_info")[2])
    assert info["command_line_options"]["concurrency"] == 1
    out = stop(p)
    assert "--cpuset-threads is now the default behavior and no longer required." in out


def test_accepted_flags_say_so_once(procs, tmp_path):
    """Every Envoy 1.40 flag is accepted; those with nothing to act on in
    nuncio say so in one line each."""
    p, _, listen = v3_run(procs, tmp_path, [
        BIN, "--base-id", "3", "--restart-epoch", "0", "--base-id-path", str(tmp_path / "base"),
        "--socket-path", "@x", "--socket-mode", "644", "--skip-hot-restart-on-no-parent",
        "--skip-hot-restart-parent-stats", "--enable-mutex-tracing", "--disable-extensions", "envoy.x/y",
        "--stats-tag", "a:b", "--service-zone", "z", "--log-stacktrace-single-entry",
        "--reject-unknown-dynamic-fields", "--ignore-unknown-dynamic-fields", "--enable-fine-grain-logging",
        "--file-flush-min-size-kb", "1", "--allow-unknown-fields", "--drain-strategy", "gradual",
    ])
    assert curl(f"http://127.0.0.1:{listen}/")[0] == 200
    out = stop(p)
    assert out.count("hot restart version=disabled") == 1
    for needle in ("--enable-mutex-tracing", "--disable-extensions", "--stats-tag", "unknown-dynamic-fields",
                   "--enable-fine-grain-logging", "--allow-unknown-fields is deprecated", "--base-id-path",
                   "--drain-strategy gradual: nuncio drains immediately"):
        assert out.count(needle) == 1, (needle, out)
    assert not (tmp_path / "base").exists()
