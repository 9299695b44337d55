"""test_quota_drift.py: issue 12. The quota that delivery reserves against
follows every change to the mail tree: mail delivered over SMTP submission,
fetched and expunged over IMAP the way Delta Chat does, no longer counts, so
the next deliveries get 250 and not "552 5.2.2 Quota exceeded". APPEND is
counted in the same quota ([OVERQUOTA] beyond it), written like a delivery
(gzip under store_compress) and durable: a SIGKILL right after the tagged OK
loses nothing."""
import gzip
import imaplib
import re

import cmtest
from cmtest import HOST, client_context
from submit_helpers import PASSWORD, account_dir, addr, fixture, login, stored

ALICE, BOB = addr("alice0001"), addr("bob000002")
APPEND_MSG = (b"From: <bob000002@relay1.test>\r\nTo: <bob000002@relay1.test>\r\n"
              b"Subject: draft\r\nContent-Type: text/plain\r\n\r\n" + b"x" * 1000 + b"\r\n")

LIMITS = {"max_mailbox_size": "1M", "max_user_send_per_minute": "1000",
          "max_user_send_burst_size": "1000"}


def padded(size):
    """An encrypted message (passes the filter) of about size bytes."""
    msg = fixture("encrypted.eml", ALICE, BOB)
    pad = max(0, size - len(msg)) // 2
    return msg.replace(b"-----END PGP MESSAGE-----",
                       b"-----END PGP MESSAGE-----\r\n" + b"\r\n" * pad)


def imap_login(srv, user=BOB):
    m = imaplib.IMAP4_SSL(HOST, srv.port("imaps"), ssl_context=client_context(),
                          timeout=cmtest.TIMEOUT)
    typ, data = m.login(user, PASSWORD)
    assert typ == "OK", data
    return m


def fetch_and_delete_all(m):
    """Delta Chat: fetch each new message, then \\Deleted + EXPUNGE."""
    typ, data = m.select("INBOX")
    assert typ == "OK", data
    n = int(data[0])
    if n == 0:
        return 0
    typ, data = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
    assert typ == "OK", data
    bodies = [d[1] for d in data if isinstance(d, tuple)]
    assert len(bodies) == n and all(b"BEGIN PGP MESSAGE" in b for b in bodies)
    typ, data = m.uid("STORE", "1:*", "+FLAGS.SILENT", "(\\Deleted)")
    assert typ == "OK", data
    typ, data = m.expunge()
    assert typ == "OK", data
    return n


def test_expunged_mail_no_longer_counts(server):
    srv = server(extra=LIMITS)
    login(srv, BOB).quit()
    m = imap_login(srv)
    msg = padded(110_000)
    s = login(srv, ALICE)
    for rnd in range(3):  # 3 x 8 x 110 KB through a 1 MiB quota
        for i in range(8):
            assert s.sendmail(ALICE, [BOB], msg) == {}, (rnd, i)
        assert len(stored(srv, BOB)) == 8
        assert fetch_and_delete_all(m) == 8
        assert stored(srv, BOB) == []
    s.quit()
    typ, data = m.getquotaroot("INBOX")
    assert typ == "OK" and re.match(rb'"User quota" \(STORAGE 0 1024\)', data[1][0]), data
    m.logout()
    assert "Quota exceeded" not in srv.log_text()


def test_moved_and_copied_mail_counts_once_each(server):
    srv = server(extra=LIMITS)
    login(srv, BOB).quit()
    m = imap_login(srv)
    assert m.create("Archive")[0] == "OK"
    msg = padded(300_000)
    s = login(srv, ALICE)
    for _ in range(3):
        assert s.sendmail(ALICE, [BOB], msg) == {}
    m.select("INBOX")
    # a 4th 300 KB copy would take the account over 1 MiB: refused (issue 16)
    typ, data = m.uid("COPY", "1", "Archive")
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]"), data
    assert m.uid("COPY", "1", "INBOX")[0] == "NO"
    assert m.uid("MOVE", "2:3", "Archive")[0] == "OK"
    m.select("Archive")
    assert m.uid("STORE", "1:*", "+FLAGS.SILENT", "(\\Deleted)")[0] == "OK"
    assert m.expunge()[0] == "OK"
    m.select("INBOX")
    assert m.uid("STORE", "1:*", "+FLAGS.SILENT", "(\\Deleted)")[0] == "OK"
    assert m.expunge()[0] == "OK"
    for _ in range(3):  # all gone: room for three again
        assert s.sendmail(ALICE, [BOB], msg) == {}
    s.quit()
    m.logout()


def test_append_counts_and_is_refused_over_quota(server):
    srv = server(extra=dict(LIMITS, store_compress="true"))
    login(srv, BOB).quit()
    m = imap_login(srv)
    big = APPEND_MSG.replace(b"x" * 1000, b"x" * 600_000)
    typ, data = m.append("INBOX", "(\\Seen)", None, big)
    assert typ == "OK", data
    [f] = stored(srv, BOB)
    raw = f.read_bytes()
    assert raw[:2] == b"\x1f\x8b" and gzip.decompress(raw) == big  # written like delivery
    assert f.parent.name == "cur" and f.name.endswith(":2,S")
    typ, data = m.append("INBOX", None, None, big)
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]"), data
    # delivery sees APPEND's bytes: 600 KB + 600 KB does not fit either
    s = login(srv, ALICE)
    try:
        s.sendmail(ALICE, [BOB], padded(600_000))
        raise AssertionError("delivery over quota accepted")
    except Exception as e:  # smtplib.SMTPDataError
        assert getattr(e, "smtp_code", None) == 552, e
    s.quit()
    m.logout()


def test_append_survives_sigkill_after_tagged_ok(server):
    srv = server()
    login(srv, BOB).quit()
    m = imap_login(srv)
    bodies = [APPEND_MSG.replace(b"draft", f"draft {i}".encode()) for i in range(5)]
    for b in bodies:
        typ, data = m.append("INBOX", None, None, b)
        assert typ == "OK", data
    srv.kill()  # SIGKILL straight after the last tagged OK
    files = stored(srv, BOB)
    assert sorted(f.read_bytes() for f in files) == sorted(bodies)
    assert not any((account_dir(srv, BOB) / "tmp").iterdir())
    srv.start()
    m = imap_login(srv)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"5"], data
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[])")
    assert sorted(d[1] for d in data if isinstance(d, tuple)) == sorted(bodies)
    m.logout()
