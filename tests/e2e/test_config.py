"""`nuncio --mode validate` and startup errors: exit 0 for a good config,
otherwise one line with file:line:column, the field path and what was
expected."""

import re
import subprocess

from conftest import BIN, BLOG, ROOT, write_config


def validate(*args):
    r = subprocess.run([BIN, "--mode", "validate", *args], capture_output=True, text=True, timeout=20)
    return r.returncode, r.stdout, r.stderr


def one_line_error(stderr):
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0][len("error: "):]


def test_every_blog_config_validates():
    for f in ["simple-proxy.yaml", "simple-proxy-ws.yaml", "proxy-envoy.yaml", "service-envoy.yaml", "service-envoy.fixed.yaml"]:
        code, out, err = validate("-c", str(BLOG / f))
        assert code == 0, err
        assert out.strip() == f"configuration '{BLOG / f}' OK"
    for f in ["front-proxy-v2.yaml", "front-proxy-v3.yaml"]:
        assert validate("-c", str(ROOT / "examples" / "front-proxy" / f))[0] == 0


def test_typo_gets_position_path_and_hint(tmp_path):
    text = (BLOG / "simple-proxy.yaml").read_text().replace("lb_policy: round_robin", "lb_polcy: round_robin")
    cfg = write_config(tmp_path, text)
    code, _, err = validate("-c", str(cfg))
    assert code != 0
    line = text.split("\n").index("    lb_polcy: round_robin") + 1
    assert one_line_error(err) == (
        f"{cfg}:{line}:5: static_resources.clusters[0].lb_polcy: unknown field 'lb_polcy', did you mean 'lb_policy'?"
    )


def test_bad_values(tmp_path):
    base = (BLOG / "simple-proxy.yaml").read_text()
    cases = [
        ("type: strict_dns", "type: strict_dnz", r"static_resources\.clusters\[0\]\.type: unknown value 'strict_dnz', expected one of .*did you mean STRICT_DNS\?"),
        ("connect_timeout: 0.25s", "connect_timeout: 250ms", r"clusters\[0\]\.connect_timeout: expected a duration .*got '250ms'"),
        ("port_value: 8001", "port_value: 80001", r"admin\.address\.socket_address\.port_value: expected an integer from 0 to 65535, got 80001"),
        ("cluster: myservice", "cluster: nosuch", r"routes\[0\]\.route\.cluster: unknown cluster 'nosuch'"),
        ("name: envoy.router", "name: envoy.lua", r"http_filters\[0\]: http filter 'envoy.lua' is not supported yet"),
    ]
    for old, new, want in cases:
        cfg = write_config(tmp_path, base.replace(old, new, 1), name="c.yaml")
        code, _, err = validate("-c", str(cfg))
        assert code != 0, new
        msg = one_line_error(err)
        assert re.match(rf"^{re.escape(str(cfg))}:\d+:\d+: ", msg), msg
        assert re.search(want, msg), msg


def test_yaml_syntax_error(tmp_path):
    cfg = write_config(tmp_path, "static_resources:\n  clusters: [\n    {name: a\n")
    code, _, err = validate("-c", str(cfg))
    assert code != 0
    assert re.match(rf"^{re.escape(str(cfg))}:\d+:\d+: invalid YAML/JSON: ", one_line_error(err)), err


def test_json_config_and_config_yaml(tmp_path):
    cfg = write_config(tmp_path, '{"static_resources": {"clusters": [{"name": "a", "type": "STATIC"}]}}', name="c.json")
    assert validate("-c", str(cfg))[0] == 0
    code, _, err = validate("-c", str(cfg), "--config-yaml", "static_resources: {clusters: [{name: a}]}")
    assert code != 0
    assert "cluster name 'a' is used twice" in one_line_error(err)
    code, _, err = validate("--config-yaml", "admin: {address: {socket_address: {address: 127.0.0.1}}}")
    assert "<config-yaml>:1:" in one_line_error(err)
    assert "missing required field 'port_value'" in err


def test_missing_file_and_no_config(tmp_path):
    code, _, err = validate("-c", str(tmp_path / "nope.yaml"))
    assert code != 0 and "cannot read config" in one_line_error(err)
    code, _, err = validate()
    assert code != 0 and "no config" in one_line_error(err)


def test_serve_with_bad_config_exits_with_the_same_error(tmp_path):
    cfg = write_config(tmp_path, "static_resources:\n  clustrs: []\n")
    r = subprocess.run([BIN, "-c", str(cfg)], capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "static_resources.clustrs: unknown field 'clustrs', did you mean 'clusters'?" in one_line_error(r.stderr)


def test_bind_failure_is_one_clear_line(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    cfg = (ROOT / "examples" / "front-proxy" / "front-proxy-v3.yaml")
    r = subprocess.run([BIN, "-c", str(cfg), "--hosts", str(ROOT / "examples" / "hosts"), "--remap", f"127.0.0.1:10000=127.0.0.1:{port}"], capture_output=True, text=True, timeout=20)
    s.close()
    assert r.returncode != 0
    err = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(err) == 1 and "cannot bind listener" in err[0] and str(port) in err[0], r.stderr


def test_help_documents_envoy_flags():
    out = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=20).stdout
    for flag in ["--config-path", "--config-yaml", "--mode", "--service-cluster", "--service-node", "--log-level", "--concurrency", "--hosts", "--remap"]:
        assert flag in out, flag
