"""test_pipelining.py: pipelined commands are each run and answered exactly
once, in order (issue 11). IMAP: after LOGIN a client sends LIST, LSUB,
two CREATEs, SELECT, FETCH, STATUS, SEARCH, DELETE, NOOP, CAPABILITY and
LOGOUT without waiting, each in its own TLS record or all in one, in many
sessions; a worker that raced the loop answered some commands twice and ran
a second CREATE twice (NO [ALREADYEXISTS]). SMTP: EHLO, AUTH, MAIL, several
RCPT and DATA in one write on submission (PIPELINING, RFC 2920).

CM_PIPELINE_SESSIONS sets the sessions per mode (default 100; the
ThreadSanitizer pass uses fewer)."""
import base64
import imaplib
import os
import re
import socket

import pytest

import cmtest
from cmtest import DOMAIN, HOST, client_context, tls_connect
from submit_helpers import PASSWORD as SMTP_PASSWORD
from submit_helpers import addr, fixture, login as smtp_login, stored

PASSWORD = "pipeline-pass-1"
USER = f"pipeline1@{DOMAIN}"
SESSIONS = int(os.environ.get("CM_PIPELINE_SESSIONS", "100"))


def imap_commands(i):
    """(tag, command, check) in the order sent; check(untagged, tagged) -> error or None."""
    a, b = f"Pa{i}", f"Pb{i}"

    def ok(untagged, line):
        return None if " OK " in line else f"not OK: {line}"

    def has(pattern):
        def check(untagged, line):
            if " OK " not in line:
                return f"not OK: {line}"
            if not any(re.fullmatch(pattern, u) for u in untagged):
                return f"no line matching {pattern!r} before {line!r}: {untagged}"
            return None
        return check

    return [
        ("b", 'LIST "" "*"', has(r'\* LIST \(.*\) "\." "?INBOX"?')),
        ("c", 'LSUB "" "*"', ok),
        ("d", f"CREATE {a}", ok),
        ("e", f"CREATE {b}", ok),
        ("f", "SELECT INBOX", has(r"\* 1 EXISTS")),
        ("g", "FETCH 1:* (UID FLAGS)", has(r"\* 1 FETCH \(UID 1 FLAGS \(.*\)\)")),
        ("h", "NOOP", ok),
        ("i", f"STATUS {a} (MESSAGES)", has(rf'\* STATUS "?{a}"? \(MESSAGES 0\)')),
        ("j", "UID SEARCH ALL", has(r"\* SEARCH 1")),
        ("k", "CAPABILITY", has(r"\* CAPABILITY IMAP4rev1 .*")),
        ("l", f"DELETE {a}", ok),
        ("m", f"DELETE {b}", ok),
        ("n", 'LIST "" "P*"', lambda u, line: ok(u, line) or
         (f"deleted folders listed: {u}" if any(f'"{a}"' in x or f'"{b}"' in x or
                                                 x.endswith((f" {a}", f" {b}")) for x in u)
          else None)),
        ("o", "LOGOUT", has(r"\* BYE .*")),
    ]


@pytest.fixture
def srv(server):
    s = server()
    m = imaplib.IMAP4_SSL(HOST, s.port("imaps"), ssl_context=client_context(),
                          timeout=cmtest.TIMEOUT)
    assert m.login(USER, PASSWORD)[0] == "OK"
    assert m.append("INBOX", None, None, b"Subject: p\r\n\r\npipelined\r\n")[0] == "OK"
    m.logout()
    return s


def run_session(srv, i, mode):
    """One pipelined session; returns a list of problems (empty when all is well)."""
    cmds = imap_commands(i)
    c = tls_connect(srv.port("imaps"))
    try:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert c.readline().startswith("* OK ")
        login = f"a LOGIN {USER} {PASSWORD}\r\n"
        lines = [f"{t} {cmd}\r\n" for t, cmd, _ in cmds]
        if mode == "records":  # LOGIN answered first, then one TLS record per command
            c.send(login)
            _, line = c.imap_until_tagged("a")
            assert line.startswith("a OK "), line
            for l in lines:
                c.send(l)
        else:  # everything, LOGIN included, in one write
            c.send(login + "".join(lines))
        data = c.read_until_closed()
    finally:
        c.close()
    replies = data.decode(errors="replace").split("\r\n")
    tagged, untagged_of, pending = [], {}, []
    for line in replies:
        if not line:
            continue
        if line.startswith(("* ", "+ ")):
            pending.append(line)
            continue
        tag = line.split(" ", 1)[0]
        tagged.append(tag)
        untagged_of.setdefault(tag, pending)
        untagged_of[tag + "#line"] = line
        pending = []
    want = ([] if mode == "records" else ["a"]) + [t for t, _, _ in cmds]
    problems = []
    if tagged != want:
        problems.append(f"tagged replies {tagged} != {want}")
    if mode == "packet" and " OK " not in untagged_of.get("a#line", ""):
        problems.append(f"LOGIN: {untagged_of.get('a#line')}")
    for t, cmd, check in cmds:
        if t + "#line" not in untagged_of:
            continue
        err = check(untagged_of[t], untagged_of[t + "#line"])
        if err:
            problems.append(f"{t} {cmd}: {err}")
    return problems


@pytest.mark.parametrize("mode", ["records", "packet"])
def test_imap_pipelined_commands_answered_once_in_order(srv, mode):
    bad = {}
    for i in range(SESSIONS):
        problems = run_session(srv, i, mode)
        if problems:
            bad[i] = problems
    sample = "\n".join(f"session {i}: {p}" for i, p in list(bad.items())[:5])
    assert not bad, f"{len(bad)} of {SESSIONS} pipelined sessions ({mode}) went wrong:\n{sample}"


def test_smtp_pipelined_submission(server):
    srv = server()
    rcpts = [addr("pipebob01"), addr("pipebob02"), addr("pipebob03")]
    for r in rcpts:
        smtp_login(srv, r).quit()
    sender = addr("pipealice")
    smtp_login(srv, sender).quit()
    msg = fixture("encrypted.eml", sender, rcpts[0])
    token = base64.b64encode(f"\0{sender}\0{SMTP_PASSWORD}".encode()).decode()
    for round_ in range(max(1, SESSIONS // 10)):
        c = tls_connect(srv.port("submissions"))
        try:
            cmtest.smtp_greeting_ok(c.readline())
            c.send("EHLO client.test\r\n" + f"AUTH PLAIN {token}\r\n" +
                   f"MAIL FROM:<{sender}>\r\n" + "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts) +
                   "RCPT TO:<nobody999@" + DOMAIN + ">\r\n" + "DATA\r\n")
            ehlo = c.smtp_reply()
            assert ehlo[0].startswith("250-") and "250-PIPELINING" in ehlo, ehlo
            assert c.smtp_reply() == ["235 2.7.0 Authentication successful"]
            assert c.smtp_reply() == ["250 2.1.0 Ok"]
            for _ in rcpts:
                assert c.smtp_reply() == ["250 2.1.5 Ok"]
            unknown = c.smtp_reply()
            assert unknown[0].startswith("550 "), unknown
            assert c.smtp_reply() == ["354 End data with <CR><LF>.<CR><LF>"]
            c.send(msg + b".\r\nNOOP\r\nQUIT\r\n")
            done = c.smtp_reply()
            assert done[0].startswith("250 2.0.0 Ok: queued as "), done
            assert c.smtp_reply() == ["250 2.0.0 Ok"]
            assert c.smtp_reply()[0].startswith("221 ")
            assert c.read_until_closed() == b""
        finally:
            c.close()
        for r in rcpts:
            assert len(stored(srv, r)) == round_ + 1, r
