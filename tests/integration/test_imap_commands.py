"""IMAP commands beyond the Delta Chat path: folders (CREATE, RENAME,
DELETE, SUBSCRIBE, LSUB, LIST-EXTENDED with SPECIAL-USE and LIST-STATUS),
STATUS, EXAMINE/UNSELECT, ESEARCH, NAMESPACE, ENABLE, CHECK, GETQUOTA,
APPEND refusals ([TRYCREATE], [OVERQUOTA]), BAD with a reason, ALPN imap
on the https port."""
import imaplib
import re

import pytest

import cmtest
from cmtest import DOMAIN, HOST, client_context, tls_connect
from test_imap_dc import raw

PASSWORD = "commands-pass-1"


def login(srv, user):
    m = imaplib.IMAP4_SSL(HOST, srv.port("imaps"), ssl_context=client_context(),
                          timeout=cmtest.TIMEOUT)
    assert m.login(user, PASSWORD)[0] == "OK"
    return m


@pytest.fixture
def srv(server):
    return server(extra={"max_mailbox_size": "1M"})


def test_folders_and_list_extended(srv):
    m = login(srv, f"folders12@{DOMAIN}")
    for box in ("Sent", "Trash", "Work", "Work.Sub"):
        assert m.create(box)[0] == "OK", box
    assert m.create("Work")[0] == "NO"
    lines = raw(m, 'LIST "" "*"')
    assert '* LIST (\\HasNoChildren) "." "INBOX"' in lines, lines
    assert '* LIST (\\HasNoChildren \\Sent) "." "Sent"' in lines, lines
    assert '* LIST (\\HasChildren) "." "Work"' in lines, lines
    lines = raw(m, 'LIST "" "%"')
    assert not any('"Work.Sub"' in l for l in lines), lines
    lines = raw(m, 'LIST (SPECIAL-USE) "" "*"')
    assert [l for l in lines if l.startswith("* LIST")] == [
        '* LIST (\\HasNoChildren \\Sent) "." "Sent"', '* LIST (\\HasNoChildren \\Trash) "." "Trash"'], lines
    m.append("Work", None, None, b"Subject: w\r\n\r\nw\r\n")
    lines = raw(m, 'LIST "" "Work" RETURN (STATUS (MESSAGES UNSEEN))')
    assert '* STATUS "Work" (MESSAGES 1 UNSEEN 1)' in lines, lines
    assert m.subscribe("Work")[0] == "OK"
    lines = raw(m, 'LSUB "" "*"')
    assert '* LSUB (\\HasChildren) "." "Work"' in lines, lines
    lines = raw(m, 'LIST (SUBSCRIBED) "" "*"')
    assert [l for l in lines if l.startswith("* LIST")] == ['* LIST (\\HasChildren \\Subscribed) "." "Work"'], lines
    assert m.rename("Work", "Job")[0] == "OK"
    lines = raw(m, 'LIST "" "*"')
    assert '* LIST (\\HasNoChildren) "." "Job.Sub"' in lines and not any('"Work' in l for l in lines)
    assert m.delete("Job.Sub")[0] == "OK"
    assert m.delete("Nope")[0] == "NO"
    assert m.delete("INBOX")[0] == "NO"
    typ, data = m.status("Job", "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)")
    assert typ == "OK" and re.match(rb'"Job" \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ HIGHESTMODSEQ \d+\)', data[0]), data
    assert raw(m, 'LIST "" ""')[0] == '* LIST (\\Noselect) "." ""'
    m.logout()


def test_examine_unselect_esearch_misc(srv):
    m = login(srv, f"misccmds1@{DOMAIN}")
    for i in range(3):
        m.append("INBOX", "(\\Seen)" if i == 1 else None, None, f"Subject: m{i}\r\n\r\nx\r\n".encode())
    lines = raw(m, "EXAMINE INBOX")
    assert lines[-1].endswith("OK [READ-ONLY] Examine completed."), lines
    assert raw(m, "STORE 1 +FLAGS (\\Flagged)")[-1].split(" ", 1)[1].startswith("NO")
    assert raw(m, "UNSELECT")[-1].endswith("OK Unselect completed.")
    assert raw(m, "FETCH 1 FLAGS")[-1].endswith("BAD No mailbox selected.")
    m.select("INBOX")
    lines = raw(m, "SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN")
    assert re.match(r'\* ESEARCH \(TAG "\S+"\) MIN 1 MAX 3 COUNT 2 ALL 1,3', lines[0]), lines
    lines = raw(m, "UID SEARCH RETURN () ALL")
    assert re.match(r'\* ESEARCH \(TAG "\S+"\) UID ALL 1:3', lines[0]), lines
    lines = raw(m, "SEARCH OR SEEN SUBJECT m2 NOT DELETED")
    assert lines[0] == "* SEARCH 2 3", lines
    assert raw(m, "NAMESPACE")[0] == '* NAMESPACE (("" ".")) NIL NIL'
    assert raw(m, "ENABLE CONDSTORE")[0] == "* ENABLED CONDSTORE"
    lines = raw(m, "FETCH 1 (FLAGS)")
    assert re.match(r"\* 1 FETCH \(FLAGS \(\\Recent\) MODSEQ|\* 1 FETCH \(FLAGS \(\\Recent\)\)", lines[0]), lines
    assert raw(m, "CHECK")[-1].endswith("OK Check completed.")
    lines = raw(m, 'GETQUOTA "User quota"')
    assert re.match(r'\* QUOTA "User quota" \(STORAGE \d+ 1024\)', lines[0]), lines
    lines = raw(m, "FETCH 1 (BOGUS)")
    assert lines[-1].endswith("BAD Error in IMAP command FETCH: Invalid fetch items."), lines
    lines = raw(m, "FROB")
    assert lines[-1].endswith("BAD Error in IMAP command FROB: Unknown command."), lines
    m.logout()


def test_append_refusals(srv):
    m = login(srv, f"appendno1@{DOMAIN}")
    typ, data = m.append("Missing", None, None, b"Subject: x\r\n\r\nx\r\n")
    assert typ == "NO" and data[0].startswith(b"[TRYCREATE]"), data
    big = b"Subject: big\r\n\r\n" + b"x" * 700_000 + b"\r\n"
    assert m.append("INBOX", None, None, big)[0] == "OK"
    typ, data = m.append("INBOX", None, None, big)
    assert typ == "NO" and data[0] == b"[OVERQUOTA] Quota exceeded (mailbox for user is full)", data
    m.logout()


def test_alpn_imap_on_https_port(srv):
    with tls_connect(srv.port("https"), alpn=["imap"]) as c:
        caps = cmtest.imap_greeting_caps(c.readline())
        assert "AUTH=PLAIN" in caps and "XCHATMAIL" in caps
        untagged, tagged = c.imap_cmd("a", f"LOGIN alpnuser1@{DOMAIN} {PASSWORD}")
        assert tagged.startswith("a OK [CAPABILITY "), tagged
