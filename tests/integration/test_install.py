"""`cmake --install` of the build the tests run against ($CM_SERVER_BIN's
directory): DESTDIR staging and --prefix are honoured, the installed binary
starts, serves the web page and finds appversions.json beside itself (never
through the source tree), and the installed systemd unit names the installed
binary and passes `systemd-analyze verify`."""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import cmtest

UNIT = "lib/systemd/system/chatmaild-server.service"


def install(build_dir, *args, destdir=None):
    env = dict(os.environ)
    env.pop("DESTDIR", None)
    if destdir is not None:
        env["DESTDIR"] = str(destdir)
    r = subprocess.run(["cmake", "--install", str(build_dir), *args], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def build_dir(server_bin):
    d = Path(server_bin).resolve().parent
    if not (d / "cmake_install.cmake").is_file():
        pytest.fail(f"{server_bin} is not in a CMake build directory", pytrace=False)
    return d


def test_destdir_install_starts_and_serves(server, build_dir, tmp_path):
    stage = tmp_path / "stage"
    install(build_dir, "--prefix", "/opt/cmtest", destdir=stage)
    root = stage / "opt/cmtest"
    binary = root / "bin/chatmaild-server"
    assert os.access(binary, os.X_OK)
    assert (root / "share/chatmaild-server/appversions.json").read_bytes() == \
        (cmtest.REPO_ROOT / "config/appversions.json").read_bytes()
    unit = (root / UNIT).read_text()
    # DESTDIR is only where files are staged: the unit names the final path.
    assert re.search(r"^ExecStart=/opt/cmtest/bin/chatmaild-server -c ", unit, re.M), unit
    assert "StateDirectory=chatmaild" in unit
    rw = re.search(r"^ReadWritePaths=(.*)$", unit, re.M).group(1).split()
    assert rw and all(p.startswith("-/") for p in rw), rw
    assert not list(stage.rglob("*.c")) and not (root / "www").exists()  # templates are built in

    srv = server(selfsigned=True, start=False)
    srv.binary = str(binary)
    srv.env.pop("CM_APPVERSIONS_FILE", None)
    srv.start()
    with cmtest.tls_connect(srv.port("https"), alpn=["http/1.1"], verify=False) as c:
        status, _, _, body = cmtest.http_get(c.sock, "/", host=srv.mail_domain)
    assert status == 200 and b"<html" in body.lower() and srv.mail_domain.encode() in body

    # appversions.json is read from <prefix>/share/chatmaild-server beside the binary.
    want = json.dumps(json.loads((root / "share/chatmaild-server/appversions.json").read_text()),
                      separators=(",", ":"))
    c = cmtest.tls_connect(srv.port("imaps"), verify=False)
    c.readline()
    user = f"inst{os.getpid() % 100000:05d}@{srv.mail_domain}"
    assert c.imap_cmd("l", f"LOGIN {user} password1234")[1].startswith("l OK")
    lines, done = c.imap_cmd("g", 'GETMETADATA "" /shared/vendor/deltachat/appversions')
    assert done.startswith("g OK"), (lines, done)
    text = "\n".join(lines)
    assert "appversions NIL" not in text, text
    got = re.search(r'appversions "(.*)"\)', text).group(1).replace('\\"', '"').replace("\\\\", "\\")
    assert got == want
    c.close()


def test_prefix_install_unit_verifies(build_dir, tmp_path):
    cmtest.require(shutil.which("systemd-analyze") is not None,
                   "systemd-analyze not installed (Debian package systemd)")
    prefix = tmp_path / "prefix"
    install(build_dir, "--prefix", str(prefix))
    unit = prefix / UNIT
    assert f"ExecStart={prefix}/bin/chatmaild-server -c " in unit.read_text()
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "chatmaild-server.service" not in r.stderr, r.stdout + r.stderr
