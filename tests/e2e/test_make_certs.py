"""scripts/make-certs.sh makes the test PKI the TLS examples, tests and
benchmarks rely on: checked with the openssl CLI (verify, SANs, EKUs,
validity) and with a real mutual-TLS handshake through Python's ssl."""

import datetime
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "make-certs.sh"
LEAVES = {
    "front-proxy": ["DNS:front-proxy", "DNS:localhost", "IP Address:127.0.0.1"],
    "service1": ["DNS:service1", "URI:spiffe://blog/service1"],
    "service2": ["DNS:service2", "URI:spiffe://blog/service2"],
    "rsa-server": ["DNS:rsa-server", "DNS:localhost", "IP Address:127.0.0.1"],
}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    start = time.monotonic()
    r = subprocess.run([str(SCRIPT), str(d)], capture_output=True, text=True, timeout=30)
    took = time.monotonic() - start
    assert r.returncode == 0, r.stderr
    assert (r.stdout, r.stderr) == ("", ""), "prints nothing on success"
    assert took < 3, f"took {took:.2f}s"
    return d


def openssl(*args):
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=10)


def x509(path, *args):
    r = openssl("x509", "-in", str(path), "-noout", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def sans(path):
    out = x509(path, "-ext", "subjectAltName")
    return [s.strip() for s in out.splitlines()[1].split(",")]


def not_after(path):
    text = x509(path, "-enddate", "-dateopt", "iso_8601").strip().split("=", 1)[1]
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def verify(ca, leaf):
    return openssl("verify", "-CAfile", str(ca), str(leaf))


def test_files_and_key_modes(certs):
    names = ["ca", "wrong-ca", "front-proxy", "service1", "service2", "rsa-server", "expired", "stranger"]
    assert sorted(p.name for p in certs.iterdir()) == sorted(f"{n}.{e}" for n in names for e in ("pem", "key"))
    for n in names:
        assert (certs / f"{n}.key").stat().st_mode & 0o077 == 0, f"{n}.key readable by others"
        assert (certs / f"{n}.pem").read_text().count("BEGIN CERTIFICATE") == 1


@pytest.mark.parametrize("name", sorted(LEAVES))
def test_leaf(certs, name):
    pem = certs / f"{name}.pem"
    r = verify(certs / "ca.pem", pem)
    assert r.returncode == 0 and f"{pem}: OK" in r.stdout, r.stdout + r.stderr
    assert sans(pem) == LEAVES[name]
    eku = x509(pem, "-ext", "extendedKeyUsage")
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in eku
    assert "CA:FALSE" in x509(pem, "-ext", "basicConstraints")
    days = (not_after(pem) - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 86400
    assert 6.9 < days <= 7, days
    text = x509(pem, "-text")
    if name == "rsa-server":
        assert "Public-Key: (2048 bit)" in text and "rsaEncryption" in text
    else:
        assert "id-ecPublicKey" in text and "NIST CURVE: P-256" in text
    # The key is the certificate's.
    pub = openssl("pkey", "-in", str(certs / f"{name}.key"), "-pubout").stdout
    assert pub and pub == x509(pem, "-pubkey")


def test_cas(certs):
    for ca in ("ca", "wrong-ca"):
        pem = certs / f"{ca}.pem"
        assert "CA:TRUE" in x509(pem, "-ext", "basicConstraints")
        assert "NIST CURVE: P-256" in x509(pem, "-text")
        assert verify(pem, pem).returncode == 0
    assert x509(certs / "ca.pem", "-subject") != x509(certs / "wrong-ca.pem", "-subject")


def test_expired_is_expired(certs):
    pem = certs / "expired.pem"
    assert not_after(pem) < datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=20)
    r = verify(certs / "ca.pem", pem)
    assert r.returncode != 0 and "certificate has expired" in r.stdout + r.stderr
    # Signed by the CA all the same: only the dates are wrong.
    r = openssl("verify", "-no_check_time", "-CAfile", str(certs / "ca.pem"), str(pem))
    assert r.returncode == 0, r.stdout + r.stderr
    assert sans(pem) == ["DNS:expired", "DNS:localhost", "IP Address:127.0.0.1"]


def test_stranger_is_a_stranger(certs):
    pem = certs / "stranger.pem"
    r = verify(certs / "ca.pem", pem)
    assert r.returncode != 0 and "unable to get local issuer certificate" in r.stdout + r.stderr
    assert verify(certs / "wrong-ca.pem", pem).returncode == 0
    assert "TLS Web Client Authentication" in x509(pem, "-ext", "extendedKeyUsage")


def handshake(certs, host):
    """One mutual-TLS handshake on loopback: front-proxy serves and requires
    a client certificate, service1 presents one, both verify with ca.pem.
    Returns the client certificate as the server saw it."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs / "front-proxy.pem", certs / "front-proxy.key")
    server_ctx.load_verify_locations(certs / "ca.pem")
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.create_default_context(cafile=certs / "ca.pem")
    client_ctx.load_cert_chain(certs / "service1.pem", certs / "service1.key")
    seen = {}
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(5)

        def serve():
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as s:
                seen["peer"] = s.getpeercert()
                s.sendall(b"ok")

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        with socket.create_connection(listener.getsockname(), timeout=5) as raw:
            with client_ctx.wrap_socket(raw, server_hostname=host) as c:
                assert c.recv(2) == b"ok"
        t.join(5)
    return seen["peer"]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_mutual_tls_handshake(certs, host):
    peer = handshake(certs, host)
    assert ("URI", "spiffe://blog/service1") in peer["subjectAltName"]


def test_rerun_replaces_everything(tmp_path):
    for _ in range(2):
        r = subprocess.run([str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout == r.stderr == "", r.stderr
        for leaf in ("front-proxy", "service2", "rsa-server"):
            assert verify(tmp_path / "ca.pem", tmp_path / f"{leaf}.pem").returncode == 0
    assert len(os.listdir(tmp_path)) == 16


def test_usage_error(tmp_path):
    r = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "usage" in r.stderr
