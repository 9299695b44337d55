"""test_mta_peers.py: scenario 3 of the federation matrix (issue 14) -- our
relay and the classic MTAs exchange mail both ways through the lab DNS.

The peers (mtapeers.py) are a Debian Postfix 3.7 with OpenDKIM as milter
(postfix.test) and Exim 4.96 with its built-in DKIM (exim.test), each on
its fedlab address, resolving MX through the lab DNS (resolv.conf
bind-mounted in a private mount namespace), requiring TLS verified against
the test CA, storing their domain's mail in a catch-all Maildir. Each peer
is started once per module (its start time is printed); each test gets a
fresh `net` with relay1.test and publishes the peer's A/MX/DKIM records in
it. Per peer:

  a. encrypted mail injected into the peer is signed by the peer (d=peer),
     found via `relay1.test MX` (asked of the lab DNS), delivered over
     verified TLS, accepted by relay1 (which fetched the peer's DKIM key:
     it refuses unsigned or badly signed mail) and stored in the user's
     Maildir;
  b. unencrypted mail from the peer is refused by relay1 with `523
     Encryption Needed` (chatmail-relay-behaviour.md section 3.6), the peer
     bounces it, the DSN lands in the peer-side sender's mailbox, relay1
     stores nothing;
  c. encrypted mail submitted to relay1 goes to the peer over SMTP (port
     443 of the peer is closed, so /mxdeliv fails and relay1 falls back, as
     its metrics show) and the peer verifies our DKIM signature: OpenDKIM's
     `Authentication-Results: postfix.test; dkim=pass ... header.d=relay1.test`,
     Exim's `$dkim_verify_status` = pass (X-Exim-DKIM header), its own
     Authentication-Results and its log line.

Needs root, postfix + opendkim (scripts/deps.sh) and the unpacked Exim
(scripts/deps.sh puts it in /var/cache/chatmaild-tests/exim); a missing
peer skips its tests with the reason.
"""
import re
import shutil
import time
import uuid

import pytest

import cmtest
import mtapeers
import mx_helpers

pytestmark = pytest.mark.timeout(180)

R1 = "relay1.test"
PEERS = {"postfix": (mtapeers.PostfixPeer, mtapeers.missing_postfix),
         "exim": (mtapeers.EximPeer, mtapeers.missing_exim)}


def _say(request, line):
    """A line on the terminal now (not captured): the peers' start times."""
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if capman is None:
        print(line)
        return
    with capman.global_and_fixture_disabled():
        print(f"\n{line}")


@pytest.fixture(scope="module", params=sorted(PEERS))
def peer(request, test_ca):
    cls, missing = PEERS[request.param]
    why = missing()
    if why:
        cmtest.require(False, why)
    wd = mtapeers.workdir(f"cm-fed-{request.param}-")
    p = cls(wd, test_ca)
    failed = False
    try:
        p.start()
        _say(request, f"{p.kind} peer ({p.domain} {p.ip}) started in {p.start_seconds:.2f} s")
        yield p
    except BaseException:
        failed = True
        raise
    finally:
        t0 = time.monotonic()
        p.stop()
        _say(request, f"{p.kind} peer stopped in {time.monotonic() - t0:.2f} s")
        if not failed and not request.session.testsfailed:
            shutil.rmtree(wd, ignore_errors=True)


@pytest.fixture
def lab(request, net, peer):
    r1 = net.add_relay(R1)
    peer.publish(net)
    yield net, r1, peer
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(f"--- {peer.kind} log (tail)\n{peer.log_text()[-5000:]}")
        print(f"--- {peer.kind} queue\n{peer.queue()}")
        if isinstance(peer, mtapeers.PostfixPeer):
            print(f"--- opendkim log (tail)\n{peer.dkim_log_text()[-3000:]}")
        else:
            print(f"--- exim paniclog\n{peer.panic_text()[-3000:]}")
        print(f"--- relay1 log (tail)\n{r1.server.log_tail(40)}")
    peer.reset()


def uniq():
    """8 hex digits: with one letter in front, a local part of 9 (relay
    accounts have exactly 9 by default)."""
    return uuid.uuid4().hex[:8]


def with_msgid(msg, msgid):
    out = re.sub(rb"Message-ID: <[^>]*>", f"Message-ID: <{msgid}>".encode(), msg, count=1)
    assert f"<{msgid}>".encode() in out
    return out


def plain(sender, rcpt, msgid):
    return (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: cleartext\r\n"
            f"Date: Sun, 06 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{msgid}>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhello in clear\r\n").encode()


def test_peer_to_relay_encrypted(lab):
    """a. peer -> relay1: signed by the peer, MX via DNS, verified TLS, stored."""
    net, r1, peer = lab
    t0 = time.monotonic()
    tag = uniq()
    rcpt, sender = f"b{tag}@{R1}", f"alice{tag}@{peer.domain}"
    r1.make_account(rcpt)
    msgid = f"fed3a.{tag}@{peer.domain}"
    peer.send(sender, [rcpt], with_msgid(mx_helpers.encrypted(rcpt, sender=sender), msgid))

    status, line = peer.wait_outcome(rcpt)
    assert status == "sent", f"{line}\n--- relay1 log\n{r1.server.log_tail(40)}"
    assert R1 in line and r1.ip in line, line
    assert peer.verified_tls_to(R1), peer.log_text()[-3000:]
    cmtest.poll(lambda: len(r1.stored(rcpt)) == 1, timeout=60, what=f"the message in {rcpt}'s Maildir")
    stored = r1.stored(rcpt)[0].read_bytes()
    assert f"<{msgid}>".encode() in stored
    assert b"-----BEGIN PGP MESSAGE-----" in stored
    # the peer found relay1 through the lab DNS, relay1 fetched the peer's key
    assert (R1, "MX") in net.dns.queries, net.dns.queries
    assert (peer.dkim_name, "TXT") in net.dns.queries, net.dns.queries
    print(f"{peer.kind} -> relay1 encrypted: {time.monotonic() - t0:.2f} s")


def test_peer_to_relay_unencrypted_bounces(lab):
    """b. peer -> relay1 cleartext: 523 from relay1, the peer's DSN to its sender."""
    net, r1, peer = lab
    t0 = time.monotonic()
    tag = uniq()
    rcpt, sender_local = f"b{tag}@{R1}", f"alice{tag}"
    sender = f"{sender_local}@{peer.domain}"
    r1.make_account(rcpt)
    msgid = f"fed3b.{tag}@{peer.domain}"
    peer.send(sender, [rcpt], plain(sender, rcpt, msgid))

    status, line = peer.wait_outcome(rcpt)
    assert status == "bounced", line
    assert "523" in line and "Encryption Needed" in line, line
    dsn = peer.wait_message(msgid.encode(), local=sender_local)
    head = dsn.split(b"\n\n", 1)[0]
    assert re.search(rb"(?im)^From:.*mailer-daemon@" + re.escape(peer.domain.encode()), head), head
    assert re.search(rb"(?im)^Content-Type: multipart/report;", head), head
    assert b"523" in dsn and b"Encryption Needed" in dsn, dsn[:3000]
    assert r1.stored(rcpt) == []
    print(f"{peer.kind} -> relay1 cleartext bounced: {time.monotonic() - t0:.2f} s")


def test_relay_to_peer_dkim_pass(lab):
    """c. relay1 -> peer over SMTP (no /mxdeliv there); the peer says dkim=pass."""
    net, r1, peer = lab
    t0 = time.monotonic()
    tag = uniq()
    sender, rcpt_local = f"a{tag}@{R1}", f"carol{tag}"
    rcpt = f"{rcpt_local}@{peer.domain}"
    msgid = f"fed3c.{tag}@{R1}"
    s = r1.submit(sender)
    assert s.sendmail(sender, [rcpt], with_msgid(mx_helpers.encrypted(rcpt, sender=sender), msgid)) == {}
    s.quit()

    raw = peer.wait_message(f"<{msgid}>".encode(), local=rcpt_local)
    results = peer.dkim_results(raw)
    assert results, raw.split(b"\n\n", 1)[0].decode(errors="replace")
    d = re.escape(R1)
    if isinstance(peer, mtapeers.PostfixPeer):
        assert any(re.search(rf"^postfix\.test; dkim=pass .*header\.d={d}\b", v) for v in results), \
            f"{results}\n--- opendkim log\n{peer.dkim_log_text()[-3000:]}"
    else:
        assert any(re.search(rf"^d={d} s=opendkim status=pass$", v) for v in results), results
        assert any(re.search(rf"^exim\.test;.* dkim=pass .*header\.d={d}\b", v) for v in results), results
        assert re.search(rf"DKIM: d={d} s=opendkim .*\[verification succeeded\]", peer.log_text()), \
            peer.log_text()[-3000:]
    assert not any("dkim=fail" in v or "status=fail" in v for v in results), results
    assert b"-----BEGIN PGP MESSAGE-----" in raw
    assert peer.tls_from(), peer.log_text()[-3000:]
    cmtest.poll(lambda: not r1.queued(), what="relay1's queue empty")
    m = r1.metrics()
    assert m.get('outbound_deliveries{path="smtp",outcome="delivered"}') == 1, m
    assert m.get('outbound_deliveries{path="mxdeliv",outcome="delivered"}', 0) == 0, m
    assert (peer.domain, "MX") in net.dns.queries, net.dns.queries
    print(f"relay1 -> {peer.kind} dkim=pass: {time.monotonic() - t0:.2f} s")
