"""test_submission_swaks.py: interop with swaks (Debian package) over 587 with
STARTTLS and over 465 with implicit TLS: AUTH PLAIN and LOGIN, an encrypted
message delivered and stored, a plain one refused with 523, and the AUTH
refusal before TLS as swaks sees it."""
import shutil
import subprocess

import pytest

import cmtest
from submit_helpers import PASSWORD, addr, fixture, stored, login

@pytest.fixture(autouse=True)
def _swaks():
    cmtest.require(shutil.which("swaks") is not None, "swaks not installed")

ALICE, BOB = addr("alice0001"), addr("bob000002")


def swaks(srv, port_name, *args, data=None, tmp=None):
    cmd = ["swaks", "--server", cmtest.HOST, "--port", str(srv.port(port_name)),
           "--from", ALICE, "--auth-user", ALICE, "--auth-password", PASSWORD,
           "--helo", "client.test", "--timeout", "20", *args]
    if data is not None:
        path = tmp / "msg.eml"
        path.write_bytes(data)
        cmd += ["--data", str(path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


@pytest.mark.parametrize("port_name,tls_args,mech", [
    ("submission", ["--tls"], "PLAIN"),
    ("submissions", ["--tls-on-connect"], "LOGIN"),
])
def test_swaks_delivers_encrypted_refuses_plain(server, tmp_path, port_name, tls_args, mech):
    srv = server()
    login(srv, BOB).quit()
    rc, out = swaks(srv, port_name, *tls_args, "--auth", mech, "--to", BOB,
                    data=fixture("encrypted.eml", ALICE, BOB), tmp=tmp_path)
    assert rc == 0, out
    assert "<~  235 2.7.0 Authentication successful" in out
    assert "<~  250 2.0.0 Ok: queued as " in out
    assert len(stored(srv, BOB)) == 1
    rc, out = swaks(srv, port_name, *tls_args, "--auth", mech, "--to", BOB,
                    data=fixture("plain.eml", ALICE, BOB), tmp=tmp_path)
    assert rc != 0
    assert "<~* 523 Encryption Needed: Invalid Unencrypted Mail" in out, out
    assert len(stored(srv, BOB)) == 1


def test_swaks_auth_without_tls_refused(server):
    srv = server()
    rc, out = swaks(srv, "submission", "--auth", "PLAIN", "--to", BOB)
    assert rc != 0
    # swaks does not offer AUTH that the server does not advertise before TLS
    assert "Host did not advertise authentication" in out or "538 5.7.11" in out, out
