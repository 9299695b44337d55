"""maildirs.py: helpers for the IMAP sync-client tests (mbsync,
offlineimap): a local Maildir read and written the way a mail program does,
and the server side seen through imaplib. No waits: the sync clients are
run to completion with subprocess timeouts."""
import email
import email.policy
import imaplib
import os
import re
import subprocess
import time
from pathlib import Path

SYNC_TIMEOUT = 120


def make_message(addr, subject, body="body text\r\n"):
    return (f"From: {addr}\r\nTo: {addr}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}.{time.time_ns()}@test>\r\n"
            f"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n\r\n{body}").encode()


class LocalMaildir:
    """One Maildir folder (cur/new/tmp)."""

    def __init__(self, path):
        self.path = Path(path)
        for sub in ("cur", "new", "tmp"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)

    def add(self, data, flags=""):
        name = f"{time.time_ns()}.{os.getpid()}.test"
        if flags:
            (self.path / "cur" / f"{name}:2,{flags}").write_bytes(data)
        else:
            (self.path / "new" / name).write_bytes(data)

    def files(self):
        return [p for sub in ("cur", "new") for p in (self.path / sub).iterdir()]

    def by_subject(self):
        """{subject: (path, flags)}"""
        out = {}
        for p in self.files():
            msg = email.message_from_bytes(p.read_bytes(), policy=email.policy.compat32)
            flags = p.name.split(":2,", 1)[1] if ":2," in p.name else ""
            out[msg["Subject"]] = (p, flags)
        return out

    def set_flags(self, subject, flags):
        p, _ = self.by_subject()[subject]
        base = p.name.split(":2,", 1)[0]
        p.rename(self.path / "cur" / f"{base}:2,{''.join(sorted(flags))}")

    def remove(self, subject):
        self.by_subject()[subject][0].unlink()


def server_state(target, addr, password, folder="INBOX"):
    """{subject: set of flags} of a folder on the server."""
    c = target.imap_login(addr, password)
    try:
        typ, _ = c.select(f'"{folder}"', readonly=True)
        assert typ == "OK"
        typ, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK", data
        out = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            flags = set(re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode().split())
            subject = email.message_from_bytes(item[1])["Subject"]
            out[subject] = flags
        return out
    finally:
        c.logout()


def server_do(target, addr, password, fn, folder="INBOX"):
    """fn(imaplib connection with `folder` selected read-write)."""
    c = target.imap_login(addr, password)
    try:
        typ, _ = c.select(f'"{folder}"')
        assert typ == "OK"
        return fn(c)
    finally:
        c.logout()


def uid_of(c, subject):
    typ, data = c.uid("SEARCH", None, "HEADER", "Subject", f'"{subject}"')
    assert typ == "OK", data
    [uid] = data[0].split()
    return uid.decode()


def run(argv, what):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=SYNC_TIMEOUT, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"{what} exited {r.returncode}\nstdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}"
    return r


def imap_create_account(target):
    addr, pw = target.new_credentials()
    c = target.imap_login(addr, pw)  # the first login creates the account
    c.logout()
    return addr, pw


__all__ = ["LocalMaildir", "make_message", "server_state", "server_do", "uid_of", "run",
           "imap_create_account", "imaplib"]
