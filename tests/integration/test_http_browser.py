"""test_http_browser.py: a real browser (Debian's headless Chromium) loads the
index over HTTPS trusting the test CA through an NSS database (interop lab
§14): the screenshot is not blank, its QR code decodes (zbarimg) to the
DCACCOUNT: URL, and the DOM links it. In self-signed mode the page's script
fetches /new and shows the dclogin: link and its QR code.
Needs the Debian packages chromium, libnss3-tools (certutil) and zbar-tools;
when they are missing the test installs them (root) or is skipped."""
import os
import shutil
import struct
import subprocess
import zlib

import pytest

import cmtest

PACKAGES = ["chromium", "libnss3-tools", "zbar-tools"]


def need_tools():
    tools = ("chromium", "certutil", "zbarimg")
    if all(shutil.which(t) for t in tools):
        return
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", *PACKAGES], capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, timeout=600)
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        cmtest.require(False, f"missing {missing}: apt-get install {' '.join(PACKAGES)}")


@pytest.fixture
def browser_home(tmp_path, test_ca):
    need_tools()
    home = tmp_path / "home"
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{db}", "-N", "--empty-password"], check=True,
                   capture_output=True)
    subprocess.run(["certutil", "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", "test-ca",
                    "-i", str(test_ca.crt)], check=True, capture_output=True)
    return home


def chromium(home, url, *args, host="relay1.test"):
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={home / 'profile'}",
           f"--host-resolver-rules=MAP {host} 127.0.0.1", *args, url]
    r = subprocess.run(cmd, capture_output=True, timeout=120, cwd=str(home),
                       env={**os.environ, "HOME": str(home)})
    return r


def png_pixels_vary(path):
    """True when the PNG's pixel data is not one uniform colour."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack("!I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    return len(set(raw)) > 16


def test_index_in_chromium(server, browser_home):
    srv = server()
    port = srv.port("https")
    url = f"https://relay1.test:{port}/"
    invite = f"DCACCOUNT:https://relay1.test:{port}/new"
    shot = browser_home / "shot.png"
    r = chromium(browser_home, url, "--window-size=800,1100", f"--screenshot={shot}")
    assert shot.exists(), r.stderr.decode(errors="replace")[-2000:]
    assert png_pixels_vary(shot), "the screenshot is blank"
    z = subprocess.run(["zbarimg", "--raw", "-q", str(shot)], capture_output=True, text=True)
    assert invite in z.stdout.splitlines(), (z.stdout, z.stderr)
    dom = chromium(browser_home, url, "--dump-dom").stdout.decode(errors="replace")
    assert f'href="{invite}"' in dom
    assert "Welcome to relay1.test" in dom
    if os.environ.get("CM_KEEP_SHOT"):
        shutil.copy(shot, os.environ["CM_KEEP_SHOT"])


def test_selfsigned_index_fetches_new(server, browser_home):
    srv = server(selfsigned=True)
    port = srv.port("https")
    url = f"https://_relay1.test:{port}/"
    dom = chromium(browser_home, url, "--ignore-certificate-errors", "--virtual-time-budget=5000",
                   "--dump-dom", host="_relay1.test").stdout.decode(errors="replace")
    assert 'href="dclogin:' in dom and "&amp;v=1&amp;ic=3" in dom, dom[-3000:]
    assert 'src="/qr.svg?data=dclogin' in dom
    assert "Your new address: " in dom and "@_relay1.test" in dom
