"""test_mx25.py: mail from other relays on port 25 (issue 13, federation
facts §1): the SMTP machine in MX mode (STARTTLS before MAIL, no AUTH, our
domain only, unknown users at RCPT, user+tag, SIZE, PIPELINING, CHUNKING)
and the acceptance pipeline with origin MX: the incoming encryption rules
(523, Secure-Join, mailer-daemon reports), then DKIM (keys served by
dnsserver.DnsServer on loopback, messages signed by dkimpy with RSA and
Ed25519): unsigned, forged, misaligned -> 554, a key lookup timing out or
SERVFAIL -> 451, address-literal senders exempt; a signed encrypted
message is stored without DKIM-Signature / Received /
Authentication-Results and an IDLE client sees it."""
import signal
import time
from pathlib import Path

import pytest

import cmtest
from cmtest import DOMAIN
from mx_helpers import (SENDER, SENDER_DOMAIN, MxKeys, encrypted, mailer_daemon, make_account,
                        mx_connect, mx_dns, mx_send, mx_server, plain, securejoin, sign, stuff)
from submit_helpers import PASSWORD, addr, header_block, stored

BOB = addr("bob000001")
OK = "250 2.0.0 Ok: queued as "


@pytest.fixture(scope="module")
def keys():
    return MxKeys()


@pytest.fixture
def dns(keys):
    d = mx_dns(keys)
    yield d
    d.stop()


@pytest.fixture
def srv(server, dns):
    s = mx_server(server, dns)
    make_account(s, BOB)
    return s


def deliver(srv, msg, rcpts=(BOB,), mail_from=SENDER, timeout=None):
    with mx_connect(srv) as c:
        mail, rr, final = mx_send(c, mail_from, list(rcpts), msg, timeout=timeout)
        assert mail == ["250 2.1.0 Ok"], mail
        c.smtp_cmd("QUIT")
        return rr, final


def test_mail_before_starttls_and_no_auth(srv):
    with cmtest.plain_connect(srv.port("smtp")) as c:
        cmtest.smtp_greeting_ok(c.readline())
        ehlo = c.smtp_cmd("EHLO peer.test")
        assert not any("AUTH" in l for l in ehlo), ehlo
        assert c.smtp_cmd(f"MAIL FROM:<{SENDER}>") == \
            ["530 5.7.0 Must issue a STARTTLS command first"]
        assert c.smtp_cmd(f"RCPT TO:<{BOB}>") == ["530 5.7.0 Must issue a STARTTLS command first"]
    with mx_connect(srv) as c:
        ehlo = c.smtp_cmd("EHLO peer.test")
        words = {l[4:].split()[0].upper() for l in ehlo[1:]}
        assert {"PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE", "ENHANCEDSTATUSCODES",
                "CHUNKING"} <= words, ehlo
        assert "AUTH" not in words and "STARTTLS" not in words, ehlo
        assert c.smtp_cmd("AUTH PLAIN AGJvYgBwYXNz") == \
            ["503 5.5.1 Error: authentication not enabled"]


def test_relay_unknown_user_and_plus_tag(srv, keys):
    with mx_connect(srv) as c:
        assert c.smtp_cmd(f"MAIL FROM:<{SENDER}>") == ["250 2.1.0 Ok"]
        assert c.smtp_cmd("RCPT TO:<carol@other.example>") == \
            ["554 5.7.1 <carol@other.example>: Relay access denied"]
        nobody = addr("nobody001")
        assert c.smtp_cmd(f"RCPT TO:<{nobody}>") == [
            f"550 5.1.1 <{nobody}>: Recipient address rejected: User unknown in virtual "
            "mailbox table"]
        tagged = BOB.replace("@", "+news@")
        assert c.smtp_cmd(f"RCPT TO:<{tagged}>") == ["250 2.1.5 Ok"]
        assert c.smtp_cmd("DATA")[0].startswith("354")
        c.send(stuff(sign(encrypted(tagged), keys)))
        reply = c.smtp_reply()
        assert reply[0].startswith(OK), reply
    files = stored(srv, BOB)
    assert len(files) == 1
    assert not (Path(srv.tmpdir) / "mail" / tagged).exists()


def test_unencrypted_refused(srv, keys):
    rr, final = deliver(srv, sign(plain(BOB), keys))
    assert final == ["523 Encryption Needed: Invalid Unencrypted Mail"], final
    assert stored(srv, BOB) == []


def test_securejoin_and_mailer_daemon_accepted(srv, keys):
    _, final = deliver(srv, sign(securejoin(BOB), keys))
    assert final[0].startswith(OK), final
    md = mailer_daemon(BOB)
    _, final = deliver(srv, sign(md, keys), mail_from="")
    assert final[0].startswith(OK), final
    assert len(stored(srv, BOB)) == 2
    # the same report unsigned is still refused by DKIM
    _, final = deliver(srv, md, mail_from="")
    assert final == ["554 5.7.1 No DKIM signature found"], final


def test_unsigned_refused(srv):
    _, final = deliver(srv, encrypted(BOB))
    assert final == ["554 5.7.1 No DKIM signature found"], final
    assert stored(srv, BOB) == []


def test_forged_body_refused(srv, keys):
    msg = sign(encrypted(BOB), keys)
    i = msg.index(b"-----BEGIN PGP MESSAGE-----")
    forged = msg[:i] + msg[i:].replace(b"wV4D", b"wV4E", 1)
    assert forged != msg
    _, final = deliver(srv, forged)
    assert final == ["554 5.7.1 No valid DKIM signature found"], final
    # a changed signed header fails the same way
    forged = msg.replace(b"Subject: [...]", b"Subject: [..!]", 1)
    assert forged != msg
    _, final = deliver(srv, forged)
    assert final == ["554 5.7.1 No valid DKIM signature found"], final
    assert stored(srv, BOB) == []


def test_misaligned_domain_refused(srv, dns, keys):
    dns.set("rsa._domainkey.other.example", "TXT", [keys.rsa_rec])
    msg = sign(encrypted(BOB), keys, domain="other.example")  # valid, but d= is not From's
    _, final = deliver(srv, msg)
    assert final == ["554 5.7.1 No valid DKIM signature found"], final
    assert stored(srv, BOB) == []


@pytest.mark.parametrize("how", ["timeout", "servfail"])
def test_key_lookup_failure_is_temporary(srv, dns, keys, how):
    dns.behave[f"rsa._domainkey.{SENDER_DOMAIN}"] = how
    t0 = time.monotonic()
    _, final = deliver(srv, sign(encrypted(BOB), keys), timeout=60)
    assert final[0].startswith("451 4.7.5 "), final
    if how == "timeout":
        assert time.monotonic() - t0 < 30
    assert stored(srv, BOB) == []
    # the DNS answers again: the same message is accepted (nothing was cached)
    del dns.behave[f"rsa._domainkey.{SENDER_DOMAIN}"]
    _, final = deliver(srv, sign(encrypted(BOB), keys))
    assert final[0].startswith(OK), final


def test_address_literal_sender_exempt(srv):
    _, final = deliver(srv, encrypted(BOB, sender="alice@[127.0.0.1]"),
                       mail_from="alice@[127.0.0.1]")
    assert final[0].startswith(OK), final
    assert len(stored(srv, BOB)) == 1


def imap_idle(srv, user):
    c = cmtest.tls_connect(srv.port("imaps"))
    assert c.readline().startswith("* OK")
    assert c.imap_cmd("a", f"LOGIN {user} {PASSWORD}")[1].startswith("a OK")
    assert c.imap_cmd("b", "SELECT INBOX")[1].startswith("b OK")
    c.send("c IDLE\r\n")
    assert c.readline().startswith("+ ")
    return c


@pytest.mark.parametrize("alg", [b"rsa-sha256", b"ed25519-sha256"])
@pytest.mark.parametrize("canon", [(b"relaxed", b"relaxed"), (b"simple", b"simple"),
                                   (b"relaxed", b"simple"), (b"simple", b"relaxed")],
                         ids=lambda c: b"/".join(c).decode())
def test_signed_encrypted_delivered_and_seen_by_idle(srv, keys, alg, canon):
    idle = imap_idle(srv, BOB)
    raw = (b"Received: from peer by relay2\r\nAuthentication-Results: relay2; dkim=pass\r\n" +
           encrypted(BOB))
    mail_from = "bounce+srs@forwarder.example"  # != From: accepted, sender nulled
    _, final = deliver(srv, sign(raw, keys, alg=alg, canon=canon), mail_from=mail_from)
    assert final[0].startswith(OK), final
    assert idle.readline() == "* 1 EXISTS"
    idle.send("DONE\r\n")
    idle.close()
    files = stored(srv, BOB)
    assert len(files) == 1
    head = header_block(files[0].read_bytes()).lower()
    for name in (b"dkim-signature:", b"received:", b"authentication-results:"):
        assert name not in head, head
    assert b"-----BEGIN PGP MESSAGE-----" in files[0].read_bytes()


def test_oversized(server, dns, keys):
    srv = mx_server(server, dns, extra={"max_message_size": "20000"})
    make_account(srv, BOB)
    with mx_connect(srv) as c:
        assert c.smtp_cmd(f"MAIL FROM:<{SENDER}> SIZE=20001") == \
            ["552 5.3.4 Message size exceeds fixed limit"]
        body = b"x" * 70 + b"\r\n"
        _, _, final = mx_send(c, SENDER, [BOB], sign(encrypted(BOB) + body * 400, keys))
        assert final == ["552 5.3.4 Message size exceeds fixed limit"], final
    assert stored(srv, BOB) == []


def test_pipelined_envelope_and_bdat(srv, keys):
    carol = addr("carol0001")
    make_account(srv, carol)
    msg = stuff(sign(encrypted(BOB), keys))
    with mx_connect(srv) as c:
        c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{BOB}>\r\nRCPT TO:<nobody@{DOMAIN}>\r\n"
               f"RCPT TO:<{carol}>\r\nDATA\r\n")
        assert c.smtp_reply() == ["250 2.1.0 Ok"]
        assert c.smtp_reply() == ["250 2.1.5 Ok"]
        assert c.smtp_reply()[0].startswith("550 5.1.1 ")
        assert c.smtp_reply() == ["250 2.1.5 Ok"]
        assert c.smtp_reply()[0].startswith("354")
        c.send(msg)
        assert c.smtp_reply()[0].startswith(OK)
        # CHUNKING: the same message in two BDAT chunks, pipelined
        raw = sign(encrypted(BOB), keys)
        a, b = raw[:100], raw[100:]
        c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{BOB}>\r\n".encode() +
               f"BDAT {len(a)}\r\n".encode() + a + f"BDAT {len(b)} LAST\r\n".encode() + b)
        assert c.smtp_reply() == ["250 2.1.0 Ok"]
        assert c.smtp_reply() == ["250 2.1.5 Ok"]
        assert c.smtp_reply()[0].startswith("250 2.0.0 ")
        assert c.smtp_reply()[0].startswith(OK)
    assert len(stored(srv, BOB)) == 2
    assert len(stored(srv, carol)) == 1


def test_recipient_limit(srv):
    with mx_connect(srv) as c:
        assert c.smtp_cmd(f"MAIL FROM:<{SENDER}>") == ["250 2.1.0 Ok"]
        c.send("".join(f"RCPT TO:<{BOB}>\r\n" for _ in range(1001)))
        replies = [c.smtp_reply() for _ in range(1001)]
        assert all(r == ["250 2.1.5 Ok"] for r in replies[:1000]), replies[:3]
        assert replies[1000] == ["452 4.5.3 Error: too many recipients"], replies[1000]


def test_sigterm_during_key_lookup(srv, dns, keys):
    """SIGTERM while a key lookup hangs: the message in flight is answered
    (451: the peer retries it; nothing stored), then 421, and the process
    exits 0 (the resolver does not keep the loop alive)."""
    dns.behave[f"rsa._domainkey.{SENDER_DOMAIN}"] = "timeout"
    c = mx_connect(srv)
    try:
        assert c.smtp_cmd(f"MAIL FROM:<{SENDER}>") == ["250 2.1.0 Ok"]
        assert c.smtp_cmd(f"RCPT TO:<{BOB}>") == ["250 2.1.5 Ok"]
        assert c.smtp_cmd("DATA")[0].startswith("354")
        c.send(stuff(sign(encrypted(BOB), keys)))
        cmtest.poll(lambda: any(n.startswith("rsa._domainkey") for n, _ in dns.queries),
                    what="the key lookup")
        srv.signal(signal.SIGTERM)
        reply = c.smtp_reply()
        assert reply[0].startswith("451 4.7.5 "), reply
        assert c.readline() == f"421 4.3.2 {DOMAIN} Service shutting down"
        assert c.read_until_closed() == b""
    finally:
        c.close()
    assert srv.wait(20) == 0, srv.log_tail()
    assert stored(srv, BOB) == []
