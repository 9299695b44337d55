"""test_outbound_smtp.py: the queue runner's SMTP transport against a
scripted SMTP peer (smtppeer.py) on loopback (issue 17, federation facts
§3), with relay1, the DNS zone, the keys and the HTTPS peer of
test_outbound.py. mx.peer.test resolves to 127.0.0.1; `mxdeliv_port`
points /mxdeliv at the HTTPS peer (or a closed port), `outbound_smtp_port`
at the SMTP peer.

  - /mxdeliv answering 400, 413 or 500: the message goes over SMTP to the
    same host, STARTTLS verified, DKIM-signed (dkimpy verifies what the
    peer got);
  - an SMTP peer with a certificate for another name, or without
    STARTTLS: deferred, no MAIL command ever sent (never in plain);
  - a `_`-domain with a self-signed SMTP peer: delivered over TLS;
  - a 550 for one of two recipients: the other delivered, a DSN for the
    refused one in the sender's INBOX within seconds with the peer's reply;
  - SIGKILL of relay1 while a slow peer is taking a stream of messages:
    after the restart every message arrives, none more than twice (the
    ones in flight at the kill may come again), the queue empties.
"""
import signal
import subprocess
import time

import dkim
import pytest

import cmtest
import test_outbound as ob
from smtppeer import SmtpPeer
from submit_helpers import login, queued

ALICE = ob.ALICE


def peer_cert(test_ca, host="mx.peer.test"):
    leaf = test_ca.make_leaf("smtp-" + host, sans="DNS:" + host, cn=host)
    return (str(leaf.fullchain), str(leaf.key))


def relay(server, test_ca, dns, keys, https_port, smtp_port, extra=None):
    return ob.relay1(server, test_ca, dns, keys, https_port,
                     extra={"outbound_smtp_port": smtp_port, **(extra or {})})


def message(rcpt, n=0):
    return ob.encrypted(ALICE, rcpt).replace(b"Mr.abc123", f"Mr.smtp{n}".encode())


def send(srv, rcpts, msgs):
    s = login(srv, ALICE)
    for m in msgs:
        assert s.sendmail(ALICE, rcpts, m) == {}
    s.quit()


def delivered(peer):
    return [d for s in peer.sessions for d in s["data"]]


def verify(data, keys):
    return dkim.verify(data, dnsfunc=lambda name, timeout=5: keys.record.encode()
                       if name == f"opendkim._domainkey.{ob.R1}.".encode() else None)


@pytest.fixture
def keys(tmp_path):
    return ob.Keys(tmp_path)


@pytest.mark.parametrize("status", [400, 413, 500])
def test_mxdeliv_refusal_falls_back_to_smtp(server, test_ca, keys, status):
    dns = ob.zone(keys)
    https = ob.Peer(test_ca, [status])
    smtp = SmtpPeer(cert=peer_cert(test_ca))
    try:
        r1 = relay(server, test_ca, dns, keys, https.port, smtp.port)
        rcpt = "carol@peer.test"
        msg = message(rcpt)
        send(r1, [rcpt], [msg])
        [data] = cmtest.poll(lambda: delivered(smtp), what="the message at the SMTP peer")
        assert len(https.got) == 1 and https.got[0][0] == "/mxdeliv"
        [sess] = [s for s in smtp.sessions if s["data"]]
        assert sess["tls"]
        assert f"MAIL FROM:<{ALICE}>" in " ".join(sess["cmds"])
        assert f"RCPT TO:<{rcpt}>" in sess["cmds"]
        assert data.startswith(b"DKIM-Signature: ")
        assert data.endswith(msg.split(b"\r\n\r\n", 1)[1])
        assert verify(data, keys)
        cmtest.poll(lambda: not queued(r1), what="relay1's queue empty")
        cmtest.poll(lambda: f"HTTP {status}" in r1.log_text() or "delivered to " + rcpt in r1.log_text(),
                    what="the outcome logged")
    finally:
        smtp.stop()
        https.stop()
        dns.stop()


@pytest.mark.parametrize("case", ["wrong_certificate", "no_starttls"])
def test_smtp_tls_required_never_plain(server, test_ca, keys, case):
    dns = ob.zone(keys)
    if case == "wrong_certificate":
        smtp = SmtpPeer(cert=peer_cert(test_ca, "other.test"))
        why = "TLS"
    else:
        smtp = SmtpPeer(starttls=False)
        why = "STARTTLS"
    try:
        r1 = relay(server, test_ca, dns, keys, 9, smtp.port)
        rcpt = "carol@peer.test"
        send(r1, [rcpt], [message(rcpt)])
        out = cmtest.poll(lambda: (o := ob.queue_cli(r1)) and "attempts 1" in o and o,
                          what="the message deferred after one attempt")
        line = [x for x in out.splitlines() if rcpt in x][0]
        assert "pending" in line and why in line, line
        assert smtp.sessions, "the peer was asked"
        assert smtp.commands("MAIL") == [] and delivered(smtp) == []
        assert len(queued(r1)) == 1
    finally:
        smtp.stop()
        dns.stop()


def test_underscore_domain_self_signed_peer(server, test_ca, keys, tmp_path):
    host = "mx._self.test"
    crt, key = tmp_path / "self.crt", tmp_path / "self.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host}",
                    "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True, timeout=cmtest.TIMEOUT)
    dns = ob.zone(keys, {"_self.test": {"MX": [(10, host)]}, host: {"A": ["127.0.0.1"]}})
    smtp = SmtpPeer(cert=(str(crt), str(key)))
    try:
        r1 = relay(server, test_ca, dns, keys, 9, smtp.port)
        rcpt = "dave@_self.test"
        send(r1, [rcpt], [message(rcpt)])
        [data] = cmtest.poll(lambda: delivered(smtp), what="the message at the self-signed peer")
        [sess] = [s for s in smtp.sessions if s["data"]]
        assert sess["tls"] and verify(data, keys)
        cmtest.poll(lambda: not queued(r1), what="relay1's queue empty")
    finally:
        smtp.stop()
        dns.stop()


def test_smtp_550_gives_dsn_other_recipient_delivered(server, test_ca, keys):
    good, bad = "good@peer.test", "bad@peer.test"
    dns = ob.zone(keys)
    smtp = SmtpPeer(cert=peer_cert(test_ca), rcpt={bad: "550 5.1.1 <bad@peer.test>: no such user"})
    try:
        r1 = relay(server, test_ca, dns, keys, 9, smtp.port)
        t0 = time.monotonic()
        send(r1, [good, bad], [ob.encrypted(ALICE, good)])
        got = cmtest.poll(lambda: ob.dsns(r1, ALICE), timeout=10, what="the DSN in alice's INBOX")
        assert time.monotonic() - t0 < 10
        raw, m = got[0]
        ob.check_dsn(raw, m, [bad], "5.1.1")
        assert b"no such user" in raw and good.encode() not in m.get_payload()[1].as_bytes()
        assert len(delivered(smtp)) == 1
        assert smtp.commands("RCPT") == [f"RCPT TO:<{good}>", f"RCPT TO:<{bad}>"]
        cmtest.poll(lambda: not queued(r1), what="relay1's queue empty")
        assert len(ob.dsns(r1, ALICE)) == 1
    finally:
        smtp.stop()
        dns.stop()


@pytest.mark.timeout(180)
def test_sigkill_during_stream_to_slow_peer(server, test_ca, keys):
    dns = ob.zone(keys)
    # each reply byte takes 5 ms: a delivery takes about a second
    smtp = SmtpPeer(cert=peer_cert(test_ca), drip=0.005)
    try:
        r1 = relay(server, test_ca, dns, keys, 9, smtp.port)
        rcpt = "carol@peer.test"
        n = 12
        send(r1, [rcpt], [message(rcpt, i) for i in range(n)])
        cmtest.poll(lambda: len(delivered(smtp)) >= 1, what="a first message at the slow peer")
        r1.proc.send_signal(signal.SIGKILL)
        r1.proc.wait()
        r1.proc = None
        assert queued(r1), "the stream was over before the kill"
        smtp.drip = 0.0
        r1.start()
        ob.queue_cli(r1, "flush")

        def ids():
            return [d.split(b"Message-ID: ")[1].split(b"\r\n")[0] for d in delivered(smtp)]
        cmtest.poll(lambda: set(ids()) == {f"<Mr.smtp{i}@example.org>".encode()
                                           for i in range(n)}, timeout=60,
                    what="every message at the peer after the restart")
        cmtest.poll(lambda: not queued(r1), what="relay1's queue empty")
        counts = {i: ids().count(i) for i in set(ids())}
        assert max(counts.values()) <= 2, counts
        assert not ob.dsns(r1, ALICE)
    finally:
        smtp.stop()
        dns.stop()


# ---------------------------------------------------------------- connection reuse

def ids(peer):
    return [d.split(b"Message-ID: ")[1].split(b"\r\n")[0] for d in delivered(peer)]


def mid(i):
    return f"<Mr.smtp{i}@example.org>".encode()


def wait_idle(peer, n_sessions):
    """The client's side is parked: the last session carried its message
    and its end-of-data reply went out."""
    time.sleep(0.3)
    assert len(peer.sessions) == n_sessions


def test_smtp_connection_reused(server, test_ca, keys):
    dns = ob.zone(keys)
    smtp = SmtpPeer(cert=peer_cert(test_ca))
    try:
        r1 = relay(server, test_ca, dns, keys, 9, smtp.port)
        rcpt = "carol@peer.test"
        # one at a time: every message after the first rides the first connection
        for i in range(4):
            send(r1, [rcpt], [message(rcpt, i)])
            cmtest.poll(lambda: len(delivered(smtp)) == i + 1, what=f"message {i} at the peer")
        sessions = [s for s in smtp.sessions if s["data"]]
        assert len(sessions) == 1 and len(sessions[0]["data"]) == 4, \
            [len(s["data"]) for s in smtp.sessions]
        sess = sessions[0]
        assert sess["tls"] and not sess["closed"]
        # MAIL FROM again after each completed transaction: no RSET, no QUIT in between
        verbs = [c.split(" ", 1)[0].split(":", 1)[0].upper() for c in sess["cmds"]]
        assert verbs.count("EHLO") == 2 and verbs.count("STARTTLS") == 1
        assert verbs.count("MAIL") == 4 and "RSET" not in verbs and "QUIT" not in verbs
        assert all(verify(d, keys) for d in sess["data"])
        # a burst: fewer connections than messages, each message exactly once
        n = 20
        before = len(smtp.sessions)
        send(r1, [rcpt], [message(rcpt, 100 + i) for i in range(n)])
        want = {mid(i) for i in range(4)} | {mid(100 + i) for i in range(n)}
        cmtest.poll(lambda: set(ids(smtp)) == want, timeout=60,
                    what="every message of the burst at the peer")
        cmtest.poll(lambda: not queued(r1), what="relay1's queue empty")
        time.sleep(0.5)
        assert sorted(ids(smtp)) == sorted(want), "a message went twice"
        assert len(smtp.sessions) - before < n, len(smtp.sessions) - before
    finally:
        smtp.stop()
        dns.stop()


def test_smtp_reuse_after_peer_closed_idle(server, test_ca, keys):
    """The peer drops the connection after each message: the next message
    is still delivered, on a new connection, at once."""
    dns = ob.zone(keys)
    smtp = SmtpPeer(cert=peer_cert(test_ca), close_after_data=True)
    try:
        r1 = relay(server, test_ca, dns, keys, 9, smtp.port)
        rcpt = "carol@peer.test"
        for i in range(3):
            t0 = time.monotonic()
            send(r1, [rcpt], [message(rcpt, i)])
            cmtest.poll(lambda: len(delivered(smtp)) == i + 1, what=f"message {i} at the peer")
            assert time.monotonic() - t0 < 10
            time.sleep(0.2)  # the client sees the close while idle
        assert sorted(ids(smtp)) == [mid(i) for i in range(3)]
        assert len([s for s in smtp.sessions if s["data"]]) == 3
        cmtest.poll(lambda: not queued(r1), what="relay1's queue empty")
    finally:
        smtp.stop()
        dns.stop()


def test_smtp_421_on_reused_connection(server, test_ca, keys):
    """A 421 to MAIL on the reused connection: the delivery goes on a new
    connection at once, no attempt counted, delivered once."""
    dns = ob.zone(keys)
    smtp = SmtpPeer(cert=peer_cert(test_ca), reused_mail_reply="421 4.4.2 idle too long")
    try:
        r1 = relay(server, test_ca, dns, keys, 9, smtp.port)
        rcpt = "carol@peer.test"
        send(r1, [rcpt], [message(rcpt, 0)])
        cmtest.poll(lambda: len(delivered(smtp)) == 1, what="the first message")
        wait_idle(smtp, 1)
        t0 = time.monotonic()
        send(r1, [rcpt], [message(rcpt, 1)])
        cmtest.poll(lambda: len(delivered(smtp)) == 2, what="the second message")
        assert time.monotonic() - t0 < 5, "waited for a retry"
        assert sorted(ids(smtp)) == [mid(0), mid(1)]
        assert len(smtp.sessions) == 2
        first, second = smtp.sessions
        assert len(first["data"]) == 1 and first["closed"]
        assert [c for c in first["cmds"] if c.startswith("MAIL")][1:] != []  # the refused MAIL
        assert len(second["data"]) == 1
        cmtest.poll(lambda: not queued(r1), what="relay1's queue empty")
        log = r1.log_text()
        assert "reused connection failed before MAIL" in log
        assert "deferred for" not in log, log
    finally:
        smtp.stop()
        dns.stop()


def test_smtp_idle_connection_closed_with_quit(server, test_ca, keys):
    """After a few idle seconds the connection ends with QUIT; at shutdown
    an idle one says QUIT too."""
    dns = ob.zone(keys)
    smtp = SmtpPeer(cert=peer_cert(test_ca))
    try:
        r1 = relay(server, test_ca, dns, keys, 9, smtp.port)
        rcpt = "carol@peer.test"
        send(r1, [rcpt], [message(rcpt, 0)])
        cmtest.poll(lambda: len(delivered(smtp)) == 1, what="the message at the peer")
        t0 = time.monotonic()
        [sess] = smtp.sessions
        time.sleep(1)
        assert not sess["closed"] and "QUIT" not in sess["cmds"], "closed before the idle timeout"
        cmtest.poll(lambda: sess["closed"], timeout=15, what="the idle connection closed")
        assert 3 <= time.monotonic() - t0 < 12
        assert sess["cmds"][-1] == "QUIT"
        # shutdown: QUIT on the idle connection
        send(r1, [rcpt], [message(rcpt, 1)])
        cmtest.poll(lambda: len(delivered(smtp)) == 2, what="the second message")
        last = smtp.sessions[-1]
        assert not last["closed"]
        r1.stop()
        cmtest.poll(lambda: last["closed"], timeout=10, what="the connection closed at stop")
        assert last["cmds"][-1] == "QUIT"
    finally:
        smtp.stop()
        dns.stop()


@pytest.mark.timeout(180)
def test_smtp_connections_per_host_bounded(server, test_ca, keys):
    """A burst to one slow host: at most 20 connections at once (a receiving
    relay refuses a client's 51st with 421); the other deliveries wait for
    a free connection instead of being deferred, each message once."""
    dns = ob.zone(keys)
    smtp = SmtpPeer(cert=peer_cert(test_ca), data_delay=0.3)
    try:
        r1 = relay(server, test_ca, dns, keys, 9, smtp.port)
        rcpt = "carol@peer.test"
        n = 80
        send(r1, [rcpt], [message(rcpt, i) for i in range(n)])
        cmtest.poll(lambda: len(delivered(smtp)) >= n, timeout=150,
                    what="every message of the burst at the peer")
        cmtest.poll(lambda: not queued(r1), what="relay1's queue empty")
        assert sorted(ids(smtp)) == sorted(mid(i) for i in range(n))
        assert smtp.max_open == 20, smtp.max_open  # reached, never passed
        assert len(smtp.sessions) < n  # the waiting ones rode freed connections
        assert "deferred for" not in r1.log_text(), [s.get("tls_error") for s in smtp.sessions if s.get("tls_error")]
    finally:
        smtp.stop()
        dns.stop()
