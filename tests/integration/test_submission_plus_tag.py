"""user+tag@<mail_domain> is delivered to user@<mail_domain>, as Postfix's
`recipient_delimiter = +` does on a chatmail relay: accepted at RCPT over
submission, stored once in user's INBOX with the original To: untouched, and
fetched over IMAP by user. An unknown user with a tag is still 550 5.1.1."""
import re

import cmtest
from submit_helpers import PASSWORD, addr, fixture, login, stored

ALICE, BOB = addr("plusalice"), addr("plusbob01")
BOB_TAGGED = addr("plusbob01+news")


def imap_login(srv, user):
    c = cmtest.tls_connect(srv.port("imaps"))
    c.readline()
    assert c.imap_cmd("l", f"LOGIN {user} {PASSWORD}")[1].startswith("l OK")
    return c


def test_plus_tag_delivered_to_user_with_original_to(server):
    srv = server()
    imap_login(srv, BOB).close()  # creates bob's account
    s = login(srv, ALICE)
    msg = fixture("encrypted.eml", ALICE, BOB_TAGGED)
    assert f"To: <{BOB_TAGGED}>".encode() in msg
    assert s.mail(ALICE)[0] == 250
    assert s.rcpt(BOB_TAGGED) == (250, b"2.1.5 Ok")
    assert s.rcpt(BOB) == (250, b"2.1.5 Ok")  # same mailbox twice: one copy
    code, text = s.data(msg)
    assert code == 250 and text.startswith(b"2.0.0 Ok: queued as "), text
    # a tag does not make an unknown user known
    assert s.mail(ALICE)[0] == 250
    code, text = s.rcpt(addr("nosuchuser+news"))
    assert code == 550 and text.startswith(b"5.1.1 "), text
    s.quit()

    [f] = stored(srv, BOB)
    assert not (srv.tmpdir / "mail" / BOB_TAGGED).exists()
    assert f"To: <{BOB_TAGGED}>".encode() in f.read_bytes()

    c = imap_login(srv, BOB)
    lines, done = c.imap_cmd("s", "SELECT INBOX")
    assert done.startswith("s OK") and "* 1 EXISTS" in lines, (lines, done)
    c.send("f UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (TO)])\r\n")
    got = []
    while True:
        line = c.readline()
        got.append(line)
        if line.startswith("f "):
            break
    assert got[-1].startswith("f OK"), got
    assert any(re.fullmatch(rf"To: <{re.escape(BOB_TAGGED)}>", ln) for ln in got), got
    c.close()
