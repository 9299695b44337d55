"""Interop: mbsync (Debian's isync) syncs a mailbox both ways against the
IMAP server over implicit TLS: server -> local Maildir, then a local new
message -> server, then a flag change back. The leaf certificate itself is
listed as trusted (isync then skips its host name check, which knows no IP
SANs)."""
import imaplib
import shutil
import subprocess

import pytest

import cmtest
from cmtest import DOMAIN, HOST, client_context

USER = f"mbsync123@{DOMAIN}"
PASSWORD = "mbsync-password-1"

@pytest.fixture(autouse=True)
def _mbsync():
    cmtest.require(shutil.which("mbsync") is not None, "isync not installed")


def imap(srv):
    m = imaplib.IMAP4_SSL(HOST, srv.port("imaps"), ssl_context=client_context(),
                          timeout=cmtest.TIMEOUT)
    assert m.login(USER, PASSWORD)[0] == "OK"
    return m


def mbsync(cfg):
    r = subprocess.run(["mbsync", "-c", str(cfg), "-a"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def files(d):
    return sorted(p for sub in ("new", "cur") for p in (d / sub).iterdir())


def test_mbsync_both_ways(server, tmp_path, leaf):
    srv = server()
    m = imap(srv)
    for i in range(2):
        msg = f"From: a@{DOMAIN}\r\nSubject: s{i}\r\n\r\nbody {i}\r\n".encode()
        assert m.append("INBOX", None, None, msg)[0] == "OK"
    local = tmp_path / "local"
    local.mkdir()
    cfg = tmp_path / "mbsyncrc"
    cfg.write_text(f"""IMAPAccount t
Host {HOST}
Port {srv.port("imaps")}
User {USER}
Pass {PASSWORD}
SSLType IMAPS
CertificateFile {leaf.crt}

IMAPStore remote
Account t

MaildirStore local
Path {local}/
Inbox {local}/INBOX

Channel c
Far :remote:
Near :local:
Patterns INBOX
Create Both
Expunge Both
SyncState *
""")
    mbsync(cfg)
    got = files(local / "INBOX")
    assert len(got) == 2, got
    assert any(b"body 1" in p.read_bytes() for p in got)
    # a message created locally goes up
    (local / "INBOX" / "new" / "1700000000.local.host").write_bytes(
        f"From: b@{DOMAIN}\r\nSubject: up\r\n\r\nfrom mbsync\r\n".encode())
    mbsync(cfg)
    m.select("INBOX")
    typ, data = m.search(None, "SUBJECT", "up")
    assert data[0] == b"3", data
    # a flag set on the server comes down
    m.store("1", "+FLAGS", "(\\Flagged)")
    mbsync(cfg)
    flagged = [p for p in files(local / "INBOX") if ":2," in p.name and "F" in p.name.split(":2,")[1]]
    assert len(flagged) == 1, files(local / "INBOX")
    m.logout()
