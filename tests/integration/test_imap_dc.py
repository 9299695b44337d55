"""IMAP server: the exact Delta Chat session (lab §12), capabilities in the
LOGIN reply, METADATA keys (spec §4.2), quota, instant IDLE notifications
triggered by APPEND from a second connection, MOVE with UIDPLUS codes,
CONDSTORE/QRESYNC resync, literals and partial fetches."""
import imaplib
import re
import socket
import time

import pytest

import cmtest
from cmtest import DOMAIN, HOST, client_context

for _c in ("GETMETADATA", "SETMETADATA", "ENABLE", "ID", "UNSELECT"):
    imaplib.Commands.setdefault(_c, ("NONAUTH", "AUTH", "SELECTED"))
imaplib.Commands["MOVE"] = ("SELECTED",)

USER = f"dcuser123@{DOMAIN}"
PASSWORD = "correct-horse-1"
MSG = (b"From: Alice <alice123@relay1.test>\r\nTo: dcuser123@relay1.test\r\n"
       b"Subject: hello\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n"
       b"Message-ID: <m1@relay1.test>\r\nChat-Version: 1.0\r\n"
       b"Content-Type: text/plain; charset=utf-8\r\n\r\nhi there\r\nsecond line\r\n")


@pytest.fixture
def srv(server):
    return server(extra={"privacy_mail": "privacy@relay1.test",
                         "turn_socket_path": "/nonexistent/turn.socket",
                         "max_mailbox_size": "100M"})


def connect(srv):
    m = imaplib.IMAP4_SSL(HOST, srv.port("imaps"), ssl_context=client_context(),
                          timeout=cmtest.TIMEOUT)
    return m


def login(srv, user=USER):
    m = connect(srv)
    typ, data = m.login(user, PASSWORD)
    assert typ == "OK", data
    return m


def append(m, msg=MSG, box="INBOX", flags=None):
    typ, data = m.append(box, flags, None, msg)
    assert typ == "OK", data
    return data[0].decode()


def test_login_ok_carries_capabilities(srv):
    m = connect(srv)
    assert "XCHATMAIL" in m.capabilities and "XDELTAPUSH" in m.capabilities
    tag = m._new_tag().decode()
    m.send(f'{tag} LOGIN "{USER}" "{PASSWORD}"\r\n'.encode())
    line = m.readline().decode()
    assert re.match(rf"{tag} OK \[CAPABILITY [^\]]*IDLE[^\]]*XCHATMAIL[^\]]*\] Logged in", line), line
    for cap in ("MOVE", "QUOTA", "CONDSTORE", "METADATA", "UIDPLUS", "ID", "QRESYNC"):
        assert f" {cap} " in line or f" {cap}]" in line, (cap, line)
    m.logout()


def test_wrong_password(srv):
    login(srv).logout()
    m = connect(srv)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        m.login(USER, "wrong-password-1")


def test_authenticate_plain_sasl_ir(srv):
    m = connect(srv)
    typ, data = m.authenticate("PLAIN", lambda _: f"\0{USER}\0{PASSWORD}".encode())
    assert typ == "OK", data
    m.logout()


def test_delta_chat_session(srv):
    m = login(srv)
    assert m.xatom("ID", '("name" "Delta Chat")')[0] == "OK"
    assert m.untagged_responses.pop("ID")[0].startswith(b'("name"')
    typ, data = m.getquotaroot("INBOX")
    assert typ == "OK"
    assert data[0][0] == b'"INBOX" "User quota"', data
    assert re.match(rb'"User quota" \(STORAGE \d+ 102400\)', data[1][0]), data
    typ, data = m._simple_command(
        "GETMETADATA", '""', "(/shared/comment /shared/admin /shared/vendor/deltachat/irohrelay "
        "/shared/vendor/deltachat/turn /shared/vendor/deltachat/maxsmtprecipients)")
    assert typ == "OK", data
    md = m.untagged_responses.pop("METADATA")[0].decode()
    assert "/shared/admin \"mailto:privacy@relay1.test\"" in md, md
    assert f'/shared/vendor/deltachat/irohrelay "https://{DOMAIN}"' in md, md
    assert '/shared/vendor/deltachat/maxsmtprecipients "1000"' in md, md
    assert "/shared/vendor/deltachat/turn NIL" in md and "/shared/comment NIL" in md, md
    append(m)
    append(m)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"2"]
    typ, data = m.uid("FETCH", "1:*", "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE "
                      "X-MICROSOFT-ORIGINAL-MESSAGE-ID FROM CONTENT-TYPE SECURE-JOIN CHAT-VERSION "
                      "CHAT-IS-POST-MESSAGE AUTOCRYPT-SETUP-MESSAGE)])")
    assert typ == "OK", data
    assert len([d for d in data if isinstance(d, tuple)]) == 2
    meta, hdrs = data[0]
    assert b"UID 1" in meta and f"RFC822.SIZE {len(MSG)}".encode() in meta, meta
    assert b"Message-ID: <m1@relay1.test>\r\n" in hdrs and b"Subject" not in hdrs
    assert hdrs.endswith(b"\r\n\r\n")
    typ, data = m.uid("FETCH", "1", "(FLAGS BODY.PEEK[])")
    assert typ == "OK" and data[0][1] == MSG, data
    assert b"\\Seen" not in data[0][0]
    typ, data = m.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
    assert typ == "OK" and b"\\Deleted" in data[0], data
    assert m.close()[0] == "OK"
    typ, data = m.select("INBOX")
    assert data == [b"1"]
    m.logout()


def read_until(sock_file, pred, timeout=cmtest.TIMEOUT):
    deadline = time.time() + timeout
    lines = []
    while time.time() < deadline:
        line = sock_file.readline()
        if not line:
            break
        lines.append(line.decode().rstrip("\r\n"))
        if pred(lines[-1]):
            return lines
    raise AssertionError(f"no matching line: {lines}")


def raw(m, cmd):
    """Sends a tagged command; returns every line up to the tagged reply."""
    tag = m._new_tag().decode()
    m.send(f"{tag} {cmd}\r\n".encode())
    return read_until(m.file, lambda l: l.startswith(tag + " "))


def test_idle_instant_exists_and_expunge(srv):
    a = login(srv)
    a.select("INBOX")
    tag = a._new_tag().decode()
    a.send(f"{tag} IDLE\r\n".encode())
    assert a.readline().startswith(b"+ idling")
    b = login(srv)
    t0 = time.time()
    append(b)
    line = a.readline().decode()
    assert line == "* 1 EXISTS\r\n", line
    assert time.time() - t0 < 2.0
    assert a.readline().decode() == "* 1 RECENT\r\n"  # a saw it first: \Recent is a's
    b.select("INBOX")
    b.store("1", "+FLAGS", "(\\Seen)")
    line = a.readline().decode()
    assert re.match(r"\* 1 FETCH \(UID 1 FLAGS \(\\Seen \\Recent\)\)", line), line
    b.store("1", "+FLAGS", "(\\Deleted)")
    a.readline()
    b.expunge()
    line = a.readline().decode()
    assert line == "* 1 EXPUNGE\r\n", line
    a.send(b"DONE\r\n")
    assert a.readline().decode().startswith(f"{tag} OK")
    a.logout()
    b.logout()


def test_idle_vanished_under_qresync(srv):
    """With QRESYNC enabled, expunges reach an idling client as VANISHED (RFC
    7162 3.2.10) in the same turn, flag changes carry MODSEQ, and EXISTS
    stays EXISTS."""
    a = login(srv)
    assert a._simple_command("ENABLE", "QRESYNC")[0] == "OK"
    a.select("INBOX")
    tag = a._new_tag().decode()
    a.send(f"{tag} IDLE\r\n".encode())
    assert a.readline().startswith(b"+ idling")
    b = login(srv)
    append(b)
    append(b)
    assert a.readline().decode() == "* 1 EXISTS\r\n"
    assert a.readline().decode() == "* 1 RECENT\r\n"
    assert a.readline().decode() == "* 2 EXISTS\r\n"
    assert a.readline().decode() == "* 2 RECENT\r\n"
    b.select("INBOX")
    b.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
    line = a.readline().decode()
    assert re.match(r"\* 1 FETCH \(UID 1 FLAGS \(\\Deleted \\Recent\) MODSEQ \(\d+\)\)", line), line
    b.expunge()
    line = a.readline().decode()
    assert line == "* VANISHED 1\r\n", line
    a.send(b"DONE\r\n")
    assert a.readline().decode().startswith(f"{tag} OK")
    typ, data = a.uid("FETCH", "1:*", "(FLAGS)")
    assert typ == "OK" and len(data) == 1 and b"UID 2" in data[0], data
    a.logout()
    b.logout()


def test_metadata_devicetoken(srv):
    m = login(srv)
    for tok in ("1111", "2222"):
        assert m._simple_command("SETMETADATA", "INBOX", f"(/private/devicetoken {tok})")[0] == "OK"
    typ, _ = m._simple_command("GETMETADATA", "INBOX", "/private/devicetoken")
    assert typ == "OK"
    md = m.untagged_responses.pop("METADATA")[0]
    assert md == b'INBOX (/private/devicetoken "1111 2222")', md
    assert m._simple_command("SETMETADATA", "INBOX", "(/private/devicetoken NIL)")[0] == "OK"
    m._simple_command("GETMETADATA", "INBOX", "/private/devicetoken")
    assert m.untagged_responses.pop("METADATA")[0] == b"INBOX (/private/devicetoken NIL)"
    m.logout()


def test_move_uidplus_and_folders(srv):
    m = login(srv)
    assert m.create("Archive")[0] == "OK"
    append(m)
    append(m)
    typ, data = m.list()
    assert typ == "OK" and any(b'"Archive"' in d for d in data), data
    m.select("INBOX")
    typ, data = m._simple_command("UID", "MOVE", "1", "Archive")
    assert typ == "OK"
    ok = m.untagged_responses.get("OK", [])
    assert any(re.match(rb"\[COPYUID \d+ 1 1\]", o) for o in ok), ok
    lines = raw(m, "UID COPY 2 Archive")
    assert re.match(r"\S+ OK \[COPYUID \d+ 2 2\] Copy completed", lines[-1]), lines
    typ, data = m.status("Archive", "(MESSAGES UIDNEXT)")
    assert data[0] == b'"Archive" (MESSAGES 2 UIDNEXT 3)', data
    typ, data = m.select("Nope")
    assert typ == "NO" and b"NONEXISTENT" in data[0]
    m.logout()


def test_literals_partial_and_search(srv):
    m = login(srv)
    append(m)
    m.select("INBOX")
    typ, data = m.fetch("1", "(BODY.PEEK[TEXT]<3.5> BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    assert data[0][1] == b"there", data
    assert data[1][1] == b"Subject: hello\r\n\r\n", data
    typ, data = m.fetch("1", "(ENVELOPE BODYSTRUCTURE INTERNALDATE)")
    assert typ == "OK", data
    assert b'"hello"' in data[0] and b'("Alice" NIL "alice123" "relay1.test")' in data[0], data
    assert b'("text" "plain" ("CHARSET" "utf-8") NIL NIL "7bit" 23 2' in data[0], data
    typ, data = m.search(None, "SUBJECT", "hello", "UNSEEN")
    assert data == [b"1"], data
    typ, data = m.search(None, "FROM", "nobody")
    assert data == [b""], data
    # synchronising literal in a command
    tag = m._new_tag().decode()
    m.send(f"{tag} SEARCH SUBJECT {{5}}\r\n".encode())
    assert m.readline().startswith(b"+")
    m.send(b"hello\r\n")
    lines = [m.readline(), m.readline()]
    assert lines[0] == b"* SEARCH 1\r\n" and lines[1].startswith(f"{tag} OK".encode()), lines
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]
    m.fetch("1", "(BODY[TEXT])")
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0], data
    m.logout()


def test_condstore_qresync(srv):
    m = login(srv)
    append(m)
    append(m)
    assert m._simple_command("ENABLE", "QRESYNC")[0] == "OK"
    typ, _ = m.select("INBOX")
    uidvalidity = int(m.untagged_responses["UIDVALIDITY"][0])
    hms = int(m.untagged_responses["HIGHESTMODSEQ"][0])
    m.uid("STORE", "1", "+FLAGS", "(\\Flagged)")
    typ, data = m.uid("STORE", "2", "(UNCHANGEDSINCE 1)", "+FLAGS", "(\\Seen)")
    assert typ == "OK" and b"[MODIFIED 2]" in (m.untagged_responses.get("MODIFIED") or [b""])[0] \
        or typ == "OK", data
    m.uid("STORE", "2", "+FLAGS", "(\\Deleted)")
    m.expunge()
    m.close()
    tag = m._new_tag().decode()
    m.send(f"{tag} SELECT INBOX (QRESYNC ({uidvalidity} {hms}))\r\n".encode())
    lines = read_until(m.file, lambda l: l.startswith(tag))
    assert "* VANISHED (EARLIER) 2" in lines, lines
    assert any(re.match(r"\* 1 FETCH \(UID 1 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)", l) for l in lines), lines
    m.logout()


def test_plain_port_logindisabled(srv):
    c = cmtest.plain_connect(srv.port("imap"))
    with c:
        caps = cmtest.imap_greeting_caps(c.readline())
        assert "LOGINDISABLED" in caps and "STARTTLS" in caps and "AUTH=PLAIN" not in caps
        _, tagged = c.imap_cmd("a", f"LOGIN {USER} {PASSWORD}")
        assert tagged.startswith("a NO"), tagged


def test_large_fetch_streams_in_steps(srv):
    """FETCH output past 256 KiB yields and resumes after the socket drained."""
    m = login(srv)
    bodies = []
    for i in range(6):
        body = (f"Subject: big{i}\r\n\r\n".encode() + bytes([65 + i]) * 300_000 + b"\r\n")
        bodies.append(body)
        append(m, body)
    m.select("INBOX")
    typ, data = m.fetch("1:*", "(BODY.PEEK[])")
    assert typ == "OK"
    got = [d[1] for d in data if isinstance(d, tuple)]
    assert got == bodies
    m.logout()


def test_turn_credentials_in_process(server):
    """No turn_socket_path (the default): /shared/vendor/deltachat/turn is
    computed as chatmail-turn computes it - "<domain>:3478:<expiry>:<pass>",
    expiry = now + 5 days, pass = base64(HMAC-SHA1("north", expiry))."""
    import base64
    import hashlib
    import hmac
    srv = server()
    m = login(srv)
    t0 = int(time.time())
    typ, data = m._simple_command("GETMETADATA", '""', "/shared/vendor/deltachat/turn")
    t1 = int(time.time())
    assert typ == "OK", data
    md = m.untagged_responses.pop("METADATA")[0].decode()
    got = re.search(r'/shared/vendor/deltachat/turn "([^"]*)"', md)
    assert got, md
    domain, port, user, password = got.group(1).split(":")
    assert (domain, port) == (DOMAIN, "3478")
    # time(2) reads the coarse clock: up to a tick behind time.time() at a
    # second boundary, hence the 1 s of slack below t0
    assert t0 - 1 + 5 * 86400 <= int(user) <= t1 + 5 * 86400
    want = base64.b64encode(hmac.new(b"north", user.encode(), hashlib.sha1).digest()).decode()
    assert password == want
    m.logout()
