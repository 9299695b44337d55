"""test_http_deltachat.py: the Delta Chat client (deltachat-rpc-server 2.57.0,
interop lab §12) scans the server's `dcaccount:` invitation, gets an account
from /new and configures it over IMAP and SMTP.

Delta Chat cannot be told ports or a CA for this flow, so the server runs in
self-signed mode as `_relay1.test` (a `_` host name makes the client skip the
chain check) on the standard ports of a random 127.x.y.z address, and the
client runs in a private mount namespace whose /etc/hosts maps the name there.
The npm packages are cached in $CM_DC_CACHE (default
/var/cache/chatmaild-tests/dc), outside the repository. """
import json
import os
import random
import shutil
import socket
import subprocess

import pytest

import cmtest

# Deadline per test (tests/pytest.ini has the default): first run npm-installs the Delta Chat client; one client run of up to 120 s.
pytestmark = pytest.mark.timeout(600)

CACHE = os.environ.get("CM_DC_CACHE", "/var/cache/chatmaild-tests/dc")
PKGS = ["@deltachat/stdio-rpc-server@2.57.0", "@deltachat/jsonrpc-client@2.57.0"]
STD_PORTS = {"smtp_port": 25, "submission_port": 587, "submissions_port": 465, "imap_port": 143,
             "imaps_port": 993, "https_port": 443, "http_port": 80}

SCRIPT = r"""
import { startDeltaChat } from "@deltachat/stdio-rpc-server";

const [dir, qr] = process.argv.slice(2);
const dc = startDeltaChat(dir);
const out = {};
try {
  const acc = await dc.rpc.addAccount();
  out.check = await dc.rpc.checkQr(acc, qr);
  await dc.rpc.addTransportFromQr(acc, qr);
  out.config = await dc.rpc.batchGetConfig(acc, ["configured_addr", "is_chatmail"]);
} catch (e) {
  out.error = String(e && e.message || e);
}
console.log(JSON.stringify(out));
dc.close();
process.exit(0);
"""


def ensure_client():
    if not shutil.which("node") or not shutil.which("unshare") or os.geteuid() != 0:
        cmtest.require(False, "needs node, unshare and root (for a private /etc/hosts)")
    mod = os.path.join(CACHE, "node_modules", "@deltachat", "stdio-rpc-server")
    if not os.path.isdir(mod):
        os.makedirs(CACHE, exist_ok=True)
        r = subprocess.run(["npm", "install", "--prefix", CACHE, "--no-audit", "--no-fund", *PKGS],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            cmtest.require(False, f"npm install {' '.join(PKGS)} failed: {r.stderr[-500:]}")


def imap_login_works(ip, creds):
    """True when the server's IMAP answers LOGIN with OK (the account is created)."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    raw = socket.create_connection((ip, 993), timeout=cmtest.TIMEOUT)
    c = cmtest.LineConn(ctx.wrap_socket(raw, server_hostname="_relay1.test"))
    with c:
        c.readline()
        pw = creds["password"].replace("\\", "\\\\").replace('"', '\\"')
        _, tagged = c.imap_cmd("a1", f'LOGIN "{creds["email"]}" "{pw}"')
        return tagged


def test_deltachat_gets_account_from_new(server, tmp_path):
    ensure_client()
    ip = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    srv = server(selfsigned=True, extra={"listen": ip, **STD_PORTS})
    # Precondition: IMAP LOGIN with /new credentials (the client needs it to configure).
    import ssl
    import http.client
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    h = http.client.HTTPSConnection(ip, 443, context=ctx, timeout=cmtest.TIMEOUT)
    h.request("POST", "/new", headers={"Host": "_relay1.test"})
    creds = json.loads(h.getresponse().read())
    h.close()
    # The credentials work at once: the first login creates the account.
    tagged = imap_login_works(ip, creds)
    assert tagged.startswith("a1 OK"), tagged
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n{ip} _relay1.test\n")
    work = tmp_path / "dc"
    work.mkdir()
    os.symlink(os.path.join(CACHE, "node_modules"), work / "node_modules")
    (work / "dc-new.mjs").write_text(SCRIPT)
    qr = "dcaccount:https://_relay1.test/new"
    r = subprocess.run(["unshare", "-m", "sh", "-c",
                        f'mount --bind "{hosts}" /etc/hosts && exec node dc-new.mjs "{work / "accounts"}" "{qr}"'],
                       cwd=str(work), capture_output=True, text=True, timeout=180)
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result from the client:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    out = json.loads(lines[-1])
    assert "error" not in out, out
    assert out["check"]["kind"] == "account" and out["check"]["domain"] == "_relay1.test", out
    addr = out["config"]["configured_addr"]
    assert addr.endswith("@_relay1.test") and len(addr.split("@")[0]) == 9, out
    assert out["config"]["is_chatmail"] == "1", out
