"""test_offlineimap.py: a third real IMAP client (issue 7 item 5):
offlineimap3 (Debian 8.0.0) syncs the relay's INBOX with a local Maildir
over 993 in one-shot mode: server messages pulled, local messages pushed,
flags and deletions both ways. The server certificate is pinned by its
SHA-512 fingerprint (cert_fingerprint)."""
import hashlib
import shutil
import ssl

import pytest

import cmtest

from maildirs import LocalMaildir, make_message, server_state, server_do, uid_of, run, imap_create_account

# Deadline per test (tests/pytest.ini has the default): several offlineimap runs of up to 120 s each.
pytestmark = pytest.mark.timeout(600)

CONFIG = """[general]
accounts = relay
metadata = {meta}
ui = basic

[Account relay]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {root}

[Repository remote]
type = IMAP
remotehost = {ip}
remoteport = 993
ssl = yes
cert_fingerprint = {fpr}
remoteuser = {user}
remotepass = {password}
folderfilter = lambda f: f == 'INBOX'
createfolders = False
maxconnections = 1
"""


@pytest.fixture
def offlineimap():
    if not shutil.which("offlineimap"):
        cmtest.require(False, "offlineimap not installed (Debian package offlineimap3)")
    return shutil.which("offlineimap")


def test_offlineimap_round_trip(target, offlineimap, tmp_path):
    addr, pw = imap_create_account(target)
    root = tmp_path / "Mail"
    root.mkdir()
    fpr = hashlib.sha512(ssl.PEM_cert_to_DER_cert(target.ca_file.read_text())).hexdigest()
    cfg = tmp_path / "offlineimaprc"
    cfg.write_text(CONFIG.format(meta=tmp_path / "meta", root=root, ip=target.ip, fpr=fpr, user=addr,
                                 password=pw))

    def sync():
        return run([offlineimap, "-c", str(cfg), "-o", "-u", "basic"], "offlineimap")

    # server -> local
    def server_adds(c):
        for s, flags in (("alpha", r"(\Seen)"), ("beta", None)):
            assert c.append("INBOX", flags, None, make_message(addr, s))[0] == "OK"
    server_do(target, addr, pw, server_adds)
    sync()
    local = LocalMaildir(root / "INBOX")
    got = local.by_subject()
    assert set(got) == {"alpha", "beta"} and got["alpha"][1] == "S" and got["beta"][1] == "", got

    # local -> server: a new message, a flag, a deletion
    local.add(make_message(addr, "gamma"), flags="F")
    local.set_flags("beta", "S")
    local.remove("alpha")
    sync()
    state = server_state(target, addr, pw)
    assert state == {"beta": {r"\Seen"}, "gamma": {r"\Flagged"}}, state

    # server -> local: a flag and a deletion
    def server_changes(c):
        assert c.uid("STORE", uid_of(c, "beta"), "+FLAGS", r"(\Answered)")[0] == "OK"
        assert c.uid("STORE", uid_of(c, "gamma"), "+FLAGS", r"(\Deleted)")[0] == "OK"
        assert c.expunge()[0] == "OK"
    server_do(target, addr, pw, server_changes)
    sync()
    got = local.by_subject()
    assert set(got) == {"beta"} and got["beta"][1] == "RS", got
