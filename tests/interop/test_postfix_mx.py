"""test_postfix_mx.py: Debian's Postfix, with OpenDKIM signing, delivers to
our port 25 (issue 13, "Done when": Postfix).

Each test starts
  * our server (the integration `server` fixture) for relay1.test, with
    `dns_servers` pointing at a test DNS server (tests/integration/dnsserver.py)
    that publishes the OpenDKIM key as `sel._domainkey.peer.test TXT`;
  * OpenDKIM (`Mode s`, domain peer.test, key from opendkim-genkey) and a
    Postfix instance (postfixpeer.py: own config/queue dirs, loopback only,
    no systemd) whose milter it is; Postfix relays relay1.test to our port
    25 with `smtp_tls_security_level = encrypt` and discards everything else.
A message is handed to Postfix's own smtpd; Postfix signs it through the
milter (only peer.test senders are signed) and delivers it over STARTTLS.

Signed + encrypted -> in the recipient's Maildir, without DKIM-Signature or
Received, and our server asked the test DNS server for the key. The same
from a domain OpenDKIM does not sign -> Postfix bounces it with our
`554 5.7.1 No DKIM signature found`, nothing stored. Signed, but DNS
publishes another key -> `554 5.7.1 No valid DKIM signature found`.
Needs root (Postfix) and postfix, opendkim, opendkim-tools (scripts/deps.sh).
"""
import base64
import re
import shutil
import subprocess

import pytest

import cmtest
import postfixpeer
from dnsserver import DnsServer
from submit_helpers import fixture, login, stored

D = cmtest.DOMAIN
BOB = f"bob0pfx12@{D}"


@pytest.fixture
def mx_peer(server):
    why = postfixpeer.missing()
    if why:
        cmtest.require(False, why)
    wd = postfixpeer.workdir()
    dkim = dns = pf = None
    try:
        dkim = postfixpeer.OpenDkim(wd / "dkim", "peer.test", "sel")
        dns = DnsServer({dkim.record_name: {"TXT": [dkim.txt]}})
        srv = server(extra={"dns_servers": dns.address})
        login(srv, BOB).quit()  # creates the account (unknown users get 550 at RCPT)
        dkim.start()
        pf = postfixpeer.PostfixPeer(wd / "pf", "peer.test", {D: (cmtest.HOST, srv.port("smtp"))},
                                     milter=dkim.socket).start()
        yield srv, pf, dns
    finally:
        if pf is not None:
            pf.stop()
        if dkim is not None:
            dkim.stop()
        if dns is not None:
            dns.stop()
        shutil.rmtree(wd, ignore_errors=True)


def _message(sender, msgid):
    raw = fixture("encrypted.eml", sender, BOB)
    raw = re.sub(rb"Message-ID: <[^>]*>", f"Message-ID: <{msgid}>".encode(), raw)
    assert msgid.encode() in raw
    return raw


@pytest.mark.timeout(180)
def test_postfix_signed_encrypted_is_delivered(mx_peer):
    srv, pf, dns = mx_peer
    msgid = "pfx-signed-1@peer.test"
    pf.submit("alice@peer.test", [BOB], _message("alice@peer.test", msgid))

    sent = pf.wait_log(r"to=<%s>.*status=(sent|bounced|deferred).*" % re.escape(BOB), timeout=90)
    assert "status=sent" in sent.group(0), f"{sent.group(0)}\n{srv.log_tail()}"
    assert re.search(r"TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:%d" %
                     srv.port("smtp"), pf.log_text()), pf.log_text()[-3000:]
    assert ("sel._domainkey.peer.test", "TXT") in dns.queries

    files = cmtest.poll(lambda: stored(srv, BOB), what="the message in bob's Maildir")
    assert len(files) == 1
    data = files[0].read_bytes()
    head = data.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in data else data.split(b"\n\n", 1)[0]
    assert msgid.encode() in head
    assert b"-----BEGIN PGP MESSAGE-----" in data
    assert not re.search(rb"(?im)^DKIM-Signature:", head), head.decode(errors="replace")
    assert not re.search(rb"(?im)^Received:", head), head.decode(errors="replace")


@pytest.mark.timeout(180)
def test_postfix_unsigned_is_refused_554(mx_peer):
    srv, pf, dns = mx_peer
    # unsigned.test is not OpenDKIM's Domain: Postfix sends it without a signature
    pf.submit("carol@unsigned.test", [BOB], _message("carol@unsigned.test", "pfx-unsigned-1@unsigned.test"))

    done = pf.wait_log(r"to=<%s>.*status=(sent|bounced|deferred).*" % re.escape(BOB), timeout=90)
    line = done.group(0)
    assert "status=bounced" in line, f"{line}\n{srv.log_tail()}"
    assert "said: 554 5.7.1 No DKIM signature found" in line, line
    assert stored(srv, BOB) == []
    assert not any(name.endswith("_domainkey.unsigned.test") for name, _ in dns.queries)


@pytest.mark.timeout(180)
def test_postfix_signed_with_another_key_is_refused_554(mx_peer):
    srv, pf, dns = mx_peer
    # DNS now publishes a different key for OpenDKIM's selector: the
    # signature Postfix sends does not verify
    other = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                            "rsa_keygen_bits:2048"], check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubout", "-outform", "DER"], input=other,
                         check=True, capture_output=True).stdout
    dns.set("sel._domainkey.peer.test", "TXT", [f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"])
    pf.submit("alice@peer.test", [BOB], _message("alice@peer.test", "pfx-forged-1@peer.test"))

    done = pf.wait_log(r"to=<%s>.*status=(sent|bounced|deferred).*" % re.escape(BOB), timeout=90)
    line = done.group(0)
    assert "status=bounced" in line, f"{line}\n{srv.log_tail()}"
    assert "said: 554 5.7.1 No valid DKIM signature found" in line, line
    assert ("sel._domainkey.peer.test", "TXT") in dns.queries
    assert stored(srv, BOB) == []
