"""The README's first command, ./run-blog.sh, works as written: the blog's
curl commands succeed and Ctrl-C/SIGTERM stops everything it started."""

import os
import signal
import subprocess
import time

from conftest import BIN, ROOT, curl, free_port, wait_port


def test_run_blog_script(tmp_path):
    env = dict(os.environ, NUNCIO_BIN=BIN, PROXY_PORT=str(free_port()), ADMIN_PORT=str(free_port()), ECHO_PORT=str(free_port("127.0.0.2")))
    log = open(tmp_path / "run-blog.log", "wb")
    p = subprocess.Popen([str(ROOT / "run-blog.sh")], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_port("127.0.0.1", int(env["ADMIN_PORT"]), p)
        base = f"localhost:{env['PROXY_PORT']}"
        deadline = time.time() + 10
        while time.time() < deadline and "export BASE" not in (tmp_path / "run-blog.log").read_text():
            time.sleep(0.1)
        status, _, body = curl(base)
        assert status == 200 and "User-Agent:[curl/" in body
        status, _, body = curl("-X", "POST", f"{base}/echo", "-H", "Content-Type: application/json", "-d", '{"name": "zcong"}')
        assert (status, body) == (200, '{"name": "zcong"}')
        printed = (tmp_path / "run-blog.log").read_text()
        assert f"export BASE=localhost:{env['PROXY_PORT']}" in printed
    finally:
        os.kill(p.pid, signal.SIGTERM)
        assert p.wait(timeout=10) == 0
    # Nothing it started is left behind.
    time.sleep(0.3)
    left = subprocess.run(["pgrep", "-f", f"127.0.0.2:{env['ECHO_PORT']}"], capture_output=True, text=True).stdout
    assert left.strip() == "", left
