"""test_outbound.py: the outbound queue runner (issue 17, federation facts
§3): mail a user of relay1.test submits to another domain is delivered by
POST https://<MX host>/mxdeliv, DKIM-signed with relay1's key.

relay1 runs on 127.0.0.1, relay2 on 127.0.0.2 (and 127.0.0.1 for the test's
own connections), each with its own ports; the test DNS server
(dnsserver.py) has relay2.test's MX (mx.relay2.test -> 127.0.0.2), relay1's
DKIM key (opendkim._domainkey.relay1.test), a null MX domain and nothing for
an NXDOMAIN one. `mxdeliv_port` points relay1's /mxdeliv requests at the
peer's https port; `tls_ca_file` is the test CA, which issued relay2's
certificate for mx.relay2.test. A small Python HTTPS peer (Peer) answers
/mxdeliv with a scripted status sequence and records what it got.

  - relay1 -> relay2: the message in relay2's Maildir (body bytes), DKIM
    verified there (dkim_verify{result="pass"}), the queue empty;
  - null MX and NXDOMAIN: a delivery status notification in the sender's
    INBOX within seconds (From mailer-daemon@, Auto-Submitted,
    multipart/report, message/delivery-status fields, text/rfc822-headers
    with the original Message-ID, X-Failed-Recipients);
  - a peer answering 503, then 200 after `queue flush`: delivered on the
    retry; dkimpy verifies the bytes the peer got; `queue` lists the
    deferred message with its last reply;
  - a shortened queue_lifetime: a DSN saying the time ran out;
  - SIGKILL of relay1 with mail queued for a stopped relay2: after both
    restart, every message delivered exactly once;
  - 1,000 messages to one destination all delivered, nothing deferred.
"""
import email
import email.policy
import http.server
import os
import signal
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import dkim
import pytest

import cmtest
import mx_helpers
from dnsserver import DnsServer
from submit_helpers import account_dir, login, queued, stored

R1, R2 = "relay1.test", "relay2.test"
R2_IP = "127.0.0.2"  # relay2's address in DNS (it listens on 127.0.0.1 too, for the helpers)
ALICE = f"alice0001@{R1}"
BOB = f"bob000001@{R2}"


def encrypted(sender, rcpt):
    return mx_helpers.encrypted(rcpt, sender=sender)


class Keys:
    """relay1's DKIM key, written where dkim_key_path points."""

    def __init__(self, tmp):
        k = mx_helpers.MxKeys()
        self.path = Path(tmp) / "relay1-dkim.pem"
        self.path.write_bytes(k.rsa_pem)
        os.chmod(self.path, 0o600)
        self.record = k.rsa_rec


def zone(keys, extra=None):
    z = {f"opendkim._domainkey.{R1}": {"TXT": [keys.record]},
         R2: {"MX": [(10, f"mx.{R2}")]},
         f"mx.{R2}": {"A": [R2_IP]},
         "nullmx.test": {"MX": [(0, ".")]},
         "peer.test": {"MX": [(5, "mx.peer.test")]},
         "mx.peer.test": {"A": ["127.0.0.1"]}}
    z.update(extra or {})
    return DnsServer(z)


def relay2(server, test_ca, dns):
    leaf = test_ca.make_leaf("relay2", sans=f"DNS:{R2},DNS:mx.{R2},IP:127.0.0.1,IP:{R2_IP}",
                             cn=R2)
    return server(mail_domain=R2, cert=(str(leaf.fullchain), str(leaf.key)),
                  extra={"dns_servers": dns.address, "listen": f"127.0.0.1, {R2_IP}"})


def relay1(server, test_ca, dns, keys, https_port, extra=None):
    # the SMTP fallback goes to a closed port unless a test points it at a peer
    return server(extra={"dns_servers": dns.address, "dkim_key_path": str(keys.path),
                         "tls_ca_file": str(test_ca.crt), "mxdeliv_port": https_port,
                         "outbound_smtp_port": 9,
                         "max_user_send_burst_size": 1000, "max_user_send_per_minute": 6000,
                         **(extra or {})})


def queue_cli(srv, *args):
    p = subprocess.run([srv.binary, "-c", str(srv.ini), "queue", *args], capture_output=True,
                       text=True, timeout=cmtest.TIMEOUT)
    assert p.returncode == 0, p.stderr
    return p.stdout


def read_stored(srv, address):
    return [p.read_bytes() for p in stored(srv, address)]


def dsns(srv, address):
    out = []
    for raw in read_stored(srv, address):
        m = email.message_from_bytes(raw, policy=email.policy.compat32)
        if m.get("From", "").endswith(f"mailer-daemon@{R1}>"):
            out.append((raw, m))
    return out


def check_dsn(raw, m, failed, code, msgid="<Mr.abc123@example.org>"):
    """The fields Delta Chat core and chatmail's incoming rule look at."""
    assert m["Auto-Submitted"] == "auto-replied"
    assert m.get_content_type() == "multipart/report"
    assert m.get_param("report-type") == "delivery-status"
    assert sorted(a.strip() for a in m["X-Failed-Recipients"].replace("\r\n", "").split(",")) \
        == sorted(failed)
    parts = m.get_payload()
    assert [p.get_content_type() for p in parts] == \
        ["text/plain", "message/delivery-status", "text/rfc822-headers"]
    status = parts[1].as_bytes().decode()
    for f in failed:
        assert f"Final-Recipient: rfc822; {f}" in status
    assert "Action: failed" in status
    assert f"Status: {code}" in status
    headers = parts[2].get_payload()
    assert f"Message-ID: {msgid}" in headers
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")


def scrape(srv):
    """/metrics of any relay (its certificate may be for another name)."""
    import http.client
    from test_metrics import parse
    ctx = ssl.create_default_context(cafile=srv.ca_file)
    ctx.check_hostname = False
    c = http.client.HTTPSConnection(cmtest.HOST, srv.port("https"), context=ctx,
                                    timeout=cmtest.TIMEOUT)
    c.request("GET", "/metrics")
    r = c.getresponse()
    assert r.status == 200
    out = parse(r.read().decode())
    c.close()
    return out


@pytest.fixture
def keys(tmp_path):
    return Keys(tmp_path)


# ---------------------------------------------------------------- relay to relay

def test_relay_to_relay_mxdeliv(server, test_ca, keys):
    dns = zone(keys)
    try:
        r2 = relay2(server, test_ca, dns)
        mx_helpers.make_account(r2, BOB)
        r1 = relay1(server, test_ca, dns, keys, r2.port("https"))
        msg = encrypted(ALICE, BOB)
        s = login(r1, ALICE)
        assert s.sendmail(ALICE, [BOB], msg) == {}
        s.quit()
        got = cmtest.poll(lambda: read_stored(r2, BOB), what="the message on relay2")
        assert len(got) == 1
        body = msg.split(b"\r\n\r\n", 1)[1]
        assert got[0].split(b"\r\n\r\n", 1)[1] == body
        assert b"Message-ID: <Mr.abc123@example.org>" in got[0]
        cmtest.poll(lambda: not queued(r1), what="relay1's queue empty")
        assert not list((Path(r1.tmpdir) / "state" / "queue").glob(".st-*"))
        assert scrape(r2)[0]['dkim_verify{result="pass"}'] == 1
        m1 = scrape(r1)[0]
        assert m1['outbound_deliveries{path="mxdeliv",outcome="delivered"}'] == 1
        assert m1["queue_length"] == 0
        r1.wait_log("delivered to " + BOB)
    finally:
        dns.stop()


def test_relay_to_relay_smtp_fallback(server, test_ca, keys):
    """relay2's /mxdeliv unreachable: the message goes over SMTP to relay2's
    port 25 (here its smtp_port) with verified STARTTLS, DKIM-signed."""
    dns = zone(keys)
    try:
        r2 = relay2(server, test_ca, dns)
        mx_helpers.make_account(r2, BOB)
        r1 = relay1(server, test_ca, dns, keys, 9,
                    extra={"outbound_smtp_port": r2.port("smtp")})
        msg = encrypted(ALICE, BOB)
        s = login(r1, ALICE)
        assert s.sendmail(ALICE, [BOB], msg) == {}
        s.quit()
        got = cmtest.poll(lambda: read_stored(r2, BOB), what="the message on relay2")
        assert len(got) == 1
        assert got[0].split(b"\r\n\r\n", 1)[1] == msg.split(b"\r\n\r\n", 1)[1]
        cmtest.poll(lambda: not queued(r1), what="relay1's queue empty")
        assert scrape(r2)[0]['dkim_verify{result="pass"}'] == 1
        m1 = scrape(r1)[0]
        assert m1['outbound_deliveries{path="smtp",outcome="delivered"}'] == 1
        r1.wait_log("delivered to " + BOB)
    finally:
        dns.stop()


def test_smtp_only_mark(server, test_ca, keys):
    """A host whose /mxdeliv fails and whose SMTP delivers is tried over SMTP
    first (no POST) for the next messages; an SMTP connect error clears the
    mark, and /mxdeliv is tried again on that host."""
    dns = zone(keys)
    peer = Peer(test_ca, [500], host=f"mx.{R2}", bind=R2_IP)  # relay2's "/mxdeliv"
    try:
        r2 = relay2(server, test_ca, dns)
        mx_helpers.make_account(r2, BOB)
        r1 = relay1(server, test_ca, dns, keys, peer.port,
                    extra={"outbound_smtp_port": r2.port("smtp")})
        s = login(r1, ALICE)
        assert s.sendmail(ALICE, [BOB], encrypted(ALICE, BOB)) == {}
        cmtest.poll(lambda: len(read_stored(r2, BOB)) == 1, what="message 1 on relay2")
        assert len(peer.got) == 1 and peer.got[0][0] == "/mxdeliv"
        r1.wait_log(f"queue: mx.{R2} delivers over SMTP, not /mxdeliv")
        cmtest.poll(lambda: not queued(r1), what="relay1's queue empty")

        assert s.sendmail(ALICE, [BOB], encrypted(ALICE, BOB)) == {}
        cmtest.poll(lambda: len(read_stored(r2, BOB)) == 2, what="message 2 on relay2")
        cmtest.poll(lambda: not queued(r1), what="relay1's queue empty")
        assert len(peer.got) == 1  # SMTP first: no POST for message 2
        m1 = scrape(r1)[0]
        assert m1['outbound_deliveries{path="smtp",outcome="delivered"}'] == 2

        r2.stop()  # SMTP connect refused: the mark goes, /mxdeliv is asked again
        assert s.sendmail(ALICE, [BOB], encrypted(ALICE, BOB)) == {}
        s.quit()
        cmtest.poll(lambda: len(peer.got) == 2, what="a POST after the SMTP failure")
        r1.wait_log(f"queue: mx.{R2}: SMTP failed, /mxdeliv first again")
        assert len(queued(r1)) == 1
    finally:
        peer.stop()
        dns.stop()


# ---------------------------------------------------------------- DSNs

def test_nullmx_and_nxdomain_dsn(server, test_ca, keys):
    dns = zone(keys)
    try:
        r1 = relay1(server, test_ca, dns, keys, 9)
        s = login(r1, ALICE)
        a, b = "someone@nullmx.test", "other@nx.test"
        assert s.sendmail(ALICE, [a, b], encrypted(ALICE, a)) == {}
        s.quit()

        def failed_now():
            out = {}
            for raw, m in dsns(r1, ALICE):
                status = m.get_payload()[1].as_bytes().decode()
                for f in m["X-Failed-Recipients"].replace("\r\n", "").split(","):
                    out[f.strip()] = (raw, m, status)
            return out
        failed = cmtest.poll(lambda: set(failed_now()) == {a, b} and failed_now(), timeout=10,
                             what="DSNs for both recipients in alice's INBOX")
        got = dsns(r1, ALICE)
        assert len(got) == 1  # one attempt, one report naming both
        raw, m, status = failed[a]
        assert "5.1.10" in status and "null MX" in status
        raw, m, status = failed[b]
        assert "Status: 5.1.2" in status
        for raw, m in got:
            names = [f.strip() for f in m["X-Failed-Recipients"].replace("\r\n", "").split(",")]
            check_dsn(raw, m, names, "5.1.")
        cmtest.poll(lambda: not queued(r1), what="the queue empty")
        r1.wait_log("failed for " + a)
    finally:
        dns.stop()


# ---------------------------------------------------------------- a scripted peer

class Peer:
    """HTTPS on 127.0.0.1 with a leaf for mx.peer.test; POST /mxdeliv answers
    the next status of `script` (the last one repeats) and records
    (headers, body)."""

    def __init__(self, test_ca, script, host="mx.peer.test", bind="127.0.0.1"):
        self.script = list(script)
        self.got = []
        leaf = test_ca.make_leaf("peer-" + host, sans="DNS:" + host, cn=host)
        owner = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                owner.got.append((self.path, self.headers, body))
                st = owner.script.pop(0) if len(owner.script) > 1 else owner.script[0]
                text = b"250 OK" if st == 200 else b"451 4.3.0 try later"
                self.send_response(st)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

        self.httpd = http.server.ThreadingHTTPServer((bind, 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(leaf.fullchain), str(leaf.key))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.t = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.t.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_peer_503_then_200(server, test_ca, keys):
    dns = zone(keys)
    peer = Peer(test_ca, [503, 200])
    try:
        r1 = relay1(server, test_ca, dns, keys, peer.port)
        rcpt = "carol@peer.test"
        msg = encrypted(ALICE, rcpt)
        s = login(r1, ALICE)
        assert s.sendmail(ALICE, [rcpt], msg) == {}
        s.quit()
        cmtest.poll(lambda: len(peer.got) == 1, what="the first POST")
        ids = cmtest.poll(lambda: queued(r1), what="the queue file")
        out = cmtest.poll(lambda: (o := queue_cli(r1)) and "attempts 1" in o and o,
                          what="`queue` shows the attempt")
        assert ids[0].name in out and rcpt in out and "pending" in out
        assert "HTTP 503" in out and "1 message queued" in out
        r1.wait_log("smtp mx.peer.test: ")  # the fallback was tried too
        assert queue_cli(r1, "flush").startswith("queue: flush requested")
        cmtest.poll(lambda: len(peer.got) == 2, what="the retry after flush")
        cmtest.poll(lambda: not queued(r1), what="the queue empty")
        path, headers, body = peer.got[1]
        assert path == "/mxdeliv"
        assert headers["X-MAIL-FROM"] == ALICE and headers.get_all("X-MAIL-TO") == [rcpt]
        assert body.startswith(b"DKIM-Signature: ")
        assert body.endswith(msg.split(b"\r\n\r\n", 1)[1])
        assert dkim.verify(body, dnsfunc=lambda name, timeout=5: keys.record.encode()
                           if name == f"opendkim._domainkey.{R1}.".encode() else None)
        assert b"s=opendkim" in body and f"d={R1}".encode() in body
        assert "0 messages queued" in queue_cli(r1)
    finally:
        peer.stop()
        dns.stop()


def test_lifetime_dsn(server, test_ca, keys):
    dns = zone(keys)
    peer = Peer(test_ca, [503])
    try:
        r1 = relay1(server, test_ca, dns, keys, peer.port, extra={"queue_lifetime": "2s"})
        rcpt = "dave@peer.test"
        s = login(r1, ALICE)
        assert s.sendmail(ALICE, [rcpt], encrypted(ALICE, rcpt)) == {}
        s.quit()
        got = cmtest.poll(lambda: dsns(r1, ALICE), timeout=15, what="the lifetime DSN")
        raw, m = got[0]
        check_dsn(raw, m, [rcpt], "4.")
        assert b"within the time allowed" in raw
        assert b"HTTP 503" in raw or b"smtp mx.peer.test" in raw
        assert len(peer.got) >= 1
        cmtest.poll(lambda: not queued(r1), what="the queue empty")
    finally:
        peer.stop()
        dns.stop()


# ---------------------------------------------------------------- crash

@pytest.mark.timeout(180)
def test_sigkill_with_queued_mail(server, test_ca, keys):
    dns = zone(keys)
    try:
        r2 = relay2(server, test_ca, dns)
        mx_helpers.make_account(r2, BOB)
        port2 = r2.port("https")
        r2.stop()
        r1 = relay1(server, test_ca, dns, keys, port2)
        s = login(r1, ALICE)
        n = 5
        for i in range(n):
            msg = encrypted(ALICE, BOB).replace(b"Mr.abc123", f"Mr.kill{i}".encode())
            assert s.sendmail(ALICE, [BOB], msg) == {}
        s.quit()
        assert len(queued(r1)) == n
        # each was tried (connection refused) and has its state
        cmtest.poll(lambda: len(list((Path(r1.tmpdir) / "state" / "queue").glob(".st-*"))) == n,
                    what="state files")
        r1.proc.send_signal(signal.SIGKILL)
        r1.proc.wait()
        r1.proc = None
        r2.start()
        r1.start()
        assert len(queued(r1)) == n
        queue_cli(r1, "flush")
        got = cmtest.poll(lambda: len(read_stored(r2, BOB)) >= n and read_stored(r2, BOB),
                          what="all messages on relay2")
        cmtest.poll(lambda: not queued(r1), what="relay1's queue empty")
        ids = sorted(m.split(b"Message-ID: ")[1].split(b"\r\n")[0] for m in read_stored(r2, BOB))
        assert ids == sorted(f"<Mr.kill{i}@example.org>".encode() for i in range(n))
        assert not dsns(r1, ALICE)
    finally:
        dns.stop()


# ---------------------------------------------------------------- volume

@pytest.mark.timeout(240)
def test_thousand_messages_one_destination(server, test_ca, keys):
    dns = zone(keys)
    try:
        r2 = relay2(server, test_ca, dns)
        mx_helpers.make_account(r2, BOB)
        r1 = relay1(server, test_ca, dns, keys, r2.port("https"))
        s = login(r1, ALICE)
        n = 1000
        for i in range(n):
            msg = encrypted(ALICE, BOB).replace(b"Mr.abc123", f"Mr.vol{i}".encode())
            assert s.sendmail(ALICE, [BOB], msg) == {}
        s.quit()
        cmtest.poll(lambda: len(stored(r2, BOB)) >= n, timeout=120, what="1000 messages on relay2")
        cmtest.poll(lambda: not queued(r1), what="relay1's queue empty")
        assert len(stored(r2, BOB)) == n
        assert "deferred" not in r1.log_text()
    finally:
        dns.stop()


# ---------------------------------------------------------------- certificates

def test_certificate_checks(server, test_ca, keys):
    """The peer's certificate names mx.peer.test only. Through an MX host of
    another name it is refused for a normal domain (deferred, nothing
    posted with it), accepted for a `_`-domain and for an address literal."""
    dns = zone(keys, {"wrong.test": {"MX": [(10, "other.test")]},
                      "_under.test": {"MX": [(10, "other.test")]},
                      "other.test": {"A": ["127.0.0.1"]}})
    peer = Peer(test_ca, [200])
    try:
        r1 = relay1(server, test_ca, dns, keys, peer.port)
        s = login(r1, ALICE)
        for rcpt in ("a@wrong.test", "b@_under.test", "c@[127.0.0.1]"):
            assert s.sendmail(ALICE, [rcpt], encrypted(ALICE, rcpt)) == {}
        s.quit()
        cmtest.poll(lambda: len(peer.got) == 2, what="two POSTs")
        got = sorted(h.get_all("X-MAIL-TO")[0] for _, h, _ in peer.got)
        assert got == ["b@_under.test", "c@[127.0.0.1]"]
        out = cmtest.poll(lambda: (o := queue_cli(r1)) and "a@wrong.test  pending  attempts 1" in o
                          and "1 message queued" in o and o,
                          what="only the wrong.test message left, deferred")
        line = [x for x in out.splitlines() if "a@wrong.test" in x][0]
        assert "mxdeliv other.test: SSL: no alternative certificate subject name matches" in line
        assert len(peer.got) == 2
    finally:
        peer.stop()
        dns.stop()


def test_signature_with_folded_headers(server, test_ca, keys):
    """dkimpy verifies what the peer got for a message with long folded
    headers (relaxed/simple)."""
    dns = zone(keys)
    peer = Peer(test_ca, [200])
    try:
        r1 = relay1(server, test_ca, dns, keys, peer.port)
        rcpt = "erin@peer.test"
        refs = "References: " + "\r\n\t".join(f"<ref{i}.{'x' * 40}@example.org>" for i in range(30))
        msg = encrypted(ALICE, rcpt).replace(b"Chat-Version: 1.0\r\n",
                                              b"Chat-Version: 1.0\r\n" + refs.encode() + b"\r\n")
        s = login(r1, ALICE)
        assert s.sendmail(ALICE, [rcpt], msg) == {}
        s.quit()
        cmtest.poll(lambda: peer.got, what="the POST")
        body = peer.got[0][2]
        assert refs.encode() in body
        assert dkim.verify(body, dnsfunc=lambda name, timeout=5: keys.record.encode()
                           if name == f"opendkim._domainkey.{R1}.".encode() else None)
        sig = body.split(b"\r\n\r\n")[0].decode()
        assert "c=relaxed/simple" in sig.replace("\r\n", "").replace("\t", "").replace(" ", "")
    finally:
        peer.stop()
        dns.stop()


def test_dkim_key_created_once(server):
    srv = server()
    path = Path(srv.tmpdir) / "state" / "dkim" / "opendkim.private"
    assert path.stat().st_mode & 0o777 == 0o600
    log = srv.log_text()
    assert f"publish: opendkim._domainkey.{R1}. TXT \"v=DKIM1;k=rsa;p=" in log
    before = path.read_bytes()
    srv.stop()
    srv.start()
    assert path.read_bytes() == before
    assert srv.log_text().count("DKIM: created") == 1


# ---------------------------------------------------------------- MX order, dead destinations

def test_mx_preference_order_falls_through(server, test_ca, keys):
    """The preferred MX host has nothing listening (127.0.0.3): the next
    one in preference order gets the message."""
    dns = zone(keys, {R2: {"MX": [(20, f"mx.{R2}"), (10, f"down.{R2}")]},
                      f"down.{R2}": {"A": ["127.0.0.3"]}})
    try:
        r2 = relay2(server, test_ca, dns)
        mx_helpers.make_account(r2, BOB)
        r1 = relay1(server, test_ca, dns, keys, r2.port("https"))
        s = login(r1, ALICE)
        assert s.sendmail(ALICE, [BOB], encrypted(ALICE, BOB)) == {}
        s.quit()
        cmtest.poll(lambda: len(stored(r2, BOB)) == 1, what="delivery through the second MX")
        cmtest.poll(lambda: not queued(r1), what="relay1's queue empty")
        mx_queries = [q for q in dns.queries if q[0].lower().startswith(("down.", "mx."))]
        assert mx_queries[0][0].lower().startswith(f"down.{R2}")
    finally:
        dns.stop()


def test_dead_destination_remembered(server, test_ca, keys):
    """relay2 is down: the first message finds it unreachable; the next one
    is deferred without a connection attempt and waits for the next probe
    (not for a backoff); once relay2 is back that probe gets through and
    everything queued for it goes at once - no flush."""
    dns = zone(keys)
    try:
        r2 = relay2(server, test_ca, dns)
        mx_helpers.make_account(r2, BOB)
        port2 = r2.port("https")
        r2.stop()
        r1 = relay1(server, test_ca, dns, keys, port2)
        s = login(r1, ALICE)
        m1 = encrypted(ALICE, BOB).replace(b"Mr.abc123", b"Mr.dead1")
        assert s.sendmail(ALICE, [BOB], m1) == {}
        cmtest.poll(lambda: "unreachable, queued mail for it waits" in r1.log_text(),
                    what="relay2.test marked unreachable")
        m2 = encrypted(ALICE, BOB).replace(b"Mr.abc123", b"Mr.dead2")
        assert s.sendmail(ALICE, [BOB], m2) == {}
        s.quit()
        cmtest.poll(lambda: "destination unreachable, not tried" in r1.log_text(),
                    what="the second message deferred without trying")
        r2.start()
        got = cmtest.poll(lambda: len(read_stored(r2, BOB)) == 2 and read_stored(r2, BOB),
                          what="both delivered after the probe")
        ids = sorted(m.split(b"Message-ID: ")[1].split(b"\r\n")[0] for m in got)
        assert ids == [b"<Mr.dead1@example.org>", b"<Mr.dead2@example.org>"]
        cmtest.poll(lambda: not queued(r1), what="relay1's queue empty")
        assert "flush" not in r1.log_text()
    finally:
        dns.stop()
