"""test_submission.py: SMTP submission end to end (issue 4), with smtplib and
raw sockets: AUTH (create-on-login, wrong password, TLS required), who may
send what (MAIL FROM = login, From = MAIL FROM, unknown local recipients),
the encryption rules (523 for every unencrypted kind, acceptance for every
allowed kind), the rate limit, size limit, smuggling forms, VRFY, the
privacy cleanup as stored, several local recipients, remote recipients in
the durable queue, quota and the recipient limit. Every check reads the
exact reply and, where something is stored, the stored file."""
import email
import smtplib

import pytest

import cmtest
from submit_helpers import (PASSWORD, account_dir, addr, fixture, header_block, login,
                            plain_msg, queued, raw_login, smtps, stored)

ALICE, BOB, CAROL = addr("alice0001"), addr("bob000002"), addr("carol0003")


def make_accounts(srv, *users):
    for u in users:
        s = login(srv, u)
        s.quit()


# ---------------------------------------------------------------- AUTH

def test_auth_creates_account_and_checks_password(server):
    srv = server()
    assert not account_dir(srv, ALICE).exists()
    s = smtps(srv)
    code, _ = s.ehlo("client.test")
    assert code == 250
    assert "AUTH PLAIN LOGIN" in s.ehlo_resp.decode()
    assert s.login(ALICE, PASSWORD) == (235, b"2.7.0 Authentication successful")
    s.quit()
    assert (account_dir(srv, ALICE) / "password").stat().st_size > 0
    # the same password again (AUTH LOGIN this time), then a wrong one
    s = smtps(srv)
    s.ehlo("client.test")
    s.user, s.password = ALICE, PASSWORD
    assert s.auth("LOGIN", s.auth_login, initial_response_ok=False)[0] == 235
    s.quit()
    s = smtps(srv)
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        s.login(ALICE, "wrong-password-123")
    assert e.value.smtp_code == 535
    assert e.value.smtp_error == b"5.7.8 Error: authentication failed: authentication failure"
    s.close()


def test_auth_refused_names(server):
    srv = server()
    # one connection each: smtplib tries PLAIN and then LOGIN, and the
    # server closes a connection after 3 failures (issue 16)
    for user in ("short@" + cmtest.DOMAIN, "alice0001@other.example"):
        s = smtps(srv)
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login(user, PASSWORD)
        assert e.value.smtp_code == 535
        s.close()
    assert not (srv.tmpdir / "mail" / ("short@" + cmtest.DOMAIN)).exists()


def test_587_needs_starttls_before_auth_and_mail(server):
    srv = server()
    c = cmtest.plain_connect(srv.port("submission"))
    cmtest.smtp_greeting_ok(c.readline())
    ehlo = c.smtp_cmd("EHLO client.test")
    assert "250-STARTTLS" in ehlo and not any("AUTH" in x for x in ehlo)
    assert c.smtp_cmd("AUTH PLAIN AGFsaWNlAHB3") == [
        "538 5.7.11 Encryption required for requested authentication mechanism"]
    assert c.smtp_cmd(f"MAIL FROM:<{ALICE}>") == ["530 5.7.0 Must issue a STARTTLS command first"]
    c.close()
    c, ehlo = cmtest.starttls_smtp(srv.port("submission"))
    assert "250-AUTH PLAIN LOGIN" in ehlo and "250 CHUNKING" in ehlo
    assert c.smtp_cmd(f"MAIL FROM:<{ALICE}>") == ["530 5.7.0 Authentication required"]
    c.close()


# ---------------------------------------------------------------- who may send what

def test_mail_from_must_be_login(server):
    srv = server()
    c = raw_login(srv, ALICE)
    assert c.smtp_cmd(f"MAIL FROM:<{BOB}>") == [
        f"553 5.7.1 <{BOB}>: Sender address rejected: not owned by user {ALICE}"]
    assert c.smtp_cmd("MAIL FROM:<>") == [
        f"553 5.7.1 <>: Sender address rejected: not owned by user {ALICE}"]
    assert c.smtp_cmd(f"MAIL FROM:<{ALICE.upper()}>") == ["250 2.1.0 Ok"]
    c.close()


def test_from_header_must_be_mail_from(server):
    srv = server()
    make_accounts(srv, BOB)
    s = login(srv, ALICE)
    msg = fixture("encrypted.eml", BOB, BOB)  # From: bob, envelope alice
    with pytest.raises(smtplib.SMTPDataError) as e:
        s.sendmail(ALICE, [BOB], msg)
    assert (e.value.smtp_code, e.value.smtp_error) == (500, f"Invalid FROM {BOB} for {ALICE}".encode())
    with pytest.raises(smtplib.SMTPDataError) as e:
        s.sendmail(ALICE, [BOB], fixture("no-from.eml", ALICE, BOB))
    assert e.value.smtp_code == 500
    assert e.value.smtp_error.startswith(b"Invalid FROM header:")
    s.quit()
    assert stored(srv, BOB) == []


def test_unknown_local_recipient(server):
    srv = server()
    c = raw_login(srv, ALICE)
    assert c.smtp_cmd(f"MAIL FROM:<{ALICE}>") == ["250 2.1.0 Ok"]
    nobody = addr("nobody123")
    assert c.smtp_cmd(f"RCPT TO:<{nobody}>") == [
        f"550 5.1.1 <{nobody}>: Recipient address rejected: User unknown in virtual mailbox table"]
    shouted = "NOBODY123@" + cmtest.DOMAIN.upper()
    assert c.smtp_cmd(f"RCPT TO:<{shouted}>") == [
        f"550 5.1.1 <{shouted}>: Recipient address rejected: User unknown in virtual mailbox table"]
    assert c.smtp_cmd(f"RCPT TO:<{ALICE}>") == ["250 2.1.5 Ok"]
    assert c.smtp_cmd("RCPT TO:<someone@remote.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x@y") \
        == ["250 2.1.5 Ok"]
    c.close()


# ---------------------------------------------------------------- encryption rules

REJECTED = ["plain.eml", "mdn.eml", "fake-encrypted.eml", "literal.eml", "securejoin-vc-fake.eml",
            "securejoin-vc-two-parts.eml", "armor-version-header.eml", "armor-comment-header.eml",
            "three-parts.eml", "nested-multipart.eml", "esk-after-seipd.eml", "bad-base64.eml",
            "truncated-armor.eml", "version-2.eml", "empty-payload.eml", "one-part.eml"]
ACCEPTED = ["encrypted.eml", "encrypted-legacy.eml", "encrypted-skesk.eml", "encrypted-partial.eml",
            "encrypted-b64-cte.eml", "securejoin-vc.eml", "securejoin-vg.eml",
            "securejoin-vc-qp.eml"]


def test_unencrypted_kinds_get_523(server):
    srv = server(extra={"max_user_send_burst_size": 100})
    make_accounts(srv, BOB)
    s = login(srv, ALICE)
    for name in REJECTED:
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail(ALICE, [BOB], fixture(name, ALICE, BOB))
        assert (e.value.smtp_code, e.value.smtp_error) == (
            523, b"Encryption Needed: Invalid Unencrypted Mail"), name
    # an Autocrypt Setup Message is allowed only to oneself
    with pytest.raises(smtplib.SMTPDataError) as e:
        s.sendmail(ALICE, [BOB], fixture("asm.eml", ALICE, BOB))
    assert e.value.smtp_code == 523
    s.quit()
    assert stored(srv, BOB) == []
    assert srv.log_text().count("Rejected unencrypted mail from: " + ALICE) == len(REJECTED) + 1


def test_allowed_kinds_are_delivered(server):
    srv = server(extra={"max_user_send_burst_size": 100})
    make_accounts(srv, BOB)
    s = login(srv, ALICE)
    for name in ACCEPTED:
        assert s.sendmail(ALICE, [BOB], fixture(name, ALICE, BOB)) == {}, name
    assert s.sendmail(ALICE, [ALICE], fixture("asm.eml", ALICE, ALICE)) == {}
    s.quit()
    assert len(stored(srv, BOB)) == len(ACCEPTED)
    assert len(stored(srv, ALICE)) == 1
    assert srv.log_text().count("Outgoing: Filtering encrypted mail.") == len(ACCEPTED)


# ---------------------------------------------------------------- limits

def test_rate_limit_450_after_burst(server):
    srv = server(extra={"max_user_send_burst_size": 3, "max_user_send_per_minute": 1})
    c = raw_login(srv, ALICE)
    for _ in range(3):
        assert c.smtp_cmd(f"MAIL FROM:<{ALICE}>") == ["250 2.1.0 Ok"]
        assert c.smtp_cmd("RSET") == ["250 2.0.0 Ok"]
    reply = c.smtp_cmd(f"MAIL FROM:<{ALICE}>")
    assert len(reply) == 1 and reply[0].startswith(
        f"450 4.7.1: Too much mail from {ALICE}, rate-limited until "), reply
    c.close()
    # another sender is not limited
    c = raw_login(srv, BOB)
    assert c.smtp_cmd(f"MAIL FROM:<{BOB}>") == ["250 2.1.0 Ok"]
    c.close()


def test_message_size_552(server):
    srv = server(extra={"max_message_size": 20000})
    make_accounts(srv, BOB)
    c = raw_login(srv, ALICE)
    assert c.smtp_cmd(f"MAIL FROM:<{ALICE}> SIZE=20001") == [
        "552 5.3.4 Message size exceeds fixed limit"]
    assert c.smtp_cmd(f"MAIL FROM:<{ALICE}> SIZE=1000") == ["250 2.1.0 Ok"]
    assert c.smtp_cmd(f"RCPT TO:<{BOB}>") == ["250 2.1.5 Ok"]
    assert c.smtp_cmd("DATA") == ["354 End data with <CR><LF>.<CR><LF>"]
    c.send(fixture("encrypted.eml", ALICE, BOB) + (b"x" * 998 + b"\r\n") * 30 + b".\r\n")
    assert c.smtp_reply() == ["552 5.3.4 Message size exceeds fixed limit"]
    assert c.smtp_cmd("NOOP") == ["250 2.0.0 Ok"]  # the session is still in sync
    c.close()
    assert stored(srv, BOB) == []


SMUGGLING = [
    (b"\n.\n", "LF"), (b"\n.\r\n", "LF"), (b"\r.\r\n", "CR"), (b"\r\n.\n", "LF"),
    (b"\r\n.\rX\r\n", "CR"), (b"text\nmore\r\n", "LF"),
]


@pytest.mark.parametrize("form,what", SMUGGLING)
def test_smuggling_forms_are_refused(server, form, what):
    srv = server()
    make_accounts(srv, BOB)
    c = raw_login(srv, ALICE)
    for cmd, want in ((f"MAIL FROM:<{ALICE}>", "250 2.1.0 Ok"), (f"RCPT TO:<{BOB}>", "250 2.1.5 Ok"),
                      ("DATA", "354 End data with <CR><LF>.<CR><LF>")):
        assert c.smtp_cmd(cmd) == [want]
    msg = fixture("encrypted.eml", ALICE, BOB)
    c.send(msg + form + b"MAIL FROM:<" + ALICE.encode() + b">\r\nRCPT TO:<" + BOB.encode() +
           b">\r\nDATA\r\n" + msg + b".\r\n")
    assert c.smtp_reply() == [f"550 5.5.2 {cmtest.DOMAIN} Error: bare <{what}> received"]
    c.read_until_closed()
    c.close()
    assert stored(srv, BOB) == []


def test_vrfy_252_for_anything(server):
    srv = server()
    make_accounts(srv, BOB)
    c = raw_login(srv, ALICE)
    for target in (BOB, addr("nobody123"), "bob000002", "x@remote.example"):
        assert c.smtp_cmd(f"VRFY {target}") == ["252 2.0.0 Send some mail, I'll try my best"]
    c.close()


def test_recipient_limit_1000(server):
    srv = server()
    c = raw_login(srv, ALICE)
    assert c.smtp_cmd(f"MAIL FROM:<{ALICE}>") == ["250 2.1.0 Ok"]
    c.send("".join(f"RCPT TO:<r{i}@remote.example>\r\n" for i in range(1001)))
    replies = [c.smtp_reply() for _ in range(1001)]
    assert all(r == ["250 2.1.5 Ok"] for r in replies[:1000])
    assert replies[1000] == ["452 4.5.3 Error: too many recipients"]
    c.close()


def test_quota_full_recipient_reported_others_stored(server):
    """A full mailbox among several recipients: the others get the message,
    the submission answers 250, and a delivery status notification naming
    the full one lands in the sender's INBOX. Alone, the full mailbox is a
    direct 552 and nothing is stored."""
    srv = server(extra={"max_mailbox_size": "1M"})
    make_accounts(srv, BOB, CAROL)
    big = fixture("encrypted.eml", ALICE, BOB).replace(
        b"-----END PGP MESSAGE-----", b"-----END PGP MESSAGE-----\r\n" + b"\r\n" * 175000)
    s = login(srv, ALICE)
    assert s.sendmail(ALICE, [BOB], big) == {}
    assert s.sendmail(ALICE, [BOB], big) == {}  # 2 x 350 KB in a 1 MB quota
    with pytest.raises(smtplib.SMTPDataError) as e:
        s.sendmail(ALICE, [BOB], big)
    assert (e.value.smtp_code, e.value.smtp_error) == (
        552, f"5.2.2 <{BOB}>: Quota exceeded (mailbox for user is full)".encode())
    assert stored(srv, ALICE) == []  # a direct refusal, no report
    assert s.sendmail(ALICE, [CAROL, BOB, "x@remote.example"], big) == {}
    s.quit()
    assert len(stored(srv, BOB)) == 2
    assert len(stored(srv, CAROL)) == 1 and len(queued(srv)) == 1
    [report] = stored(srv, ALICE)
    m = email.message_from_bytes(report.read_bytes())
    assert m.get_content_type() == "multipart/report"
    assert m.get_param("report-type") == "delivery-status"
    assert m["X-Failed-Recipients"].strip() == BOB
    assert m["Auto-Submitted"] == "auto-replied" and m["To"].strip("<>") == ALICE
    status = m.get_payload()[1].as_bytes().decode()
    assert f"Final-Recipient: rfc822; {BOB}" in status and "Status: 5.2.2" in status
    assert CAROL not in status and "x@remote.example" not in status
    assert "Action: failed" in status


# ---------------------------------------------------------------- storing

def test_privacy_cleanup_in_stored_and_queued_copies(server):
    srv = server()
    make_accounts(srv, BOB)
    extra = (b"Received: from client.test ([127.0.0.1]) by x; Tue, 1 Jun 2027 10:00:00 +0000\r\n"
             b"X-Originating-IP: [127.0.0.1]\r\nX-Mailer: Delta Chat\r\nUser-Agent: Foo/1.0\r\n"
             b"DKIM-Signature: v=1; a=rsa-sha256; d=x\r\n"
             b"Authentication-Results: x; dkim=pass\r\nSubject: second subject\r\n")
    msg = fixture("encrypted.eml", ALICE, BOB).replace(b"Subject: [...]\r\n",
                                                       b"Subject: secret words\r\n" + extra)
    s = login(srv, ALICE)
    assert s.sendmail(ALICE, [BOB, "dave@remote.example"], msg) == {}
    s.quit()
    [f] = stored(srv, BOB)
    data = f.read_bytes()
    hdr = header_block(data).lower()
    for name in (b"received:", b"x-originating-ip:", b"x-mailer:", b"user-agent:",
                 b"dkim-signature:", b"authentication-results:"):
        assert name not in hdr, name
    assert hdr.count(b"subject:") == 1 and b"subject: [...]\r\n" in hdr
    assert b"secret words" not in data and b"127.0.0.1" not in data
    assert data.split(b"\r\n\r\n", 1)[1] == msg.split(b"\r\n\r\n", 1)[1]  # body untouched
    [q] = queued(srv)
    qdata = q.read_bytes()
    env, body = qdata.split(b"\r\n\r\n", 1)
    assert b"Mail-From: " + ALICE.encode() in env and b"Rcpt-To: dave@remote.example" in env
    assert BOB.encode() not in env
    qhdr = header_block(body).lower()
    for name in (b"received:", b"x-originating-ip:", b"x-mailer:", b"user-agent:"):
        assert name not in qhdr, name
    assert b"subject: [...]\r\n" in qhdr and b"secret words" not in body


def test_several_local_recipients_and_remote_queue(server):
    srv = server()
    make_accounts(srv, BOB, CAROL)
    s = login(srv, ALICE)
    msg = fixture("encrypted.eml", ALICE, BOB)
    rcpts = [BOB, CAROL, ALICE, BOB.upper(), "d1@remote.example", "d2@other.example",
             "D1@remote.example"]
    code, text = s.mail(ALICE)[0], None
    assert code == 250
    for r in rcpts:
        assert s.rcpt(r) == (250, b"2.1.5 Ok")
    code, text = s.data(msg)
    assert code == 250 and text.startswith(b"2.0.0 Ok: queued as "), text
    s.quit()
    copies = [stored(srv, a) for a in (BOB, CAROL, ALICE)]
    assert [len(c) for c in copies] == [1, 1, 1]  # BOB twice in the envelope: one copy
    assert len({c[0].read_bytes() for c in copies}) == 1
    [q] = queued(srv)
    assert text.decode().endswith(q.name)
    env = q.read_bytes().split(b"\r\n\r\n", 1)[0]
    assert env.count(b"Rcpt-To: ") == 2 and b"Rcpt-To: d2@other.example" in env


def test_bdat_and_pipelining(server):
    srv = server()
    make_accounts(srv, BOB)
    c = raw_login(srv, ALICE)
    msg = fixture("encrypted.eml", ALICE, BOB)
    half = len(msg) // 2
    c.send(f"MAIL FROM:<{ALICE}> BODY=8BITMIME\r\nRCPT TO:<{BOB}>\r\n".encode() +
           f"BDAT {half}\r\n".encode() + msg[:half] +
           f"BDAT {len(msg) - half} LAST\r\n".encode() + msg[half:])
    assert c.smtp_reply() == ["250 2.1.0 Ok"]
    assert c.smtp_reply() == ["250 2.1.5 Ok"]
    assert c.smtp_reply() == [f"250 2.0.0 Ok: {half} bytes"]
    last = c.smtp_reply()
    assert last[0].startswith("250 2.0.0 Ok: queued as "), last
    c.close()
    [f] = stored(srv, BOB)
    assert f.read_bytes().split(b"\r\n\r\n", 1)[1] == msg.split(b"\r\n\r\n", 1)[1]


def test_no_client_address_in_replies(server):
    srv = server()
    make_accounts(srv, BOB)
    c = raw_login(srv, ALICE)
    seen = []
    for cmd in ("EHLO [127.0.0.1]", "HELO client", "NOOP", f"MAIL FROM:<{ALICE}>", "RSET",
                "VRFY x", "HELP", "BOGUS"):
        seen += c.smtp_cmd(cmd)
    seen += c.smtp_cmd("QUIT")
    c.close()
    assert seen and not any("127.0.0.1" in line for line in seen[1:]), seen
    assert "127.0.0.1" not in srv.log_text().replace("listening on 127.0.0.1", "")


def test_store_compress_writes_gzip_that_reads_back(server):
    """store_compress = true writes Dovecot-style gzip files (zlib_save = gz);
    S= still names the uncompressed size."""
    import gzip
    import re
    srv = server(extra={"store_compress": "true"})
    make_accounts(srv, BOB)
    msg = fixture("encrypted.eml", ALICE, BOB)
    s = login(srv, ALICE)
    assert s.sendmail(ALICE, [BOB], msg) == {}
    s.quit()
    [f] = stored(srv, BOB)
    raw = f.read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    plain = gzip.decompress(raw)
    assert plain.split(b"\r\n\r\n", 1)[1] == msg.split(b"\r\n\r\n", 1)[1]
    assert int(re.search(r",S=(\d+)", f.name).group(1)) == len(plain)
