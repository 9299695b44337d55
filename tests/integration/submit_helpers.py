"""submit_helpers.py: shared helpers of the submission tests.

  fixture(name, sender, rcpt)  a tests/data/filter/*.eml message with its
                               example addresses replaced (alice -> sender,
                               bob -> rcpt), CRLF line ends
  plain_msg(sender, ...)       a small hand-made message
  smtps(srv) / login(srv, u)   smtplib over 465 (verified TLS), logged in
  raw_login(srv, u)            a cmtest.LineConn on 465, EHLO + AUTH PLAIN done
  stored(srv, addr)            the message files of an account (new/ and cur/)
  queued(srv)                  the files of <state_dir>/queue
"""
import base64
import smtplib
from pathlib import Path

import cmtest

DATA = cmtest.REPO_ROOT / "tests" / "data" / "filter"
PASSWORD = "password1234"
D = cmtest.DOMAIN


def addr(local):
    return f"{local}@{D}"


def fixture(name, sender, rcpt="bob@example.net"):
    raw = (DATA / name).read_bytes()
    return raw.replace(b"alice@example.org", sender.encode()).replace(b"bob@example.net",
                                                                      rcpt.encode())


def plain_msg(sender, rcpt="bob@example.net", subject="hello", extra=b"", body=b"hi\r\n"):
    return (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n".encode() + extra +
            b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n" + body)


def smtps(srv, timeout=cmtest.TIMEOUT):
    ctx = cmtest.client_context()
    return smtplib.SMTP_SSL(cmtest.HOST, srv.port("submissions"), context=ctx, timeout=timeout)


def login(srv, user, password=PASSWORD):
    s = smtps(srv)
    s.login(user, password)
    return s


def raw_login(srv, user, password=PASSWORD):
    c = cmtest.tls_connect(srv.port("submissions"))
    cmtest.smtp_greeting_ok(c.readline())
    c.smtp_cmd("EHLO client.test")
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    assert c.smtp_cmd(f"AUTH PLAIN {token}") == ["235 2.7.0 Authentication successful"]
    return c


def account_dir(srv, address):
    return Path(srv.tmpdir) / "mail" / address


def stored(srv, address):
    d = account_dir(srv, address)
    out = []
    for sub in ("new", "cur"):
        p = d / sub
        if p.is_dir():
            out += sorted(x for x in p.iterdir() if x.is_file())
    return out


def queued(srv):
    q = Path(srv.tmpdir) / "state" / "queue"
    return sorted(x for x in q.iterdir() if x.is_file() and not x.name.startswith(".")) \
        if q.is_dir() else []


def header_block(data):
    return data.split(b"\r\n\r\n", 1)[0]
