"""test_faults.py: the federation under faults (issue 14, scenario 4).
Relays of the fixture (fedlab) and small Python peers written here, which
take relay2.test's address (its DNS names it, no relay runs there):

  a. DNS gone: relay1's mail for relay2 is deferred (the queue file stays,
     the log says "MX lookup failed", outbound_dns_failures counts it, no
     DSN, nothing bounced) and delivered after the DNS server is back and
     `queue flush`. Inbound meanwhile: relay2 answers a DKIM-signed message
     whose key it cannot fetch with 451 4.7.5 on port 25 (STARTTLS) and
     503 + "451 4.7.5" on /mxdeliv, never 554; the same bytes are accepted
     once DNS answers again (so the 451 was the DNS, not the message).
  b. A peer on relay2's address whose certificate (from the test CA) names
     another host: relay1 tries /mxdeliv, then SMTP with STARTTLS, and
     refuses the certificate both times (curl finishes the TLS 1.3
     handshake, then checks the name and closes; our SMTP client aborts
     the handshake with bad_certificate); the peer never sees a request
     byte, MAIL, RCPT or DATA, in plain or otherwise; with queue_lifetime
     = 6s the first attempt is only deferred, and at the end of the
     lifetime the sender gets a DSN in its INBOX; the queue ends empty.
  c. A peer that accepts TCP on 443 and 25 and never answers: relay1 gives
     up /mxdeliv after its fixed connect timeout (5 s, the TLS handshake
     included) and moves to port 25, where it waits for the greeting for
     `outbound_smtp_timeout` (here 10 s; the default is RFC 5321
     4.5.3.2's 300 s, which CM_FED_SLOW=1 runs instead: measured 300.0 s);
     meanwhile mail for _selfsigned.test is delivered at once, twice
     (during each stall); then the message is deferred with "timeout" and
     relay1 closes the stalled connection.
  d. relay2 SIGKILLed while relay1 delivers a stream of 100 messages, then
     started again on the same ports: every Message-ID arrives, at most one
     twice, and only one relay2 had stored before it died (stored but not
     yet acknowledged: relay1 retried it); relay1's queue ends empty and
     no DSN was made.
"""
import email
import email.policy
import http.client
import os
import smtplib
import socket
import ssl
import threading
import time

import pytest

import cmtest
import fedlab
import mx_helpers

pytestmark = pytest.mark.timeout(150)

SLOW = bool(os.environ.get("CM_FED_SLOW"))
SMTP_TIMEOUT = 300 if SLOW else 10  # outbound_smtp_timeout of test c (300 s: the default)
ALICE = "alice0001@relay1.test"
BOB = "bob000001@relay2.test"
CAROL = "carol0001@_selfsigned.test"


def msg(rcpt, tag, sender=ALICE):
    return mx_helpers.encrypted(rcpt, sender=sender).replace(b"Mr.abc123", tag.encode())


def message_ids(relay, address):
    out = []
    for p in relay.stored(address):
        m = email.message_from_bytes(p.read_bytes(), policy=email.policy.compat32)
        out.append(m["Message-ID"])
    return out


def dsns(relay, address):
    out = []
    for p in relay.stored(address):
        raw = p.read_bytes()
        m = email.message_from_bytes(raw, policy=email.policy.compat32)
        if m.get("From", "").endswith(f"mailer-daemon@{relay.domain}>"):
            out.append((raw, m))
    return out


def metric(relay, name):
    return relay.metrics().get(name, 0.0)


def deliveries(relay, outcome):
    m = relay.metrics()
    return sum(m.get(f'outbound_deliveries{{path="{p}",outcome="{outcome}"}}', 0.0)
               for p in ("mxdeliv", "smtp"))


# ---------------------------------------------------------------- peers

class FaultPeer:
    """HTTPS on 443 and SMTP on 25 of `ip`.

    mode "wrongcert": TLS with `cert` (a (crt, key) pair) on 443; on 25 a
      greeting, EHLO offering STARTTLS, then TLS with `cert`. Records every
      connection: {"port", "t", "cmds" (SMTP lines), "tls" ("ok"/"failed: .."),
      "data" (bytes read after a handshake on 443)}.
    mode "stall": accepts and never writes a byte (reads and drops).
    """

    def __init__(self, ip, mode, cert=None):
        self.ip, self.mode, self.cert = ip, mode, cert
        self.conns = []
        self.lock = threading.Lock()
        self.stopped = False
        self.socks = []
        self.ctx = None
        if cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(*cert)
            self.ctx.set_alpn_protocols(["http/1.1"])
        self.listeners = []
        for port in (443, 25):
            ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind((ip, port))
            ls.listen(64)
            self.listeners.append(ls)
            threading.Thread(target=self._accept, args=(ls, port), daemon=True).start()

    def on(self, port):
        with self.lock:
            return [c for c in self.conns if c["port"] == port]

    def stop(self):
        self.stopped = True
        for s in self.listeners + self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept(self, ls, port):
        while not self.stopped:
            try:
                s, _ = ls.accept()
            except OSError:
                return
            rec = {"port": port, "t": time.monotonic(), "cmds": [], "tls": None, "data": b"",
                   "closed_at": None}
            with self.lock:
                self.conns.append(rec)
                self.socks.append(s)
            threading.Thread(target=self._serve, args=(s, port, rec), daemon=True).start()

    def _serve(self, s, port, rec):
        try:
            if self.mode == "stall":
                s.settimeout(None)
                while s.recv(4096):  # never answers; notes when the client gives up
                    pass
            elif port == 443:
                self._https(s, rec)
            else:
                self._smtp(s, rec)
        except OSError:
            pass
        finally:
            rec["closed_at"] = time.monotonic()

    def _handshake(self, s, rec):
        s.settimeout(cmtest.TIMEOUT)
        try:
            t = self.ctx.wrap_socket(s, server_side=True)
        except (ssl.SSLError, OSError) as e:
            rec["tls"] = f"failed: {e}"
            return None
        rec["tls"] = "ok"
        return t

    def _https(self, s, rec):
        t = self._handshake(s, rec)
        if t is None:
            return
        while True:  # the client should never get here; keep what it sends
            chunk = t.recv(65536)
            if not chunk:
                return
            rec["data"] += chunk

    def _smtp(self, s, rec):
        s.settimeout(cmtest.TIMEOUT)
        f = s.makefile("rb")
        s.sendall(b"220 relay2.test ESMTP fault peer\r\n")
        tls = False
        while True:
            line = f.readline()
            if not line:
                return
            line = line.rstrip(b"\r\n").decode("utf-8", "replace")
            rec["cmds"].append(("tls " if tls else "plain ") + line)
            verb = line.split(" ", 1)[0].split(":", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                caps = ["relay2.test", "PIPELINING", "SIZE 31457280"]
                caps += [] if tls else ["STARTTLS"]
                s.sendall("".join(("250 " if i == len(caps) - 1 else "250-") + c + "\r\n"
                                    for i, c in enumerate(caps)).encode())
            elif verb == "STARTTLS" and not tls:
                s.sendall(b"220 2.0.0 go ahead\r\n")
                t = self._handshake(s, rec)
                if t is None:
                    return
                s, f, tls = t, t.makefile("rb"), True
            elif verb == "QUIT":
                s.sendall(b"221 2.0.0 bye\r\n")
                return
            elif verb == "DATA":
                s.sendall(b"354 go on\r\n")
                while True:  # keep the body: the test fails on it
                    body = f.readline()
                    if not body or body == b".\r\n":
                        break
                    rec["data"] += body
                s.sendall(b"451 4.3.0 test peer never accepts\r\n")
            else:
                s.sendall(b"250 2.0.0 ok\r\n")


def smtp25(relay):
    """smtplib to port 25 of a relay, after STARTTLS (certificate checked
    for its name)."""
    s = smtplib.SMTP(timeout=60)
    s._host = relay.domain  # the name STARTTLS checks
    s.connect(relay.ip, 25)
    s.ehlo("peer.test")
    s.starttls(context=relay.tls_context())
    s.ehlo("peer.test")
    return s


def send25(relay, mail_from, rcpt, data):
    """One transaction on port 25: the final reply (code, text)."""
    s = smtp25(relay)
    try:
        assert s.mail(mail_from)[0] == 250
        assert s.rcpt(rcpt)[0] == 250
        return s.data(data)
    finally:
        s.close()


def post_mxdeliv(relay, mail_from, rcpt, data):
    ctx = relay.tls_context()
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection((relay.ip, 443), timeout=60)
    c = http.client.HTTPConnection(relay.domain, timeout=60)
    c.sock = ctx.wrap_socket(raw, server_hostname=relay.domain)
    try:
        c.putrequest("POST", "/mxdeliv")
        c.putheader("X-MAIL-FROM", mail_from)
        c.putheader("X-MAIL-TO", rcpt)
        c.putheader("Content-Length", str(len(data)))
        c.endheaders(data)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


# ---------------------------------------------------------------- a. DNS down

def test_dns_down_defers_then_delivers(net):
    r1 = net.add_relay("relay1.test")
    r2 = net.add_relay("relay2.test")
    r2.make_account(BOB)
    # a third party signing with a key that only DNS knows (never cached)
    peer_keys = mx_helpers.MxKeys()
    net.publish("rsa._domainkey.peer.example", "TXT", [peer_keys.rsa_rec])
    sender = "dan@peer.example"
    signed = mx_helpers.sign(mx_helpers.encrypted(BOB, sender=sender), peer_keys,
                             domain="peer.example")

    net.dns_stop()
    t0 = time.monotonic()
    s = r1.submit(ALICE)
    assert s.sendmail(ALICE, [BOB], msg(BOB, "Mr.dnsdown")) == {}
    s.quit()
    r1.server.wait_log("relay2.test: MX lookup failed")
    print(f"deferred after {time.monotonic() - t0:.1f} s")
    [line] = [x for x in r1.server.log_text().splitlines() if "deferred for " + BOB in x]
    assert ": 451 4.4.3 relay2.test: MX lookup failed" in line, line  # temporary, says DNS
    assert len(r1.queued()) == 1
    assert metric(r1, "outbound_dns_failures") >= 1
    assert deliveries(r1, "deferred") >= 1
    assert deliveries(r1, "bounced") == 0 and deliveries(r1, "delivered") == 0
    assert "failed for" not in r1.server.log_text()
    assert r1.stored(ALICE) == [] and r2.stored(BOB) == []

    # inbound while DNS is down: the key cannot be fetched -> temporary
    code, text = send25(r2, sender, BOB, signed)
    assert (code, text[:5]) == (451, b"4.7.5"), (code, text)
    status, body = post_mxdeliv(r2, sender, BOB, signed)
    assert status == 503 and body.startswith(b"451 4.7.5 "), (status, body)
    assert r2.stored(BOB) == []
    assert metric(r2, 'dkim_verify{result="temperror"}') >= 2
    assert metric(r2, 'dkim_verify{result="fail"}') == 0
    assert " 554 " not in r2.server.log_text()

    net.dns_start()
    t1 = time.monotonic()
    assert r1.queue_cli("flush").startswith("queue: flush requested")
    cmtest.poll(lambda: message_ids(r2, BOB) == ["<Mr.dnsdown@example.org>"],
                what="the deferred message on relay2 after DNS came back")
    cmtest.poll(lambda: not r1.queued(), what="relay1's queue empty")
    print(f"delivered {time.monotonic() - t1:.1f} s after DNS came back")
    assert deliveries(r1, "delivered") == 1 and deliveries(r1, "bounced") == 0
    assert not dsns(r1, ALICE)
    # the same signed bytes pass now: the 451 was the DNS
    code, text = send25(r2, sender, BOB, signed)
    assert code == 250, (code, text)
    assert len(r2.stored(BOB)) == 2


# ---------------------------------------------------------------- b. wrong certificate

def test_wrong_certificate_never_plain_then_dsn(net):
    ip2 = fedlab.IPS["relay2.test"]
    net.add_host("relay2.test", ip2)  # DNS names relay2.test; the peer answers there
    other = net.ca.make_leaf("other.test", sans="DNS:other.test,DNS:www.other.test",
                             cn="other.test")
    peer = FaultPeer(ip2, "wrongcert", cert=(other.fullchain, other.key))
    try:
        r1 = net.add_relay("relay1.test", extra={"queue_lifetime": "6s"})
        t0 = time.monotonic()
        s = r1.submit(ALICE)
        assert s.sendmail(ALICE, [BOB], msg(BOB, "Mr.wrongcert")) == {}
        s.quit()
        r1.server.wait_log("deferred for " + BOB)  # the first attempt: no DSN yet
        assert not dsns(r1, ALICE) and len(r1.queued()) == 1
        got = cmtest.poll(lambda: dsns(r1, ALICE), timeout=40, what="the lifetime DSN")
        took = time.monotonic() - t0
        print(f"DSN after {took:.1f} s")
        assert took >= 4.5, took  # the lifetime (6 s, whole seconds) ran out first
        cmtest.poll(lambda: not r1.queued(), what="relay1's queue empty")
        raw, m = got[0]
        assert m["Auto-Submitted"] == "auto-replied"
        assert m.get_content_type() == "multipart/report"
        assert m["X-Failed-Recipients"].strip() == BOB
        assert b"Mr.wrongcert@example.org" in raw
        assert b"Status: 4." in raw and b"within the time allowed" in raw, raw

        cmtest.poll(lambda: all(c["closed_at"] for c in peer.on(443) + peer.on(25)),
                    what="every connection to the peer ended")
        https, smtp = peer.on(443), peer.on(25)
        assert https and smtp, peer.conns
        # relay1 may finish a TLS 1.3 handshake before it checks the name
        # (curl, smtpc), so the peer's handshake may succeed; what counts:
        # not one byte of a request, and nothing in plain
        for c in https:
            assert c["tls"] is not None and c["data"] == b"", c
        for c in smtp:
            verbs = [x.split(" ", 2)[1].split(":")[0].upper() for x in c["cmds"] if " " in x]
            assert "STARTTLS" in verbs, c
            assert not {"MAIL", "RCPT", "DATA", "BDAT"} & set(verbs), c
            assert c["data"] == b"", c
        assert deliveries(r1, "delivered") == 0
        log = r1.server.log_text()
        assert "deferred for " + BOB in log and "(lifetime ended)" in log
        assert "smtp relay2.test: TLS: hostname mismatch" in log
        assert "mxdeliv relay2.test: SSL" in log
        print("peer saw:", [(c["port"], c["tls"], c["cmds"]) for c in peer.conns])
    finally:
        peer.stop()


# ---------------------------------------------------------------- c. stalled peer

@pytest.mark.timeout(480 if SLOW else 150)
def test_stalled_peer_does_not_block_queue(net):
    ip2 = fedlab.IPS["relay2.test"]
    net.add_host("relay2.test", ip2)
    peer = FaultPeer(ip2, "stall")
    try:
        r1 = net.add_relay("relay1.test",
                           extra=None if SLOW else {"outbound_smtp_timeout": f"{SMTP_TIMEOUT}s"})
        r3 = net.add_relay("_selfsigned.test")
        r3.make_account(CAROL)
        s = r1.submit(ALICE)
        assert s.sendmail(ALICE, [BOB], msg(BOB, "Mr.stalled")) == {}
        https = cmtest.poll(lambda: peer.on(443), what="relay1's connection to the stalled 443")
        t443 = https[0]["t"]
        # while relay1 waits on the stalled /mxdeliv: other mail goes
        t0 = time.monotonic()
        assert s.sendmail(ALICE, [CAROL], msg(CAROL, "Mr.other1")) == {}
        cmtest.poll(lambda: message_ids(r3, CAROL) == ["<Mr.other1@example.org>"],
                    what="the message to _selfsigned.test while relay2 stalls")
        print(f"_selfsigned.test delivered in {time.monotonic() - t0:.1f} s "
              "during the /mxdeliv stall")
        # /mxdeliv gives up after its connect timeout (TLS handshake
        # included), then SMTP on 25 of the same host
        smtp = cmtest.poll(lambda: peer.on(25), timeout=40,
                           what="relay1 falling back to the stalled port 25")
        waited = smtp[0]["t"] - t443
        print(f"/mxdeliv connect timeout measured: {waited:.1f} s")
        assert 3.0 <= waited <= 30.0, waited
        cmtest.poll(lambda: https[0]["closed_at"], what="relay1 closing the stalled 443 connection")
        # while it waits for the greeting on 25: other mail still goes
        t0 = time.monotonic()
        assert s.sendmail(ALICE, [CAROL], msg(CAROL, "Mr.other2")) == {}
        cmtest.poll(lambda: len(r3.stored(CAROL)) == 2,
                    what="the second message to _selfsigned.test while relay2 stalls")
        print(f"_selfsigned.test delivered in {time.monotonic() - t0:.1f} s during the SMTP stall")
        s.quit()
        # relay1 counts a delivery and removes its file after relay3's answer
        cmtest.poll(lambda: len(r1.queued()) == 1, what="only relay2's message left in the queue")
        cmtest.poll(lambda: deliveries(r1, "delivered") == 2, what="2 deliveries counted")
        if time.monotonic() - smtp[0]["t"] < SMTP_TIMEOUT - 2:
            assert "deferred for " + BOB not in r1.server.log_text()  # still in its attempt
        # the greeting never comes: outbound_smtp_timeout ends the attempt
        line = r1.server.wait_log("deferred for " + BOB, timeout=SMTP_TIMEOUT + 100)
        c25 = peer.on(25)[0]
        cmtest.poll(lambda: c25["closed_at"], what="relay1 closing the stalled 25 connection")
        took = c25["closed_at"] - c25["t"]
        print(f"SMTP greeting timeout measured: {took:.1f} s")
        assert line
        assert SMTP_TIMEOUT - 0.5 <= took <= SMTP_TIMEOUT + 30, took
        assert "timeout" in r1.server.log_text().split("deferred for " + BOB, 1)[1][:300]
        assert not r1.stored(ALICE)
    finally:
        peer.stop()


# ---------------------------------------------------------------- d. SIGKILL mid-stream

def test_receiver_killed_mid_stream(net):
    n = 100
    r1 = net.add_relay("relay1.test")
    r2 = net.add_relay("relay2.test")
    r2.make_account(BOB)
    ports = dict(r2.server.ports)
    sent, errors = [], []

    def stream():
        try:
            for part in range(4):  # several sessions, 25 messages each
                s = r1.submit(ALICE)
                for i in range(part * n // 4, (part + 1) * n // 4):
                    assert s.sendmail(ALICE, [BOB], msg(BOB, f"Mr.kill{i:03d}")) == {}
                    sent.append(i)
                s.quit()
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    t = threading.Thread(target=stream, daemon=True)
    t.start()
    cmtest.poll(lambda: len(r2.stored(BOB)) >= 15, timeout=60,
                what="relay2 storing the first messages of the stream")
    r2.server.kill()
    before = set(message_ids(r2, BOB))  # what relay2 had stored when it died
    at_kill = len(before)
    t.join(60)
    assert not t.is_alive() and not errors, errors
    assert len(sent) == n
    print(f"relay2 killed with {at_kill} of {n} stored")
    # relay1 notices: deferrals while relay2 is down
    r1.server.wait_log("deferred for " + BOB)
    assert r1.queued(), "nothing left for relay1 to deliver: relay2 died too late"
    r2.server.start()
    assert r2.server.ports == ports
    t0 = time.monotonic()
    r1.queue_cli("flush")
    want = {f"<Mr.kill{i:03d}@example.org>" for i in range(n)}
    cmtest.poll(lambda: set(message_ids(r2, BOB)) == want, timeout=60,
                what="every message on relay2 after its restart")
    cmtest.poll(lambda: not r1.queued(), what="relay1's queue empty")
    print(f"the rest delivered {time.monotonic() - t0:.1f} s after the restart")
    ids = message_ids(r2, BOB)
    dups = len(ids) - len(set(ids))
    twice = sorted(x for x in set(ids) if ids.count(x) > 1)
    print(f"{len(ids)} stored, {dups} duplicates {twice}")
    # a duplicate can only be the message relay2 had stored but not yet
    # acknowledged when it died (relay1 then retried it): one at most
    assert dups <= 1 and set(twice) <= before, (twice, sorted(before))
    assert not dsns(r1, ALICE)
    assert deliveries(r1, "bounced") == 0
