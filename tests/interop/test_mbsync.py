"""test_mbsync.py: a second real IMAP client (issue 7 item 5): mbsync
(isync 1.4) syncs a local Maildir with the relay's INBOX over 993 and back:
local messages pushed up, a server-side APPEND pulled down, flags changed
on either side reach the other, deletions on either side too. The server
certificate is pinned through CertificateFile (the served leaf)."""
import shutil

import pytest

import cmtest

from maildirs import LocalMaildir, make_message, server_state, server_do, uid_of, run, imap_create_account

# Deadline per test (tests/pytest.ini has the default): several mbsync runs of up to 120 s each.
pytestmark = pytest.mark.timeout(600)

CONFIG = """IMAPAccount relay
Host {ip}
Port 993
User {user}
Pass {password}
SSLType IMAPS
CertificateFile {cert}
SystemCertificates no
Timeout 60

IMAPStore remote
Account relay

MaildirStore local
Path {root}/
Inbox {root}/INBOX

Channel inbox
Far :remote:INBOX
Near :local:INBOX
Create Both
Expunge Both
SyncState *
Sync All
"""


@pytest.fixture
def mbsync():
    if not shutil.which("mbsync"):
        cmtest.require(False, "mbsync not installed (Debian package isync)")
    return shutil.which("mbsync")


def test_mbsync_round_trip(target, mbsync, tmp_path):
    addr, pw = imap_create_account(target)
    root = tmp_path / "Mail"
    local = LocalMaildir(root / "INBOX")
    cfg = tmp_path / "mbsyncrc"
    cfg.write_text(CONFIG.format(ip=target.ip, user=addr, password=pw, cert=target.ca_file, root=root))

    def sync():
        return run([mbsync, "-c", str(cfg), "-V", "inbox"], "mbsync")

    # local -> server
    for s in ("one", "two", "three"):
        local.add(make_message(addr, s))
    sync()
    assert server_state(target, addr, pw) == {"one": set(), "two": set(), "three": set()}

    # server -> local: a new message and a flag
    def server_changes(c):
        typ, _ = c.append("INBOX", r"(\Seen)", None, make_message(addr, "four"))
        assert typ == "OK"
        assert c.uid("STORE", uid_of(c, "one"), "+FLAGS", r"(\Flagged)")[0] == "OK"
    server_do(target, addr, pw, server_changes)
    sync()
    got = local.by_subject()
    assert set(got) == {"one", "two", "three", "four"}
    assert got["one"][1] == "F" and got["four"][1] == "S", got
    assert got["four"][0].read_bytes().endswith(b"body text\r\n") or \
        got["four"][0].read_bytes().endswith(b"body text\n")

    # local -> server: a flag and a deletion
    local.set_flags("two", "RS")
    local.remove("three")
    sync()
    state = server_state(target, addr, pw)
    assert set(state) == {"one", "two", "four"}, state
    assert state["two"] >= {r"\Seen", r"\Answered"} and state["one"] == {r"\Flagged"}, state

    # server -> local: a deletion
    def server_delete(c):
        assert c.uid("STORE", uid_of(c, "four"), "+FLAGS", r"(\Deleted)")[0] == "OK"
        assert c.expunge()[0] == "OK"
    server_do(target, addr, pw, server_delete)
    sync()
    assert set(local.by_subject()) == {"one", "two"}
    # a sync with nothing to do changes nothing
    sync()
    assert set(local.by_subject()) == {"one", "two"}
    assert set(server_state(target, addr, pw)) == {"one", "two"}
